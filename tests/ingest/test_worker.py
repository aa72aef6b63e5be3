"""Background ingest through a real Celery worker process, against the real database."""

from __future__ import annotations

import time

import orjson
import pytest

from reviewapp.ingest.models import IngestJob, Item
from reviewapp.jobs import job_run
from tests.builders import record

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def wait_for_job(client, token, url, timeout=60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.get(url, HTTP_AUTHORIZATION=f"Bearer {token}").json()
        if status["status"] in ("succeeded", "failed"):
            return status
        time.sleep(0.2)
    raise AssertionError(f"job did not finish in {timeout}s: {status}")


class TestBackgroundIngest:
    def test_it_ingests_an_uploaded_file_on_a_real_worker(self, client, study, token, celery_worker_process):
        body = b"".join(orjson.dumps(record(external_id=f"u{i}")) + b"\n" for i in range(500))
        response = client.post(
            "/api/studies/refunds/uploads?filename=batch.jsonl",
            data=body,
            content_type="application/x-ndjson",
            HTTP_AUTHORIZATION=f"Bearer {token}",
        )
        assert response.status_code == 202, response.content
        status = wait_for_job(client, token, response.json()["status_url"])
        assert status["status"] == "succeeded", status
        assert (status["created"], status["progress_percent"], status["filename"]) == (500, 100, "batch.jsonl")
        assert Item.objects.filter(study=study).count() == 500

        # A redelivered task finds the job finished and writes nothing more.
        job = IngestJob.objects.get(pk=status["job"])
        job_run(IngestJob, job.pk)
        job.refresh_from_db()
        assert (job.created_count, job.attempts) == (500, 1)
        assert Item.objects.filter(study=study).count() == 500

    def test_it_reports_every_bad_line_of_a_rejected_upload(self, client, study, token, celery_worker_process):
        body = orjson.dumps(record(external_id="ok")) + b"\n{broken\n" + orjson.dumps(record(external_id=None))
        response = client.post(
            "/api/studies/refunds/uploads",
            data=body,
            content_type="application/x-ndjson",
            HTTP_AUTHORIZATION=f"Bearer {token}",
        )
        status = wait_for_job(client, token, response.json()["status_url"])
        assert status["status"] == "failed"
        assert [(e["location"], e["field"]) for e in status["errors"]] == [
            ("line 2", "(record)"),
            ("line 3", "external_id"),
        ]
        assert not Item.objects.filter(study=study).exists()

    def test_it_hides_another_studys_job(self, client, study, token, other_study):
        job = IngestJob.objects.create(study=other_study, filename="x.jsonl", stored_path="/nonexistent")
        response = client.get(f"/api/studies/refunds/uploads/{job.pk}", HTTP_AUTHORIZATION=f"Bearer {token}")
        assert response.status_code == 404
