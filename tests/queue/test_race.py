"""The queue under a real race: 64 reviewer threads, each on its own PostgreSQL connection.

Threads need committed data, so these tests use ``transactional_db``. Each reviewer
claims, submits, sometimes skips, double-clicks or retries, and sometimes walks away
from a lease (its ``lease_expires_at`` is moved into the past, as if 30 s went by) and
sends the answer late. Afterwards the database must show no double assignment, no
item over k labels per arm, quota counters that match the assignments, and every
late answer either counted once or kept for audit.
"""

from __future__ import annotations

import random
import threading
import time
import traceback
from collections import Counter
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.db.models import Count
from django.utils import timezone

from reviewapp.queue.models import Assignment, ItemQuota, Label, LateSubmission
from reviewapp.queue.services import StaleLease, assignment_skip, claim_next, label_submit, leases_expire
from reviewapp.studies.models import Enrolment, Study
from tests.builders import enrol_allocated, ingest

K = 3
REVIEWERS = 64
CLAIMS_EACH = 160  # 64 x 160 = 10,240 claims
ITEMS = 1500  # ~21 reviewers per arm x 160 claims / k = 3 leaves a margin, so nobody runs dry
ABANDON, SKIP, DOUBLE_CLICK, RETRY = 0.08, 0.03, 0.05, 0.03


class Reviewer:
    """One reviewer at a keyboard, on their own thread and database connection."""

    def __init__(
        self, study: Study, user: User, seed: int, start: threading.Barrier, claims_each: int = CLAIMS_EACH
    ) -> None:
        self.study, self.user, self.start, self.claims_each = study, user, start, claims_each
        self.rng = random.Random(seed)
        self.tally: Counter[str] = Counter()
        self.errors: list[str] = []
        self.seen: set[int] = set()
        self.late: list[tuple[int, int]] = []  # (cycle to send it at, assignment id)
        self.enrolment: Enrolment | None = None

    def run(self) -> None:
        try:
            # As the review view does: the enrolment (with its arm) is loaded once, not per claim.
            self.enrolment = Enrolment.objects.select_related("arm").get(study=self.study, reviewer=self.user)
            self.start.wait()
            cycle = 0
            while self.tally["claims"] < self.claims_each and cycle < self.claims_each * 2:
                cycle += 1
                self.attempt(self.one_cycle, cycle)
                for due, assignment_id in [entry for entry in self.late if entry[0] <= cycle]:
                    self.late.remove((due, assignment_id))
                    self.attempt(self.send_late, assignment_id)
            for _due, assignment_id in self.late:
                self.attempt(self.send_late, assignment_id)
        finally:
            connection.close()

    def attempt(self, action, *args) -> None:
        try:
            action(*args)
        except Exception:
            self.errors.append(traceback.format_exc(limit=4))

    def submit(self, assignment_id: int) -> bool:
        values = {"decision": self.rng.choice(["approve", "reject"])}
        _label, created = label_submit(study=self.study, reviewer=self.user, assignment_id=assignment_id, values=values)
        return created

    def one_cycle(self, cycle: int) -> None:
        assignment = claim_next(study=self.study, reviewer=self.user, enrolment=self.enrolment)
        if assignment is None:
            self.tally["nothing_left"] += 1
            return
        if assignment.pk in self.seen:
            # The lease we walked away from, before any sweep expired it: still ours, overdue.
            self.tally["same_lease_again"] += 1
            self.late = [entry for entry in self.late if entry[1] != assignment.pk]
            self.send_late(assignment.pk)
            return
        self.seen.add(assignment.pk)
        self.tally["claims"] += 1
        roll = self.rng.random()
        if roll < ABANDON:
            Assignment.objects.filter(pk=assignment.pk, state=Assignment.State.LEASED).update(
                lease_expires_at=timezone.now() - timedelta(seconds=1)
            )
            self.tally["abandoned"] += 1
            if self.rng.random() < 0.6:
                self.late.append((cycle + self.rng.randint(1, 8), assignment.pk))
            return
        if roll < ABANDON + SKIP:
            assignment_skip(study=self.study, reviewer=self.user, assignment_id=assignment.pk, reason="Unclear")
            self.tally["skips"] += 1
            return
        if roll < ABANDON + SKIP + DOUBLE_CLICK:
            again = claim_next(study=self.study, reviewer=self.user, enrolment=self.enrolment)
            if again is None or again.pk != assignment.pk:
                self.errors.append(f"double click leased {again and again.pk} besides {assignment.pk}")
        if self.submit(assignment.pk):
            self.tally["submits"] += 1
        else:
            self.tally["already_submitted"] += 1
        if self.rng.random() < RETRY and self.submit(assignment.pk):
            self.errors.append(f"a retried submit on {assignment.pk} created a second label")

    def send_late(self, assignment_id: int) -> None:
        try:
            created = self.submit(assignment_id)
        except StaleLease:
            self.tally["late_refused"] += 1
            return
        self.tally["late_counted" if created else "late_already_counted"] += 1


