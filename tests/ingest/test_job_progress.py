"""A background ingest shows its progress while it runs and never blocks the study's reviewers.

The job runs in a thread of this process (what a worker does: ``jobs.job_run``), paused in
the middle of its input by a gate in the record stream, with its items' transaction open.
Meanwhile this test reads the job's row and does a reviewer's work on connections of its own,
each under a lock timeout: waiting on the job's locks is a failure with the lock named, not
a hung test.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from pathlib import Path

import orjson
import pytest
from django.db import connection, connections
from django.db.utils import OperationalError

from reviewapp import jobs
from reviewapp.ingest import services
from reviewapp.ingest.models import IngestJob, Item
from reviewapp.queue.models import ItemQuota, ReviewerCursor
from reviewapp.queue.services import claim_next, label_submit
from reviewapp.studies.services import enrolment_create
from tests.builders import make_items, record, user

pytestmark = pytest.mark.django_db(transaction=True)

RECORDS = 3000
PAUSE_AFTER = 2500  # past the first batch of 2,000 (progress counts are written per batch)


class Gate:
    """Holds the job's record stream at PAUSE_AFTER records until the test opens it."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self.open = threading.Event()

    def wrap(self, parse_file):
        def gated(*args, **kwargs):
            for number, result in enumerate(parse_file(*args, **kwargs), start=1):
                if number == PAUSE_AFTER:
                    self.reached.set()
                    self.open.wait(timeout=60)
                yield result

        return gated


@pytest.fixture
def upload(study, tmp_path) -> IngestJob:
    path = Path(tmp_path) / "big.jsonl"
    # Above the default priority: reviewers' cursors are past these items until pulled back.
    lines = (orjson.dumps(record(external_id=f"r{n}", priority=5)) + b"\n" for n in range(RECORDS))
    path.write_bytes(b"".join(lines))
    return IngestJob.objects.create(
        study=study, filename="big.jsonl", stored_path=str(path), size_bytes=path.stat().st_size
    )


@pytest.fixture
def paused_job(upload, monkeypatch):
    """The job running in a thread, held halfway through its input; yields (job, gate, thread)."""
    gate = Gate()
    monkeypatch.setattr(services, "parse_file", gate.wrap(services.parse_file))
    # Every progress write goes out at once (a 150,000-record file reaches the interval anyway).
    monkeypatch.setattr(jobs.JobProgress, "MIN_INTERVAL", 0.0)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            jobs.job_run(IngestJob, upload.pk)
        except BaseException as exc:  # reported by the test, not lost in the thread
            failure.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield upload, gate, thread, failure
    finally:
        gate.open.set()
        thread.join(timeout=30)
        if thread.is_alive():
            _cancel_waiting_backends()
            thread.join(timeout=30)


