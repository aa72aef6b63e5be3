"""Seeded arm allocation: pure functions, no Django.

Between subjects, reviewers are allocated by **permuted blocks** (Altman & Bland,
BMJ 1999, "How to randomise"): each block holds every arm ``weight`` times (times a
multiplier, so the next arm is less predictable), shuffled. The n-th reviewer of a
stratum gets position ``n % size`` of block ``n // size``. Each block is shuffled by
its own generator seeded from (study seed, stratum, block index), so the whole
allocation is reproducible from the seed and the enrolment order alone, and the arm
counts within a stratum never differ from their targets by more than one block.

Within subjects, the arm is chosen per assignment: the j-th assignment of an item
takes position j of that item's own permuted-block sequence, so each item is seen
under each arm about equally (exactly, when k is a multiple of the block size).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

BETWEEN_BLOCK_MULTIPLIER = 2
WITHIN_BLOCK_MULTIPLIER = 1


@dataclass(frozen=True)
class Allocation:
    arm_index: int
    block_index: int
    block_position: int
    block_size: int


def weights_error(weights: list[int]) -> str | None:
    """Why these arm weights cannot allocate anyone, or None."""
    if not weights:
        return "The study has no arms; add at least one."
    if any(w < 0 for w in weights):
        return "Arm weights cannot be negative."
    if sum(weights) == 0:
        return "Arm weights sum to zero, so no arm could be allocated; give at least one arm a weight above 0."
    return None


def _stream_seed(*parts: object) -> int:
    # A stable 128-bit seed per (study seed, purpose, stratum, block): Python's
    # hash() is salted per process, so it would not reproduce.
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:16], "big")


def permuted_block(weights: list[int], seed: int, stream: str, block_index: int, multiplier: int) -> list[int]:
    """One shuffled block: arm i appears ``weights[i] * multiplier`` times."""
    base = [i for i, w in enumerate(weights) for _ in range(w * multiplier)]
    rng = np.random.default_rng(_stream_seed(seed, stream, block_index))
    return [base[j] for j in rng.permutation(len(base))]


def _allocate(weights: list[int], seed: int, stream: str, sequence: int, multiplier: int) -> Allocation:
    problem = weights_error(weights)
    if problem:
        raise ValueError(problem)
    size = sum(weights) * multiplier
    block_index, position = divmod(sequence, size)
    block = permuted_block(weights, seed, stream, block_index, multiplier)
    return Allocation(block[position], block_index, position, size)


def allocate_reviewer(weights: list[int], seed: int, stratum: str, sequence: int) -> Allocation:
    """Arm of the ``sequence``-th (0-based) reviewer enrolled in ``stratum``."""
    return _allocate(weights, seed, f"between:{stratum}", sequence, BETWEEN_BLOCK_MULTIPLIER)


def allocate_assignment(weights: list[int], seed: int, item_key: object, slot: int) -> Allocation:
    """Arm of the ``slot``-th (0-based) assignment of one item, in a within-subjects study."""
    return _allocate(weights, seed, f"within:{item_key}", slot, WITHIN_BLOCK_MULTIPLIER)
