"""POST /api/studies/<slug>/items: every format in, every bad input out with a precise error."""

from __future__ import annotations

import random

import orjson
import pytest
from django.test import override_settings

from reviewapp.ingest.models import IngestJob, Item
from reviewapp.studies.models import AuditEvent, IngestToken, Study
from tests.builders import jsonl_body, record
from tests.conftest import FIXTURES

URL = "/api/studies/refunds/items"
UPLOADS = "/api/studies/refunds/uploads"
JSONL = "application/x-ndjson"


def post(client, body, token, content_type="application/json", url=URL, **extra):
    if not isinstance(body, (bytes, str)):
        body = orjson.dumps(body)
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    return client.post(url, data=body, content_type=content_type, **headers, **extra)


def garbled(valid: bytes, rng: random.Random) -> bytes:
    """``valid`` with one to eight bytes replaced at random, drawn again until it is no longer JSON."""
    while True:
        blob = bytearray(valid)
        for _ in range(rng.randint(1, 8)):
            blob[rng.randrange(len(blob))] = rng.randrange(256)
        try:
            orjson.loads(blob)
        except orjson.JSONDecodeError:
            return bytes(blob)


@pytest.mark.django_db
class TestItemsApi:
    def test_it_creates_items_from_jsonl(self, client, study, token):
        body = jsonl_body(record(external_id="a"), record(external_id="b"))
        response = post(client, body, token, JSONL)
        assert response.status_code == 201, response.content
        assert response.json()["created"] == 2
        item = Item.objects.get(study=study, external_id="b")
        assert item.ai_recommendation == "approve"
        assert item.gold_label == "reject"
        assert item.payload["messages"][2]["tool_calls"][0]["name"] == "lookup_order"
        assert AuditEvent.objects.filter(study=study, action="ingest.api").exists()

    # Committed between the two sends, as two real requests would be.
    @pytest.mark.django_db(transaction=True)
    def test_it_is_idempotent_on_external_id(self, client, study, token):
        body = jsonl_body(record(external_id="a"), record(external_id="b"))
        post(client, body, token, JSONL)
        again = post(client, body, token, JSONL)
        assert again.status_code == 200
        assert again.json()["created"] == 0
        assert again.json()["duplicates"] == 2
        assert Item.objects.filter(study=study).count() == 2

    # Committed between the two sends, as two real requests would be.
    @pytest.mark.django_db(transaction=True)
    def test_it_refuses_a_changed_record_under_an_existing_id(self, client, study, token):
        post(client, jsonl_body(record(external_id="a")), token, JSONL)
        response = post(client, jsonl_body(record(external_id="a", ai_recommendation="reject")), token, JSONL)
        assert response.status_code == 409
        error = response.json()["errors"][0]
        assert error["external_id"] == "a"
        assert "already exists in this study with different content" in error["reason"]
        assert Item.objects.get(study=study, external_id="a").ai_recommendation == "approve"

    def test_it_rejects_the_whole_batch_and_names_every_bad_record(self, client, study, token):
        bad_role = record(external_id="c")
        bad_role["messages"][0]["role"] = "robot"
        body = jsonl_body(record(external_id="a"), record(external_id=None), bad_role, record(external_id="d"))
        response = post(client, body, token, JSONL)
        assert response.status_code == 400
        data = response.json()
        assert data["error_count"] == 2
        assert [(e["location"], e["field"]) for e in data["errors"]] == [
            ("line 2", "external_id"),
            ("line 3", "messages[0].role"),
        ]
        assert "nothing was written" in data["message"]
        assert not Item.objects.filter(study=study).exists()

    def test_it_imports_the_valid_records_when_asked_to_skip_invalid(self, client, study, token):
        body = jsonl_body(record(external_id="a"), record(external_id=None))
        response = post(client, body, token, JSONL, url=URL + "?skip_invalid=1")
        assert response.status_code == 201
        assert response.json()["created"] == 1
        assert response.json()["errors"][0]["location"] == "line 2"

    def test_it_flags_duplicate_ids_with_different_content_in_one_batch(self, client, study, token):
        body = jsonl_body(record(external_id="a"), record(external_id="a", ai_confidence=0.2))
        response = post(client, body, token, JSONL)
        assert response.status_code == 400
        assert response.json()["errors"][0]["reason"] == "repeats line 1 with different content"

    def test_it_counts_an_exact_repeat_in_one_batch_once(self, client, study, token):
        response = post(client, jsonl_body(record(external_id="a"), record(external_id="a")), token, JSONL)
        assert response.json()["created"] == 1
        assert response.json()["duplicates"] == 1

    @pytest.mark.parametrize(
        ("name", "content_type", "source_format", "count"),
        [
            ("formats/openai.jsonl", JSONL, "openai", 3),
            ("formats/anthropic.jsonl", JSONL, "anthropic", 3),
            ("formats/openai_responses.jsonl", JSONL, "openai_responses", 2),
            ("formats/otel.json", "application/json", "otel", 2),
            ("formats/inspect.json", "application/json", "inspect", None),
            ("demo/transcripts.jsonl", JSONL, "native", 48),
        ],
    )
    def test_it_accepts_each_format(self, client, study, token, name, content_type, source_format, count):
        response = post(client, (FIXTURES / name).read_bytes(), token, content_type)
        assert response.status_code == 201, response.content
        items = Item.objects.filter(study=study, source_format=source_format)
        assert items.count() == (count or response.json()["created"]) > 0
        for item in items:
            assert item.payload["messages"], item.external_id
            assert {m["role"] for m in item.payload["messages"]} <= {"system", "user", "assistant", "tool"}


