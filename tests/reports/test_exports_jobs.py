"""Large exports as jobs: the threshold, the job's file, its progress on the page, idempotency.

The task's service runs in this process here (a real worker: test_exports_worker.py).
"""

from __future__ import annotations

import csv
import io
import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.test import override_settings
from django.utils import timezone

from reviewapp.jobs import job_run, run_job
from reviewapp.reports import services
from reviewapp.reports.models import ExportJob
from reviewapp.reports.tasks import cleanup_old_exports
from tests.builders import body


@pytest.fixture(autouse=True)
def export_dir(tmp_path, settings) -> Path:
    """Files under a temporary directory; more than 10 rows make a job."""
    settings.EXPORT_SYNC_MAX_ROWS = 10
    settings.EXPORT_DIR = tmp_path / "exports"
    return settings.EXPORT_DIR


class TestExportJobs:
    def test_above_the_threshold_the_page_offers_a_job_instead_of_a_stream(
        self, client, labelled, export_dir, researcher
    ):
        client.force_login(researcher)

        response = client.get("/studies/refunds/exports/labels.csv", follow=True)

        assert response.redirect_chain == [("/studies/refunds/exports/", 302)]
        assert b"has 16 rows, more than the 10 streamed directly" in response.content
        assert b'name="report" value="labels"' in response.content and b"Prepare CSV" in response.content
        # Items (4 rows) still stream; labels as JSON Lines point programs to the job endpoint.
        assert client.get("/studies/refunds/exports/items.csv").streaming
        refused = client.get("/studies/refunds/exports/labels.jsonl")
        assert refused.status_code == 409
        assert refused.json()["jobs_url"] == "/studies/refunds/exports/jobs/" and refused.json()["rows"] == 16
        assert not ExportJob.objects.exists()

    def test_a_job_writes_the_same_file_the_stream_would_and_serves_it(self, client, labelled, export_dir, researcher):
        client.force_login(researcher)
        response = client.post("/studies/refunds/exports/jobs/", {"report": "labels", "format": "csv"})
        assert response.status_code == 302 and response["Location"] == "/studies/refunds/exports/#jobs"
        job = ExportJob.objects.get()
        assert (job.status, job.rows_total, job.format) == ("queued", 16, "csv")
        assert Path(job.file_path).parent == export_dir and job.filename.startswith("refunds-labels-20")

        job_run(ExportJob, job.pk)

        job.refresh_from_db()
        assert (job.status, job.rows_done, job.attempts, job.progress_percent) == ("succeeded", 16, 1, 100)
        path = Path(job.file_path)
        assert job.size_bytes == path.stat().st_size and oct(path.stat().st_mode & 0o777) == "0o600"
        assert not list(export_dir.glob(".*.part"))
        download = client.get(f"/studies/refunds/exports/jobs/{job.pk}/download/")
        assert download.status_code == 200
        assert download["Content-Disposition"] == f'attachment; filename="{job.filename}"'
        assert download["Content-Type"] == "text/csv; charset=utf-8"
        assert download["X-Content-Type-Options"] == "nosniff"
        with override_settings(EXPORT_SYNC_MAX_ROWS=1000):
            streamed = body(client.get("/studies/refunds/exports/labels.csv"))
        assert body(download) == streamed
        assert len(list(csv.reader(io.StringIO(streamed.decode(), newline="")))) == 17

    def test_a_json_lines_job_matches_the_json_lines_stream(self, client, labelled, export_dir, researcher):
        client.force_login(researcher)
        response = client.post(
            "/studies/refunds/exports/jobs/", {"report": "items", "format": "jsonl"}, HTTP_ACCEPT="application/json"
        )
        assert response.status_code == 202
        status = response.json()
        assert (status["status"], status["download_url"], status["format"]) == ("queued", None, "jsonl")

        job_run(ExportJob, status["job"])

        status = client.get(status["status_url"]).json()
        assert status["status"] == "succeeded" and status["rows_done"] == 4
        download = client.get(status["download_url"])
        assert download["Content-Type"] == "application/x-ndjson"
        assert body(download) == body(client.get("/studies/refunds/exports/items.jsonl"))

    def test_a_double_click_finds_the_queued_job(self, client, labelled, export_dir, researcher):
        client.force_login(researcher)
        client.post("/studies/refunds/exports/jobs/", {"report": "labels", "format": "csv"})
        again = client.post("/studies/refunds/exports/jobs/", {"report": "labels", "format": "csv"}, follow=True)
        assert b"It is already being prepared." in again.content
        assert ExportJob.objects.count() == 1
        client.post("/studies/refunds/exports/jobs/", {"report": "labels", "format": "jsonl"})
        assert ExportJob.objects.count() == 2
        assert client.post("/studies/refunds/exports/jobs/", {"report": "agreement"}).status_code == 400

    def test_the_page_polls_progress_until_the_job_is_done(self, client, labelled, export_dir, researcher):
        client.force_login(researcher)
        client.post("/studies/refunds/exports/jobs/", {"report": "labels", "format": "csv"})
        job = ExportJob.objects.get()

        polling = client.get("/studies/refunds/exports/?part=jobs", HTTP_HX_REQUEST="true")
        assert polling.status_code == 200
        assert b'hx-trigger="every 2s"' in polling.content and b"<progress" in polling.content
        assert b"0 of 16" in polling.content and b"Download" not in polling.content

        job_run(ExportJob, job.pk)
        final = client.get("/studies/refunds/exports/?part=jobs", HTTP_HX_REQUEST="true")
        assert final.status_code == 286  # htmx stops polling
        assert b"every 2s" not in final.content
        assert f'href="/studies/refunds/exports/jobs/{job.pk}/download/"'.encode() in final.content

    def test_a_redelivered_task_for_a_finished_job_does_nothing(self, labelled, export_dir):
        job, _ = services.export_job_create(study=labelled, report="labels", fmt="csv", actor=None)
        job_run(ExportJob, job.pk)
        job.refresh_from_db()
        written = Path(job.file_path).stat()

        run_job.apply(args=["export", job.pk])
        job_run(ExportJob, job.pk)

        again = ExportJob.objects.get(pk=job.pk)
        assert (again.status, again.attempts, again.finished_at, again.rows_done) == (
            "succeeded",
            1,
            job.finished_at,
            16,
        )
        assert Path(job.file_path).stat().st_mtime_ns == written.st_mtime_ns

    def test_a_restarted_job_rewrites_its_file_from_scratch(self, client, labelled, export_dir, researcher):
        job, _ = services.export_job_create(study=labelled, report="labels", fmt="csv", actor=None)
        # A worker died mid-job: the row says running, a stale file sits at the final path.
        ExportJob.objects.filter(pk=job.pk).update(status="running", attempts=1, rows_done=7)
        Path(job.file_path).write_bytes(b"half a file")

        job_run(ExportJob, job.pk)

        job.refresh_from_db()
        assert (job.status, job.attempts, job.rows_done) == ("succeeded", 2, 16)
        client.force_login(researcher)
        with override_settings(EXPORT_SYNC_MAX_ROWS=1000):
            streamed = body(client.get("/studies/refunds/exports/labels.csv"))
        assert Path(job.file_path).read_bytes() == streamed

    def test_a_failure_is_recorded_and_leaves_no_partial_file(self, labelled, export_dir, monkeypatch):
        job, _ = services.export_job_create(study=labelled, report="labels", fmt="csv", actor=None)

        def broken(*args, **kwargs):
            yield b"label_id\r\n"
            raise RuntimeError("disk on fire")

        monkeypatch.setattr(services, "row_stream", broken)
        with pytest.raises(RuntimeError):
            run_job.apply(args=["export", job.pk], throw=True)

        job.refresh_from_db()
        assert job.status == "failed" and job.error == "Export failed: RuntimeError: disk on fire"
        assert not os.listdir(export_dir)

    def test_old_files_are_deleted_and_their_jobs_marked_expired(self, client, labelled, export_dir, researcher):
        job, _ = services.export_job_create(study=labelled, report="items", fmt="csv", actor=None)
        job_run(ExportJob, job.pk)
        ExportJob.objects.filter(pk=job.pk).update(finished_at=timezone.now() - timedelta(days=8))
        stray = export_dir / ".abandoned.csv.0123.part"
        stray.write_bytes(b"x")
        os.utime(stray, (0, 0))

        assert cleanup_old_exports() == 2

        job.refresh_from_db()
        assert job.status == "expired" and not Path(job.file_path).exists() and not stray.exists()
        client.force_login(researcher)
        assert client.get(f"/studies/refunds/exports/jobs/{job.pk}/download/").status_code == 404
