"""Inspect AI logs written by the real inspect-ai (mockllm, offline), in both its formats, through
the command and the study page's upload; the JSON items API points a zip to those paths.
"""

from __future__ import annotations

import io
import json
import zipfile
from io import StringIO
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from reviewapp.ingest.files import ReadLimits, parse_file
from reviewapp.ingest.models import IngestJob, Item
from reviewapp.ingest.parsing import RecordError
from reviewapp.jobs import job_run
from tests.formats.test_inspect_log import SAMPLES, generate_logs

pytestmark = pytest.mark.filterwarnings("ignore:The 'initial' parameter is deprecated:DeprecationWarning")
SAMPLE_IDS = {s["id"] for s in SAMPLES}


@pytest.fixture(scope="module")
def logs(tmp_path_factory) -> dict[str, Path]:
    """Two models' runs of the same task as .eval (Inspect's default), and one as .json."""
    runs = [("mockllm/model", "eval"), ("mockllm/other", "eval"), ("mockllm/model", "json")]
    paths = generate_logs(tmp_path_factory.mktemp("inspect-eval"), runs)
    return dict(zip(["eval_a", "eval_b", "json_a"], paths, strict=True))


def ingest(path: Path, *extra: str) -> str:
    out, err = StringIO(), StringIO()
    try:
        call_command("ingest", "--study", "refunds", "--no-progress", *extra, str(path), stdout=out, stderr=err)
    except CommandError as exc:
        raise CommandError(f"{exc}\n{err.getvalue()}") from None
    return out.getvalue()


def limits(**overrides) -> ReadLimits:
    values = {"gzip_max_ratio": 100, "max_decompressed_bytes": 1 << 30, "max_document_bytes": 64 << 20}
    return ReadLimits(**(values | overrides))


