"""A closed study takes no new items by any path: the API, the study page's upload, the
ingest command, a background job queued before it closed, and the service itself."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from reviewapp.ingest.models import IngestJob, Item
from reviewapp.ingest.parsing import parse_jsonl
from reviewapp.ingest.services import StudyClosed, items_ingest
from reviewapp.jobs import job_run
from reviewapp.studies.models import Study
from tests.ingest.test_parsing import record

pytestmark = pytest.mark.django_db

LINE = orjson.dumps(record(external_id="late")) + b"\n"


def close(study: Study) -> None:
    Study.objects.filter(pk=study.pk).update(status=Study.Status.CLOSED)


class TestClosedStudyTakesNoItems:
    def test_the_service_refuses_even_with_a_stale_study_object(self, study):
        close(study)  # ``study`` still says running
        with pytest.raises(StudyClosed, match=r"Study .refunds. is closed; it accepts no new items\."):
            items_ingest(study=study, results=parse_jsonl([LINE]))
        assert not Item.objects.exists()

    def test_the_study_page_upload_refuses(self, client, study, researcher, settings, tmp_path):
        settings.UPLOAD_DIR = tmp_path
        close(study)
        client.force_login(researcher)
        upload = SimpleUploadedFile("late.jsonl", LINE, content_type="application/x-ndjson")
        response = client.post("/studies/refunds/upload/", {"file": upload, "format": ""}, follow=True)
        assert "Study &#x27;refunds&#x27; is closed; it accepts no new items." in response.content.decode()
        assert not IngestJob.objects.exists() and not list(Path(tmp_path).iterdir())

    def test_the_command_refuses(self, study, tmp_path):
        path = tmp_path / "late.jsonl"
        path.write_bytes(LINE)
        close(study)
        with pytest.raises(CommandError, match="is closed; it accepts no new items"):
            call_command("ingest", "--study", "refunds", str(path), "--no-progress")
        assert not Item.objects.exists()

    def test_a_job_queued_before_the_study_closed_fails_with_the_reason(self, study, tmp_path):
        path = tmp_path / "late.jsonl"
        path.write_bytes(LINE)
        job = IngestJob.objects.create(study=study, filename="late.jsonl", stored_path=str(path), size_bytes=len(LINE))
        close(study)
        job_run(IngestJob, job.pk)
        job.refresh_from_db()
        assert (job.status, job.message) == ("failed", "Study 'refunds' is closed; it accepts no new items.")
        assert not Item.objects.exists()

    def test_a_running_study_takes_the_same_items(self, study):
        """The control: the same line into the same study, still running, is written."""
        assert items_ingest(study=study, results=parse_jsonl([LINE])).created == 1
