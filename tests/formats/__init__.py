"""Tests for the pure format converters (no Django, no database)."""

from __future__ import annotations

import copy
import random
from collections.abc import Iterator
from typing import Any

# Values a broken exporter or a hand-edited file might put anywhere.
ODD_VALUES: list[Any] = [None, 0, -1, 2.5, True, "", "x", "{", [], {}, [None], [1], {"type": None}, {"type": 7}]


def mutated_copies(doc: Any, *, seed: int, count: int) -> Iterator[Any]:
    """Copies of ``doc`` with one to three nodes replaced, deleted or inserted (seeded)."""
    rng = random.Random(seed)
    for _ in range(count):
        out = copy.deepcopy(doc)
        for _ in range(rng.randint(1, 3)):
            paths = list(_paths(out))
            if not paths:
                break
            path = rng.choice(paths)
            parent = out
            for step in path[:-1]:
                parent = parent[step]
            key, value = path[-1], copy.deepcopy(rng.choice(ODD_VALUES))
            if isinstance(parent, dict) and rng.random() < 0.25:
                del parent[key]
            elif isinstance(parent, list) and rng.random() < 0.15:
                parent.insert(key, value)
            else:
                parent[key] = value
        yield out


def _paths(node: Any) -> Iterator[tuple]:
    stack: list[tuple[Any, tuple]] = [(node, ())]
    while stack:
        current, path = stack.pop()
        if path:
            yield path
        if isinstance(current, dict):
            stack.extend((v, (*path, k)) for k, v in current.items())
        elif isinstance(current, list):
            stack.extend((v, (*path, i)) for i, v in enumerate(current))