@pytest.mark.django_db
class TestInspectEvalLogs:
    def test_it_ingests_an_eval_log_with_the_command(self, study, logs):
        assert logs["eval_a"].suffix == ".eval" and zipfile.is_zipfile(logs["eval_a"])
        out = ingest(logs["eval_a"])
        assert "3 records: 3 created, 0 already present." in out
        items = {i.source_metadata["sample_id"]: i for i in Item.objects.filter(study=study)}
        assert set(items) == SAMPLE_IDS
        item = items["refund-1042"]
        assert item.source_format == "inspect"
        assert [m["role"] for m in item.payload["messages"]] == ["system", "user", "assistant", "tool", "assistant"]
        assert item.ai_recommendation == "approve" and item.gold_label == "reject"
        metadata = item.source_metadata
        assert (metadata["task"], metadata["model"], metadata["target"]) == ("refund_review", "mockllm/model", "reject")
        assert metadata["fidelity"] == {"messages": 5, "tool_calls": 1, "tool_results": 1}
        assert item.external_id == f"refund_review/{metadata['eval_id']}/refund-1042/1"

    def test_it_reads_the_same_transcripts_from_eval_as_from_json(self, logs):
        def by_sample(path):
            results = list(parse_file(path, max_record_bytes=4 << 20, limits=limits()))
            assert not [r for r in results if isinstance(r, RecordError)]
            return {r.source_metadata["sample_id"]: r.payload for r in results}

        assert by_sample(logs["eval_a"]) == by_sample(logs["json_a"])

    # Committed between the sends, as separate runs of the command would be.
    @pytest.mark.django_db(transaction=True)
    def test_two_models_runs_of_one_task_both_land_and_a_resend_is_idempotent(self, study, logs):
        # Before ids carried the eval id, the second run's samples were "already present" (or a 409).
        ingest(logs["eval_a"])
        out = ingest(logs["eval_b"])
        assert "3 records: 3 created, 0 already present." in out
        models = sorted(Item.objects.filter(study=study).values_list("source_metadata__model", flat=True))
        assert models == ["mockllm/model"] * 3 + ["mockllm/other"] * 3
        out = ingest(logs["eval_b"])
        assert "3 records: 0 created, 3 already present." in out
        assert Item.objects.filter(study=study).count() == 6

    def test_it_ingests_an_eval_log_uploaded_on_the_study_page(self, client, study, researcher, settings, logs):
        settings.UPLOAD_DIR = logs["eval_a"].parent / "uploads"
        client.force_login(researcher)
        upload = SimpleUploadedFile("run.eval", logs["eval_a"].read_bytes(), content_type="application/zip")
        response = client.post("/studies/refunds/upload/", {"file": upload, "format": ""}, follow=True)
        assert "run.eval uploaded" in response.content.decode()
        job = IngestJob.objects.get(study=study)
        assert job.stored_path.endswith(".eval")
        job_run(IngestJob, job.pk)
        job.refresh_from_db()
        assert job.status == "succeeded", job.message
        assert Item.objects.filter(study=study, source_format="inspect").count() == 3

    def test_it_ingests_an_eval_log_sent_to_the_uploads_api(self, client, study, token, settings, logs, tmp_path):
        settings.UPLOAD_DIR = tmp_path
        response = client.post(
            "/api/studies/refunds/uploads?filename=run.eval",
            data=logs["eval_b"].read_bytes(),
            content_type="application/zip",
            HTTP_AUTHORIZATION=f"Bearer {token}",
        )
        assert response.status_code == 202, response.content
        job = IngestJob.objects.get(study=study)
        job_run(IngestJob, job.pk)
        job.refresh_from_db()
        assert job.status == "succeeded", job.message
        assert Item.objects.filter(study=study).count() == 3

    def test_the_items_api_says_how_to_send_an_eval_log(self, client, study, token, logs):
        body = logs["eval_a"].read_bytes()
        for content_type in ("application/json", "application/zip"):
            response = client.post(
                "/api/studies/refunds/items", data=body, content_type=content_type, HTTP_AUTHORIZATION=f"Bearer {token}"
            )
            assert response.status_code == 415, content_type
            error = response.json()["error"]
            assert "zip" in error and "/api/studies/refunds/uploads" in error
            assert "manage.py ingest --study refunds" in error and "study page" in error
        assert not Item.objects.exists()
        # The positive control: the same run as a .json log is taken by that endpoint.
        response = client.post(
            "/api/studies/refunds/items",
            data=logs["json_a"].read_bytes(),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {token}",
        )
        assert response.status_code == 201, response.content

    def test_it_keeps_an_errored_sample_and_marks_it(self, study, logs, tmp_path):
        path = tmp_path / "errored.eval"
        with zipfile.ZipFile(logs["eval_a"]) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
            for info in source.infolist():
                data = source.read(info)
                if info.filename.startswith("samples/refund-7731"):
                    sample = json.loads(data)
                    sample["error"] = {"message": "RuntimeError: sandbox died", "traceback": "", "traceback_ansi": ""}
                    data = json.dumps(sample).encode()
                out.writestr(info.filename, data)
        ingest(path)
        errored = Item.objects.get(study=study, source_metadata__sample_id="refund-7731")
        assert errored.source_metadata["sample_error"] == "RuntimeError: sandbox died"
        fine = Item.objects.get(study=study, source_metadata__sample_id="refund-1042")
        assert "sample_error" not in fine.source_metadata

    def test_it_applies_the_limits_sample_by_sample(self, logs):
        sizes = [i.file_size for i in zipfile.ZipFile(logs["eval_a"]).infolist() if i.filename.startswith("samples/")]
        header = zipfile.ZipFile(logs["eval_a"]).getinfo("header.json").file_size
        # A sample file over the document limit is an error for that sample alone.
        cap = max(header, min(sizes)) + 1
        results = list(parse_file(logs["eval_a"], max_record_bytes=4 << 20, limits=limits(max_document_bytes=cap)))
        errors = [r for r in results if isinstance(r, RecordError)]
        assert len(results) == 3 and errors == [r for r in results if r.location.startswith("samples/")]
        assert errors and all("INGEST_MAX_DOCUMENT_BYTES" in e.reason for e in errors)
        # All members together stay under the decompressed caps: refused as a whole.
        with pytest.raises(Exception, match="INGEST_MAX_DECOMPRESSED_BYTES"):
            list(parse_file(logs["eval_a"], max_record_bytes=4 << 20, limits=limits(max_decompressed_bytes=header + 1)))

    def test_it_refuses_a_file_that_is_not_an_eval_log(self, study, tmp_path):
        path = tmp_path / "broken.eval"
        path.write_bytes(b"not a zip")
        with pytest.raises(CommandError, match=r"not a readable Inspect \.eval log"):
            ingest(path)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("readme.txt", "hello")
        path.write_bytes(buffer.getvalue())
        with pytest.raises(CommandError, match=r"neither header\.json nor _journal/start\.json"):
            ingest(path)
        assert not Item.objects.exists()
