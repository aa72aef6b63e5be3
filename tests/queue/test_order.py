"""Each reviewer's item order and quota, against real PostgreSQL (docs/design.md, "Queue contract").

A shuffled study (the default for new studies) serves each reviewer the items of a
priority band in a walk through one seeded permutation from the reviewer's own seeded
offset; the tests predict that walk from the seed with the pure functions in
``reviewapp.queue.order`` and check the claim serves exactly it. Fixed-order studies are
the positive control where order matters.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from scipy import stats

from reviewapp.queue import order
from reviewapp.queue.models import ITEM_ID_SPAN, Assignment, ItemQuota, Label, LateSubmission, ReviewerCursor
from reviewapp.queue.services import StaleLease, assignment_skip, claim_next, label_submit
from reviewapp.studies.models import Arm, Enrolment, Study
from tests.builders import APPROVE, enrol_allocated, ingest
from tests.queue.test_services import plan_rows_read


def shuffled_study(study: Study, **fields) -> Study:
    """The fixture study in shuffled order, one arm (control) so every reviewer shares a queue."""
    Study.objects.filter(pk=study.pk).update(item_order=Study.ItemOrder.SHUFFLED, **fields)
    study.arms.exclude(name="control").update(weight=0)
    study.refresh_from_db()
    return study


def served(study: Study, reviewer, n: int | None = None) -> list[str]:
    """Claim and answer until nothing is left (or n items); the external ids in serving order."""
    seen = []
    while n is None or len(seen) < n:
        assignment = claim_next(study=study, reviewer=reviewer)
        if assignment is None:
            break
        label_submit(study=study, reviewer=reviewer, assignment_id=assignment.pk, values=APPROVE)
        seen.append(assignment.item.external_id)
    return seen


def predicted_offset(study: Study, reviewer, items) -> int:
    """Where the pure functions say this reviewer's walk starts, given the study's items."""
    if study.item_order != Study.ItemOrder.SHUFFLED:
        return 0
    enrolment = Enrolment.objects.get(study=study, reviewer=reviewer)
    ids = sorted(item.pk for item in items)
    draw = order.reviewer_draw(study.seed, enrolment.stratum, enrolment.sequence)
    start_id = next(i for i in ids if i >= order.start_item_id(draw, ids[0], ids[-1]))
    return order.item_place(study.seed, start_id, shuffled=True)


def predicted_walk(study: Study, reviewer, items, all_items=None) -> list[str]:
    """The order the pure functions say this reviewer meets these (same-priority) items in."""
    shuffled = study.item_order == Study.ItemOrder.SHUFFLED
    place_of = {order.item_place(study.seed, item.pk, shuffled=shuffled): item.external_id for item in items}
    offset = predicted_offset(study, reviewer, all_items or items)
    return [place_of[place] for place in order.walk(list(place_of), offset)]


class TestPermutation:
    def test_the_sql_function_places_items_exactly_as_the_python_one(self, db):
        keys = [0, 1, 12345, order.item_key(2**61 + 977), order.item_key(-5)]
        values = [0, 1, 2, 17, 524287, 524288, 10**6, 2**38 - 1, 2**38, 2**40]
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT k, v, reviewapp_item_place(k, v) FROM unnest(%s::bigint[]) k, unnest(%s::bigint[]) v",
                [keys, values],
            )
            from_sql = {(k, v): place for k, v, place in cursor.fetchall()}
        assert from_sql == {(k, v): order.feistel_place(k, v) for k in keys for v in values}
        # Positive control: the permutation is not the identity (the comparison would catch a no-op).
        assert sum(from_sql[(12345, v)] != v for v in values[:8]) >= 7

    def test_it_is_a_permutation_so_no_two_items_share_a_place(self):
        key = order.item_key(987654321)
        places = [order.feistel_place(key, v) for v in range(1, 50_001)]
        assert len(set(places)) == len(places)
        assert all(0 <= p < order.DOMAIN < ITEM_ID_SPAN for p in places)
        # Spread over the whole domain, not clustered near the ids.
        assert max(places) > order.DOMAIN * 0.99 and min(places) < order.DOMAIN * 0.01


REVIEWERS = 96


class TestPerReviewerOrder:
    def test_two_reviewers_meet_the_items_in_different_orders_each_predicted_by_the_seed(self, study):
        study = shuffled_study(study, overlap_k=5)
        items = ingest(study, *(f"t{n:02d}" for n in range(30)))
        ann, bob = enrol_allocated(study), enrol_allocated(study)

        ann_order, bob_order = served(study, ann), served(study, bob)

        assert sorted(ann_order) == sorted(bob_order) == sorted(i.external_id for i in items)
        assert ann_order != bob_order
        assert ann_order == predicted_walk(study, ann, items)
        assert bob_order == predicted_walk(study, bob, items)
        # Not merely the arrival order either (the fixed order's walk).
        assert ann_order != [i.external_id for i in items]

    def test_a_within_subjects_study_walks_each_reviewer_through_their_own_order(self, study):
        Study.objects.filter(pk=study.pk).update(
            item_order=Study.ItemOrder.SHUFFLED, design=Study.Design.WITHIN, overlap_k=4
        )
        study.refresh_from_db()
        items = ingest(study, *(f"w{n:02d}" for n in range(16)))
        people = [enrol_allocated(study) for _ in range(4)]

        orders = [served(study, person) for person in people]

        assert orders == [predicted_walk(study, person, items) for person in people]
        # Each start is drawn from 16 items, so two reviewers may share one by chance (1 in 16);
        # four sharing one would be 1 in 4,096.
        assert len({tuple(o) for o in orders}) > 1
        ann = people[0]
        # The arm is still chosen per assignment: both reviewers meet more than one arm.
        assert Label.objects.filter(reviewer=ann).values("arm").distinct().count() > 1

    def test_a_fixed_order_study_serves_everyone_the_same_order(self, study):
        study = shuffled_study(study, overlap_k=5)
        Study.objects.filter(pk=study.pk).update(item_order=Study.ItemOrder.FIXED)
        study.refresh_from_db()
        items = ingest(study, *(f"t{n:02d}" for n in range(12)))
        ann, bob = enrol_allocated(study), enrol_allocated(study)

        assert served(study, ann) == served(study, bob) == [i.external_id for i in items]

    def test_priority_bands_still_come_first_in_a_shuffled_study(self, study):
        study = shuffled_study(study, overlap_k=5)
        low = ingest(study, *(f"low{n}" for n in range(8)))
        high = ingest(study, *(f"high{n}" for n in range(8)), priority=5)
        ann = enrol_allocated(study)

        seen = served(study, ann)

        assert seen[:8] == predicted_walk(study, ann, high, all_items=low + high)
        assert seen[8:] == predicted_walk(study, ann, low, all_items=low + high)

    def test_a_high_priority_item_ingested_mid_walk_is_served_next(self, study):
        study = shuffled_study(study, overlap_k=5)
        ingest(study, *(f"low{n}" for n in range(10)))
        ann = enrol_allocated(study)
        first = served(study, ann, 4)

        ingest(study, "urgent", priority=9)
        rest = served(study, ann)

        assert rest[0] == "urgent"
        assert sorted(first + rest[1:]) == sorted(f"low{n}" for n in range(10))

    def test_items_behind_the_walk_and_slots_given_back_are_still_served(self, study):
        study = shuffled_study(study, overlap_k=1)
        items = ingest(study, *(f"t{n:02d}" for n in range(10)))
        ann, bob = enrol_allocated(study), enrol_allocated(study)
        # Bob takes one item and walks away from it; Ann serves everything else.
        held = claim_next(study=study, reviewer=bob)
        assert len(served(study, ann)) == 9
        Assignment.objects.filter(pk=held.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
        ingest(study, *(f"late{n}" for n in range(3)))

        rest = served(study, ann)

        # Bob's expired item is given back and Ann gets it, wherever it sat in her walk.
        assert sorted(rest) == sorted([held.item.external_id, "late0", "late1", "late2"])
        assert Label.objects.filter(study=study).count() == len(items) + 3

    def test_each_label_records_its_position_in_the_reviewers_sequence(self, study):
        study = shuffled_study(study, overlap_k=5)
        ingest(study, *(f"t{n}" for n in range(5)))
        ann = enrol_allocated(study)
        served(study, ann, 2)
        skipped = claim_next(study=study, reviewer=ann)
        assignment_skip(study=study, reviewer=ann, assignment_id=skipped.pk, reason="Unclear")
        served(study, ann)

        positions = list(
            Label.objects.filter(reviewer=ann).order_by("submitted_at", "id").values_list("position", flat=True)
        )
        # The skipped item took place 3 in the sequence.
        assert positions == [1, 2, 4, 5]
        assert Assignment.objects.get(pk=skipped.pk).position == 3

    def test_position_is_balanced_across_items_where_fixed_order_confounds_it(self, db):
        """A simulation through the real claim: 96 reviewers each label 6 of 24 items.

        Seeded (the study's seed and the reviewers' allocation order), so the outcome is the
        same on every run.

        In fixed order everyone labels the first 6, so position and item identity are the
        same thing (the positive control). Shuffled, every item is labelled, about equally
        often, and its mean position does not follow its place in the arrival order."""

        def simulate(item_order: str) -> dict[str, list[int]]:
            study = Study.objects.create(
                slug=f"sim-{item_order}",
                title="Simulation",
                status=Study.Status.RUNNING,
                item_order=item_order,
                overlap_k=REVIEWERS,
                reviewer_quota=6,
                seed=20261203,
            )
            Arm.objects.create(study=study, name="control")
            items = ingest(study, *(f"{item_order}-{n:02d}" for n in range(24)))
            positions: dict[str, list[int]] = defaultdict(list)
            for _ in range(REVIEWERS):
                person = enrol_allocated(study)
                for position, external_id in enumerate(served(study, person), start=1):
                    positions[external_id].append(position)
            return {item.external_id: positions[item.external_id] for item in items}

        fixed = simulate(Study.ItemOrder.FIXED)
        assert [len(p) for p in fixed.values()] == [REVIEWERS] * 6 + [0] * 18

        shuffled = simulate(Study.ItemOrder.SHUFFLED)
        counts = [len(p) for p in shuffled.values()]
        assert min(counts) >= 1 and sum(counts) == REVIEWERS * 6
        # The per-item label counts are what a uniform draw gives (chi-square, 23 df).
        assert stats.chisquare(counts).pvalue > 0.01
        mean_position = [sum(p) / len(p) for p in shuffled.values()]
        assert abs(stats.spearmanr(range(24), mean_position).statistic) < 0.5

    def test_the_claim_stays_flat_after_a_long_shuffled_history(self, study, django_assert_max_num_queries):
        study = shuffled_study(study)
        history = 2000
        items = ingest(study, *(f"item-{n:05d}" for n in range(history + 5)))
        ann = enrol_allocated(study)
        walk = predicted_walk(study, ann, items)
        by_external = {i.external_id: i for i in items}
        # The first 2,000 of Ann's walk, written in bulk as claim and submit leave them.
        arm = Enrolment.objects.get(reviewer=ann).arm
        now = timezone.now()
        done = [by_external[e] for e in walk[:history]]
        Assignment.objects.bulk_create(
            Assignment(
                study=study,
                item=item,
                reviewer=ann,
                arm=arm,
                quota_arm_key=arm.pk,
                state=Assignment.State.SUBMITTED,
                leased_at=now,
                lease_expires_at=now,
                submitted_at=now,
                position=n,
            )
            for n, item in enumerate(done, start=1)
        )
        ItemQuota.objects.filter(item__in=done).update(open_slots=F("open_slots") - 1, submitted=1)
        ReviewerCursor.objects.create(
            study=study,
            reviewer=ann,
            offset=predicted_offset(study, ann, items),
            sort_key=ItemQuota.objects.get(item=done[-1]).sort_key,
            served=history,
            labels_done=history,
        )

        with django_assert_max_num_queries(14), CaptureQueriesContext(connection) as queries:
            assignment = claim_next(study=study, reviewer=ann)

        assert assignment.item.external_id == walk[history]
        assert assignment.position == history + 1
        picks = [q["sql"] for q in queries.captured_queries if "q.sort_key >" in q["sql"]]
        assert len(picks) == 1  # found in the first range tried
        with transaction.atomic(), connection.cursor() as cursor:
            # ANALYZE runs the statement (it takes a slot and moves the cursor): undo it after.
            cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {picks[0]}")
            (plan,) = cursor.fetchone()[0]
            transaction.set_rollback(True)
        # The pick starts at the reviewer's cursor: it reads a handful of quota rows, not 2,000.
        assert plan_rows_read(plan["Plan"], ItemQuota._meta.db_table) <= 5


class TestQuota:
    def test_a_reviewer_stops_at_the_studys_quota_and_others_carry_on(self, study):
        study = shuffled_study(study, overlap_k=5, reviewer_quota=3)
        ingest(study, *(f"t{n}" for n in range(8)))
        ann, bob = enrol_allocated(study), enrol_allocated(study)

        assert len(served(study, ann)) == 3
        assert claim_next(study=study, reviewer=ann) is None
        assert len(served(study, bob)) == 3
        assert ReviewerCursor.objects.get(reviewer=ann).labels_done == 3

    def test_an_arms_quota_overrides_the_studys(self, study):
        study = shuffled_study(study, overlap_k=5, reviewer_quota=3)
        Arm.objects.filter(study=study, name="control").update(reviewer_quota=5)
        ingest(study, *(f"t{n}" for n in range(8)))
        ann = enrol_allocated(study)

        assert len(served(study, ann)) == 5

    def test_without_a_quota_a_reviewer_labels_everything(self, study):
        study = shuffled_study(study, overlap_k=5)
        ingest(study, *(f"t{n}" for n in range(8)))
        assert len(served(study, enrol_allocated(study))) == 8

    def test_the_claim_statement_itself_refuses_past_the_quota(self, study):
        """The guarantee is in the claim's single statement, not only in the check before it:
        with the reviewer's count at the quota, the statement takes nothing."""
        study = shuffled_study(study, overlap_k=5, reviewer_quota=2)
        ingest(study, *(f"t{n}" for n in range(4)))
        ann = enrol_allocated(study)
        served(study, ann, 1)
        from reviewapp.queue import services

        enrolment = Enrolment.objects.select_related("arm").get(reviewer=ann)
        with transaction.atomic():
            cursor_row = services._locked_cursor(study, ann, enrolment)
            cursor_row.labels_done = 0  # a stale read: the Python check would let it through
            ReviewerCursor.objects.filter(pk=cursor_row.pk).update(labels_done=2)
            assert services._walk(study, ann, enrolment.arm_id, cursor_row, 2) is None
            ReviewerCursor.objects.filter(pk=cursor_row.pk).update(labels_done=1)
            assert services._walk(study, ann, enrolment.arm_id, cursor_row, 2) is not None  # control
            transaction.set_rollback(True)

    def test_a_late_answer_does_not_take_a_reviewer_past_the_quota(self, study):
        study = shuffled_study(study, overlap_k=5, reviewer_quota=2)
        ingest(study, *(f"t{n}" for n in range(4)))
        ann = enrol_allocated(study)
        served(study, ann, 1)
        walked_away = claim_next(study=study, reviewer=ann)
        Assignment.objects.filter(pk=walked_away.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
        # The lease ran out; Ann is given the next item (her second of two) and then answers
        # the old one late: counting it would make three.
        current = claim_next(study=study, reviewer=ann)
        assert current.pk != walked_away.pk

        with pytest.raises(StaleLease, match="reached the number of items"):
            label_submit(study=study, reviewer=ann, assignment_id=walked_away.pk, values=APPROVE)
        label_submit(study=study, reviewer=ann, assignment_id=current.pk, values=APPROVE)

        assert Label.objects.filter(reviewer=ann).count() == 2
        assert LateSubmission.objects.get(assignment=walked_away).reason.endswith("quota was reached")
