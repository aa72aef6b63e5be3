"""The per-record size limit holds for every input shape, and names the record and its size."""

from __future__ import annotations

import json
import tracemalloc

import orjson
import pytest
from django.test import override_settings

from reviewapp.ingest.files import parse_file
from reviewapp.ingest.models import Item
from reviewapp.ingest.parsing import ItemRecord, RecordError, parse_document, parse_jsonl
from tests.builders import TRACE, chat, document, record, root, text
from tests.conftest import FIXTURES

LIMIT = 20_000
BIG = "x" * 50_000  # a record around 50 KB: over LIMIT


def big_record(external_id: str) -> dict:
    messages = record()["messages"]
    messages[1]["content"] = BIG
    return record(external_id=external_id, messages=messages)


def only_error(results) -> RecordError:
    errors = [r for r in results if isinstance(r, RecordError)]
    assert len(errors) == 1, errors
    return errors[0]


class TestRecordLimits:
    def test_a_list_an_items_object_and_a_single_record_are_each_checked_per_record(self):
        shapes = {
            "item 1": [record(external_id="a"), big_record("b"), record(external_id="c")],
            "items[1]": {"items": [record(external_id="a"), big_record("b")]},
            "item 0": big_record("b"),
        }
        for location, doc in shapes.items():
            results = list(parse_document(orjson.dumps(doc), max_record_bytes=LIMIT))
            error = only_error(results)
            assert (error.location, error.field, error.external_id) == (location, "(record)", "b")
            size = len(orjson.dumps(big_record("b")))
            assert f"{size:,} bytes" in error.reason and "20,000-byte limit" in error.reason
            assert "INGEST_MAX_RECORD_BYTES" in error.reason
            # Positive control: the small records beside it pass.
            assert sum(isinstance(r, ItemRecord) for r in results) == len(results) - 1

    def test_an_inspect_sample_over_the_limit_is_named_by_sample_and_epoch(self):
        doc = json.loads((FIXTURES / "formats" / "inspect.json").read_bytes())
        sample = doc["samples"][0]
        sample["messages"][0]["content"] = BIG
        error = only_error(parse_document(orjson.dumps(doc), max_record_bytes=LIMIT))
        assert error.location == f"sample {sample['id']} epoch {sample['epoch']}"
        assert "bytes exceeds the 20,000-byte limit" in error.reason

    def test_an_otlp_trace_over_the_limit_is_named_by_trace(self):
        doc = document(root(), chat("c1", 1, inputs=[text("user", BIG)], outputs=[text("assistant", "ok")]))
        error = only_error(parse_document(orjson.dumps(doc), max_record_bytes=LIMIT))
        assert error.location == f"trace {TRACE}"
        # Positive control: the same trace with a short message is a record.
        small = document(root(), chat("c1", 1, inputs=[text("user", "hi")], outputs=[text("assistant", "ok")]))
        assert isinstance(next(iter(parse_document(orjson.dumps(small), max_record_bytes=LIMIT))), ItemRecord)

    def test_a_json_file_is_checked_per_record_too(self, tmp_path):
        path = tmp_path / "batch.json"
        path.write_bytes(orjson.dumps([record(external_id="a"), big_record("b")]))
        error = only_error(parse_file(path, max_record_bytes=LIMIT))
        assert error.location == "item 1"

    def test_an_overlong_json_line_is_never_held_whole(self, tmp_path):
        path = tmp_path / "runs.jsonl"
        line = orjson.dumps(record(external_id="huge", title="t", ai_rationale="r" * 30_000_000))
        path.write_bytes(orjson.dumps(record(external_id="a")) + b"\n" + line + b"\n" + orjson.dumps(record()) + b"\n")
        del line
        tracemalloc.start()
        try:
            results = list(parse_file(path, max_record_bytes=LIMIT))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert [type(r).__name__ for r in results] == ["ItemRecord", "RecordError", "ItemRecord"]
        assert results[1].location == "line 2" and "30,00" in results[1].reason
        assert peak < 5_000_000, f"peak {peak:,} bytes while reading a 30 MB line"

    def test_jsonl_messages_name_the_setting(self):
        error = only_error(parse_jsonl([orjson.dumps(big_record("b"))], max_record_bytes=LIMIT))
        assert error.location == "line 1" and "INGEST_MAX_RECORD_BYTES" in error.reason

    @pytest.mark.django_db
    @override_settings(INGEST_MAX_RECORD_BYTES=LIMIT)
    def test_the_api_refuses_a_big_record_inside_a_json_document_by_index(self, client, study, token):
        body = orjson.dumps({"items": [record(external_id="a"), big_record("b")]})
        response = client.post(
            "/api/studies/refunds/items",
            data=body,
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {token}",
        )
        assert response.status_code == 400, response.content
        (error,) = response.json()["errors"]
        assert error["location"] == "items[1]" and "20,000-byte limit" in error["reason"]
        assert not Item.objects.exists()
