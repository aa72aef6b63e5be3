"""OpenAI Chat Completions messages -> native messages.

``record["messages"]`` is the ``messages`` list of a Chat Completions request;
``record["response"]`` (optional) is a Chat Completions response whose first
choice is appended as the final assistant message.
"""

from __future__ import annotations

from typing import Any

import orjson

from . import FieldError, native

ROLE_MAP = {
    "system": "system",
    "developer": "system",  # o-series models call the system prompt "developer"
    "user": "user",
    "assistant": "assistant",
    "tool": "tool",
    "function": "tool",  # legacy function-calling result
}
# Non-text content parts become a short marker: reviewers read text, and inlining
# base64 images or audio would bloat the payload for nothing.
PLACEHOLDERS = {"image_url": "[image]", "input_audio": "[audio]", "audio": "[audio]", "file": "[file]"}


def to_native(record: dict) -> list[dict]:
    if not isinstance(record, dict):
        raise FieldError("(record)", f"must be a JSON object, got {json_type(record)}")
    source = record.get("messages")
    response = record.get("response")
    if source is None and response is not None:
        source = []
    if not isinstance(source, list):
        raise FieldError("messages", f"must be a list of messages, got {json_type(source)}")
    tool_names: dict[str, str] = {}
    messages = [_message(m, f"messages[{i}]", tool_names) for i, m in enumerate(source)]
    if response is not None:
        messages.append(_response_message(response, tool_names))
    return native.normalize_messages(messages)


def _response_message(response: Any, tool_names: dict[str, str]) -> dict:
    if not isinstance(response, dict):
        raise FieldError("response", f"must be a Chat Completions response object, got {json_type(response)}")
    choices = response.get("choices")
    if response.get("object") == "response" and choices is None:
        raise FieldError(
            "response",
            'is a Responses API response, not a Chat Completions one: send it as "format": "openai_responses"',
        )
    if not isinstance(choices, list) or not choices:
        raise FieldError("response.choices", "must be a non-empty list")
    choice = choices[0]
    if not isinstance(choice, dict):
        raise FieldError("response.choices[0]", f"must be an object, got {json_type(choice)}")
    message = choice.get("message")
    if not isinstance(message, dict):
        raise FieldError("response.choices[0].message", f"must be an object, got {json_type(message)}")
    # A response message is always the assistant's, even when "role" is left out.
    return _message({**message, "role": message.get("role") or "assistant"}, "response.choices[0].message", tool_names)


def _message(message: Any, field: str, tool_names: dict[str, str]) -> dict:
    if not isinstance(message, dict):
        raise FieldError(field, f"must be an object, got {json_type(message)}")
    role = message.get("role")
    if not isinstance(role, str) or role not in ROLE_MAP:
        raise FieldError(f"{field}.role", f"must be one of {', '.join(ROLE_MAP)}; got {shown(role)}")
    content = _content(message.get("content"), f"{field}.content")
    if role == "assistant":
        return _assistant(message, content, field, tool_names)
    if role == "tool":
        call_id = native.require_str(message, "tool_call_id", f"{field}.tool_call_id", optional=True)
        out: dict[str, Any] = {"role": "tool", "content": content}
        if call_id:
            out["tool_call_id"] = call_id
        name = tool_names.get(call_id or "") or native.require_str(message, "name", f"{field}.name", optional=True)
        if name:
            out["name"] = name
        return out
    if role == "function":
        name = native.require_str(message, "name", f"{field}.name", optional=True)
        return {"role": "tool", "content": content, **({"name": name} if name else {})}
    return {"role": ROLE_MAP[role], "content": content}


def _assistant(message: dict, content: str, field: str, tool_names: dict[str, str]) -> dict:
    texts = []
    # Not part of OpenAI's schema, but OpenAI-compatible servers (vLLM, DeepSeek) put
    # the model's reasoning here; reviewers should see it.
    reasoning = native.require_str(message, "reasoning_content", f"{field}.reasoning_content", optional=True)
    if reasoning:
        texts.append(f"[reasoning]\n{reasoning}\n")
    if content:
        texts.append(content)
    refusal = native.require_str(message, "refusal", f"{field}.refusal", optional=True)
    if refusal:
        texts.append(f"[refusal] {refusal}")
    if message.get("audio") is not None and not content:
        texts.append("[audio]")
    calls = tool_calls(message.get("tool_calls"), f"{field}.tool_calls")
    function_call = message.get("function_call")
    if function_call is not None:
        calls.append(_function_call(function_call, f"{field}.function_call"))
    for call in calls:
        if call["id"]:
            tool_names[call["id"]] = call["name"]
    out: dict[str, Any] = {"role": "assistant", "content": "\n".join(texts)}
    if calls:
        out["tool_calls"] = calls
    return out


