"""Tests for the pure format converters (no Django, no database)."""

from __future__ import annotations

import copy
import random
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import orjson

from reviewapp.ingest.formats import native
from reviewapp.ingest.parsing import ItemRecord, RecordError, build_item, count_words, detect_record_format

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


def check_damaged_records(records: list[dict], *, count: int) -> Counter[str]:
    """Parse ``count`` damaged copies of each record as one line of an upload and check each outcome.

    Every copy must come out as a valid item or as a precise error: the line, a field path that
    starts at a field of the record and leads into the damaged copy (but for its last step, which
    may be the missing part), and a reason; never as an exception. An exception is raised only
    after every other copy was checked, so one defect cannot hide another. Returns how many copies
    came out as each kind.
    """
    kinds: Counter[str] = Counter()
    crashes: list[Exception] = []
    for n, record in enumerate(records):
        assert isinstance(build_item(record, "line 1", None, None), ItemRecord), "the undamaged record is an item"
        for damaged in mutated_copies(record, seed=n, count=count):
            try:
                outcome = build_item(damaged, "line 1", None, None)
            except Exception as exc:
                crashes.append(exc)
                continue
            if isinstance(outcome, RecordError):
                _check_error(record, damaged, outcome)
            else:
                _check_item(damaged, outcome)
            kinds[type(outcome).__name__] += 1
    if crashes:
        raise crashes[0]
    return kinds


def _check_error(record: dict, damaged: dict, error: RecordError) -> None:
    external_id = damaged.get("external_id")
    assert error.location == "line 1"
    assert error.field == "(record)" or _names_a_field(record, damaged, error.field), (error, damaged)
    assert isinstance(error.reason, str) and error.reason.strip(), error
    assert error.external_id == (external_id if isinstance(external_id, str) else None), error


def _check_item(damaged: dict, item: ItemRecord) -> None:
    assert item.external_id == str(damaged["external_id"])
    assert item.source_format == damaged.get("format", detect_record_format(damaged))
    messages = item.payload["messages"]
    assert messages and native.normalize_messages(messages) == messages, "stored messages are valid native ones"
    assert item.payload_json == orjson.dumps(item.payload, option=orjson.OPT_SORT_KEYS)
    assert re.fullmatch(r"[0-9a-f]{64}", item.content_hash)
    assert item.word_count == count_words(item.payload)


def _names_a_field(record: dict, damaged: dict, field: str) -> bool:
    """Whether the field path ("messages[2].content[0].type") starts at a field the record has or
    had, and leads, but for its last step, into the damaged record (the last may be missing)."""
    steps = re.findall(r"\[\d+\]|[^.\[\]]+", field)
    if steps[0] not in record and steps[0] not in damaged:
        return False
    node = damaged
    for step in steps[:-1]:
        if step.startswith("["):
            index = int(step[1:-1])
            if not isinstance(node, list) or index >= len(node):
                return False
            node = node[index]
        elif isinstance(node, dict) and step in node:
            node = node[step]
        else:
            return False
    return True
