"""Each reviewer's item order: pure functions, mirrored by one SQL function.

In a shuffled study every item gets a **place** in its priority band, a keyed
pseudo-random permutation of its id (a 4-round Feistel network on 38 bits, keyed by the
study's seed). Each reviewer starts their walk at the place of one item, drawn uniformly
by id from the study's items at their first claim (seeded by the study's seed and their
allocation: stratum and sequence). The reviewer walks their band from there upwards and
wraps around to the start of the band once (docs/design.md, "Queue contract"), so:

- the order is reproducible from the study's seed, the enrolment and the item ids;
- every item is equally likely to be a reviewer's first, so over reviewers an item's
  position in the sequence is uniform: position and item identity are not confounded.
  (Starting at a uniform *point* of the place space would not do: items after a wide gap
  between places would be started on more often.);
- the claim is still one index range over ``(band, place)``, as flat as the fixed order.

The permutation is a bijection, so no two items of a band share a place (a hash could
collide, and a tie would let the walk step over an item). What the walk does not vary is
which item follows which: every reviewer meets the same cyclic sequence from a different
starting point (a cyclic Latin-square design), so carry-over between neighbouring items
is not balanced. The fixed order is the item's id as its place and a start of 0.

``reviewapp_item_place(key, id)`` (migration queue/0008) computes ``feistel_place`` in
SQL so bulk inserts place items without a round trip; a test checks that the two agree.
"""

from __future__ import annotations

import hashlib

HALF_BITS = 19
HALF_MASK = (1 << HALF_BITS) - 1
# Ids at or above this keep their own value as place (a study would need 2.7e11 items).
DOMAIN = 1 << (2 * HALF_BITS)
ROUNDS = 4


def _round(value: int, key: int) -> int:
    # Multiply-xorshift mixing, kept under 2**63 at every step (SQL bigint arithmetic
    # raises on overflow, and the SQL twin must give the same bits).
    t = ((value ^ (key & HALF_MASK)) * 2654435761) & 0xFFFFFFFF
    t ^= t >> 16
    t = ((t & 0x7FFFFFF) * 73244475) & 0xFFFFFFFF
    t ^= t >> 16
    return (t ^ (key >> 19)) & HALF_MASK


def _round_key(key: int, round_index: int) -> int:
    return ((key >> (round_index * 13)) ^ (round_index * 40503)) & 0x7FFFFFFFFF


def feistel_place(key: int, value: int) -> int:
    """A keyed permutation of [0, 2**38); values outside it map to themselves."""
    if value < 0 or value >= DOMAIN:
        return value
    left, right = value >> HALF_BITS, value & HALF_MASK
    for i in range(ROUNDS):
        left, right = right, left ^ _round(right, _round_key(key, i))
    return (left << HALF_BITS) | right


def item_key(seed: int) -> int:
    """The permutation key for a study's items: its seed, as a non-negative 62-bit number."""
    return seed & ((1 << 62) - 1)


def item_place(seed: int, item_id: int, *, shuffled: bool) -> int:
    """Where an item sits in its priority band."""
    return feistel_place(item_key(seed), item_id) if shuffled else item_id


def reviewer_draw(seed: int, stratum: str, sequence: int) -> float:
    """A reviewer's seeded uniform draw in [0, 1): which item their walk starts at."""
    digest = hashlib.sha256(f"{seed}\x1fstart\x1f{stratum}\x1f{sequence}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def start_item_id(draw: float, first_id: int, last_id: int) -> int:
    """The id the start is drawn at: uniform over [first_id, last_id] (the first item at
    or after it starts the walk)."""
    return first_id + int(draw * (last_id - first_id + 1))


def walk(places: list[int], offset: int) -> list[int]:
    """The order a reviewer meets one band's places in: up from ``offset``, then wrapped."""
    ordered = sorted(places)
    return [p for p in ordered if p >= offset] + [p for p in ordered if p < offset]
