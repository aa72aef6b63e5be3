"""Anthropic Messages API -> native."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reviewapp.ingest.formats import FieldError, anthropic
from tests.formats import check_damaged_records

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "formats" / "anthropic.jsonl"


def test_it_turns_the_system_prompt_into_a_system_message():
    out = anthropic.to_native(
        {
            "system": [{"type": "text", "text": "Rule one."}, {"type": "text", "text": "Rule two."}],
            "messages": [{"role": "user", "content": "Hi"}],
        }
    )
    assert out == [{"role": "system", "content": "Rule one.\nRule two."}, {"role": "user", "content": "Hi"}]
    assert anthropic.to_native({"system": "S", "messages": [{"role": "user", "content": "Q"}]})[0] == {
        "role": "system",
        "content": "S",
    }


def test_it_turns_tool_use_into_tool_calls_and_tool_results_into_named_tool_messages():
    out = anthropic.to_native(
        {
            "messages": [
                {"role": "user", "content": "Refund A-1042"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "text", "text": "Checking."},
                        {
                            "type": "tool_use",
                            "id": "toolu_1",
                            "name": "lookup_order",
                            "input": {"id": "A-1042"},
                        },
                        {
                            "type": "tool_use",
                            "id": "toolu_2",
                            "name": "lookup_customer",
                            "input": {"email": "a@b.test"},
                        },
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": "toolu_1", "content": '{"total": 240}'},
                        {
                            "type": "tool_result",
                            "tool_use_id": "toolu_2",
                            "content": [{"type": "text", "text": "not found"}],
                            "is_error": True,
                        },
                        {"type": "text", "text": "Also, is it insured?"},
                    ],
                },
            ]
        }
    )
    assert out[1] == {
        "role": "assistant",
        "content": "Checking.",
        "tool_calls": [
            {"id": "toolu_1", "name": "lookup_order", "arguments": {"id": "A-1042"}},
            {"id": "toolu_2", "name": "lookup_customer", "arguments": {"email": "a@b.test"}},
        ],
    }
    assert out[2] == {
        "role": "tool",
        "content": '{"total": 240}',
        "tool_call_id": "toolu_1",
        "name": "lookup_order",
    }
    assert out[3] == {
        "role": "tool",
        "content": "not found",
        "tool_call_id": "toolu_2",
        "name": "lookup_customer",
        "is_error": True,
    }
    # The user's own words come after the results they were sent with.
    assert out[4] == {"role": "user", "content": "Also, is it insured?"}
    assert len(out) == 5


def test_it_prepends_thinking_and_marks_redacted_thinking():
    out = anthropic.to_native(
        {
            "messages": [
                {"role": "user", "content": "Q"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "The policy says $200.", "signature": "sig"},
                        {"type": "redacted_thinking", "data": "EmwKAhgB"},
                        {"type": "text", "text": "Escalating."},
                    ],
                },
            ]
        }
    )
    content = out[1]["content"]
    assert content.startswith("[thinking]\nThe policy says $200.\n")
    assert "[redacted thinking]" in content and "EmwKAhgB" not in content
    assert content.endswith("Escalating.")


def test_it_replaces_images_and_documents_with_placeholders():
    out = anthropic.to_native(
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "image",
                            "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"},
                        },
                        {
                            "type": "document",
                            "source": {"type": "base64", "data": "JVBER"},
                            "title": "invoice.pdf",
                        },
                        {"type": "text", "text": "See attached."},
                    ],
                }
            ]
        }
    )
    assert out == [{"role": "user", "content": "[image]\n[document: invoice.pdf]\nSee attached."}]


def test_it_splits_server_tool_results_out_of_the_assistant_message_in_reading_order():
    response = {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "Let me search."},
            {
                "type": "server_tool_use",
                "id": "srvtoolu_1",
                "name": "web_search",
                "input": {"query": "return policy"},
            },
            {
                "type": "web_search_tool_result",
                "tool_use_id": "srvtoolu_1",
                "content": [
                    {"type": "web_search_result", "title": "Returns", "url": "https://shop.test/returns"},
                    {"type": "web_search_result", "title": "", "url": "https://shop.test/faq"},
                ],
            },
            {"type": "text", "text": "The policy allows 30 days."},
        ],
    }
    out = anthropic.to_native({"messages": [{"role": "user", "content": "Policy?"}], "response": response})
    assert out[1]["tool_calls"] == [{"id": "srvtoolu_1", "name": "web_search", "arguments": {"query": "return policy"}}]
    assert out[2] == {
        "role": "tool",
        "content": "Returns <https://shop.test/returns>\nhttps://shop.test/faq",
        "tool_call_id": "srvtoolu_1",
        "name": "web_search",
    }
    assert out[3] == {"role": "assistant", "content": "The policy allows 30 days."}


def test_it_marks_a_server_tool_error():
    response = {
        "content": [
            {"type": "server_tool_use", "id": "s1", "name": "web_search", "input": {}},
            {
                "type": "web_search_tool_result",
                "tool_use_id": "s1",
                "content": {"type": "web_search_tool_result_error", "error_code": "max_uses_exceeded"},
            },
        ]
    }
    out = anthropic.to_native({"messages": [{"role": "user", "content": "x"}], "response": response})
    assert out[-1]["is_error"] is True
    assert "max_uses_exceeded" in out[-1]["content"]


def test_it_appends_the_response_as_the_final_assistant_message():
    response = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "content": [{"type": "text", "text": "Sure."}],
    }
    out = anthropic.to_native({"messages": [{"role": "user", "content": "Can you?"}], "response": response})
    assert out[-1] == {"role": "assistant", "content": "Sure."}


@pytest.mark.parametrize(
    ("record", "field"),
    [
        ({}, "messages"),
        ({"messages": "hi"}, "messages"),
        ({"messages": []}, "messages"),
        ({"system": 5, "messages": [{"role": "user", "content": "x"}]}, "system"),
        ({"system": [{"type": "text"}], "messages": [{"role": "user", "content": "x"}]}, "system[0].text"),
        ({"system": [None], "messages": [{"role": "user", "content": "x"}]}, "system[0]"),
        ({"messages": [None]}, "messages[0]"),
        ({"messages": [{"role": "system", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "user"}]}, "messages[0].content"),
        ({"messages": [{"role": "user", "content": 12}]}, "messages[0].content"),
        ({"messages": [{"role": "user", "content": [None]}]}, "messages[0].content[0]"),
        ({"messages": [{"role": "user", "content": [{"text": "x"}]}]}, "messages[0].content[0].type"),
        (
            {"messages": [{"role": "user", "content": [{"type": "text", "text": ["x"]}]}]},
            "messages[0].content[0].text",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "tool_result"}]}]},
            "messages[0].content[0].tool_use_id",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "tool_result", "tool_use_id": "t", "is_error": "yes"}],
                    }
                ]
            },
            "messages[0].content[0].is_error",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": 5}]}]},
            "messages[0].content[0].content",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": "x"},
                    {
                        "role": "user",
                        "content": [{"type": "tool_result", "tool_use_id": "t", "content": [{"type": 1}]}],
                    },
                ]
            },
            "messages[1].content[0].content[0].type",
        ),
        (
            {"messages": [{"role": "assistant", "content": [{"type": "tool_use", "id": "t"}]}]},
            "messages[0].content[0].name",
        ),
        (
            {"messages": [{"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": ""}]}]},
            "messages[0].content[0].name",
        ),
        (
            {"messages": [{"role": "assistant", "content": [{"type": "tool_use", "id": 3, "name": "f"}]}]},
            "messages[0].content[0].id",
        ),
        (
            {"messages": [{"role": "assistant", "content": [{"type": "thinking"}]}]},
            "messages[0].content[0].thinking",
        ),
        ({"messages": [{"role": "user", "content": "x"}], "response": "text"}, "response"),
        (
            {"messages": [{"role": "user", "content": "x"}], "response": {"role": "user", "content": "x"}},
            "response.role",
        ),
        (
            {"messages": [{"role": "user", "content": "x"}], "response": {"content": [{"type": None}]}},
            "response.content[0].type",
        ),
    ],
)
def test_it_names_the_exact_field_of_malformed_input(record, field):
    with pytest.raises(FieldError) as exc:
        anthropic.to_native(record)
    assert exc.value.field == field


def test_it_rejects_deeply_nested_tool_input():
    deep: dict = {}
    for _ in range(3000):
        deep = {"a": deep}
    record = {
        "messages": [{"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": deep}]}]
    }
    with pytest.raises(FieldError) as exc:
        anthropic.to_native(record)
    assert exc.value.field == "messages[0].content[0].input"


def test_it_converts_every_fixture_record():
    lines = [line for line in FIXTURE.read_text().splitlines() if line.strip()]
    assert len(lines) == 3
    records = [json.loads(line) for line in lines]
    for record in records:
        assert record["format"] == "anthropic" and record["system"]
        messages = anthropic.to_native(record)
        assert messages[0]["role"] == "system"
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
