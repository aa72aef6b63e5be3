"""A large export prepared by a real Celery worker process, from the button to the download.

The threshold only decides, in this process, whether to stream or to queue a job; the
worker takes everything else (report, format, file path) from the job's row.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from django.test import override_settings

from reviewapp.jobs import run_job
from reviewapp.reports.models import ExportJob
from tests.builders import body, csv_rows

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def wait_for(client, url: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    status: dict = {}
    while time.monotonic() < deadline:
        status = client.get(url).json()
        if status["status"] in ("succeeded", "failed"):
            return status
        time.sleep(0.2)
    raise AssertionError(f"export job did not finish in {timeout}s: {status}")


class TestExportsOnAWorker:
    def test_a_real_worker_writes_the_file_the_button_asked_for(
        self, client, labelled, researcher, tmp_path, celery_worker_process
    ):
        client.force_login(researcher)
        with override_settings(EXPORT_SYNC_MAX_ROWS=1000):
            streamed = body(client.get("/studies/refunds/exports/labels.csv"))

        with override_settings(EXPORT_SYNC_MAX_ROWS=10, EXPORT_DIR=tmp_path / "exports"):
            page = client.get("/studies/refunds/exports/labels.csv", follow=True)
            assert b"Prepare CSV" in page.content
            response = client.post("/studies/refunds/exports/jobs/", {"report": "labels", "format": "csv"}, follow=True)
            assert b"The file is being prepared" in response.content
            job = ExportJob.objects.get(study=labelled)

            status = wait_for(client, f"/studies/refunds/exports/jobs/{job.pk}.json")

            assert status["status"] == "succeeded", (status, celery_worker_process[1].read_text()[-3000:])
            assert (status["rows_done"], status["rows_total"], status["progress_percent"]) == (16, 16, 100)
            final = client.get("/studies/refunds/exports/?part=jobs", HTTP_HX_REQUEST="true")
            assert final.status_code == 286 and status["download_url"].encode() in final.content
            download = client.get(status["download_url"])

        assert download.status_code == 200
        assert download["Content-Disposition"] == f'attachment; filename="{status["filename"]}"'
        downloaded = body(download)
        assert downloaded == streamed
        assert len(csv_rows(client.get("/studies/refunds/exports/labels.csv"))) == 17
        job.refresh_from_db()
        assert Path(job.file_path).parent == tmp_path / "exports" and job.attempts == 1

        # A redelivered task finds the job finished: nothing is written again.
        written = Path(job.file_path).stat().st_mtime_ns
        run_job.apply(args=["export", job.pk])
        job.refresh_from_db()
        assert (job.status, job.attempts) == ("succeeded", 1)
        assert Path(job.file_path).stat().st_mtime_ns == written
        assert Path(job.file_path).read_bytes() == streamed
