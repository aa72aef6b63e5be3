"""The recovery sweep: which unfinished jobs it enqueues again, and which it leaves alone.

A queued job is enqueued again once it is older than JOBS_REQUEUE_AFTER_SECONDS; a
running one when nobody holds its lock (its worker died). The lock is held here from a
second database session, as a live worker would hold it. The data is committed
(transactional tests) so that second session sees it.
"""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest
from django.utils import timezone

from reviewapp import jobs
from reviewapp.ingest.models import IngestJob
from reviewapp.metrics.models import MetricRun
from reviewapp.reports.models import ExportJob
from tests.conftest import database_url_for_subprocess

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def enqueued(monkeypatch) -> list[tuple]:
    """What the sweep publishes, instead of publishing it."""
    calls: list[tuple] = []

    def record(task, *args) -> bool:
        calls.append((task.name.rsplit(".", 1)[-1], *args))
        return True

    monkeypatch.setattr(jobs, "enqueue", record)
    return calls


@pytest.fixture
def other_session():
    """A second database session: a worker holding a lock."""
    with psycopg.connect(database_url_for_subprocess(), autocommit=True) as conn:
        yield conn


def later(seconds: float):
    return timezone.now() + timedelta(seconds=seconds)


# One job of each kind, as its app creates it.
MAKERS = {
    "metrics": lambda study, **f: MetricRun.objects.create(study=study, **f),
    "ingest": lambda study, **f: IngestJob.objects.create(study=study, filename="a.jsonl", stored_path="/nowhere", **f),
    "export": lambda study, **f: ExportJob.objects.create(
        study=study, report="labels", file_path="/nowhere", filename="f", **f
    ),
}


class TestRecoverySweep:
    @pytest.mark.parametrize("kind", MAKERS)
    def test_a_queued_job_is_published_again_only_once_it_is_overdue(self, study, enqueued, settings, kind):
        settings.JOBS_REQUEUE_AFTER_SECONDS = 300
        job = MAKERS[kind](study)

        assert jobs.jobs_recover() == []
        assert jobs.jobs_recover(now=later(301)) == [(kind, job.pk)]
        assert enqueued == [("run_job", kind, job.pk)]

    @pytest.mark.parametrize("kind", MAKERS)
    def test_a_running_job_is_published_again_only_when_nobody_holds_its_lock(
        self, study, enqueued, other_session, kind
    ):
        job = MAKERS[kind](study, status="running")
        other_session.execute("SELECT pg_advisory_lock(%s, %s)", [job.LOCK, job.pk])

        assert jobs.jobs_recover(now=later(3600)) == []

        other_session.execute("SELECT pg_advisory_unlock(%s, %s)", [job.LOCK, job.pk])  # the worker died
        assert jobs.jobs_recover() == [(kind, job.pk)]
        assert enqueued == [("run_job", kind, job.pk)]

    def test_finished_jobs_are_left_alone(self, study, enqueued):
        for kind in MAKERS:
            for status in ("succeeded", "failed"):
                MAKERS[kind](study, status=status)
        MAKERS["export"](study, status="expired")

        assert jobs.jobs_recover(now=later(3600)) == []
        assert enqueued == []

    def test_a_second_delivery_leaves_a_run_in_progress_alone(self, study, other_session, monkeypatch):
        """The lock comes first: a duplicate message neither counts an attempt nor resets progress."""
        monkeypatch.setattr("reviewapp.jobs.LOCK_WAIT_SECONDS", 0.3)
        run = MetricRun.objects.create(study=study, status=MetricRun.Status.RUNNING, attempts=1, progress=40)
        other_session.execute("SELECT pg_advisory_lock(%s, %s)", [MetricRun.LOCK, run.pk])

        jobs.job_run(MetricRun, run.pk)

        run.refresh_from_db()
        assert (run.status, run.attempts, run.progress) == ("running", 1, 40)
