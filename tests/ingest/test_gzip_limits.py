"""gzip input is decompressed as a stream under a ratio cap: a small bomb cannot fill memory."""

from __future__ import annotations

import gzip
import tracemalloc
import zlib

import orjson
import pytest
from django.test import override_settings

from reviewapp.ingest.files import ReadLimits, parse_file
from reviewapp.ingest.models import IngestJob, Item
from reviewapp.ingest.parsing import BodyError, ItemRecord
from reviewapp.jobs import job_run
from tests.builders import record

URL = "/api/studies/refunds/items"
JSONL = "application/x-ndjson"
LIMITS = ReadLimits(gzip_max_ratio=100, max_decompressed_bytes=4 << 30, max_document_bytes=256 << 20)
# A 200 MB bomb is about 200 KB of gzip: at most 100 times that (20 MB) is ever decompressed,
# and held at most twice while read; the old reader held all 200 MB.
BOUND = 64 << 20


def bomb(filler: bytes, size: int, prefix: bytes = b"", suffix: bytes = b"") -> bytes:
    """gzip of ``size`` bytes of ``filler``, compressed in pieces (never held whole)."""
    out = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [out.compress(prefix)]
    piece = filler * (1 << 20)
    for _ in range(size // len(piece)):
        parts.append(out.compress(piece))
    parts.append(out.compress(suffix))
    parts.append(out.flush())
    return b"".join(parts)


def peak_while(action) -> tuple[object, int]:
    tracemalloc.start()
    try:
        try:
            result = action()
        except BodyError as exc:
            result = exc
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def records_gz(count: int) -> bytes:
    return gzip.compress(b"".join(orjson.dumps(record(external_id=f"g{i}")) + b"\n" for i in range(count)))


class TestGzipLimits:
    def test_a_json_gz_bomb_is_refused_by_its_ratio_at_bounded_memory(self, tmp_path):
        path = tmp_path / "export.json.gz"
        path.write_bytes(bomb(b" ", 200 << 20, suffix=b"[]"))  # 200 MB of spaces, about 200 KB compressed
        error, peak = peak_while(lambda: list(parse_file(path, max_record_bytes=4 << 20, limits=LIMITS)))
        assert isinstance(error, BodyError), error
        assert "INGEST_GZIP_MAX_RATIO" in str(error) and "export.json.gz" in str(error)
        assert "over 100 times" in str(error)
        assert peak < BOUND, f"peak {peak:,} bytes"  # was the whole 200 MB, and more

    def test_a_jsonl_gz_bomb_without_line_ends_is_refused_too(self, tmp_path):
        path = tmp_path / "runs.jsonl.gz"
        path.write_bytes(bomb(b"a", 200 << 20))
        error, peak = peak_while(lambda: list(parse_file(path, max_record_bytes=4 << 20, limits=LIMITS)))
        assert isinstance(error, BodyError) and "INGEST_GZIP_MAX_RATIO" in str(error), error
        assert peak < BOUND, f"peak {peak:,} bytes"

    def test_ordinary_gzip_passes_and_the_absolute_cap_names_its_setting(self, tmp_path):
        path = tmp_path / "runs.jsonl.gz"
        path.write_bytes(records_gz(5))
        results = list(parse_file(path, max_record_bytes=4 << 20, limits=LIMITS))
        assert [type(r) for r in results] == [ItemRecord] * 5  # positive control
        tight = ReadLimits(gzip_max_ratio=100, max_decompressed_bytes=2000, max_document_bytes=256 << 20)
        with pytest.raises(BodyError, match=r"2,000-byte limit \(INGEST_MAX_DECOMPRESSED_BYTES\)"):
            list(parse_file(path, max_record_bytes=4 << 20, limits=tight))

    def test_a_json_document_over_the_document_limit_is_not_read_whole(self, tmp_path):
        path = tmp_path / "big.json"
        path.write_bytes(orjson.dumps([record(external_id=f"d{i}") for i in range(50)]))
        small = ReadLimits(gzip_max_ratio=100, max_decompressed_bytes=4 << 30, max_document_bytes=10_000)
        with pytest.raises(BodyError, match="INGEST_MAX_DOCUMENT_BYTES"):
            list(parse_file(path, max_record_bytes=4 << 20, limits=small))
        assert len(list(parse_file(path, max_record_bytes=4 << 20, limits=LIMITS))) == 50

    def test_a_corrupt_gzip_file_is_a_precise_error(self, tmp_path):
        path = tmp_path / "runs.jsonl.gz"
        path.write_bytes(records_gz(5)[:-30] + b"garbage")
        with pytest.raises(BodyError, match=r"runs\.jsonl\.gz: not valid gzip"):
            list(parse_file(path, max_record_bytes=4 << 20, limits=LIMITS))

    @pytest.mark.django_db
    def test_the_api_reads_a_gzip_body(self, client, study, token):
        response = client.post(
            URL, records_gz(3), content_type=JSONL, HTTP_CONTENT_ENCODING="gzip", HTTP_AUTHORIZATION=f"Bearer {token}"
        )
        assert response.status_code == 201, response.content
        assert Item.objects.filter(study=study).count() == 3

    @pytest.mark.django_db
    def test_the_api_refuses_a_gzip_bomb_with_413_naming_the_limit(self, client, study, token):
        auth = {"HTTP_CONTENT_ENCODING": "gzip", "HTTP_AUTHORIZATION": f"Bearer {token}"}
        body = bomb(b"\n", 200 << 20)
        response, peak = peak_while(lambda: client.post(URL, body, content_type=JSONL, **auth))
        assert response.status_code == 413, response.content
        assert "INGEST_GZIP_MAX_RATIO" in response.json()["error"]
        assert peak < BOUND, f"peak {peak:,} bytes"
        with override_settings(INGEST_MAX_BODY_BYTES=2000):
            response = client.post(URL, records_gz(5), content_type=JSONL, **auth)
        assert response.status_code == 413 and "INGEST_MAX_BODY_BYTES" in response.json()["error"]
        response = client.post(URL, b"\x1f\x8bnot gzip", content_type=JSONL, **auth)
        assert response.status_code == 400 and "not valid gzip" in response.json()["error"]
        response = client.post(URL, records_gz(1), content_type=JSONL, **{**auth, "HTTP_CONTENT_ENCODING": "br"})
        assert response.status_code == 415
        assert not Item.objects.exists()

    @pytest.mark.django_db(transaction=True)
    def test_an_upload_job_fails_with_the_limit_named(self, client, study, token):
        response = client.post(
            "/api/studies/refunds/uploads?filename=export.json.gz",
            bomb(b" ", 200 << 20, suffix=b"[]"),
            content_type="application/json",
            HTTP_CONTENT_ENCODING="gzip",
            HTTP_AUTHORIZATION=f"Bearer {token}",
        )
        assert response.status_code == 202, response.content
        job = IngestJob.objects.get(pk=response.json()["job"])
        _, peak = peak_while(lambda: job_run(IngestJob, job.pk))
        job.refresh_from_db()
        assert job.status == IngestJob.Status.FAILED
        assert "INGEST_GZIP_MAX_RATIO" in job.message, job.message
        assert peak < BOUND, f"peak {peak:,} bytes"
