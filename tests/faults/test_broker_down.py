"""The broker goes down while reviewers label and researchers ask for metrics and files.

Real processes on a private redis-server: gunicorn (sync workers, DEBUG off), a Celery
worker and Celery beat, all on the test database. The test kills the redis-server (no
persistence: whatever it held is gone, as after a restart without a disk), then:

- reviewers submit labels through HTTP: every one is answered 200 and saved (the label
  path never touches the broker);
- a researcher asks for metrics and for a labels export, and a pipeline uploads a file:
  each request answers as usual within seconds (no 500), and its job stays queued;

then starts the redis-server again on the same port. The worker and beat reconnect by
themselves; beat's recovery tasks (every second here, JOBS_RECOVER_SECONDS) find the jobs
still queued after JOBS_REQUEUE_AFTER_SECONDS and enqueue them again; the worker runs
them. The metrics come out computed over every label, the export file holds every label,
the upload is ingested.
"""

from __future__ import annotations

import time

import orjson
import pytest
from django.contrib.auth.models import User

from bench import queue as bench_queue
from reviewapp.ingest.models import IngestJob, Item
from reviewapp.ingest.parsing import parse_jsonl
from reviewapp.ingest.services import items_ingest
from reviewapp.metrics.models import MetricRun
from reviewapp.queue.models import Label
from reviewapp.reports.models import ExportJob
from reviewapp.studies.models import Enrolment
from reviewapp.studies.services import enrolment_create
from tests.builders import record
from tests.conftest import database_url_for_subprocess

from .servers import Browser, Celery, gunicorn, gunicorn_stop, password_hash, subprocess_env, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.fault]

PASSWORD = "fault-test-password"  # throwaway accounts in the test database
REVIEWERS = 3
LABELS_EACH = 4
# A request that takes longer than this while the broker is down counts as hanging.
REQUEST_SECONDS = 10


def seed(study) -> None:
    lines = (
        orjson.dumps(
            {
                "external_id": f"t{n}",
                "messages": [{"role": "user", "content": f"Refund order {n}?"}],
                "ai_recommendation": "approve",
                "gold_label": "approve" if n % 2 else "reject",
            }
        )
        for n in range(20)
    )
    assert items_ingest(study=study, results=parse_jsonl(lines)).committed
    for n in range(REVIEWERS):
        user = User.objects.create(username=f"labeller-{n}", password=password_hash(PASSWORD))
        enrolment_create(study=study, reviewer=user, source=Enrolment.Source.ADMIN)
    researcher = User.objects.create(username="rosa", password=password_hash(PASSWORD), is_staff=True)
    study.researchers.add(researcher)


def label(browser: Browser, count: int) -> list[int]:
    """Answer ``count`` items as the review page's htmx requests do; returns the assignments."""
    answered = []
    for n in range(count):
        status, page = browser.request("GET", "/review/refunds/", headers=bench_queue.HX)
        assert status == 200, page[:300]
        action, data = bench_queue.answer_form(page, "refunds", n)
        status, page = browser.request("POST", action, data, headers=bench_queue.HX)
        assert status == 200 and "Saved." in page, (status, page[:300])
        answered.append(int(action.rstrip("/").split("/")[-2]))
    return answered


def timed(call):
    started = time.monotonic()
    result = call()
    assert time.monotonic() - started < REQUEST_SECONDS, "the request hung on the broker"
    return result


class TestBrokerDown:
    def test_labels_are_saved_and_queued_jobs_run_once_the_broker_is_back(
        self, study, token, private_redis, static_root, tmp_path
    ):
        seed(study)
        env = subprocess_env(
            DATABASE_URL=database_url_for_subprocess(),
            CELERY_BROKER_URL=private_redis.url,
            STATIC_ROOT=str(static_root),
            UPLOAD_DIR=str(tmp_path / "uploads"),
            EXPORT_DIR=str(tmp_path / "exports"),
            JOBS_RECOVER_SECONDS="1",
            JOBS_REQUEUE_AFTER_SECONDS="3",
        )
        web, base, _log = gunicorn(env, tmp_path)
        worker = beat = None
        try:
            worker = Celery.worker(env, tmp_path)
            beat = Celery.beat(env, tmp_path)
            reviewers = [Browser(base) for _ in range(REVIEWERS)]
            for n, browser in enumerate(reviewers):
                browser.login(f"labeller-{n}", PASSWORD)
            researcher = Browser(base)
            researcher.login("rosa", PASSWORD)

            private_redis.kill()

            acknowledged = [a for browser in reviewers for a in label(browser, LABELS_EACH)]
            assert Label.objects.filter(assignment_id__in=acknowledged).count() == REVIEWERS * LABELS_EACH

            status, page = timed(lambda: researcher.post("/studies/refunds/metrics/run/", headers=bench_queue.HX))
            assert status == 200 and "Queued; will run when the broker is back." in page, (status, page[:300])
            status, page = timed(
                lambda: researcher.post(
                    "/studies/refunds/exports/jobs/",
                    {"report": "labels", "format": "csv"},
                    headers={"Accept": "application/json"},
                )
            )
            assert status == 202, page[:300]
            upload = orjson.dumps(record(external_id="late-arrival")) + b"\n"
            status, page = timed(
                lambda: Browser(base).request(
                    "POST",
                    "/api/studies/refunds/uploads?filename=late.jsonl",
                    upload,
                    {"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"},
                )
            )
            assert status == 202, page[:300]
            run, export, ingest = MetricRun.objects.get(), ExportJob.objects.get(), IngestJob.objects.get()
            assert (run.status, export.status, ingest.status) == ("queued", "queued", "queued")

            private_redis.start()

            def finished() -> bool:
                statuses = {
                    MetricRun.objects.get(pk=run.pk).status,
                    ExportJob.objects.get(pk=export.pk).status,
                    IngestJob.objects.get(pk=ingest.pk).status,
                }
                return statuses <= {"succeeded", "failed"}

            wait_until(finished, 60, "the queued jobs to run after the broker came back", interval=0.25)
        finally:
            for process in (beat, worker):
                if process is not None:
                    process.stop()
            gunicorn_stop(web)

        run.refresh_from_db()
        export.refresh_from_db()
        ingest.refresh_from_db()
        assert (run.status, run.result["n_labels"]) == ("succeeded", REVIEWERS * LABELS_EACH), worker.tail()
        assert MetricRun.objects.count() == 1
        assert (export.status, export.rows_done) == ("succeeded", REVIEWERS * LABELS_EACH)
        assert (ingest.status, ingest.created_count) == ("succeeded", 1)
        assert Item.objects.filter(study=study, external_id="late-arrival").exists()
        assert "lost its message; enqueueing it again" in worker.tail(200_000)
