"""Two studies side by side, each with its researcher, reviewers, leases, tokens and invitations.

Used to try one party's ids from another's seat: every such request must be a 404.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.contrib.auth.models import User

from reviewapp.ingest.models import IngestJob, Item
from reviewapp.queue import services as queue
from reviewapp.queue.models import Assignment
from reviewapp.studies.models import Arm, IngestToken, Invitation, Study
from tests.builders import enrol, make_items, researcher_of


@dataclass
class Side:
    """One study and everything that belongs to it."""

    study: Study
    researcher: User
    reviewer: User
    assignment: Assignment
    item: Item
    token: IngestToken
    invitation: Invitation
    job: IngestJob


def side(study: Study, prefix: str) -> Side:
    researcher = researcher_of(study, f"{prefix}-researcher")
    reviewer = enrol(study, f"{prefix}-reviewer", "control")
    items = make_items(study, 3, prefix=prefix)
    assignment = queue.claim_next(study=study, reviewer=reviewer)
    token, _plaintext = IngestToken.issue(study=study, name=f"{prefix} pipeline")
    invitation = Invitation.objects.create(study=study, label=f"{prefix} cohort")
    job = IngestJob.objects.create(study=study, filename=f"{prefix}.jsonl", stored_path="/nowhere", size_bytes=1)
    return Side(study, researcher, reviewer, assignment, items[-1], token, invitation, job)


@pytest.fixture
def ours(study) -> Side:
    return side(study, "ours")


@pytest.fixture
def theirs(db) -> Side:
    study = Study.objects.create(slug="theirs", title="Another team's study", status=Study.Status.RUNNING)
    Arm.objects.create(study=study, name="control", position=0)
    Arm.objects.create(study=study, name="recommendation", position=1, shows_ai_recommendation=True)
    return side(study, "theirs")
