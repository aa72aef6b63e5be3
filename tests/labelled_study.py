"""A small study with labels whose metrics are worked out by hand in the tests
(tests/metrics, tests/reports): the `labelled` fixture of tests/conftest.py."""

from __future__ import annotations

import orjson

from reviewapp.ingest.parsing import parse_jsonl
from reviewapp.ingest.services import items_ingest
from reviewapp.queue.services import claim_next, label_submit
from tests.queue.test_services import reviewers_by_arm

# The AI recommends "approve" on all four; gold says it is right on the first two.
GOLD = {"i1": "approve", "i2": "approve", "i3": "reject", "i4": "reject"}


def load_items(study) -> None:
    lines = [
        orjson.dumps(
            {
                "external_id": external_id,
                "messages": [{"role": "user", "content": f"Refund order {external_id}?"}],
                "ai_recommendation": "approve",
                "gold_label": gold,
            }
        )
        for external_id, gold in GOLD.items()
    ]
    assert items_ingest(study=study, results=parse_jsonl(lines)).committed


def label_in_order(study, user, decisions: str) -> None:
    """The reviewer answers i1..i4 (served oldest first): a = approve, r = reject."""
    for letter in decisions:
        assignment = claim_next(study=study, reviewer=user)
        value = {"a": "approve", "r": "reject"}[letter]
        label_submit(study=study, reviewer=user, assignment_id=assignment.pk, values={"decision": value})


def make_labelled(study):
    """Two control and two rationale reviewers with known answers (worked out in the tests)."""
    load_items(study)
    people = reviewers_by_arm(study, {"control": 2, "rationale": 2})
    c1, c2 = people["control"]
    r1, r2 = people["rationale"]
    label_in_order(study, c1, "arrr")  # agrees with the (hidden) AI on i1 only
    label_in_order(study, c2, "aara")  # agrees on i1, i2, i4
    label_in_order(study, r1, "aaaa")  # agrees on all four
    label_in_order(study, r2, "aara")  # agrees on i1, i2, i4
    return study
