"""The review queue against real PostgreSQL: quotas, claim order, leases, skip, submit, expiry.

Items come in through ``items_ingest`` and reviewers through ``enrolment_create``, as in
the app; the fixture ``study`` is a running between-subjects study with the arms
control / recommendation / rationale (weight 1 each), k = 3 and the default schema
(decision: approve | reject).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from reviewapp.ingest.models import Item
from reviewapp.queue.models import Assignment, ItemQuota, Label, LateSubmission, QuotaTally, ReviewerCursor
from reviewapp.queue.services import (
    InvalidLabel,
    NotEnrolled,
    QueueError,
    StaleLease,
    StudyNotRunning,
    assignment_skip,
    claim_next,
    label_submit,
    leases_expire,
    progress_totals,
    quotas_sync,
)
from reviewapp.queue.tasks import refresh_progress
from reviewapp.studies.models import Enrolment, Study
from reviewapp.studies.services import study_transition
from tests.builders import APPROVE, enrol_allocated, ingest, reviewers_by_arm, user


def set_study(study: Study, **fields) -> Study:
    Study.objects.filter(pk=study.pk).update(**fields)
    study.refresh_from_db()
    return study


def claimed(study: Study, user: User) -> str | None:
    assignment = claim_next(study=study, reviewer=user)
    return None if assignment is None else assignment.item.external_id


def review(study: Study, user: User) -> str | None:
    """Claim the next item and label it; the item's external id, or None when done."""
    assignment = claim_next(study=study, reviewer=user)
    if assignment is None:
        return None
    label_submit(study=study, reviewer=user, assignment_id=assignment.pk, values=APPROVE)
    return assignment.item.external_id


def overdue(assignment: Assignment) -> None:
    """The reviewer walked away: their lease ran out a second ago."""
    Assignment.objects.filter(pk=assignment.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))


def reviewed_in_bulk(study: Study, user: User, items: list[Item]) -> None:
    """A long history, written in bulk: the same rows claim and submit leave behind."""
    arm = Enrolment.objects.get(study=study, reviewer=user).arm
    now = timezone.now()
    assignments = Assignment.objects.bulk_create(
        Assignment(
            study=study,
            item=item,
            reviewer=user,
            arm=arm,
            quota_arm_key=arm.pk,
            state=Assignment.State.SUBMITTED,
            leased_at=now,
            lease_expires_at=now + timedelta(seconds=study.lease_seconds),
            submitted_at=now,
        )
        for item in items
    )
    Label.objects.bulk_create(
        Label(assignment=a, study=study, item_id=a.item_id, reviewer=user, arm=arm, values=APPROVE, submitted_at=now)
        for a in assignments
    )
    ItemQuota.objects.filter(item__in=items, arm_key=arm.pk).update(
        open_slots=F("open_slots") - 1, submitted=F("submitted") + 1
    )


def quota(item: Item, arm_key: int = 0) -> ItemQuota:
    return ItemQuota.objects.get(item=item, arm_key=arm_key)


def plan_rows_read(plan: dict, table: str) -> int:
    """Rows the plan read from ``table``: returned plus filtered out, over all loops."""
    total = 0
    if plan.get("Relation Name") == table:
        total += (plan["Actual Rows"] + plan.get("Rows Removed by Filter", 0)) * plan["Actual Loops"]
    for child in plan.get("Plans", []):
        total += plan_rows_read(child, table)
    return total