def sweep(study: Study, done: threading.Event, tally: Counter[str], errors: list[str]) -> None:
    """The beat task's lease sweep, run every 0.2 s instead of every 30 s."""
    try:
        while not done.wait(0.2):
            try:
                tally["swept"] += leases_expire(study=study)
            except Exception:
                errors.append(traceback.format_exc(limit=4))
    finally:
        connection.close()


def run_reviewers(
    study: Study, users: list[User], claims_each: int = CLAIMS_EACH
) -> tuple[Counter[str], list[str], float]:
    start = threading.Barrier(len(users))
    reviewers = [Reviewer(study, user, seed=n, start=start, claims_each=claims_each) for n, user in enumerate(users)]
    threads = [threading.Thread(target=r.run, name=f"reviewer-{n}") for n, r in enumerate(reviewers)]
    done, sweeps, sweep_errors = threading.Event(), Counter(), []
    sweeper = threading.Thread(target=sweep, args=(study, done, sweeps, sweep_errors), name="sweeper")
    began = time.monotonic()
    sweeper.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    done.set()
    sweeper.join(timeout=60)
    assert not any(thread.is_alive() for thread in [*threads, sweeper]), "a thread hung"
    tally = sum((r.tally for r in reviewers), sweeps)
    return tally, [*sweep_errors, *(e for r in reviewers for e in r.errors)], time.monotonic() - began


def quota_mismatches(study: Study) -> list[tuple]:
    """Quota rows whose counters disagree with the assignments they account for."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT q.item_id, q.arm_key, q.open_slots, q.submitted, live.n, done.n FROM {ItemQuota._meta.db_table} q
            CROSS JOIN LATERAL (
                SELECT count(*) AS n FROM {Assignment._meta.db_table} a
                WHERE a.item_id = q.item_id AND a.quota_arm_key = q.arm_key AND a.state = 'leased'
            ) live
            CROSS JOIN LATERAL (
                SELECT count(*) AS n FROM {Assignment._meta.db_table} a
                WHERE a.item_id = q.item_id AND a.quota_arm_key = q.arm_key AND a.state = 'submitted'
            ) done
            WHERE q.study_id = %s AND (q.open_slots <> %s - live.n - done.n OR q.submitted <> done.n)
            """,  # noqa: S608 (our own table names)
            [study.pk, K],
        )
        return cursor.fetchall()


