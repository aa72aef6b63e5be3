"""U+0000 in ingest input (PostgreSQL text and jsonb cannot hold it): a precise error, never a 500."""

from __future__ import annotations

import pytest

from reviewapp.ingest.models import IngestJob, Item
from reviewapp.jobs import job_run
from tests.builders import jsonl_body, record

URL = "/api/studies/refunds/items"
JSONL = "application/x-ndjson"
NUL = "\u0000"


def with_content(text: str, **overrides) -> dict:
    messages = record()["messages"]
    messages[1]["content"] = text
    return record(messages=messages, **overrides)


@pytest.mark.django_db(transaction=True)
class TestNulInIngestInput:
    def test_the_api_names_each_record_and_field_holding_a_nul(self, client, study, token):
        body = jsonl_body(
            record(external_id="ok"),
            with_content(f"pay{NUL}now", external_id="in-content"),
            record(external_id="in-metadata", metadata={f"k{NUL}": 1}),
            record(external_id=f"in{NUL}id"),
            record(external_id="in-title", title=f"t{NUL}"),
        )
        response = client.post(URL, body, content_type=JSONL, HTTP_AUTHORIZATION=f"Bearer {token}")
        assert response.status_code == 400, response.content
        errors = [(e["location"], e["field"], e["external_id"]) for e in response.json()["errors"]]
        assert errors == [
            ("line 2", "messages[1].content", "in-content"),
            ("line 3", "metadata.'k\\x00'", "in-metadata"),
            ("line 4", "external_id", "in\\u0000id"),
            ("line 5", "title", "in-title"),
        ]
        assert not Item.objects.exists()

    def test_an_upload_job_reports_a_nul_id_instead_of_failing_to_store_its_errors(self, client, study, token):
        body = jsonl_body(record(external_id="ok"), record(external_id=f"bad{NUL}id"))
        response = client.post(
            "/api/studies/refunds/uploads", body, content_type=JSONL, HTTP_AUTHORIZATION=f"Bearer {token}"
        )
        job = IngestJob.objects.get(pk=response.json()["job"])
        job_run(IngestJob, job.pk)  # was a DataError: the errors' jsonb held the id's NUL
        job.refresh_from_db()
        assert job.status == IngestJob.Status.FAILED
        assert job.errors == [
            {
                "location": "line 2",
                "field": "external_id",
                "reason": "must not contain control characters",
                "external_id": "bad\\u0000id",
            }
        ]
        assert not Item.objects.exists()

    def test_an_upload_file_name_with_a_nul_or_too_long_is_a_400(self, client, study, token):
        auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
        body = jsonl_body(record())
        response = client.post("/api/studies/refunds/uploads?filename=a%00b.jsonl", body, content_type=JSONL, **auth)
        assert response.status_code == 400 and "filename: contains a NUL" in response.json()["error"]
        name = "n" * 256
        response = client.post(f"/api/studies/refunds/uploads?filename={name}", body, content_type=JSONL, **auth)
        assert response.status_code == 400 and "the limit is 255" in response.json()["error"]
        assert not IngestJob.objects.exists()
        # Positive control: an ordinary name is kept.
        response = client.post("/api/studies/refunds/uploads?filename=runs.jsonl", body, content_type=JSONL, **auth)
        assert response.status_code == 202 and response.json()["filename"] == "runs.jsonl"

    def test_a_chunked_body_a_server_cannot_end_asks_for_a_length(self, client, study, token):
        # Django's development server does not decode chunks: reading on could wait forever.
        response = client.post(
            URL, b"", content_type=JSONL, HTTP_TRANSFER_ENCODING="chunked", HTTP_AUTHORIZATION=f"Bearer {token}"
        )
        assert response.status_code == 411 and "Content-Length" in response.json()["error"]
