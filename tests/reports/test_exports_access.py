"""Who may export (the study's researchers and superusers) and the audit trail every export leaves."""

from __future__ import annotations

import csv
import io

import pytest

from reviewapp.reports.models import ExportJob
from reviewapp.studies.models import AuditEvent
from tests.builders import body, compute_metrics


# Every export endpoint of the study (the job ones use a job of this study).
def endpoints(job_id: int) -> list[tuple[str, str]]:
    base = "/studies/refunds/exports/"
    return [
        ("get", base),
        ("get", base + "labels.csv"),
        ("get", base + "labels.jsonl"),
        ("get", base + "items.csv"),
        ("get", base + "items.jsonl"),
        ("get", base + "agreement.csv"),
        ("get", base + "agreement.json"),
        ("get", base + "reviewers.csv"),
        ("get", base + "reviewers.json"),
        ("post", base + "jobs/"),
        ("get", base + f"jobs/{job_id}.json"),
        ("get", base + f"jobs/{job_id}/download/"),
    ]


@pytest.fixture
def job(labelled, tmp_path):
    path = tmp_path / "done.csv"
    path.write_bytes(b"label_id\r\n1\r\n")
    return ExportJob.objects.create(
        study=labelled, report="labels", status="succeeded", file_path=str(path), filename="refunds-labels-x.csv"
    )


@pytest.fixture
def labelled(labelled):
    """The labelled study, with its metrics computed (the summary reports need them)."""
    compute_metrics(labelled)
    return labelled


class TestExportAccess:
    def test_anonymous_visitors_are_sent_to_log_in(self, client, job):
        for method, url in endpoints(job.pk):
            response = getattr(client, method)(url, {"report": "labels"} if method == "post" else None)
            assert response.status_code == 302, url
            assert response["Location"].startswith("/accounts/login/?next="), url

    def test_reviewers_are_refused(self, client, job, reviewer):
        client.force_login(reviewer)
        for method, url in endpoints(job.pk):
            response = getattr(client, method)(url, {"report": "labels"} if method == "post" else None)
            assert response.status_code == 403, url
            assert b"label_id" not in body(response), url

    def test_other_researchers_do_not_learn_the_study_exists(self, client, job, outsider):
        client.force_login(outsider)
        for method, url in endpoints(job.pk):
            response = getattr(client, method)(url, {"report": "labels"} if method == "post" else None)
            assert response.status_code == 404, url

    def test_nothing_is_exported_or_logged_for_a_refused_request(self, client, job, outsider):
        client.force_login(outsider)
        for method, url in endpoints(job.pk):
            getattr(client, method)(url, {"report": "labels"} if method == "post" else None)
        assert not AuditEvent.objects.filter(action__startswith="export.").exists()
        assert ExportJob.objects.count() == 1

    def test_a_job_of_another_study_is_not_found_through_this_one(self, client, job, outsider, tmp_path):
        client.force_login(outsider)
        response = client.get(f"/studies/other/exports/jobs/{job.pk}/download/")
        assert response.status_code == 404
        assert client.get(f"/studies/other/exports/jobs/{job.pk}.json").status_code == 404

    def test_superusers_may_export_any_study(self, client, job, admin):
        client.force_login(admin)
        assert client.get("/studies/refunds/exports/").status_code == 200
        assert client.get("/studies/refunds/exports/labels.csv").status_code == 200
        assert client.get(f"/studies/refunds/exports/jobs/{job.pk}/download/").status_code == 200

    def test_every_export_is_audit_logged_with_format_and_rows(self, client, job, tmp_path, settings, researcher):
        settings.EXPORT_SYNC_MAX_ROWS = 10
        settings.EXPORT_DIR = tmp_path / "exports"
        client.force_login(researcher)

        client.get("/studies/refunds/exports/items.csv")
        client.get("/studies/refunds/exports/items.jsonl")
        agreement = b"".join(client.get("/studies/refunds/exports/agreement.csv").streaming_content).decode()
        # The audit records the rows the file had (one per arm, metric, field and split; the
        # count grows with every metric added), without the header.
        n_agreement = len(list(csv.reader(io.StringIO(agreement)))) - 1
        client.get("/studies/refunds/exports/reviewers.json")
        client.post("/studies/refunds/exports/jobs/", {"report": "labels", "format": "csv"})
        client.get(f"/studies/refunds/exports/jobs/{job.pk}/download/")
        # Too large to stream (16 > 10): refused here, so not an export.
        client.get("/studies/refunds/exports/labels.csv")

        events = [
            (e.action, e.actor, e.detail)
            for e in AuditEvent.objects.filter(action__startswith="export.").order_by("id")
        ]
        new_job = ExportJob.objects.exclude(pk=job.pk).get()
        run = job.study.metric_runs.get()
        assert events == [
            ("export.items", researcher, {"format": "csv", "mode": "stream", "rows": 4}),
            ("export.items", researcher, {"format": "jsonl", "mode": "stream", "rows": 4}),
            ("export.agreement", researcher, {"format": "csv", "mode": "stream", "rows": n_agreement, "run": run.pk}),
            ("export.reviewers", researcher, {"format": "json", "mode": "stream", "rows": 4, "run": run.pk}),
            ("export.labels", researcher, {"format": "csv", "mode": "job", "rows": 16, "job": new_job.pk}),
            ("export.labels", researcher, {"format": "csv", "mode": "download", "rows": 0, "job": job.pk, "bytes": 0}),
        ]
        assert {e.study_id for e in AuditEvent.objects.filter(action__startswith="export.")} == {job.study.pk}
        # The audit page shows them.
        assert b"export.labels" in client.get("/studies/refunds/audit/").content
