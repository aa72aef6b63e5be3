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

from reviewapp.ingest import services as ingest_services
from reviewapp.ingest.models import IngestJob
from reviewapp.metrics import services as metric_services
from reviewapp.metrics.models import MetricRun
from reviewapp.reports import services as export_services
from reviewapp.reports.models import ExportJob
from tests.conftest import database_url_for_subprocess

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def enqueued(monkeypatch) -> list[tuple[str, int]]:
    """What the sweeps publish, instead of publishing it."""
    calls: list[tuple[str, int]] = []

    def record(task, *args) -> bool:
        calls.append((task.name.rsplit(".", 1)[-1], *args))
        return True

    for module in (metric_services, ingest_services, export_services):
        monkeypatch.setattr(module, "enqueue", record)
    return calls


@pytest.fixture
def other_session():
    """A second database session: a worker holding a lock."""
    with psycopg.connect(database_url_for_subprocess(), autocommit=True) as conn:
        yield conn


def later(seconds: float):
    return timezone.now() + timedelta(seconds=seconds)


class TestRecoverySweep:
    def test_a_queued_run_is_enqueued_again_only_once_it_is_overdue(self, study, enqueued, settings):
        settings.JOBS_REQUEUE_AFTER_SECONDS = 300
        run = MetricRun.objects.create(study=study)

        assert metric_services.metric_runs_recover() == []
        assert metric_services.metric_runs_recover(now=later(301)) == [run.pk]
        assert enqueued == [("compute_metrics", run.pk)]

    def test_a_running_run_is_enqueued_again_only_when_nobody_holds_its_lock(self, study, enqueued, other_session):
        run = MetricRun.objects.create(study=study, status=MetricRun.Status.RUNNING)
        other_session.execute("SELECT pg_advisory_lock(%s, %s)", [metric_services.RUN_LOCK, run.pk])

        assert metric_services.metric_runs_recover(now=later(3600)) == []

        other_session.execute("SELECT pg_advisory_unlock(%s, %s)", [metric_services.RUN_LOCK, run.pk])
        assert metric_services.metric_runs_recover() == [run.pk]
        assert enqueued == [("compute_metrics", run.pk)]

    def test_finished_runs_and_jobs_are_left_alone(self, study, enqueued):
        MetricRun.objects.create(study=study, status=MetricRun.Status.SUCCEEDED)
        MetricRun.objects.create(study=study, status=MetricRun.Status.FAILED)
        for status in ("succeeded", "failed"):
            IngestJob.objects.create(study=study, filename="a.jsonl", stored_path="/nowhere", status=status)
        for status in ("succeeded", "failed", "expired"):
            ExportJob.objects.create(study=study, report="labels", file_path="/nowhere", filename="f", status=status)

        assert metric_services.metric_runs_recover(now=later(3600)) == []
        assert ingest_services.ingest_jobs_recover(now=later(3600)) == []
        assert export_services.export_jobs_recover(now=later(3600)) == []
        assert enqueued == []

    def test_an_ingest_job_is_enqueued_again_when_overdue_or_when_nobody_holds_its_lock(
        self, study, enqueued, other_session, settings
    ):
        settings.JOBS_REQUEUE_AFTER_SECONDS = 300
        queued = IngestJob.objects.create(study=study, filename="a.jsonl", stored_path="/nowhere")
        running = IngestJob.objects.create(study=study, filename="b.jsonl", stored_path="/nowhere", status="running")
        # A live job's worker holds the job's advisory lock until the job ends.
        other_session.execute("SELECT pg_advisory_lock(%s, %s)", [ingest_services.INGEST_LOCK, running.pk])

        assert ingest_services.ingest_jobs_recover() == []
        assert ingest_services.ingest_jobs_recover(now=later(301)) == [queued.pk]

        other_session.execute("SELECT pg_advisory_unlock(%s, %s)", [ingest_services.INGEST_LOCK, running.pk])
        assert sorted(ingest_services.ingest_jobs_recover()) == [running.pk]
        assert enqueued == [("run_ingest_job", queued.pk), ("run_ingest_job", running.pk)]

    def test_an_export_job_is_enqueued_again_when_overdue_or_when_nobody_holds_its_lock(
        self, study, enqueued, other_session, settings
    ):
        settings.JOBS_REQUEUE_AFTER_SECONDS = 300
        queued = ExportJob.objects.create(study=study, report="labels", file_path="/nowhere", filename="f")
        running = ExportJob.objects.create(
            study=study, report="items", file_path="/nowhere", filename="g", status="running"
        )
        other_session.execute("SELECT pg_advisory_lock(%s, %s)", [export_services.EXPORT_LOCK, running.pk])

        assert export_services.export_jobs_recover() == []
        assert export_services.export_jobs_recover(now=later(301)) == [queued.pk]

        other_session.execute("SELECT pg_advisory_unlock(%s, %s)", [export_services.EXPORT_LOCK, running.pk])
        assert export_services.export_jobs_recover() == [running.pk]
        assert enqueued == [("run_export_job", queued.pk), ("run_export_job", running.pk)]

    def test_a_second_delivery_leaves_a_run_in_progress_alone(self, study, other_session, monkeypatch):
        """The lock comes first: a duplicate message neither counts an attempt nor resets progress."""
        monkeypatch.setattr("reviewapp.jobs.LOCK_WAIT_SECONDS", 0.3)
        run = MetricRun.objects.create(study=study, status=MetricRun.Status.RUNNING, attempts=1, progress=40)
        other_session.execute("SELECT pg_advisory_lock(%s, %s)", [metric_services.RUN_LOCK, run.pk])

        metric_services.metric_run_execute(run_id=run.pk)

        run.refresh_from_db()
        assert (run.status, run.attempts, run.progress) == ("running", 1, 40)
