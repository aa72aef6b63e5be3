"""A Celery worker killed mid-job: the job completes on a later attempt, exactly once.

Real data, no delay hooks: the study is seeded with bench/metrics.py's set-based SQL,
large enough that a metrics run or a labels export takes a second or more here. The
broker is a private Redis; the workers are real `celery worker` processes.

Two ways a worker dies:

- the whole worker (main process and pool) is SIGKILLed during a metrics run, as when its
  machine or container dies. Its message stays unacknowledged in Redis until the
  visibility timeout (the task time limit and then some, half an hour); the recovery
  sweep finds the run "running" with nobody holding its lock and enqueues it again, and
  a new worker computes it;
- only the pool process writing an export is SIGKILLed, as the OOM killer does. The
  worker notices, and with acks_late and reject_on_worker_lost hands the message back to
  the broker, which delivers it again at once; the file is written again from scratch.

Either way: one MetricRun or ExportJob row, succeeded, with one result, on attempt 2.
"""

from __future__ import annotations

import csv
import os
import signal
from argparse import Namespace
from pathlib import Path

import pytest
from django.test import override_settings

from bench import metrics as bench_metrics
from reviewapp.jobs import jobs_recover
from reviewapp.metrics.models import MetricRun
from reviewapp.metrics.services import metric_run_request
from reviewapp.reports.models import ExportJob
from reviewapp.reports.services import export_job_create
from reviewapp.studies.models import Study
from tests.builders import researcher_of
from tests.conftest import database_url_for_subprocess

from .conftest import celery_broker
from .servers import Celery, subprocess_env, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.fault]


def seeded_study(labels: int, items: int, reviewers: int) -> Study:
    bench_metrics.seed(Namespace(labels=labels, items=items, reviewers=reviewers), record=False)
    return Study.objects.get(slug=bench_metrics.STUDY_SLUG)


def worker_env(broker_url: str, export_dir: Path) -> dict[str, str]:
    return subprocess_env(
        DATABASE_URL=database_url_for_subprocess(), CELERY_BROKER_URL=broker_url, EXPORT_DIR=str(export_dir)
    )


def status_of(model, pk: int):
    return model.objects.filter(pk=pk).values_list("status", flat=True).get()


class TestWorkerKilledMidJob:
    def test_a_metrics_run_whose_worker_died_is_recovered_by_the_sweep_and_computed_once(self, private_redis, tmp_path):
        study = seeded_study(labels=300_000, items=5_000, reviewers=60)
        env = worker_env(private_redis.url, tmp_path / "exports")
        with celery_broker(private_redis.url):
            run, created = metric_run_request(study=study)
        assert created and private_redis.queued() == 1

        first = Celery.worker(env, tmp_path)
        wait_until(lambda: status_of(MetricRun, run.pk) == "running", 60, "the run to start", interval=0.02)
        first.kill()
        assert status_of(MetricRun, run.pk) == "running", "the run finished before the worker was killed"
        assert private_redis.queued() == 0  # the message went with the worker (unacknowledged)

        second = Celery.worker(env, tmp_path)
        try:
            with celery_broker(private_redis.url):
                # PostgreSQL ends the dead worker's session, and with it the run's lock, as
                # soon as it notices the connection is gone.
                found = wait_until(jobs_recover, 20, "the sweep to find the orphaned run", interval=0.2)
            assert found == [("metrics", run.pk)]
            wait_until(lambda: status_of(MetricRun, run.pk) == "succeeded", 60, "the run to finish")
        finally:
            second.stop()

        run.refresh_from_db()
        assert MetricRun.objects.filter(study=study).count() == 1
        assert (run.attempts, run.error, run.progress) == (2, "", 100)
        assert run.result["n_labels"] == 300_000, second.tail()

    def test_an_export_whose_pool_process_died_is_redelivered_and_written_once(self, private_redis, tmp_path):
        study = seeded_study(labels=150_000, items=5_000, reviewers=30)
        export_dir = tmp_path / "exports"
        env = worker_env(private_redis.url, export_dir)
        with celery_broker(private_redis.url), override_settings(EXPORT_DIR=export_dir):
            job, created = export_job_create(study=study, report="labels", fmt="csv", actor=researcher_of(study))
        assert created

        worker = Celery.worker(env, tmp_path)
        try:
            started = ExportJob.objects.filter(pk=job.pk, status="running", rows_done__gt=0)
            wait_until(started.exists, 60, "the export to start writing", interval=0.02)
            (pool_process,) = worker.children()
            os.kill(pool_process, signal.SIGKILL)
            assert status_of(ExportJob, job.pk) == "running", "the export finished before it was killed"

            wait_until(lambda: status_of(ExportJob, job.pk) == "succeeded", 60, "the export to finish")
        finally:
            worker.stop()

        job.refresh_from_db()
        assert "WorkerLostError" in worker.tail(200_000)
        assert ExportJob.objects.filter(study=study).count() == 1
        assert (job.attempts, job.rows_done, job.rows_total) == (2, 150_000, 150_000)
        with open(job.file_path, newline="") as file:
            header, *rows = list(csv.reader(file))
        assert header[0] == "label_id" and len(rows) == 150_000
        assert len({row[0] for row in rows}) == 150_000  # no row written twice
