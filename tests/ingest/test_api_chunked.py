"""Chunked request bodies (no Content-Length) through a real gunicorn: read, and limited while read."""

from __future__ import annotations

import gzip
import http.client
from urllib.parse import urlsplit

import orjson
import pytest

from reviewapp.ingest.models import IngestJob, Item
from tests.builders import record
from tests.conftest import database_url_for_subprocess
from tests.faults.servers import collect_static, gunicorn, gunicorn_stop, subprocess_env

pytestmark = pytest.mark.django_db(transaction=True)
BODY_LIMIT = 20_000
JSONL = "application/x-ndjson"
URL = "/api/studies/refunds/items"


def jsonl(*ids: str) -> bytes:
    return b"".join(orjson.dumps(record(external_id=i)) + b"\n" for i in ids)


@pytest.fixture(scope="module")
def static_root(tmp_path_factory):
    folder = tmp_path_factory.mktemp("static")
    collect_static(folder)
    return folder


@pytest.fixture
def server(static_root, tmp_path, study, token):
    env = subprocess_env(
        DATABASE_URL=database_url_for_subprocess(), STATIC_ROOT=str(static_root), INGEST_MAX_BODY_BYTES=str(BODY_LIMIT)
    )
    process, base, _log = gunicorn(env, tmp_path, workers=1)
    yield urlsplit(base).netloc
    gunicorn_stop(process)


def send(netloc: str, path: str, token: str, body: bytes, *, chunked: bool, **headers: str) -> tuple[int, dict]:
    """POST as a client streaming its output does: pieces of 4 KB, no Content-Length."""
    connection = http.client.HTTPConnection(netloc, timeout=30)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": JSONL, **headers}
    if chunked:
        pieces = (body[i : i + 4096] for i in range(0, len(body), 4096))
        connection.request("POST", path, body=pieces, headers=headers, encode_chunked=True)
    else:
        connection.request("POST", path, body=body, headers=headers)
    response = connection.getresponse()
    answer = response.status, orjson.loads(response.read())
    connection.close()
    return answer


class TestChunkedBodies:
    def test_gunicorn_reads_a_chunked_body_and_counts_its_size_while_reading(self, server, study, token):
        status, data = send(server, URL, token, jsonl("a", "b", "c"), chunked=True)
        assert status == 201, data  # was 400 "Empty body"
        assert data["created"] == 3
        assert set(Item.objects.filter(study=study).values_list("external_id", flat=True)) == {"a", "b", "c"}

        big = jsonl(*[f"big-{n}" for n in range(40)])
        assert len(big) > BODY_LIMIT
        status, data = send(server, URL, token, big, chunked=True)
        assert status == 413 and "20,000-byte limit" in data["error"]
        # Positive control: the same body with a Content-Length is refused the same way.
        assert send(server, URL, token, big, chunked=False)[0] == 413
        assert Item.objects.filter(study=study).count() == 3

        gzipped = gzip.compress(jsonl("d"))
        status, data = send(server, URL, token, gzipped, chunked=True, **{"Content-Encoding": "gzip"})
        assert status == 201, data

    def test_gunicorn_stores_a_chunked_upload_whole(self, server, study, token):
        body = jsonl(*[f"u{n}" for n in range(10)])
        status, data = send(server, "/api/studies/refunds/uploads?filename=runs.jsonl", token, body, chunked=True)
        assert status == 202, data
        job = IngestJob.objects.get(pk=data["job"])
        assert job.size_bytes == len(body) and job.filename == "runs.jsonl"
