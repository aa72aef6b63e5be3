"""OpenAI Responses API -> native, on items the ``openai`` SDK's own types produced."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from openai.types.responses import Response

from reviewapp.ingest.formats import FieldError, openai_responses
from reviewapp.ingest.parsing import ItemRecord, RecordError, build_item
from tests.formats import check_damaged_records
from tests.formats.responses_artefacts import INSTRUCTIONS, dumped, records, refund_run, response

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "formats" / "openai_responses.jsonl"


def convert(*items, **record):
    return openai_responses.to_native({"input": list(items), **record})


def call(call_id, name="lookup_order", arguments='{"order_id": "A-1"}'):
    return {"type": "function_call", "call_id": call_id, "name": name, "arguments": arguments}


def output(call_id, text="ok"):
    return {"type": "function_call_output", "call_id": call_id, "output": text}


def test_it_converts_an_sdk_run_into_turns_with_reasoning_labelled_apart_from_speech():
    messages = openai_responses.to_native(refund_run())
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool", "assistant"]
    assert messages[0]["content"] == INSTRUCTIONS
    assert messages[2]["content"] == "[reasoning]\nThe customer wants a refund; look the order up first.\n[/reasoning]"
    assert messages[2]["tool_calls"] == [
        {"id": "call_lookup_1", "name": "lookup_order", "arguments": {"order_id": "A-1042"}}
    ]
    assert messages[3] == {
        "role": "tool",
        "content": '{"total": 240.0, "status": "delivered"}',
        "tool_call_id": "call_lookup_1",
        "name": "lookup_order",
    }
    reasoning, speech = messages[4]["content"].split("[/reasoning]\n")
    assert reasoning == "[reasoning]\n$240 is above the $200 limit: escalate.\n"
    assert speech == "Order A-1042 was $240, above my limit, so I've escalated it."


def test_it_marks_hosted_tools_as_hosted_with_their_results_and_client_tools_not():
    messages = openai_responses.to_native(records()[1])
    calls = {c["name"]: c for m in messages for c in m.get("tool_calls", ())}
    assert set(calls) == {
        "web_search (hosted)",
        "file_search (hosted)",
        "code_interpreter (hosted)",
        "lookup_order",
        "run_sql",
    }
    assert calls["web_search (hosted)"]["arguments"] == {"type": "search", "query": "lamp model L-7 recall"}
    assert calls["code_interpreter (hosted)"]["arguments"] == "days = 9\nprint(days > 7)"
    results = {m["tool_call_id"]: m for m in messages if m["role"] == "tool"}
    assert results["ci_1"]["content"] == "True"
    assert results["ci_1"]["name"] == "code_interpreter (hosted)"


def test_it_pairs_parallel_results_with_their_calls_by_call_id_whatever_their_order():
    messages = convert(call("c1", "first"), call("c2", "second"), output("c2", "two"), output("c1", "one"))
    assert [(m["tool_call_id"], m["name"], m["content"]) for m in messages[1:]] == [
        ("c2", "second", "two"),
        ("c1", "first", "one"),
    ]


def test_it_keeps_arguments_as_given_multi_line_strings_and_invalid_json_included():
    sql = '{"query": "SELECT *\\nFROM t"}'
    (message, _) = convert(call("c1", "run_sql", sql), output("c1"))
    assert message["tool_calls"][0]["arguments"] == {"query": "SELECT *\nFROM t"}
    (message, _) = convert(call("c1", "f", '{"a": 1,'), output("c1"))
    assert message["tool_calls"][0]["arguments"] == '{"a": 1,'


def test_it_reads_easy_messages_a_string_input_and_developer_as_system():
    assert convert({"role": "developer", "content": "Be brief."}, {"role": "user", "content": "Hi"}) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
    ]
    assert openai_responses.to_native({"input": "Hello"}) == [{"role": "user", "content": "Hello"}]


def test_it_shows_refusals_images_and_hidden_reasoning_as_visible_markers():
    messages = convert(
        {
            "role": "user",
            "content": [{"type": "input_text", "text": "Look"}, {"type": "input_image", "image_url": "x"}],
        },
        {"type": "reasoning", "id": "rs", "summary": [], "encrypted_content": "gAAAA"},
        {"type": "message", "role": "assistant", "content": [{"type": "refusal", "refusal": "I can't help."}]},
        {"type": "item_reference", "id": "msg_old"},
    )
    assert messages[0]["content"] == "Look\n[image]"
    assert messages[1]["content"] == "[reasoning: not shown (encrypted)]\n[refusal] I can't help.\n[item_reference]"


def test_it_marks_a_failed_hosted_call_and_a_failed_response_as_errors():
    failed = {"type": "web_search_call", "id": "ws", "status": "failed", "action": {"type": "search", "query": "q"}}
    messages = openai_responses.to_native(
        {"input": "Hi", "response": {"status": "failed", "output": [failed], "error": {"message": "boom"}}}
    )
    assert messages[2] == {
        "role": "tool",
        "content": "[failed]",
        "tool_call_id": "ws",
        "name": "web_search (hosted)",
        "is_error": True,
    }
    assert messages[-1]["content"].startswith("[error] the response failed: boom")


def test_it_refuses_a_result_that_names_no_earlier_call():
    with pytest.raises(FieldError) as caught:
        convert(call("c1"), output("c9"))
    assert (caught.value.field, caught.value.reason) == ("input[1].call_id", "'c9' matches no tool call before it")
    assert convert(call("c9"), output("c9"))[1]["tool_call_id"] == "c9"  # positive control


@pytest.mark.parametrize(
    ("record", "field", "reason"),
    [
        ({"input": 3}, "input", "must be a string or a list of input items, got number"),
        ({"input": [{"type": "message", "role": "bot", "content": "x"}]}, "input[0].role", "must be one of"),
        ({"input": [{"content": "x"}]}, "input[0].type", "is required (a string)"),
        ({"input": [call("")]}, "input[0].call_id", "must not be empty"),
        ({"input": [{"type": "function_call", "call_id": "c"}]}, "input[0].name", "is required"),
        ({"input": [{"type": "reasoning", "summary": [{"type": "summary_text"}]}]}, "input[0].summary[0].text", "is"),
        ({"input": "x", "response": {"output": None}}, "response.output", "must be a list of output items, got null"),
        ({"input": "x", "instructions": 5}, "instructions", "must be a string or a list of input items"),
        ({}, "input", "is required"),
    ],
)
def test_it_names_the_malformed_field(record, field, reason):
    with pytest.raises(FieldError) as caught:
        openai_responses.to_native(record)
    assert caught.value.field == field
    assert caught.value.reason.startswith(reason)


def test_its_fidelity_check_names_what_conversion_lost(monkeypatch):
    record = refund_run()
    assert openai_responses.to_native(record)  # positive control: nothing lost
    real = openai_responses.native.normalize_messages
    monkeypatch.setattr(
        openai_responses.native, "normalize_messages", lambda m: [x for x in real(m) if x["role"] != "tool"]
    )
    with pytest.raises(FieldError) as caught:
        openai_responses.to_native(record)
    assert (caught.value.field, caught.value.reason) == (
        "(record)",
        "1 tool results in the source but 0 converted; some were lost",
    )


def test_the_fixture_is_what_the_sdk_wrote_and_every_record_converts():
    lines = FIXTURE.read_bytes().splitlines()
    assert [orjson.loads(line) for line in lines] == records()
    for number, line in enumerate(lines, start=1):
        item = build_item(orjson.loads(line), f"line {number}", None, None)
        assert isinstance(item, ItemRecord), item
        assert item.source_format == "openai_responses"


def test_it_detects_the_format_of_a_record_that_names_none():
    record = {k: v for k, v in refund_run().items() if k != "format"}
    item = build_item(record, "line 1", None, None)
    assert isinstance(item, ItemRecord) and item.source_format == "openai_responses"
    native = build_item({"external_id": "n", "messages": [{"role": "user", "content": "x"}]}, "line 1", None, None)
    assert native.source_format == "native"  # positive control


def test_a_responses_object_sent_as_chat_completions_says_which_format_to_use():
    resp = dumped(response("resp_x", [{"type": "reasoning", "id": "rs", "summary": []}]))
    assert isinstance(Response.model_validate(resp), Response)
    error = build_item({"external_id": "x", "format": "openai", "response": resp}, "line 1", None, None)
    assert isinstance(error, RecordError)
    assert error.field == "response"
    assert '"format": "openai_responses"' in error.reason


def test_damaged_records_give_a_field_error_never_an_exception():
    kinds = check_damaged_records(records(), count=300)
    assert kinds["RecordError"] > 0 and kinds["ItemRecord"] > 0
