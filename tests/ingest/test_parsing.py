"""The pure parsing layer: bytes in, ItemRecord or a precise RecordError out."""

from __future__ import annotations

import orjson
import pytest

from reviewapp.ingest.parsing import BodyError, ItemRecord, RecordError, parse_document, parse_jsonl
from reviewapp.studies.schema import DEFAULT_LABEL_SCHEMA, decision_field, value_error
from tests.builders import record

DECISION = decision_field(DEFAULT_LABEL_SCHEMA)


def check(value):
    return value_error(DECISION, value)


def jsonl(*records) -> list[bytes]:
    return [r if isinstance(r, bytes) else orjson.dumps(r) for r in records]


def only(results) -> ItemRecord | RecordError:
    results = list(results)
    assert len(results) == 1, results
    return results[0]


class TestNativeRecords:
    def test_it_keeps_messages_tool_calls_and_review_fields(self):
        item = only(parse_jsonl(jsonl(record()), decision_check=check))
        assert isinstance(item, ItemRecord)
        assert item.external_id == "run-1"
        assert item.source_format == "native"
        assert item.payload["title"] == "Refund over limit"
        assert item.payload["messages"][2]["tool_calls"][0]["arguments"] == {"order_id": "A-1"}
        assert item.payload["messages"][3]["name"] == "lookup_order"
        assert (item.ai_recommendation, item.gold_label, item.ai_confidence) == ("approve", "reject", 0.9)
        assert item.word_count > 20

    def test_it_keeps_hidden_fields_out_of_the_payload(self):
        item = only(parse_jsonl(jsonl(record(metadata={"run": 7})), decision_check=check))
        text = orjson.dumps(item.payload).decode()
        assert "eligible" not in text and "approve" not in text and "reject" not in text
        assert item.source_metadata == {"run": 7}

    def test_it_hashes_identical_records_identically_and_different_ones_differently(self):
        same = list(parse_jsonl(jsonl(record(), record())))
        changed = only(parse_jsonl(jsonl(record(ai_rationale="Other reason."))))
        assert same[0].content_hash == same[1].content_hash
        assert changed.content_hash != same[0].content_hash

    def test_it_accepts_a_list_an_items_object_and_a_single_object(self):
        for body in ([record()], {"items": [record()]}, record()):
            item = only(parse_document(orjson.dumps(body)))
            assert isinstance(item, ItemRecord)

    def test_it_skips_blank_lines_and_numbers_the_rest(self):
        results = list(parse_jsonl([orjson.dumps(record()), b"\n", b"   \n", b"{oops\n"]))
        assert len(results) == 2
        assert results[1].location == "line 4"


class TestBadRecords:
    def error_for(self, raw: bytes | dict) -> RecordError:
        result = only(parse_jsonl(jsonl(raw), decision_check=check))
        assert isinstance(result, RecordError), result
        return result

    def test_it_names_a_missing_external_id(self):
        error = self.error_for(record(external_id=None))
        assert (error.location, error.field) == ("line 1", "external_id")
        assert "required" in error.reason

    def test_it_names_the_message_with_a_bad_role(self):
        messages = record()["messages"]
        messages[1]["role"] = "wizard"
        error = self.error_for(record(messages=messages))
        assert error.field == "messages[1].role"
        assert error.external_id == "run-1"

    def test_it_rejects_a_decision_outside_the_schema(self):
        error = self.error_for(record(ai_recommendation="maybe"))
        assert error.field == "ai_recommendation"
        assert "'maybe' is not one of approve, reject" in error.reason

    def test_it_rejects_confidence_outside_0_1(self):
        assert self.error_for(record(ai_confidence=1.5)).field == "ai_confidence"
        assert self.error_for(record(ai_confidence="high")).field == "ai_confidence"

    def test_it_rejects_a_probe_that_agrees_with_gold(self):
        error = self.error_for(record(is_probe=True, ai_recommendation="reject", gold_label="reject"))
        assert error.field == "is_probe"

    def test_it_rejects_a_probe_without_gold(self):
        assert self.error_for(record(is_probe=True, gold_label=None)).field == "is_probe"

    def test_it_names_the_field_holding_an_escaped_nul(self):
        messages = record()["messages"]
        messages[4]["content"] = "refund\u0000now"
        error = self.error_for(record(messages=messages))
        assert error.field == "messages[4].content"
        assert "NUL" in error.reason

    def test_it_rejects_a_raw_nul_byte(self):
        line = orjson.dumps(record()).replace(b"I will refund", b"I will\x00refund")
        error = self.error_for(line)
        assert error.field == "(record)"
        assert "not valid JSON" in error.reason

    def test_it_rejects_invalid_utf8(self):
        line = orjson.dumps(record()).replace(b"I will refund", b"I will \xff\xfe refund")
        error = self.error_for(line)
        assert "not valid JSON" in error.reason and "UTF-8" in error.reason

    def test_it_rejects_json_nested_beyond_the_parser_limit(self):
        error = self.error_for(b"[" * 5000 + b"]" * 5000)
        assert "nested too deeply" in error.reason

    def test_it_rejects_tool_arguments_nested_too_deep(self):
        deep: dict = {}
        node = deep
        for _ in range(40):
            node["a"] = {}
            node = node["a"]
        messages = record()["messages"]
        messages[2]["tool_calls"][0]["arguments"] = deep
        error = self.error_for(record(messages=messages))
        assert error.field == "messages[2].tool_calls[0].arguments"
        assert "nested deeper than 32" in error.reason

    def test_it_rejects_an_oversize_record_by_line(self):
        results = list(parse_jsonl(jsonl(record(), record(external_id="big")), max_record_bytes=500))
        assert all(isinstance(r, RecordError) for r in results)
        assert "exceeds the 500-byte limit" in results[1].reason
        assert results[1].location == "line 2"

    def test_it_rejects_a_non_object_record(self):
        assert "must be a JSON object" in self.error_for(b"[1, 2]").reason

    def test_it_rejects_an_unknown_format(self):
        error = self.error_for(record(format="csv"))
        assert error.field == "format"
        assert "native, openai, anthropic, openai_responses, otel, inspect" in error.reason

    # Found by the damage tests of tests/formats: a list or an object as the format was looked up
    # in a dict and raised TypeError (the API answered 500) instead of naming the field.
    def test_it_names_a_format_that_is_not_a_string(self):
        for bad in (["openai"], {"name": "openai"}, []):
            error = self.error_for(record(format=bad))
            assert (error.location, error.field) == ("line 1", "format"), bad


class TestBodies:
    def test_it_rejects_a_body_that_is_not_json(self):
        with pytest.raises(BodyError, match="body: not valid JSON"):
            list(parse_document(b"<html>"))

    def test_it_rejects_a_scalar_body(self):
        with pytest.raises(BodyError, match="expected a JSON object or array"):
            list(parse_document(b"42"))

    def test_it_locates_errors_by_index_in_a_list(self):
        results = list(parse_document(orjson.dumps([record(), {"external_id": "x"}])))
        assert isinstance(results[0], ItemRecord)
        assert results[1].location == "item 1"
        assert results[1].field == "messages"
