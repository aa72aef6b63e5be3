"""OpenTelemetry GenAI spans (OTLP JSON) -> one native record per trace."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from reviewapp.ingest.formats import FieldError, otel
from tests.builders import TRACE, attributes, call, chat, document, response, root, span, text, tool_span
from tests.formats import mutated_copies

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "formats" / "otel.json"


def records(doc: dict) -> list[tuple[str, Any]]:
    return list(otel.iter_records(doc))


def only(doc: dict) -> dict:
    ((location, record),) = records(doc)
    assert not isinstance(record, FieldError), f"{location}: {record}"
    return record


def shape(messages: list[dict]) -> list[tuple]:
    return [(m["role"], m["content"], m.get("tool_call_id"), m.get("name")) for m in messages]


# --- transcripts --------------------------------------------------------------------------


def test_it_assembles_the_spec_tool_call_example_into_one_transcript():
    # The two-call weather example of the GenAI conventions, with the tool's result only
    # visible in the second call's input (the tool span has no content).
    weather = call("call_VSPy", "get_weather", {"location": "Paris"})
    doc = document(
        root(),
        chat("c1", 10, [text("user", "Weather in Paris?")], [weather]),
        tool_span("t1", 20, "call_VSPy", "get_weather"),
        chat(
            "c2",
            30,
            [text("user", "Weather in Paris?"), weather, response("call_VSPy", "rainy, 57°F")],
            [text("assistant", "The weather in Paris is currently rainy with a temperature of 57°F.")],
        ),
    )
    record = only(doc)
    assert shape(record["messages"]) == [
        ("user", "Weather in Paris?", None, None),
        ("assistant", "", None, None),
        ("tool", "rainy, 57°F", "call_VSPy", "get_weather"),
        ("assistant", "The weather in Paris is currently rainy with a temperature of 57°F.", None, None),
    ]
    assert record["messages"][1]["tool_calls"] == [
        {"id": "call_VSPy", "name": "get_weather", "arguments": {"location": "Paris"}}
    ]


def test_it_takes_tool_results_from_tool_spans_once():
    lookup = call("call_1", "lookup_order", '{"order_id": "A-1"}')  # arguments as a JSON string
    doc = document(
        root(),
        chat("c1", 10, [text("user", "Refund A-1")], [lookup]),
        tool_span("t1", 20, "call_1", "lookup_order", result='{"total": 240}'),
        chat(
            "c2",
            30,
            [text("user", "Refund A-1"), lookup, response("call_1", {"total": 240})],
            [text("assistant", "Done.")],
        ),
    )
    messages = only(doc)["messages"]
    tools = [m for m in messages if m["role"] == "tool"]
    assert tools == [{"role": "tool", "content": '{"total": 240}', "tool_call_id": "call_1", "name": "lookup_order"}]
    assert messages[1]["tool_calls"][0]["arguments"] == {"order_id": "A-1"}
    assert messages[-1]["content"] == "Done."


def test_it_keeps_a_user_follow_up_from_a_later_call():
    first = [text("user", "Is A-1 refundable?")]
    answer = text("assistant", "Yes. Shall I refund it?")
    doc = document(
        root(),
        chat("c1", 10, first, [answer]),
        chat("c2", 20, [*first, answer, text("user", "Yes please.")], [text("assistant", "Refunded.")]),
        # A later call that re-sends an older context adds nothing.
        chat("c2-again", 30, [*first, answer, text("user", "Yes please.")], []),
    )
    assert [m["content"] for m in only(doc)["messages"]] == [
        "Is A-1 refundable?",
        "Yes. Shall I refund it?",
        "Yes please.",
        "Refunded.",
    ]


def test_it_recovers_assistant_turns_only_seen_in_later_inputs():
    # The first call's output was not captured; the second call's input still shows it.
    doc = document(
        root(),
        chat("c1", 10, [text("user", "Refund A-1")]),
        chat(
            "c2",
            20,
            [text("user", "Refund A-1"), call("k1", "lookup", {"id": "A-1"}), response("k1", "total 240")],
            [text("assistant", "Escalating: over the limit.")],
        ),
    )
    assert shape(only(doc)["messages"]) == [
        ("user", "Refund A-1", None, None),
        ("assistant", "", None, None),
        ("tool", "total 240", "k1", "lookup"),
        ("assistant", "Escalating: over the limit.", None, None),
    ]


def test_it_orders_spans_by_start_time_not_document_order():
    doc = document(
        chat(
            "c2",
            30,
            [text("user", "Q"), text("assistant", "A1"), text("user", "more")],
            [text("assistant", "A2")],
        ),
        root(),
        chat("c1", 10, [text("user", "Q")], [text("assistant", "A1")]),
    )
    assert [m["content"] for m in only(doc)["messages"]] == ["Q", "A1", "more", "A2"]


def test_it_adds_system_instructions_and_renders_reasoning_and_media_as_text():
    inputs = [
        {
            "role": "user",
            "parts": [
                {"type": "text", "content": "What is in this photo?"},
                {"type": "blob", "modality": "image", "mime_type": "image/png", "content": "aGVsbG8="},
                {"type": "uri", "modality": "video", "uri": "gs://bucket/v.mp4"},
                {"type": "file", "file_id": "file_123"},
            ],
        }
    ]
    outputs = [
        {
            "role": "assistant",
            "parts": [
                {"type": "reasoning", "content": "Looks like a chair."},
                {"type": "text", "content": "A chair."},
            ],
        }
    ]
    doc = document(
        root(),
        chat(
            "c1",
            10,
            inputs,
            outputs,
            **{"gen_ai.system_instructions": json.dumps([{"type": "text", "content": "Be brief."}])},
        ),
    )
    messages = only(doc)["messages"]
    assert messages[0] == {"role": "system", "content": "Be brief."}
    assert messages[1]["content"] == "What is in this photo?\n[image]\n[video]\n[file]"
    assert messages[2]["content"] == "[reasoning]\nLooks like a chair.\n\nA chair."


def test_it_reads_messages_recorded_as_structured_attributes():
    # SDKs that support complex attributes send arrays/maps instead of a JSON string.
    values = {
        "gen_ai.operation.name": "chat",
        "gen_ai.input.messages": [text("user", "Hi")],
        "gen_ai.output.messages": [call("c9", "search", {"q": "chairs", "limit": 3})],
    }
    messages = only(document(span("root", 0, values)))["messages"]
    assert messages[0] == {"role": "user", "content": "Hi"}
    assert messages[1]["tool_calls"] == [{"id": "c9", "name": "search", "arguments": {"q": "chairs", "limit": 3}}]


def test_it_shows_a_tool_call_from_the_tool_span_when_the_chat_content_was_not_captured():
    doc = document(
        root(),
        span(
            "c1",
            10,
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.input.messages": json.dumps([text("user", "Refund B-7")]),
            },
        ),
        tool_span("t1", 20, "call_7", "issue_refund", result="refund R-1 issued", arguments='{"order_id": "B-7"}'),
    )
    messages = only(doc)["messages"]
    assert messages[1] == {
        "role": "assistant",
        "content": "",
        "tool_calls": [{"id": "call_7", "name": "issue_refund", "arguments": {"order_id": "B-7"}}],
    }
    assert messages[2] == {
        "role": "tool",
        "content": "refund R-1 issued",
        "tool_call_id": "call_7",
        "name": "issue_refund",
    }


def test_it_marks_a_failed_tool_span_as_an_error():
    doc = document(
        root(),
        chat("c1", 10, [text("user", "Refund Z-9")], [call("call_z", "lookup_order", {"order_id": "Z-9"})]),
        tool_span("t1", 20, "call_z", "lookup_order", status={"code": 2, "message": "order Z-9 not found"}),
    )
    result = only(doc)["messages"][-1]
    assert result == {
        "role": "tool",
        "content": "order Z-9 not found",
        "tool_call_id": "call_z",
        "name": "lookup_order",
        "is_error": True,
    }


def test_it_ignores_a_chat_span_nested_in_another_chat_span():
    outer = chat("outer", 10, [text("user", "Q")], [text("assistant", "A")])
    inner = chat("inner", 11, [text("user", "Q")], [text("assistant", "A")])
    inner["parentSpanId"] = "outer"
    assert [m["content"] for m in only(document(root(), outer, inner))["messages"]] == ["Q", "A"]


def test_it_leaves_llm_calls_made_inside_a_tool_out_of_the_conversation():
    summarize = call("k1", "summarize_policy", {})
    inner = chat("inner", 25, [text("user", "Summarize: ...long policy...")], [text("assistant", "Inner summary.")])
    inner["parentSpanId"] = "t1"
    doc = document(
        root(),
        chat("c1", 10, [text("user", "What is the policy?")], [summarize]),
        tool_span("t1", 20, "k1", "summarize_policy", result="30-day returns."),
        inner,
        chat("c2", 30, [text("user", "What is the policy?"), summarize], [text("assistant", "30 days.")]),
    )
    contents = [m["content"] for m in only(doc)["messages"]]
    assert contents == ["What is the policy?", "", "30-day returns.", "30 days."]


def test_it_reads_the_older_per_message_events():
    events = [
        {"name": "gen_ai.system.message", "attributes": attributes({"content": "You sell chairs."})},
        {"name": "gen_ai.user.message", "attributes": attributes({"content": "Refund A-1"})},
        {
            "name": "gen_ai.assistant.message",
            "attributes": attributes(
                {
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "lookup", "arguments": '{"id": "A-1"}'},
                        }
                    ]
                }
            ),
        },
        {"name": "gen_ai.tool.message", "attributes": attributes({"content": "total 240", "id": "c1"})},
        {
            "name": "gen_ai.choice",
            "attributes": attributes(
                {"index": 0, "finish_reason": "stop", "message": json.dumps({"content": "Refund it."})}
            ),
        },
    ]
    doc = document(span("root", 0, {"gen_ai.operation.name": "chat", "gen_ai.system": "openai"}, events=events))
    record = only(doc)
    assert shape(record["messages"]) == [
        ("system", "You sell chairs.", None, None),
        ("user", "Refund A-1", None, None),
        ("assistant", "", None, None),
        ("tool", "total 240", "c1", "lookup"),
        ("assistant", "Refund it.", None, None),
    ]
    assert record["messages"][2]["tool_calls"] == [{"id": "c1", "name": "lookup", "arguments": {"id": "A-1"}}]
    assert record["metadata"]["provider"] == "openai"


def test_it_reads_gen_ai_prompt_and_completion_attributes():
    prompt = json.dumps([{"role": "system", "content": "Be nice."}, {"role": "user", "content": "Hi"}])
    completion = json.dumps([{"role": "assistant", "content": "Hello!"}])
    messages = only(document(span("root", 0, {"gen_ai.prompt": prompt, "gen_ai.completion": completion})))["messages"]
    assert shape(messages) == [
        ("system", "Be nice.", None, None),
        ("user", "Hi", None, None),
        ("assistant", "Hello!", None, None),
    ]


def test_it_reads_flattened_prompt_attributes():
    values = {
        "gen_ai.prompt.0.role": "user",
        "gen_ai.prompt.0.content": "Refund A-1",
        "gen_ai.completion.0.role": "assistant",
        "gen_ai.completion.0.content": "",
        "gen_ai.completion.0.tool_calls.0.id": "c1",
        "gen_ai.completion.0.tool_calls.0.name": "lookup",
        "gen_ai.completion.0.tool_calls.0.arguments": '{"id": "A-1"}',
    }
    messages = only(document(span("root", 0, values)))["messages"]
    assert messages == [
        {"role": "user", "content": "Refund A-1"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"id": "c1", "name": "lookup", "arguments": {"id": "A-1"}}],
        },
    ]


# --- review fields, titles, metadata -------------------------------------------------------


def test_it_takes_review_fields_from_span_attributes_with_the_root_span_winning():
    child = chat(
        "c1",
        10,
        [text("user", "Q")],
        [text("assistant", "A")],
        **{
            "reviewapp.ai_recommendation": "reject",
            "reviewapp.gold_label": "reject",
            "reviewapp.priority": 9,
        },
    )
    doc = document(
        root(
            **{
                "reviewapp.external_id": "run-7",
                "reviewapp.ai_recommendation": "approve",
                "reviewapp.ai_rationale": "Within policy.",
                "reviewapp.ai_confidence": 0.75,
                "reviewapp.is_probe": True,
                "gen_ai.agent.name": "refund_agent",
            }
        ),
        child,
    )
    record = only(doc)
    assert record["external_id"] == "run-7"
    assert record["ai_recommendation"] == "approve"  # root wins over the child's "reject"
    assert record["gold_label"] == "reject"  # only on the child: still found
    assert record["priority"] == 9 and isinstance(record["priority"], int)
    assert record["ai_confidence"] == 0.75 and record["is_probe"] is True
    assert record["ai_rationale"] == "Within policy."
    assert record["title"] == "refund_agent"
    assert record["metadata"] == {
        "trace_id": TRACE,
        "service.name": "shop-agent",
        "model": "gpt-4.1",
        "agent_name": "refund_agent",
    }


def test_it_defaults_the_external_id_to_the_trace_id_and_the_title_to_the_root_span_name():
    record = only(document(root(), chat("c1", 10, [text("user", "Q")], [text("assistant", "A")])))
    assert record["external_id"] == TRACE
    assert record["title"] == "invoke_agent shop"
    assert "ai_recommendation" not in record and "gold_label" not in record


def test_it_yields_one_record_per_trace_and_converts_the_fixture():
    doc = json.loads(FIXTURE.read_text())
    assert otel.looks_like_otlp(doc)
    results = records(doc)
    assert [loc for loc, _ in results] == [
        "trace 4bf92f3577b34da6a3ce929d0e0e4736",
        "trace 5cf13a4c8e2d4b0f9a7e61d2c3b4a596",
    ]
    first, second = (record for _, record in results)
    assert first["external_id"] == "otel-001" and second["external_id"] == "otel-002"
    for record in (first, second):
        assert record["messages"][0]["role"] == "system"
        assert any(m.get("tool_calls") for m in record["messages"])
        assert all(m["name"] for m in record["messages"] if m["role"] == "tool")
        assert record["messages"][-1]["role"] == "assistant"
        assert record["ai_recommendation"] in ("approve", "reject") and 0 <= record["ai_confidence"] <= 1
        assert record["metadata"]["service.name"] == "refund-agent"
    assert first["gold_label"] == "reject" and "gold_label" not in second
    tool_ids = [m["tool_call_id"] for m in first["messages"] if m["role"] == "tool"]
    assert tool_ids == ["call_a1042_1", "call_a1042_2"]  # each result once, though resent in later inputs
    assert "Yes please." in [m["content"] for m in second["messages"]]


# --- malformed input -------------------------------------------------------------------------


def test_it_reports_a_malformed_trace_and_keeps_the_others():
    good = [root(trace="a" * 32), chat("c1", 10, [text("user", "Q")], [text("assistant", "A")])]
    good[1]["traceId"] = "a" * 32
    bad = chat("b1", 10, [{"role": "user", "parts": [{"type": "text", "content": 5}]}], [])
    doc = document(root(), bad, *good)
    results = dict(records(doc))
    error = results[f"trace {TRACE}"]
    assert isinstance(error, FieldError)
    assert (
        error.field == "resourceSpans[0].scopeSpans[0].spans[1].attributes[gen_ai.input.messages][0].parts[0].content"
    )
    assert "string" in error.reason
    assert results[f"trace {'a' * 32}"]["messages"] == [
        {"role": "user", "content": "Q"},
        {"role": "assistant", "content": "A"},
    ]


@pytest.mark.parametrize(
    ("bad_span", "field"),
    [
        (
            chat("b", 1, None, None, **{"gen_ai.input.messages": "{not json"}),
            "spans[1].attributes[gen_ai.input.messages]",
        ),
        (chat("b", 1, {"role": "user"}), "spans[1].attributes[gen_ai.input.messages]"),
        (chat("b", 1, [None]), "spans[1].attributes[gen_ai.input.messages][0]"),
        (
            chat("b", 1, [{"role": "robot", "parts": []}]),
            "spans[1].attributes[gen_ai.input.messages][0].role",
        ),
        (chat("b", 1, [{"role": "user"}]), "spans[1].attributes[gen_ai.input.messages][0].parts"),
        (
            chat("b", 1, [{"role": "user", "parts": [{"content": "x"}]}]),
            "spans[1].attributes[gen_ai.input.messages][0].parts[0].type",
        ),
        (
            chat("b", 1, [], [{"role": "assistant", "parts": [{"type": "tool_call", "id": "1"}]}]),
            "spans[1].attributes[gen_ai.output.messages][0].parts[0].name",
        ),
        (
            chat("b", 1, [{"role": "user", "parts": [{"type": "tool_call", "name": "f"}]}]),
            "spans[1].attributes[gen_ai.input.messages][0].parts[0]",
        ),
        (
            chat("b", 1, [response(7, "x")]),  # type: ignore[arg-type]
            "spans[1].attributes[gen_ai.input.messages][0].parts[0].id",
        ),
        ({**chat("b", 1, [text("user", "x")]), "attributes": {"k": "v"}}, "spans[1].attributes"),
        (
            {**chat("b", 1, [text("user", "x")]), "attributes": [{"value": {"stringValue": "x"}}]},
            "spans[1].attributes[0].key",
        ),
        (
            {**chat("b", 1, [text("user", "x")]), "attributes": [{"key": "k", "value": {"intValue": "ten"}}]},
            "spans[1].attributes[0].value.intValue",
        ),
        (
            {**chat("b", 1, [text("user", "x")]), "attributes": [{"key": "k", "value": {"stringValue": 5}}]},
            "spans[1].attributes[0].value.stringValue",
        ),
        (
            {**chat("b", 1, [text("user", "x")]), "attributes": [{"key": "k", "value": "plain"}]},
            "spans[1].attributes[0].value",
        ),
        (
            {**chat("b", 1, [text("user", "x")]), "startTimeUnixNano": "yesterday"},
            "spans[1].startTimeUnixNano",
        ),
        ({**chat("b", 1, [text("user", "x")]), "events": {"name": "x"}}, "spans[1].events"),
        ({**chat("b", 1, [text("user", "x")]), "events": [None]}, "spans[1].events[0]"),
        ({**chat("b", 1, [text("user", "x")]), "name": 12}, "spans[1].name"),
        (
            span("b", 1, {"gen_ai.prompt.0.role": "robot", "gen_ai.prompt.0.content": "x"}),
            "spans[1].attributes[gen_ai.prompt.0.role]",
        ),
        (
            span(
                "b",
                1,
                {"gen_ai.operation.name": "chat", "gen_ai.input.messages": "[]"},
                events=[
                    {
                        "name": "gen_ai.user.message",
                        "attributes": [{"key": "content", "value": {"intValue": []}}],
                    }
                ],
            ),
            "spans[1].events[0].attributes[0].value.intValue",
        ),
    ],
)
def test_it_names_the_exact_field_of_a_malformed_span(bad_span, field):
    ((location, error),) = records(document(root(), bad_span))
    assert location == f"trace {TRACE}"
    assert isinstance(error, FieldError)
    assert error.field == f"resourceSpans[0].scopeSpans[0].{field}"


def test_it_reports_a_trace_without_any_genai_content():
    ((_, error),) = records(document(root(), span("db", 1, {"db.system": "postgresql"})))
    assert isinstance(error, FieldError)
    assert "no span in this trace carries GenAI messages" in error.reason


def test_it_reports_spans_it_cannot_place_in_a_trace_and_goes_on():
    no_trace = chat("x", 1, [text("user", "lost")])
    del no_trace["traceId"]
    doc = document(root(), chat("c1", 10, [text("user", "Q")], [text("assistant", "A")]), no_trace, 42)
    doc["resourceSpans"].append("junk")
    doc["resourceSpans"].append({"scopeSpans": [{"spans": "nope"}]})
    results = records(doc)
    locations = [loc for loc, _ in results]
    assert locations == [
        "resourceSpans[0].scopeSpans[0].spans[2]",
        "resourceSpans[0].scopeSpans[0].spans[3]",
        "resourceSpans[1]",
        "resourceSpans[2].scopeSpans[0]",
        f"trace {TRACE}",
    ]
    assert results[0][1].field == "resourceSpans[0].scopeSpans[0].spans[2].traceId"
    assert results[3][1].field == "resourceSpans[2].scopeSpans[0].spans"
    assert not isinstance(results[-1][1], FieldError)


def test_it_does_not_recurse_into_deeply_nested_attribute_values():
    value: dict = {"stringValue": "x"}
    for _ in range(5000):
        value = {"arrayValue": {"values": [value]}}
    bad = chat("b", 1, [text("user", "x")])
    bad["attributes"].append({"key": "deep", "value": value})
    ((_, error),) = records(document(root(), bad))
    assert isinstance(error, FieldError)
    assert "nested deeper" in error.reason


def test_it_rejects_deeply_nested_tool_arguments():
    deep = "[" * 100 + "]" * 100
    ((_, error),) = records(document(root(), chat("c1", 1, [text("user", "x")], [call("c", "f", deep)])))
    assert isinstance(error, FieldError)
    assert error.field.endswith("attributes[gen_ai.output.messages][0].parts[0].arguments")


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ([], "(document)"),
        ({}, "resourceSpans"),
        ({"resourceSpans": None}, "resourceSpans"),
        ({"resourceSpans": {"spans": []}}, "resourceSpans"),
    ],
)
def test_it_raises_when_the_document_as_a_whole_is_not_otlp(doc, field):
    with pytest.raises(FieldError) as exc:
        records(doc)
    assert exc.value.field == field


def test_it_only_claims_otlp_documents():
    assert otel.looks_like_otlp({"resourceSpans": []})
    assert not otel.looks_like_otlp({"messages": []})
    assert not otel.looks_like_otlp([{"resourceSpans": []}])
    assert not otel.looks_like_otlp("resourceSpans")


def test_it_survives_arbitrary_damage_to_a_real_export():
    # Each trace comes out as a record or a FieldError; only a broken top level raises.
    for damaged in mutated_copies(json.loads(FIXTURE.read_text()), seed=7, count=400):
        try:
            for _, record in otel.iter_records(damaged):
                assert isinstance(record, (dict, FieldError))
        except FieldError:
            pass
