"""OpenAI Responses API transcripts, built by the openai SDK's own types, in through the API and the command."""

from __future__ import annotations

from io import StringIO

import orjson
import pytest
from django.core.management import CommandError, call_command

from reviewapp.ingest.models import Item
from tests.formats.responses_artefacts import dumped, records, response

URL = "/api/studies/refunds/items"


def post(client, body: bytes, token, content_type="application/x-ndjson"):
    return client.post(URL, data=body, content_type=content_type, HTTP_AUTHORIZATION=f"Bearer {token}")


def jsonl(*rows) -> bytes:
    return b"".join(orjson.dumps(row) + b"\n" for row in rows)


def tool_pairs(item: Item) -> list[tuple[str, str, str]]:
    """(call id, call name, result name) for each result, the call found by id in the stored transcript."""
    messages = item.payload["messages"]
    calls = {c["id"]: c["name"] for m in messages for c in m.get("tool_calls", ())}
    return [(m["tool_call_id"], calls[m["tool_call_id"]], m["name"]) for m in messages if m["role"] == "tool"]


@pytest.mark.django_db
class TestOpenAIResponsesIngest:
    def test_it_stores_an_sdk_built_run_posted_to_the_api_faithfully(self, client, study, token):
        response_ = post(client, jsonl(*records()), token)
        assert response_.status_code == 201, response_.content
        assert response_.json()["created"] == 2
        item = Item.objects.get(study=study, external_id="responses-002")
        assert item.source_format == "openai_responses"
        pairs = tool_pairs(item)
        assert ("call_sql", "run_sql", "run_sql") in pairs and ("call_order", "lookup_order", "lookup_order") in pairs
        assert ("ws_1", "web_search (hosted)", "web_search (hosted)") in pairs
        first = Item.objects.get(study=study, external_id="responses-001")
        assert (
            "[reasoning]\n$240 is above the $200 limit: escalate.\n[/reasoning]"
            in first.payload["messages"][-1]["content"]
        )

    def test_it_detects_a_record_with_a_dumped_response_and_no_format(self, client, study, token):
        resp = dumped(
            response(
                "resp_1",
                [
                    {
                        "type": "message",
                        "id": "m",
                        "role": "assistant",
                        "status": "completed",
                        "content": [{"type": "output_text", "text": "Hello.", "annotations": []}],
                    }
                ],
            )
        )
        response_ = post(client, orjson.dumps({"external_id": "bare", "response": resp}), token, "application/json")
        assert response_.status_code == 201, response_.content
        item = Item.objects.get(study=study, external_id="bare")
        assert item.source_format == "openai_responses"
        assert item.payload["messages"][-1] == {"role": "assistant", "content": "Hello."}

    def test_it_refuses_a_result_without_its_call_naming_the_record_and_field(self, client, study, token):
        broken = records()[0]
        broken["input"] = [row for row in broken["input"] if row.get("type") != "function_call"]
        response_ = post(client, jsonl(records()[1], broken), token)
        assert response_.status_code == 400
        (error,) = response_.json()["errors"]
        assert error["location"] == "line 2" and error["external_id"] == "responses-001"
        assert error["field"] == "input[2].call_id"
        assert error["reason"] == "'call_lookup_1' matches no tool call before it"
        assert not Item.objects.filter(study=study).exists()

    def test_the_command_ingests_the_same_runs_from_a_file(self, study, tmp_path):
        path = tmp_path / "responses.jsonl"
        path.write_bytes(jsonl(*records()))
        out = StringIO()
        call_command("ingest", "--study", "refunds", "--no-progress", str(path), stdout=out, stderr=StringIO())
        assert "2 records: 2 created, 0 already present." in out.getvalue()
        assert set(Item.objects.filter(study=study).values_list("source_format", flat=True)) == {"openai_responses"}

    def test_the_command_names_the_line_and_field_of_a_bad_record(self, study, tmp_path):
        bad = records()[1]
        bad["input"][0]["role"] = "robot"
        path = tmp_path / "responses.jsonl"
        path.write_bytes(jsonl(records()[0], bad))
        err = StringIO()
        with pytest.raises(CommandError, match="Nothing from them was written"):
            call_command("ingest", "--study", "refunds", "--no-progress", str(path), stdout=StringIO(), stderr=err)
        assert "line 2" in err.getvalue() and "input[0].role" in err.getvalue(), err.getvalue()
        assert not Item.objects.filter(study=study).exists()