def _cancel_waiting_backends() -> None:
    """Unstick a job blocked on a lock, so a failing test ends instead of hanging the suite."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_cancel_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        )


@contextmanager
def lock_timeout(seconds: float):
    """Statements here fail after ``seconds`` waiting for a lock instead of waiting for ever."""
    with connection.cursor() as cursor:
        cursor.execute(f"SET lock_timeout = '{int(seconds * 1000)}ms'")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = 0")


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout:g} s waiting for {what}")


class TestIngestJobProgress:
    def test_it_shows_progress_while_the_items_transaction_is_open(self, paused_job):
        job, gate, thread, failure = paused_job
        assert gate.reached.wait(timeout=30), f"the job never got halfway: {failure}"
        # Read on this test's own connection, as the page polling the job does.
        seen = wait_for(
            lambda: IngestJob.objects.filter(pk=job.pk, records_seen__gt=0, bytes_done__gt=0).first(),
            10,
            "the job's progress to reach its row (a job that waits on its own row lock never writes it)",
        )
        assert seen.status == "running"
        assert 0 < seen.progress_percent < 100
        assert not Item.objects.filter(study=job.study).exists()  # nothing committed halfway

        gate.open.set()
        thread.join(timeout=60)
        assert not thread.is_alive() and not failure, failure
        job.refresh_from_db()
        assert (job.status, job.created_count, job.records_seen, job.progress_percent) == (
            "succeeded",
            RECORDS,
            RECORDS,
            100,
        )
        assert job.attempts == 1

    def test_a_second_delivery_leaves_a_running_job_to_its_worker(self, paused_job):
        job, gate, thread, failure = paused_job
        assert gate.reached.wait(timeout=30), failure
        # The broker hands the message out again (a redelivery) while the first worker works.
        started = time.monotonic()
        second = jobs.job_run(IngestJob, job.pk)
        assert second.status == "running" and time.monotonic() - started < 15
        gate.open.set()
        thread.join(timeout=60)
        job.refresh_from_db()
        assert (job.status, job.created_count, job.attempts) == ("succeeded", RECORDS, 1)
        assert Item.objects.filter(study=job.study).count() == RECORDS

    def test_the_recovery_sweep_leaves_a_live_job_alone_and_requeues_one_whose_worker_died(self, paused_job, upload):
        job, gate, thread, failure = paused_job
        assert gate.reached.wait(timeout=30), failure
        assert jobs.jobs_recover() == []  # its worker holds the lock
        gate.open.set()
        thread.join(timeout=60)
        # A job that says running while nobody holds its lock: its worker is gone.
        orphan = IngestJob.objects.create(
            study=job.study, filename="x.jsonl", stored_path=job.stored_path, status="running"
        )
        enqueued = []
        original = jobs.enqueue
        jobs.enqueue = lambda task, *args: enqueued.append(args) or True
        try:
            assert jobs.jobs_recover() == [("ingest", orphan.pk)]
        finally:
            jobs.enqueue = original
        assert enqueued == [("ingest", orphan.pk)]


@pytest.fixture
def reviewer_in_study(study):
    """A reviewer of the running study, which already has three items in its queue."""
    make_items(study, 3, prefix="early")
    reviewer = user("rev")
    enrolment, _ = enrolment_create(study=study, reviewer=reviewer, source="admin")
    return reviewer, enrolment


class TestIngestDoesNotBlockReviewers:
    def test_reviewers_claim_submit_and_join_while_a_big_ingest_is_open(self, study, reviewer_in_study, paused_job):
        _job, gate, thread, failure = paused_job
        reviewer, enrolment = reviewer_in_study
        assert gate.reached.wait(timeout=30), failure

        with lock_timeout(2):
            try:
                assignment = claim_next(study=study, reviewer=reviewer)
                values = {"decision": "approve"}
                label_submit(study=study, reviewer=reviewer, assignment_id=assignment.pk, values=values)
                newcomer = user("newcomer")
                joined, created = enrolment_create(study=study, reviewer=newcomer, source="admin")
                next_one = claim_next(study=study, reviewer=newcomer)
            except OperationalError as exc:
                pytest.fail(f"a reviewer waited on the ingest's locks: {exc}")
        assert created and joined.arm is not None
        assert next_one is not None and next_one.item.external_id.startswith("early")

        gate.open.set()
        thread.join(timeout=60)
        assert not failure, failure
        # The new items joined the queue, and the reviewers' cursors came back to them.
        assert ItemQuota.objects.filter(study=study).count() == (RECORDS + 3) * 3
        cursor_row = ReviewerCursor.objects.get(study=study, reviewer=reviewer)
        newest = ItemQuota.objects.filter(item__external_id="r0", arm_key=enrolment.arm_id).get()
        assert cursor_row.sort_key < newest.sort_key

    def test_the_lock_timeout_would_catch_a_reviewer_blocked_by_an_open_transaction(self, study):
        """The control: a transaction holding the study row the old way blocks a join, and
        the timeout above turns that into an error rather than a wait."""
        blocker = connections.create_connection("default")
        blocker.set_autocommit(False)
        with blocker.cursor() as cursor:
            cursor.execute("SELECT id FROM studies_study WHERE id = %s FOR UPDATE", [study.pk])
        try:
            newcomer = user("newcomer")
            with lock_timeout(0.5), pytest.raises(OperationalError, match="lock timeout"):
                enrolment_create(study=study, reviewer=newcomer, source="admin")
        finally:
            blocker.rollback()
            blocker.close()
