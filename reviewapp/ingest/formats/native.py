"""The app's own transcript schema ("native"), and the checks every format ends in.

A native message is one of::

    {"role": "system" | "user", "content": str}
    {"role": "assistant", "content": str,
     "tool_calls": [{"id": str, "name": str, "arguments": <any JSON>}]}   # tool_calls optional
    {"role": "tool", "content": str, "tool_call_id": str, "name": str, "is_error": bool}
                                            # tool_call_id, name, is_error optional

Content is plain text: reviewers read it, and the review page renders it as text
(or sanitized markdown), never as HTML. Other converters build this shape and then
call ``normalize_messages`` so every stored payload passed the same checks.
"""

from __future__ import annotations

from typing import Any

import orjson

from . import FieldError

ROLES = ("system", "user", "assistant", "tool")
MAX_MESSAGES = 5_000
# Tool-call arguments and metadata are arbitrary JSON. We bound their depth so that
# nothing downstream (hashing, rendering, recursion in templates) can be driven into
# a RecursionError by a hostile record.
MAX_JSON_DEPTH = 32


def json_depth_exceeds(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when ``value`` nests deeper than ``limit`` (iterative: no recursion)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def check_json_value(value: Any, field: str) -> Any:
    if json_depth_exceeds(value):
        raise FieldError(field, f"nested deeper than {MAX_JSON_DEPTH} levels")
    return value


def compact_json(value: Any, field: str) -> str:
    """A JSON value as one line of text (checked as ``check_json_value`` does); a value JSON
    cannot encode as its ``str``. For tool inputs and results shown as text."""
    check_json_value(value, field)
    try:
        return orjson.dumps(value).decode()
    except (orjson.JSONEncodeError, TypeError):
        return str(value)


def require_str(obj: dict, key: str, field: str, *, optional: bool = False) -> str | None:
    value = obj.get(key)
    if value is None:
        if optional:
            return None
        raise FieldError(field, "is required")
    if not isinstance(value, str):
        raise FieldError(field, f"must be a string, got {type(value).__name__}")
    return value


def normalize_messages(messages: Any, field: str = "messages") -> list[dict]:
    """Check a native message list and return it in canonical form (known keys only)."""
    if not isinstance(messages, list):
        raise FieldError(field, f"must be a list of messages, got {type(messages).__name__}")
    if not messages:
        raise FieldError(field, "must contain at least one message")
    if len(messages) > MAX_MESSAGES:
        raise FieldError(field, f"has {len(messages)} messages; the limit is {MAX_MESSAGES}")
    return [_normalize_message(m, f"{field}[{i}]") for i, m in enumerate(messages)]


def _normalize_message(message: Any, field: str) -> dict:
    if not isinstance(message, dict):
        raise FieldError(field, f"must be an object, got {type(message).__name__}")
    role = message.get("role")
    if role not in ROLES:
        raise FieldError(f"{field}.role", f"must be one of {', '.join(ROLES)}; got {role!r}")
    content = message.get("content", "")
    if content is None:
        content = ""
    if not isinstance(content, str):
        raise FieldError(f"{field}.content", f"must be a string, got {type(content).__name__}")
    out: dict[str, Any] = {"role": role, "content": content}
    if role == "assistant" and message.get("tool_calls"):
        calls = message["tool_calls"]
        if not isinstance(calls, list):
            raise FieldError(f"{field}.tool_calls", "must be a list")
        out["tool_calls"] = [_normalize_tool_call(c, f"{field}.tool_calls[{j}]") for j, c in enumerate(calls)]
    elif message.get("tool_calls"):
        raise FieldError(f"{field}.tool_calls", f"only assistant messages carry tool calls, not {role}")
    if role == "tool":
        for key in ("tool_call_id", "name"):
            value = require_str(message, key, f"{field}.{key}", optional=True)
            if value is not None:
                out[key] = value
        is_error = message.get("is_error", False)
        if not isinstance(is_error, bool):
            raise FieldError(f"{field}.is_error", "must be true or false")
        if is_error:
            out["is_error"] = True
    return out


def _normalize_tool_call(call: Any, field: str) -> dict:
    if not isinstance(call, dict):
        raise FieldError(field, f"must be an object, got {type(call).__name__}")
    name = require_str(call, "name", f"{field}.name")
    if not name:
        raise FieldError(f"{field}.name", "must not be empty")
    call_id = require_str(call, "id", f"{field}.id", optional=True) or ""
    arguments = check_json_value(call.get("arguments", {}), f"{field}.arguments")
    return {"id": call_id, "name": name, "arguments": arguments}