class TestQueueRace:
    def test_it_leases_one_item_when_a_reviewer_clicks_eight_times_at_once(self, transactional_db, study):
        ingest(study, *(f"run-{n:05d}" for n in range(5)))
        user = enrol_allocated(study)
        start = threading.Barrier(8)
        leased: list[int] = []

        def click() -> None:
            try:
                start.wait()
                leased.append(claim_next(study=study, reviewer=user).pk)
            finally:
                connection.close()

        threads = [threading.Thread(target=click) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

        assert len(leased) == 8 and len(set(leased)) == 1
        assert Assignment.objects.filter(reviewer=user).count() == 1

    # ~10,000 claims through the ORM take minutes on a busy 2-core machine, over the 300 s default.
    @pytest.mark.slow
    @pytest.mark.timeout(900)
    def test_it_keeps_every_queue_promise_under_a_64_reviewer_race(self, transactional_db, study):
        # Shuffled, as new studies are: every reviewer walks the items in their own order.
        Study.objects.filter(pk=study.pk).update(overlap_k=K, lease_seconds=30, item_order=Study.ItemOrder.SHUFFLED)
        study.refresh_from_db()
        ingest(study, *(f"run-{n:05d}" for n in range(ITEMS)))
        users = [enrol_allocated(study) for _ in range(REVIEWERS)]

        tally, errors, seconds = run_reviewers(study, users)

        claims = Assignment.objects.filter(study=study).count()
        late_kept = LateSubmission.objects.filter(assignment__study=study).count()
        print(
            f"\nqueue race: {REVIEWERS} reviewers, k={K}, {ITEMS} items x 3 arms, {seconds:.1f} s\n"
            f"  claims {claims} (threads saw {tally['claims']}), submits {tally['submits']}, "
            f"skips {tally['skips']}, abandoned {tally['abandoned']}, expiries swept {tally['swept']} "
            f"(still expired: {Assignment.objects.filter(study=study, state='expired').count()}), "
            f"same lease again {tally['same_lease_again']}, nothing left {tally['nothing_left']}\n"
            f"  late submits: counted {tally['late_counted']}, refused (409) {tally['late_refused']}, "
            f"already counted {tally['late_already_counted']}; LateSubmission rows {late_kept}\n"
            f"  errors {len(errors)}"
        )

        twice = Assignment.objects.values("item", "reviewer").annotate(n=Count("id")).filter(n__gt=1)
        assert not twice.exists(), list(twice[:5])
        overfull = (
            Label.objects.filter(study=study, supersedes__isnull=True)
            .values("item", "arm")
            .annotate(n=Count("id"))
            .filter(n__gt=K)
        )
        assert not overfull.exists(), list(overfull[:5])
        assert quota_mismatches(study) == []
        assert not Label.objects.filter(study=study).exclude(assignment__state=Assignment.State.SUBMITTED).exists()
        assert not Assignment.objects.filter(
            study=study, state=Assignment.State.SUBMITTED, labels__isnull=True
        ).exists()
        assert not LateSubmission.objects.filter(assignment__labels__isnull=False).exists()
        assert Label.objects.filter(study=study).count() == tally["submits"] + tally["late_counted"]
        assert claims == tally["claims"] >= 10_000
        assert errors == [], f"{len(errors)} errors, first: {errors[0]}"
        # Every 409 for a late answer kept that answer for the record (docs/design.md, "Queue contract").
        assert late_kept == tally["late_refused"] > 0

    @pytest.mark.slow
    @pytest.mark.timeout(600)
    def test_no_reviewer_labels_past_their_quota_under_a_64_reviewer_race(self, transactional_db, study):
        """Double clicks, retries, walking away and answering late, all racing: nobody ends
        with more labels than the quota, and nearly everyone reaches it."""
        quota = 12
        Study.objects.filter(pk=study.pk).update(
            overlap_k=K, lease_seconds=30, item_order=Study.ItemOrder.SHUFFLED, reviewer_quota=quota
        )
        study.refresh_from_db()
        ingest(study, *(f"q-{n:04d}" for n in range(400)))
        users = [enrol_allocated(study) for _ in range(REVIEWERS)]

        # Each reviewer tries for twice their quota.
        tally, errors, seconds = run_reviewers(study, users, claims_each=2 * quota)

        per_reviewer = Counter(
            Label.objects.filter(study=study, supersedes__isnull=True).values_list("reviewer_id", flat=True)
        )
        summary = (
            f"quota race: {REVIEWERS} reviewers, quota {quota}, {seconds:.1f} s; labels {sum(per_reviewer.values())}, "
            f"nothing left {tally['nothing_left']}, late refused {tally['late_refused']}"
        )
        assert errors == [], f"{len(errors)} errors, first: {errors[0]}"
        assert max(per_reviewer.values()) <= quota, summary
        # Positive control: the quota was the limit, not a lack of items or of claims.
        assert sum(n == quota for n in per_reviewer.values()) >= REVIEWERS * 0.9, summary
        assert tally["nothing_left"] > 0
        assert quota_mismatches(study) == []
