"""python manage.py ingest: streams files, shows progress, all-or-nothing per file."""

from __future__ import annotations

import gzip
from io import StringIO

import orjson
import pytest
from django.core.management import CommandError, call_command

from reviewapp.ingest.models import IngestJob, Item
from tests.builders import record


def write_jsonl(path, records) -> None:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))


def run(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("ingest", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.mark.django_db
class TestIngestCommand:
    def test_it_ingests_ten_thousand_transcripts_with_a_progress_bar(self, study, tmp_path, capsys):
        path = tmp_path / "runs.jsonl"
        write_jsonl(path, (record(external_id=f"run-{i}") for i in range(10_000)))
        out, _ = run("--study", "refunds", str(path))
        assert "10000 records: 10000 created, 0 already present." in out
        assert Item.objects.filter(study=study).count() == 10_000
        progress = capsys.readouterr().err
        assert "runs.jsonl" in progress and "100%" in progress

    # Committed between the two sends, as two real requests would be.
    @pytest.mark.django_db(transaction=True)
    def test_it_reads_gzip_and_skips_what_is_already_there(self, study, tmp_path):
        path = tmp_path / "runs.jsonl.gz"
        with gzip.open(path, "wb") as f:
            f.write(b"".join(orjson.dumps(record(external_id=f"g{i}")) + b"\n" for i in range(5)))
        run("--study", "refunds", "--no-progress", str(path))
        out, _ = run("--study", "refunds", "--no-progress", str(path))
        assert "5 records: 0 created, 5 already present." in out

    def test_it_writes_nothing_from_a_file_with_a_bad_line(self, study, tmp_path):
        path = tmp_path / "runs.jsonl"
        write_jsonl(path, [record(external_id="a"), record(external_id="b", ai_confidence=7)])
        with pytest.raises(CommandError, match="Nothing from them was written"):
            run("--study", "refunds", "--no-progress", str(path))
        assert not Item.objects.exists()

    def test_it_prints_each_error_with_line_and_field(self, study, tmp_path):
        path = tmp_path / "runs.jsonl"
        write_jsonl(path, [record(external_id="a"), record(external_id="b", ai_confidence=7)])
        out, err = StringIO(), StringIO()
        with pytest.raises(CommandError):
            call_command("ingest", "--study", "refunds", "--no-progress", str(path), stdout=out, stderr=err)
        assert "runs.jsonl: line 2 (external_id 'b'): ai_confidence: 7 is outside 0..1" in err.getvalue()

    def test_it_imports_the_rest_with_skip_invalid(self, study, tmp_path):
        path = tmp_path / "runs.jsonl"
        write_jsonl(path, [record(external_id="a"), record(external_id="b", ai_confidence=7)])
        out, _ = run("--study", "refunds", "--no-progress", "--skip-invalid", str(path))
        assert "1 created" in out and "1 skipped as invalid" in out
        assert list(Item.objects.values_list("external_id", flat=True)) == ["a"]

    def test_it_names_an_unknown_study(self, db, tmp_path):
        path = tmp_path / "runs.jsonl"
        write_jsonl(path, [record()])
        with pytest.raises(CommandError, match="No study with slug 'nope'"):
            run("--study", "nope", str(path))

    def test_it_refuses_a_file_it_cannot_classify(self, study, tmp_path):
        path = tmp_path / "runs.csv"
        path.write_text("a,b\n")
        with pytest.raises(CommandError, match=r"use \.json, \.jsonl or \.ndjson"):
            run("--study", "refunds", str(path))

    def test_it_queues_a_background_job(self, study, tmp_path, django_capture_on_commit_callbacks):
        path = tmp_path / "runs.jsonl"
        write_jsonl(path, [record()])
        out, _ = run("--study", "refunds", "--background", str(path))
        job = IngestJob.objects.get(study=study)
        assert f"queued as ingest job {job.pk}" in out
        assert job.status == IngestJob.Status.QUEUED
