"""Reviewers may join a draft study; arms are allocated when it starts (or on joining a started
one), so nobody joining early locks the design. Each refusal or lock has its control."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from reviewapp.queue.models import Assignment
from reviewapp.studies.models import Arm, AuditEvent, Enrolment, ReviewerProfile, Study
from reviewapp.studies.randomization import allocate_reviewer
from reviewapp.studies.services import (
    StudyRuleError,
    arm_balance,
    arms_save,
    enrolment_create,
    lock_reason,
    study_transition,
    study_update,
)
from tests.builders import make_item, researcher_of, user

pytestmark = pytest.mark.django_db

ARMS = ["control", "recommendation", "rationale"]


def draft_study(slug: str = "early", *, seed: int = 20261203, **fields) -> Study:
    study = Study.objects.create(slug=slug, title=slug.title(), seed=seed, **fields)
    Arm.objects.create(study=study, name="control", position=0)
    Arm.objects.create(study=study, name="recommendation", position=1, shows_ai_recommendation=True)
    Arm.objects.create(study=study, name="rationale", position=2, shows_ai_recommendation=True, shows_ai_rationale=True)
    make_item(study)
    return study


def join(study: Study, *usernames: str) -> list[Enrolment]:
    return [enrolment_create(study=study, reviewer=user(name), source="admin")[0] for name in usernames]


def arms_in_join_order(study: Study) -> list[str]:
    return [e.arm.name for e in Enrolment.objects.filter(study=study).order_by("sequence")]


class TestAllocationAtStart:
    def test_it_enrols_a_draft_reviewer_without_an_arm(self):
        study = draft_study()
        (enrolment,) = join(study, "early-bird")
        enrolment.refresh_from_db()
        assert (enrolment.arm, enrolment.sequence, enrolment.block_index, enrolment.allocated_at) == (
            None,
            None,
            None,
            None,
        )
        assert enrolment.joined_at is not None
        event = AuditEvent.objects.get(study=study, action="enrolment.create")
        assert event.detail["allocated"] is False

    def test_joining_a_draft_locks_nothing(self):
        study = draft_study()
        join(study, "a", "b", "c")
        researcher = researcher_of(study)
        assert lock_reason(study) is None
        # The design and the arms still change, through the services and in the database.
        assert study_update(study=study, actor=researcher, changes={"overlap_k": 5, "stratify_by": "experience"})
        arms_save(
            study=study,
            actor=researcher,
            arms=[
                {"id": arm.pk, "name": arm.name, "weight": 2 if arm.name == "control" else 1}
                for arm in study.arms.all()
            ],
            delete_ids=[],
        )
        Arm.objects.create(study=study, name="fourth", shows_ai_confidence=True)
        assert study.arms.get(name="control").weight == 2 and study.arms.count() == 4

    def test_joining_a_running_study_locks_at_once(self):
        """The control: the same join into a started study allocates, and the design locks."""
        study = draft_study()
        study_transition(study=study, actor=researcher_of(study), to_status="running")
        (enrolment,) = join(study, "late")
        assert enrolment.arm is not None and enrolment.allocated_at is not None
        assert lock_reason(study) == "Reviewers have been allocated to arms, so arms and the design are locked."
        with pytest.raises(IntegrityError, match="Reviewers have been allocated"), transaction.atomic():
            Arm.objects.filter(study=study, name="control").update(weight=2)

    def test_the_arms_page_stays_editable_with_draft_reviewers(self, client):
        study = draft_study()
        join(study, "a")
        client.force_login(researcher_of(study))
        page = client.get("/studies/early/arms/").content.decode()
        assert "Save arms" in page and "locked" not in page
        study_transition(study=study, actor=user("boss", is_staff=True), to_status="running")
        page = client.get("/studies/early/arms/").content.decode()
        assert "Save arms" not in page and "Reviewers have been allocated" in page

    def test_start_allocates_everyone_in_join_order_from_the_seed(self):
        study = draft_study()
        enrolments = join(study, *[f"r{n}" for n in range(8)])
        # Join order is the join time, not the id: the last account made joined first.
        base = timezone.now() - timedelta(hours=1)
        for minutes, enrolment in enumerate(reversed(enrolments)):
            Enrolment.objects.filter(pk=enrolment.pk).update(joined_at=base + timedelta(minutes=minutes))
        researcher = researcher_of(study)

        study_transition(study=study, actor=researcher, to_status="running")

        allocated = list(Enrolment.objects.filter(study=study).select_related("arm", "reviewer").order_by("sequence"))
        assert [e.reviewer.username for e in allocated] == [f"r{n}" for n in reversed(range(8))]
        expected = [ARMS[allocate_reviewer([1, 1, 1], study.seed, "", n).arm_index] for n in range(8)]
        assert [e.arm.name for e in allocated] == expected
        assert all(e.allocated_at is not None and e.seed == study.seed for e in allocated)
        assert [(e.block_index, e.block_position) for e in allocated[:2]] == [(0, 0), (0, 1)]
        events = AuditEvent.objects.filter(study=study, action="enrolment.allocate").order_by("id")
        assert [(e.detail["reviewer"], e.detail["arm"]) for e in events] == [
            (e.reviewer.username, e.arm.name) for e in allocated
        ]
        assert {e.actor_name for e in events} == {"rosa"}

    def test_the_same_seed_and_join_order_give_the_same_arms(self):
        first, again, other = draft_study("one"), draft_study("two"), draft_study("three", seed=7)
        for study in (first, again, other):
            join(study, *[f"{study.slug}-{n}" for n in range(12)])
            study_transition(study=study, actor=researcher_of(study, f"res-{study.slug}"), to_status="running")
        assert arms_in_join_order(first) == arms_in_join_order(again)
        assert arms_in_join_order(first) != arms_in_join_order(other)  # the seed decides, not chance

    def test_a_join_after_start_continues_the_sequence(self):
        study = draft_study()
        join(study, "a", "b")
        study_transition(study=study, actor=researcher_of(study), to_status="running")
        (late,) = join(study, "c")
        assert late.sequence == 2
        assert late.arm.name == ARMS[allocate_reviewer([1, 1, 1], study.seed, "", 2).arm_index]

    def test_the_stratum_is_read_at_start(self):
        study = draft_study()
        join(study, "novice-1", "expert-1", "novice-2")
        for name in ("novice-1", "novice-2", "expert-1"):
            ReviewerProfile.objects.create(
                user=Enrolment.objects.get(reviewer__username=name).reviewer,
                attributes={"experience": name.split("-")[0]},
            )
        researcher = researcher_of(study)
        study_update(study=study, actor=researcher, changes={"stratify_by": "experience"})  # after they joined

        study_transition(study=study, actor=researcher, to_status="running")

        rows = Enrolment.objects.filter(study=study).values_list("reviewer__username", "stratum", "sequence")
        assert sorted(rows) == [("expert-1", "expert", 0), ("novice-1", "novice", 0), ("novice-2", "novice", 1)]

    def test_within_subjects_start_sets_the_order_but_no_arm(self):
        study = draft_study(design=Study.Design.WITHIN)
        join(study, "a", "b")
        study_transition(study=study, actor=researcher_of(study), to_status="running")
        rows = Enrolment.objects.filter(study=study).order_by("sequence")
        assert [(e.arm_id, e.sequence, e.allocated_at is not None) for e in rows] == [(None, 0, True), (None, 1, True)]

    def test_a_start_that_fails_allocates_nobody(self):
        study = draft_study()
        study.items.all().delete()
        join(study, "a")
        with pytest.raises(StudyRuleError, match="no items"):
            study_transition(study=study, actor=researcher_of(study), to_status="running")
        assert not Enrolment.objects.filter(study=study, allocated_at__isnull=False).exists()


class TestWhatDraftReviewersSee:
    def test_the_review_page_says_the_study_has_not_started(self, client):
        study = draft_study()
        (enrolment,) = join(study, "early")
        client.force_login(enrolment.reviewer)
        page = client.get("/review/early/").content.decode()
        assert "This study has not started yet" in page
        assert "This study has not started yet" in client.get("/").content.decode()
        study_transition(study=study, actor=researcher_of(study), to_status="running")
        page = client.get("/review/early/").content.decode()  # the control: once started, an item
        assert "This study has not started yet" not in page
        assert Assignment.objects.filter(study=study, reviewer=enrolment.reviewer).exists()

    def test_researcher_pages_show_them_as_not_allocated_yet(self, client):
        study = draft_study()
        (enrolment,) = join(study, "early")
        client.force_login(researcher_of(study))
        reviewers = client.get("/studies/early/reviewers/").content.decode()
        assert "not allocated yet" in reviewers and "1 reviewer joined and is not allocated yet" in reviewers
        overview = client.get("/studies/early/").content.decode()
        assert "1 reviewer joined and is not allocated yet" in overview
        report = client.get(f"/studies/early/dashboard/reviewers/{enrolment.reviewer_id}/")
        assert report.status_code == 200 and "not allocated yet" in report.content.decode()

        study_transition(study=study, actor=user("boss", is_staff=True), to_status="running")
        reviewers = client.get("/studies/early/reviewers/").content.decode()
        assert "not allocated yet" not in reviewers
        assert Enrolment.objects.get(pk=enrolment.pk).arm.name in reviewers

    def test_the_arm_balance_counts_only_allocated_reviewers(self):
        study = draft_study()
        join(study, "a", "b")
        balance = arm_balance(study)
        assert (balance["allocated"], balance["waiting"], balance["total"]) == (0, 2, 2)
        assert sum(cell["n"] for row in balance["rows"] for cell in row["cells"]) == 0
        study_transition(study=study, actor=user("boss", is_staff=True), to_status="running")
        balance = arm_balance(study)
        assert (balance["allocated"], balance["waiting"]) == (2, 0)
        assert sum(cell["n"] for row in balance["rows"] for cell in row["cells"]) == 2


def database_lock_reason(study: Study) -> str | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT reviewapp_design_lock_reason(%s)", [study.pk])
        return cursor.fetchone()[0]


def test_the_database_lock_agrees_with_the_service():
    """lock_reason and the trigger say the same thing, before Start and after."""
    study = draft_study()
    join(study, "a")
    assert database_lock_reason(study) is None and lock_reason(study) is None
    study_transition(study=study, actor=user("boss", is_staff=True), to_status="running")
    assert database_lock_reason(study) == lock_reason(study) is not None
