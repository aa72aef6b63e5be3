"""OpenAI Chat Completions -> native."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reviewapp.ingest.formats import FieldError, openai
from tests.formats import check_damaged_records

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "formats" / "openai.jsonl"


def convert(*messages, **record):
    return openai.to_native({"messages": list(messages), **record})


def test_it_maps_roles_and_keeps_plain_text():
    out = convert(
        {"role": "developer", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
    )
    assert out == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
    ]


def test_it_joins_text_parts_and_replaces_media_with_placeholders():
    parts = [
        {"type": "text", "text": "What is in this picture?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "input_audio", "input_audio": {"data": "UklGR", "format": "wav"}},
        {"type": "file", "file": {"filename": "invoice.pdf", "file_data": "JVBERi0"}},
        {"type": "text", "text": "<b>not html</b>"},
    ]
    (message,) = convert({"role": "user", "content": parts})
    assert message["content"] == "What is in this picture?\n[image]\n[audio]\n[file: invoice.pdf]\n<b>not html</b>"
    assert "base64" not in message["content"]


def test_it_parses_tool_call_arguments_and_names_the_tool_result():
    out = convert(
        {"role": "user", "content": "Refund A-1042"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "lookup_order", "arguments": '{"id": "A-1042"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"total": 240}'},
        {"role": "assistant", "content": "It was $240."},
    )
    assert out[1] == {
        "role": "assistant",
        "content": "",
        "tool_calls": [{"id": "call_1", "name": "lookup_order", "arguments": {"id": "A-1042"}}],
    }
    assert out[2] == {
        "role": "tool",
        "content": '{"total": 240}',
        "tool_call_id": "call_1",
        "name": "lookup_order",
    }


def test_it_keeps_arguments_that_are_not_valid_json_as_the_raw_string():
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": '{"a": 1,'}}
    (message,) = convert({"role": "assistant", "content": "", "tool_calls": [call]})
    assert message["tool_calls"][0]["arguments"] == '{"a": 1,'


def test_it_reads_legacy_function_calls_and_custom_tools():
    out = convert(
        {
            "role": "assistant",
            "content": None,
            "function_call": {"name": "get_time", "arguments": '{"tz": "UTC"}'},
        },
        {"role": "function", "name": "get_time", "content": "12:00"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"id": "c9", "type": "custom", "custom": {"name": "shell", "input": "ls -la"}}],
        },
    )
    assert out[0]["tool_calls"] == [{"id": "", "name": "get_time", "arguments": {"tz": "UTC"}}]
    assert out[1] == {"role": "tool", "content": "12:00", "name": "get_time"}
    assert out[2]["tool_calls"] == [{"id": "c9", "name": "shell", "arguments": "ls -la"}]


def test_it_shows_refusals():
    out = convert(
        {"role": "assistant", "content": None, "refusal": "I can't help with that."},
        {"role": "assistant", "content": [{"type": "refusal", "refusal": "No."}]},
    )
    assert out[0]["content"] == "[refusal] I can't help with that."
    assert out[1]["content"] == "[refusal] No."


def test_it_appends_the_response_choice_as_the_last_assistant_message():
    response = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {
                    "role": "assistant",
                    "content": "Checking.",
                    "tool_calls": [{"id": "c2", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}],
                },
            }
        ],
    }
    out = convert({"role": "user", "content": "Go"}, response=response)
    assert out[-1] == {
        "role": "assistant",
        "content": "Checking.",
        "tool_calls": [{"id": "c2", "name": "lookup", "arguments": {}}],
    }


def test_it_accepts_a_response_without_request_messages():
    out = openai.to_native({"response": {"choices": [{"message": {"content": "Hi"}}]}})
    assert out == [{"role": "assistant", "content": "Hi"}]


@pytest.mark.parametrize(
    ("record", "field"),
    [
        ({}, "messages"),
        ({"messages": None}, "messages"),
        ({"messages": {"role": "user"}}, "messages"),
        ({"messages": []}, "messages"),
        ({"messages": [None]}, "messages[0]"),
        ({"messages": [42]}, "messages[0]"),
        ({"messages": [{"content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "bot", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": 3}]}, "messages[0].content"),
        ({"messages": [{"role": "user", "content": {"text": "x"}}]}, "messages[0].content"),
        (
            {"messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text"}]}]},
            "messages[0].content[1].text",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "text", "text": None}]}]},
            "messages[0].content[0].text",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]},
            "messages[0].content[0].text",
        ),
        ({"messages": [{"role": "user", "content": [None]}]}, "messages[0].content[0]"),
        ({"messages": [{"role": "user", "content": [{"text": "x"}]}]}, "messages[0].content[0].type"),
        ({"messages": [{"role": "assistant", "tool_calls": "x"}]}, "messages[0].tool_calls"),
        ({"messages": [{"role": "assistant", "tool_calls": [None]}]}, "messages[0].tool_calls[0]"),
        (
            {"messages": [{"role": "assistant", "tool_calls": [{"id": "1"}]}]},
            "messages[0].tool_calls[0].function",
        ),
        (
            {"messages": [{"role": "assistant", "tool_calls": [{"id": "1", "function": {"arguments": "{}"}}]}]},
            "messages[0].tool_calls[0].function.name",
        ),
        (
            {"messages": [{"role": "assistant", "tool_calls": [{"id": 1, "function": {"name": "f"}}]}]},
            "messages[0].tool_calls[0].id",
        ),
        ({"messages": [{"role": "assistant", "function_call": "f()"}]}, "messages[0].function_call"),
        ({"messages": [{"role": "assistant", "refusal": 1}]}, "messages[0].refusal"),
        ({"messages": [{"role": "tool", "tool_call_id": 5, "content": "x"}]}, "messages[0].tool_call_id"),
        ({"messages": [{"role": "user", "content": "x"}], "response": []}, "response"),
        ({"messages": [{"role": "user", "content": "x"}], "response": {"choices": []}}, "response.choices"),
        (
            {"messages": [{"role": "user", "content": "x"}], "response": {"choices": [1]}},
            "response.choices[0]",
        ),
        (
            {"messages": [], "response": {"choices": [{"message": {"content": 1}}]}},
            "response.choices[0].message.content",
        ),
    ],
)
def test_it_names_the_exact_field_of_malformed_input(record, field):
    with pytest.raises(FieldError) as exc:
        openai.to_native(record)
    assert exc.value.field == field
    assert exc.value.reason


def test_it_rejects_a_non_object_record():
    with pytest.raises(FieldError):
        openai.to_native(None)  # type: ignore[arg-type]


def test_it_rejects_deeply_nested_arguments_without_recursing():
    arguments = "[" * 5000 + "]" * 5000  # beyond any JSON parser's recursion: kept as raw text
    (message,) = convert(
        {"role": "assistant", "tool_calls": [{"id": "x", "function": {"name": "f", "arguments": arguments}}]}
    )
    assert message["tool_calls"][0]["arguments"] == arguments
    nested = "[" * 100 + "]" * 100  # parses, but deeper than the native limit
    with pytest.raises(FieldError) as exc:
        convert({"role": "assistant", "tool_calls": [{"id": "x", "function": {"name": "f", "arguments": nested}}]})
    assert exc.value.field == "messages[0].tool_calls[0].function.arguments"


def test_it_converts_every_fixture_record():
    lines = [line for line in FIXTURE.read_text().splitlines() if line.strip()]
    assert len(lines) == 3
    records = [json.loads(line) for line in lines]
    for record in records:
        assert record["format"] == "openai"
        messages = openai.to_native(record)
        assert messages[-1]["role"] == "assistant"
        assert any(m.get("tool_calls") for m in messages)
        assert all(m.get("name") for m in messages if m["role"] == "tool")
        assert record["ai_recommendation"] in ("approve", "reject")
        assert 0 <= record["ai_confidence"] <= 1 and record["ai_rationale"]
    assert sum("gold_label" in r for r in records) == 1


def test_it_survives_arbitrary_damage_to_real_records():
    # Each damaged record is read as a valid item or as an error naming the line, a field of the
    # record and why (what the uploader is told); never as an exception.
    records = [json.loads(line) for line in FIXTURE.read_text().splitlines() if line.strip()]
    kinds = check_damaged_records(records, count=300)
    # The control: the damage makes both kinds, so both checks ran.
    assert kinds["ItemRecord"] > 50 and kinds["RecordError"] > 50, kinds