def tool_calls(raw_calls: Any, field: str) -> list[dict]:
    """Chat Completions ``tool_calls`` -> native tool calls (also used for OTel's older events)."""
    if raw_calls is None:
        return []
    if not isinstance(raw_calls, list):
        raise FieldError(field, f"must be a list, got {json_type(raw_calls)}")
    return [_tool_call(c, f"{field}[{j}]") for j, c in enumerate(raw_calls)]


def _tool_call(call: Any, field: str) -> dict:
    if not isinstance(call, dict):
        raise FieldError(field, f"must be an object, got {json_type(call)}")
    call_id = native.require_str(call, "id", f"{field}.id", optional=True) or ""
    if call.get("type") == "custom":
        # Custom (free-form) tools: {"type": "custom", "custom": {"name", "input"}}.
        custom = call.get("custom")
        if not isinstance(custom, dict):
            raise FieldError(f"{field}.custom", f"must be an object, got {json_type(custom)}")
        name = _name(custom, f"{field}.custom.name")
        arguments = native.require_str(custom, "input", f"{field}.custom.input", optional=True) or ""
        return {"id": call_id, "name": name, "arguments": arguments}
    function = call.get("function")
    if not isinstance(function, dict):
        raise FieldError(f"{field}.function", f"must be an object, got {json_type(function)}")
    return {
        "id": call_id,
        "name": _name(function, f"{field}.function.name"),
        "arguments": parse_arguments(function.get("arguments"), f"{field}.function.arguments"),
    }


def _function_call(call: Any, field: str) -> dict:
    if not isinstance(call, dict):
        raise FieldError(field, f"must be an object, got {json_type(call)}")
    return {
        "id": "",
        "name": _name(call, f"{field}.name"),
        "arguments": parse_arguments(call.get("arguments"), f"{field}.arguments"),
    }


def _name(obj: dict, field: str) -> str:
    name = native.require_str(obj, "name", field)
    if not name:
        raise FieldError(field, "must not be empty")
    return name


def parse_arguments(value: Any, field: str) -> Any:
    """Arguments arrive as a JSON string; models sometimes emit invalid JSON, kept as-is."""
    if value is None:
        return {}
    if isinstance(value, str):
        if not value.strip():
            return {}
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            return value  # the raw text is what the model produced: show it
    return native.check_json_value(value, field)


def _content(content: Any, field: str) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise FieldError(field, f"must be a string, null or a list of content parts, got {json_type(content)}")
    texts = []
    for j, part in enumerate(content):
        text = _part_text(part, f"{field}[{j}]")
        if text:
            texts.append(text)
    return "\n".join(texts)


def _part_text(part: Any, field: str) -> str:
    if isinstance(part, str):  # tolerated: some clients send bare strings in the list
        return part
    if not isinstance(part, dict):
        raise FieldError(field, f"must be an object, got {json_type(part)}")
    kind = part.get("type")
    if not isinstance(kind, str):
        raise FieldError(f"{field}.type", "is required (a string)" if kind is None else "must be a string")
    if kind == "text":
        return native.require_str(part, "text", f"{field}.text") or ""
    if kind == "refusal":
        return f"[refusal] {native.require_str(part, 'refusal', f'{field}.refusal')}"
    if kind == "file":
        file = part.get("file")
        filename = file.get("filename") if isinstance(file, dict) else None
        return f"[file: {filename}]" if isinstance(filename, str) and filename else "[file]"
    return PLACEHOLDERS.get(kind) or placeholder(kind)


def placeholder(kind: str) -> str:
    """A short marker for a content part we do not render (the type name, bounded)."""
    safe = "".join(ch for ch in kind if ch.isalnum() or ch in "_-.")[:40]
    return f"[{safe or 'content'}]"


def shown(value: Any, limit: int = 60) -> str:
    """A bounded repr of a bad value for an error message (it may be a huge object)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def json_type(value: Any) -> str:
    """The JSON name of a value's type, for error messages users can act on."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__