@pytest.mark.django_db
class TestItemsApiRefusals:
    def test_it_wants_a_bearer_token(self, client, study):
        response = post(client, jsonl_body(record()), None, JSONL)
        assert response.status_code == 401
        assert response["WWW-Authenticate"].startswith("Bearer")
        assert "Missing bearer token" in response.json()["error"]

    def test_it_refuses_an_unknown_token(self, client, study, token, settings, tmp_path):
        settings.UPLOAD_DIR = uploads = tmp_path / "uploads"
        body = jsonl_body(record())
        for url in (URL, UPLOADS):
            response = post(client, body, "rvw_not-a-token", JSONL, url=url)
            assert response.status_code == 401, url
            assert response["WWW-Authenticate"].startswith("Bearer"), url
        # Nothing was written: no item, no upload job or file waiting for a worker, no audit entry.
        assert not Item.objects.exists() and not IngestJob.objects.exists()
        assert not (uploads.exists() and any(uploads.iterdir()))
        assert not AuditEvent.objects.filter(action__startswith="ingest.").exists()
        assert IngestToken.objects.get(study=study).last_used_at is None
        # The control: the study's own token writes each of them through the same requests.
        assert post(client, body, token, JSONL).status_code == 201
        assert post(client, body, token, JSONL, url=UPLOADS).status_code == 202
        assert Item.objects.count() == IngestJob.objects.count() == len(list(uploads.iterdir())) == 1
        assert AuditEvent.objects.filter(action="ingest.api").count() == 1
        assert IngestToken.objects.get(study=study).last_used_at is not None

    def test_it_refuses_a_revoked_token(self, client, study, token):
        IngestToken.objects.get(study=study).revoke()
        response = post(client, jsonl_body(record()), token, JSONL)
        assert response.status_code == 401
        assert "revoked" in response.json()["error"]

    def test_it_refuses_another_studys_token(self, client, study, other_study):
        _, other_token = IngestToken.issue(study=other_study, name="theirs")
        response = post(client, jsonl_body(record()), other_token, JSONL)
        assert response.status_code == 403
        assert not Item.objects.exists()

    def test_it_stores_only_the_hash_of_a_token(self, study, token):
        stored = IngestToken.objects.get(study=study)
        assert token not in (stored.token_hash, stored.display_prefix)
        assert len(stored.token_hash) == 64

    def test_it_refuses_a_closed_study(self, client, study, token):
        Study.objects.filter(pk=study.pk).update(status=Study.Status.CLOSED)
        assert post(client, jsonl_body(record()), token, JSONL).status_code == 409

    def test_it_refuses_an_unknown_content_type(self, client, study, token):
        response = post(client, "external_id,messages\n", token, "text/csv")
        assert response.status_code == 415
        assert "application/x-ndjson" in response.json()["error"]

    def test_it_refuses_an_unknown_format_parameter(self, client, study, token):
        response = post(client, jsonl_body(record()), token, JSONL, url=URL + "?format=xml")
        assert response.status_code == 400
        assert "Unknown format 'xml'" in response.json()["error"]

    def test_it_refuses_malformed_json(self, client, study, token):
        response = post(client, b'{"external_id": "a", ', token)
        assert response.status_code == 400
        assert response.json()["error"].startswith("body: not valid JSON")

    def test_it_refuses_an_empty_body(self, client, study, token):
        assert post(client, b"", token).status_code == 400

    @override_settings(INGEST_MAX_BODY_BYTES=1000)
    def test_it_refuses_an_oversize_body_with_413(self, client, study, token):
        response = post(client, jsonl_body(record(), record(external_id="b")), token, JSONL)
        assert response.status_code == 413
        assert "1,000-byte limit" in response.json()["error"]
        assert "/uploads" in response.json()["error"]
        assert not Item.objects.exists()

    def test_it_refuses_get(self, client, study, token):
        response = client.get(URL, HTTP_AUTHORIZATION=f"Bearer {token}")
        assert response.status_code == 405

    def test_it_answers_garbage_with_4xx_never_500(self, client, study, token):
        valid = orjson.dumps(record())
        # The control: the body the garbage is made from is taken, as JSON and (another id) as JSON Lines.
        assert post(client, valid, token).status_code == 201
        assert post(client, orjson.dumps(record(external_id="run-2")), token, JSONL).status_code == 201
        rng = random.Random(7)
        for i in range(60):
            blob = garbled(valid, rng)
            content_type = JSONL if i % 2 else "application/json"
            response = post(client, blob, token, content_type)
            assert response.status_code == 400, (blob, response.status_code, response.content)
            assert "not valid JSON" in response.content.decode(), (blob, response.content)
        assert Item.objects.count() == 2
