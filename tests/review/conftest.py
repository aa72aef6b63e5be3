"""A running three-arm study with items in the queue and reviewers placed in chosen arms."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from reviewapp.ingest.models import Item
from reviewapp.queue.services import quotas_sync
from reviewapp.studies.models import Arm, Enrolment

TRANSCRIPT = {
    "title": "Refund over the limit",
    "messages": [
        {"role": "system", "content": "You are a support agent. Refunds over $200 need a manager."},
        {"role": "user", "content": "Please refund order **A-1** ($240)."},
        {
            "role": "assistant",
            "content": "Looking it up.",
            "tool_calls": [{"id": "c1", "name": "lookup_order", "arguments": {"order_id": "A-1"}}],
        },
        {
            "role": "tool",
            "tool_call_id": "c1",
            "name": "lookup_order",
            "content": '{"total": 240, "status": "delivered"}',
        },
        {"role": "assistant", "content": "Refunding $240 now."},
    ],
}


def make_items(study, count: int, *, prefix: str = "item", **fields) -> list[Item]:
    defaults = {
        "source_format": "native",
        "payload": TRANSCRIPT,
        "content_hash": "0" * 64,
        "ai_recommendation": "approve",
        "ai_rationale": "The customer is **eligible**.",
        "ai_confidence": 0.9,
    }
    items = [
        Item.objects.create(study=study, external_id=f"{prefix}-{n}", **{**defaults, **fields}) for n in range(count)
    ]
    quotas_sync(study=study)
    return items


@pytest.fixture
def enrol(study):
    """enrol(username, arm_name) → a logged-in-able reviewer in that arm (password 'pw-review-123')."""
    sequence = iter(range(1000))

    def enrol(username: str, arm_name: str) -> User:
        reviewer = User.objects.create_user(username, password="pw-review-123")
        arm = Arm.objects.get(study=study, name=arm_name)
        Enrolment.objects.create(
            study=study, reviewer=reviewer, arm=arm, seed=1, sequence=next(sequence), source="admin"
        )
        return reviewer

    return enrol