class TestQueueServices:
    # --- quotas ---------------------------------------------------------------------

    def test_it_opens_k_slots_per_item_and_weighted_arm_when_a_between_study_starts(self, study):
        set_study(study, status=Study.Status.DRAFT)
        study.arms.filter(name="rationale").update(weight=0)
        items = ingest(study, "a", "b", "c")
        assert not ItemQuota.objects.filter(study=study).exists()  # a draft has no queue yet

        study_transition(study=study, actor=None, to_status=Study.Status.RUNNING)

        arm_ids = set(study.arms.filter(weight__gt=0).values_list("id", flat=True))
        quotas = list(
            ItemQuota.objects.filter(study=study).values_list("item_id", "arm_key", "open_slots", "submitted")
        )
        assert sorted(quotas) == sorted((item.pk, arm_id, 3, 0) for item in items for arm_id in arm_ids)
        assert quotas_sync(study=study) == 0
        assert ItemQuota.objects.filter(study=study).count() == 6

    def test_it_opens_one_quota_per_item_in_a_within_study(self, study):
        set_study(study, design=Study.Design.WITHIN)
        items = ingest(study, "a", "b")

        quotas = list(ItemQuota.objects.filter(study=study).values_list("item_id", "arm_key", "open_slots"))
        assert sorted(quotas) == [(items[0].pk, 0, 3), (items[1].pk, 0, 3)]
        assert quotas_sync(study=study) == 0
        assert ItemQuota.objects.filter(study=study).count() == 2

    def test_it_adds_quotas_for_items_ingested_while_running_without_touching_others(self, study):
        (first,) = ingest(study, "a")
        user = enrol_allocated(study)
        claim_next(study=study, reviewer=user)
        arm_id = Enrolment.objects.get(reviewer=user).arm_id

        ingest(study, "b")

        assert ItemQuota.objects.filter(study=study).count() == 6
        assert quota(first, arm_id).open_slots == 2

    # --- claim ----------------------------------------------------------------------

    def test_it_serves_high_priority_first_then_oldest_in_fixed_order(self, study):
        set_study(study, item_order=Study.ItemOrder.FIXED)
        ingest(study, "old-low")
        ingest(study, "old-high", priority=5)
        ingest(study, "new-low")
        ingest(study, "new-high", priority=5)
        user = enrol_allocated(study)

        served = [review(study, user) for _ in range(5)]

        assert served == ["old-high", "new-high", "old-low", "new-low", None]

    def test_it_returns_the_same_lease_on_a_double_click(self, study):
        (item,) = ingest(study, "a")
        user = enrol_allocated(study)

        first = claim_next(study=study, reviewer=user)
        second = claim_next(study=study, reviewer=user)

        assert second.pk == first.pk
        assert Assignment.objects.filter(reviewer=user).count() == 1
        assert quota(item, first.arm_id).open_slots == 2

    def test_it_never_offers_an_item_twice_to_one_reviewer(self, study):
        ingest(study, "submitted", "skipped", "expired")
        user = enrol_allocated(study)

        first = claim_next(study=study, reviewer=user)
        label_submit(study=study, reviewer=user, assignment_id=first.pk, values=APPROVE)
        second = claim_next(study=study, reviewer=user)
        assignment_skip(study=study, reviewer=user, assignment_id=second.pk, reason="Not in a language I read")
        third = claim_next(study=study, reviewer=user)
        overdue(third)
        leases_expire(study=study)

        assert [a.item.external_id for a in (first, second, third)] == ["submitted", "skipped", "expired"]
        assert claim_next(study=study, reviewer=user) is None
        # The items still have open slots: others of the same arm get them.
        (colleague,) = reviewers_by_arm(study, {first.arm.name: 1})[first.arm.name]
        assert [review(study, colleague) for _ in range(4)] == ["submitted", "skipped", "expired", None]

    def test_it_gives_an_item_to_at_most_k_reviewers_of_an_arm(self, study):
        set_study(study, overlap_k=2, item_order=Study.ItemOrder.FIXED)
        study.arms.exclude(name="control").update(weight=0)
        ingest(study, "a", "b")
        first, second, third = (enrol_allocated(study) for _ in range(3))

        assert [claimed(study, u) for u in (first, second, third)] == ["a", "a", "b"]

    def test_it_has_nothing_for_a_third_reviewer_when_k_is_two_and_there_is_one_item(self, study):
        set_study(study, overlap_k=2)
        study.arms.exclude(name="control").update(weight=0)
        ingest(study, "a")
        first, second, third = (enrol_allocated(study) for _ in range(3))

        assert [claimed(study, u) for u in (first, second, third)] == ["a", "a", None]
        label_submit(
            study=study, reviewer=first, assignment_id=Assignment.objects.get(reviewer=first).pk, values=APPROVE
        )
        assert claimed(study, third) is None  # a submitted label keeps its slot

    def test_it_counts_k_per_arm_in_a_between_study(self, study):
        set_study(study, overlap_k=2)
        (item,) = ingest(study, "a")
        by_arm = reviewers_by_arm(study, {"control": 3, "recommendation": 2, "rationale": 2})

        served = {name: [claimed(study, u) for u in users] for name, users in by_arm.items()}

        assert served == {"control": ["a", "a", None], "recommendation": ["a", "a"], "rationale": ["a", "a"]}
        for name, users in by_arm.items():
            arms = set(Assignment.objects.filter(reviewer__in=users).values_list("arm__name", flat=True))
            assert arms == {name}
        assert sorted(ItemQuota.objects.filter(item=item).values_list("open_slots", flat=True)) == [0, 0, 0]

    def test_it_picks_an_arm_per_assignment_in_a_within_study(self, study):
        set_study(study, design=Study.Design.WITHIN)
        (item,) = ingest(study, "a")
        users = [enrol_allocated(study) for _ in range(4)]
        assert all(e.arm_id is None for e in Enrolment.objects.filter(study=study))

        assignments = [claim_next(study=study, reviewer=u) for u in users[:3]]

        # k = 3 with three equal arms: the item is seen once under each arm.
        assert sorted(a.arm.name for a in assignments) == ["control", "rationale", "recommendation"]
        assert claim_next(study=study, reviewer=users[3]) is None
        assert quota(item).open_slots == 0

    def test_it_keeps_a_within_study_counterbalanced_when_a_lease_expires(self, study):
        set_study(study, design=Study.Design.WITHIN)
        (item,) = ingest(study, "a")
        walked_away, stayed, late_comer, last = (enrol_allocated(study) for _ in range(4))
        abandoned = claim_next(study=study, reviewer=walked_away)
        claim_next(study=study, reviewer=stayed)
        overdue(abandoned)
        leases_expire(study=study)

        claim_next(study=study, reviewer=late_comer)
        claim_next(study=study, reviewer=last)

        # The slot given back is the expired one's: the three live leases still cover the three arms.
        live = Assignment.objects.filter(item=item, state=Assignment.State.LEASED)
        assert sorted(live.values_list("arm__name", flat=True)) == ["control", "rationale", "recommendation"]

    def test_it_refuses_reviewers_who_are_not_enrolled(self, study):
        ingest(study, "a")
        stranger = user("stranger")

        with pytest.raises(NotEnrolled) as refused:
            claim_next(study=study, reviewer=stranger)

        assert refused.value.status == 404
        assert not Assignment.objects.exists()

    def test_it_serves_nothing_while_the_study_is_paused(self, study):
        ingest(study, "a")
        user = enrol_allocated(study)
        study_transition(study=study, actor=None, to_status=Study.Status.PAUSED)
        study.refresh_from_db()

        with pytest.raises(StudyNotRunning) as refused:
            claim_next(study=study, reviewer=user)

        assert refused.value.status == 409
        assert not Assignment.objects.exists()

    # --- skip -------------------------------------------------------------------------

    def test_it_needs_a_reason_to_skip_and_gives_the_slot_back(self, study):
        (item,) = ingest(study, "a")
        user = enrol_allocated(study)
        assignment = claim_next(study=study, reviewer=user)

        with pytest.raises(QueueError):
            assignment_skip(study=study, reviewer=user, assignment_id=assignment.pk, reason="   ")
        assert Assignment.objects.get(pk=assignment.pk).state == Assignment.State.LEASED
        assert quota(item, assignment.arm_id).open_slots == 2

        assignment_skip(study=study, reviewer=user, assignment_id=assignment.pk, reason="Transcript is truncated")

        skipped = Assignment.objects.get(pk=assignment.pk)
        assert (skipped.state, skipped.skip_reason) == (Assignment.State.SKIPPED, "Transcript is truncated")
        assert quota(item, assignment.arm_id).open_slots == 3
        assert claim_next(study=study, reviewer=user) is None

    def test_it_does_not_count_an_answer_on_a_skipped_item(self, study):
        (item,) = ingest(study, "a")
        user = enrol_allocated(study)
        assignment = claim_next(study=study, reviewer=user)
        assignment_skip(study=study, reviewer=user, assignment_id=assignment.pk, reason="Conflict of interest")

        with pytest.raises(StaleLease):
            label_submit(study=study, reviewer=user, assignment_id=assignment.pk, values=APPROVE)

        assert not Label.objects.exists()
        assert (quota(item, assignment.arm_id).open_slots, quota(item, assignment.arm_id).submitted) == (3, 0)

    # --- submit -----------------------------------------------------------------------

    def test_it_rejects_labels_that_do_not_fit_the_schema(self, study):
        ingest(study, "a")
        user = enrol_allocated(study)
        assignment = claim_next(study=study, reviewer=user)
        cases = [
            ({"decision": "maybe"}, "decision"),
            ({"decision": "approve", "mood": "grumpy"}, "mood"),
            ({}, "decision"),
        ]
        for values, field in cases:
            with pytest.raises(InvalidLabel) as rejected:
                label_submit(study=study, reviewer=user, assignment_id=assignment.pk, values=values)
            assert field in rejected.value.errors, values
            assert rejected.value.status == 400

        assert not Label.objects.exists()
        assert Assignment.objects.get(pk=assignment.pk).state == Assignment.State.LEASED

    def test_it_records_a_double_submit_once(self, study):
        (item,) = ingest(study, "a")
        user = enrol_allocated(study)
        assignment = claim_next(study=study, reviewer=user)

        label, created = label_submit(study=study, reviewer=user, assignment_id=assignment.pk, values=APPROVE)
        again, created_again = label_submit(
            study=study, reviewer=user, assignment_id=assignment.pk, values={"decision": "reject"}
        )

        assert (created, created_again) == (True, False)
        assert again.pk == label.pk and again.values == APPROVE
        assert Label.objects.filter(assignment=assignment).count() == 1
        assert Assignment.objects.get(pk=assignment.pk).state == Assignment.State.SUBMITTED
        assert (quota(item, assignment.arm_id).open_slots, quota(item, assignment.arm_id).submitted) == (2, 1)

    def test_it_does_not_let_a_reviewer_submit_someone_elses_assignment(self, study):
        ingest(study, "a")
        owner, intruder = enrol_allocated(study), enrol_allocated(study)
        assignment = claim_next(study=study, reviewer=owner)

        with pytest.raises(NotEnrolled):
            label_submit(study=study, reviewer=intruder, assignment_id=assignment.pk, values=APPROVE)

        assert not Label.objects.exists()

    # --- leases ------------------------------------------------------------------------

    def test_it_frees_the_slot_when_a_lease_expires(self, study):
        set_study(study, overlap_k=1, lease_seconds=30)
        (item,) = ingest(study, "a")
        by_arm = reviewers_by_arm(study, {"control": 2})
        first, second = by_arm["control"]
        assignment = claim_next(study=study, reviewer=first)
        assert claim_next(study=study, reviewer=second) is None
        assert assignment.lease_expires_at - assignment.leased_at == timedelta(seconds=30)

        overdue(assignment)
        leases_expire(study=study)

        assert Assignment.objects.get(pk=assignment.pk).state == Assignment.State.EXPIRED
        assert quota(item, assignment.arm_id).open_slots == 1
        assert claimed(study, second) == "a"

    def test_it_counts_a_late_submit_when_the_slot_is_still_free(self, study):
        set_study(study, overlap_k=1)
        (item,) = ingest(study, "a")
        user = enrol_allocated(study)
        assignment = claim_next(study=study, reviewer=user)
        overdue(assignment)
        leases_expire(study=study)

        label, created = label_submit(study=study, reviewer=user, assignment_id=assignment.pk, values=APPROVE)

        assert created and label.assignment_id == assignment.pk
        assert Assignment.objects.get(pk=assignment.pk).state == Assignment.State.SUBMITTED
        assert (quota(item, assignment.arm_id).open_slots, quota(item, assignment.arm_id).submitted) == (0, 1)
        assert not LateSubmission.objects.exists()

    def test_it_counts_a_late_submit_on_an_overdue_lease_nobody_swept_yet(self, study):
        set_study(study, overlap_k=1)
        (item,) = ingest(study, "a")
        user = enrol_allocated(study)
        assignment = claim_next(study=study, reviewer=user)
        overdue(assignment)

        _label, created = label_submit(study=study, reviewer=user, assignment_id=assignment.pk, values=APPROVE)

        assert created
        assert (quota(item, assignment.arm_id).open_slots, quota(item, assignment.arm_id).submitted) == (0, 1)

    def test_it_refuses_and_keeps_a_late_submit_whose_slot_was_taken(self, study):
        set_study(study, overlap_k=1)
        (item,) = ingest(study, "a")
        by_arm = reviewers_by_arm(study, {"control": 2})
        slow, quick = by_arm["control"]
        assignment = claim_next(study=study, reviewer=slow)
        overdue(assignment)
        leases_expire(study=study)
        assert claimed(study, quick) == "a"
        counters = quota(item, assignment.arm_id)
        before = (counters.open_slots, counters.submitted)

        with pytest.raises(StaleLease) as refused:
            label_submit(
                study=study, reviewer=slow, assignment_id=assignment.pk, values=APPROVE, comment="Took my time"
            )

        assert refused.value.status == 409
        assert not Label.objects.filter(assignment=assignment).exists()
        assert Assignment.objects.get(pk=assignment.pk).state == Assignment.State.EXPIRED
        counters = quota(item, assignment.arm_id)
        assert (counters.open_slots, counters.submitted) == before == (0, 0)
        # Kept for the record, never silently dropped (docs/design.md, "Queue contract").
        kept = list(LateSubmission.objects.filter(assignment=assignment).values_list("values", flat=True))
        assert kept == [APPROVE]

    # --- cursor ------------------------------------------------------------------------

    def test_it_serves_a_high_priority_item_ingested_later_before_older_ones(self, study):
        set_study(study, item_order=Study.ItemOrder.FIXED)
        ingest(study, "a", "b", "c")
        user = enrol_allocated(study)
        assert review(study, user) == "a"

        ingest(study, "urgent", priority=10)

        assert [review(study, user) for _ in range(3)] == ["urgent", "b", "c"]

    def test_it_keeps_the_claim_flat_after_a_long_history(self, study, django_assert_max_num_queries):
        # Fixed order, so the history can be written in bulk in serving order; the shuffled
        # walk's version is in test_order.py.
        set_study(study, item_order=Study.ItemOrder.FIXED)
        history = 2000
        items = ingest(study, *(f"item-{n:05d}" for n in range(history + 5)))
        user = enrol_allocated(study)
        reviewed_in_bulk(study, user, items[:history])
        # Real claims from here on; the first one finds where the history ends.
        assert [review(study, user) for _ in range(2)] == ["item-02000", "item-02001"]

        # Counted inside the test's transaction, so SAVEPOINT / RELEASE statements are included.
        with django_assert_max_num_queries(12), CaptureQueriesContext(connection) as queries:
            assignment = claim_next(study=study, reviewer=user)

        assert assignment.item.external_id == "item-02002"
        (pick,) = [q["sql"] for q in queries.captured_queries if "q.sort_key >" in q["sql"]]
        with transaction.atomic(), connection.cursor() as cursor:
            # ANALYZE runs the statement (it takes a slot and moves the cursor): undo it after.
            cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {pick}")
            (plan,) = cursor.fetchone()[0]
            transaction.set_rollback(True)
        # The pick starts at the reviewer's cursor: it reads a handful of quota rows, not 2,000.
        assert plan_rows_read(plan["Plan"], ItemQuota._meta.db_table) <= 5

    # --- progress -------------------------------------------------------------------

    def test_progress_counts_the_arms_queue_exactly_without_a_pass_over_it(self, study, django_assert_num_queries):
        ingest(study, "a", "b")
        user = enrol_allocated(study)
        arm_id = Enrolment.objects.get(reviewer=user).arm_id

        # 2 items x k=3 slots in this arm, nothing done yet.
        assert progress_totals(study=study, arm_key=arm_id) == {"open_items": 2, "percent": 0}

        review(study, user)
        # Exact at once (1 of 6 labels), from the tallies: one query, none on the quota rows.
        with django_assert_num_queries(1) as queries:
            assert progress_totals(study=study, arm_key=arm_id) == {"open_items": 2, "percent": 17}
        assert ItemQuota._meta.db_table not in queries.captured_queries[0]["sql"]

        # The beat task folds the delta rows; the figures stay the same.
        assert QuotaTally.objects.filter(study=study, arm_key=arm_id).count() > 2
        assert refresh_progress() == 1
        assert QuotaTally.objects.filter(study=study, arm_key=arm_id).count() == 2  # 0 and 1 submitted
        assert progress_totals(study=study, arm_key=arm_id) == {"open_items": 2, "percent": 17}

    def test_progress_of_a_study_without_items_is_empty(self, study):
        assert progress_totals(study=study, arm_key=0) == {"open_items": 0, "percent": 0}

    def test_the_reviewers_label_count_counts_each_answer_once(self, study):
        ingest(study, "a", "b")
        user = enrol_allocated(study)
        assignment = claim_next(study=study, reviewer=user)
        label_submit(study=study, reviewer=user, assignment_id=assignment.pk, values=APPROVE)
        label_submit(study=study, reviewer=user, assignment_id=assignment.pk, values=APPROVE)  # a double click
        review(study, user)

        assert ReviewerCursor.objects.get(study=study, reviewer=user).labels_done == 2
