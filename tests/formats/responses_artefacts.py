"""Real OpenAI Responses API artefacts, made offline with the ``openai`` SDK's own types.

Each ``Response`` is validated by the SDK (``Response.model_validate``) and dumped with its own
``model_dump(mode="json")``, as an agent logging its responses would; the input lists are what
the Agents SDK's ``to_input_list()`` holds: the user's messages, then each earlier output item
(``model_dump(exclude_unset=True)``) and the ``function_call_output`` the client sent back.
``fixtures/formats/openai_responses.jsonl`` is ``records()`` written one a line
(``python -m tests.formats.responses_artefacts > fixtures/formats/openai_responses.jsonl``).
"""

from __future__ import annotations

import sys

import orjson
from openai.types.responses import Response, ResponseInputItemParam  # noqa: F401  (the SDK's input type)
from openai.types.responses.response_input_item import FunctionCallOutput

INSTRUCTIONS = "Refunds up to $200.00 you may issue yourself; anything above must be escalated."


def response(response_id: str, output: list[dict]) -> Response:
    return Response.model_validate(
        {
            "id": response_id,
            "object": "response",
            "created_at": 1_767_225_600,
            "model": "gpt-5",
            "instructions": INSTRUCTIONS,
            "output": output,
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "status": "completed",
        }
    )


def dumped(resp: Response) -> dict:
    return resp.model_dump(mode="json")


def as_input(resp: Response) -> list[dict]:
    """The response's output items as the next request's input (the Agents SDK's way)."""
    return [item.model_dump(mode="json", exclude_unset=True) for item in resp.output]


def tool_output(call_id: str, output: str) -> dict:
    return FunctionCallOutput(type="function_call_output", call_id=call_id, output=output).model_dump(
        mode="json", exclude_unset=True
    )


def refund_run() -> dict:
    """Reasoning, a function call, its output, more reasoning and the answer."""
    first = response(
        "resp_r1",
        [
            {
                "type": "reasoning",
                "id": "rs_1",
                "summary": [{"type": "summary_text", "text": "The customer wants a refund; look the order up first."}],
            },
            {
                "type": "function_call",
                "id": "fc_1",
                "call_id": "call_lookup_1",
                "name": "lookup_order",
                "arguments": '{"order_id": "A-1042"}',
                "status": "completed",
            },
        ],
    )
    second = response(
        "resp_r2",
        [
            {
                "type": "reasoning",
                "id": "rs_2",
                "summary": [{"type": "summary_text", "text": "$240 is above the $200 limit: escalate."}],
            },
            {
                "type": "message",
                "id": "msg_2",
                "role": "assistant",
                "status": "completed",
                "content": [
                    {
                        "type": "output_text",
                        "text": "Order A-1042 was $240, above my limit, so I've escalated it.",
                        "annotations": [],
                    }
                ],
            },
        ],
    )
    return {
        "external_id": "responses-001",
        "format": "openai_responses",
        "title": "Cracked blender, over the limit",
        "input": [
            {"role": "user", "content": "Order A-1042 arrived cracked. I want a full refund of $240."},
            *as_input(first),
            tool_output("call_lookup_1", '{"total": 240.0, "status": "delivered"}'),
        ],
        "response": dumped(second),
        "ai_recommendation": "approve",
        "gold_label": "approve",
    }


def research_run() -> dict:
    """Hosted tools (web search, file search, code interpreter) and two parallel function calls."""
    first = response(
        "resp_h1",
        [
            {
                "type": "web_search_call",
                "id": "ws_1",
                "status": "completed",
                "action": {"type": "search", "query": "lamp model L-7 recall"},
            },
            {"type": "file_search_call", "id": "fs_1", "status": "completed", "queries": ["return policy lamps"]},
            {
                "type": "code_interpreter_call",
                "id": "ci_1",
                "status": "completed",
                "container_id": "cntr_1",
                "code": "days = 9\nprint(days > 7)",
                "outputs": [{"type": "logs", "logs": "True"}],
            },
            {
                "type": "function_call",
                "id": "fc_a",
                "call_id": "call_order",
                "name": "lookup_order",
                "arguments": '{"order_id": "B-2210"}',
                "status": "completed",
            },
            {
                "type": "function_call",
                "id": "fc_b",
                "call_id": "call_sql",
                "name": "run_sql",
                "arguments": '{"query": "SELECT *\\nFROM refunds\\nWHERE order_id = \'B-2210\'"}',
                "status": "completed",
            },
        ],
    )
    second = response(
        "resp_h2",
        [
            {
                "type": "message",
                "id": "msg_h2",
                "role": "assistant",
                "status": "completed",
                "content": [
                    {"type": "output_text", "text": "The lamp was 9 days late; I've refunded $89.", "annotations": []}
                ],
            }
        ],
    )
    return {
        "external_id": "responses-002",
        "format": "openai_responses",
        "title": "Late lamp, searched and refunded",
        "input": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "My lamp came late."}]},
            *as_input(first),
            # Parallel calls: the results come back in the other order; call_id pairs them.
            tool_output("call_sql", "[]"),
            tool_output("call_order", '{"total": 89.0}'),
        ],
        "response": dumped(second),
        "ai_recommendation": "approve",
    }


def records() -> list[dict]:
    return [refund_run(), research_run()]


if __name__ == "__main__":
    for record in records():
        sys.stdout.buffer.write(orjson.dumps(record) + b"\n")
