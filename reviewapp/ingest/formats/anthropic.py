"""Anthropic Messages API -> native messages.

``record["system"]`` (optional) is the request's system prompt, ``record["messages"]``
the request's messages and ``record["response"]`` (optional) a Messages API response,
appended as the final assistant message.

Anthropic puts tool results inside *user* messages and server-side tool results
(web search, code execution) inside *assistant* messages; the native format has a
``tool`` message per result, so such messages are split in reading order.
"""

from __future__ import annotations

from typing import Any

from . import FieldError, native
from .openai import json_type, placeholder, shown

PLACEHOLDERS = {"image": "[image]", "document": "[document]", "container_upload": "[file]"}
SERVER_TOOL_USE = ("server_tool_use", "mcp_tool_use")


def to_native(record: dict) -> list[dict]:
    if not isinstance(record, dict):
        raise FieldError("(record)", f"must be a JSON object, got {json_type(record)}")
    out: list[dict] = []
    system = _system(record.get("system"))
    if system:
        out.append({"role": "system", "content": system})
    source = record.get("messages")
    response = record.get("response")
    if source is None and response is not None:
        source = []
    if not isinstance(source, list):
        raise FieldError("messages", f"must be a list of messages, got {json_type(source)}")
    tool_names: dict[str, str] = {}
    for i, message in enumerate(source):
        field = f"messages[{i}]"
        if not isinstance(message, dict):
            raise FieldError(field, f"must be an object, got {json_type(message)}")
        role = message.get("role")
        if role == "user":
            out.extend(_user(message.get("content"), f"{field}.content", tool_names))
        elif role == "assistant":
            out.extend(_assistant(message.get("content"), f"{field}.content", tool_names))
        else:
            raise FieldError(f"{field}.role", f"must be user or assistant; got {shown(role)}")
    if response is not None:
        if not isinstance(response, dict):
            raise FieldError("response", f"must be a Messages API response object, got {json_type(response)}")
        role = response.get("role", "assistant")
        if role != "assistant":
            raise FieldError("response.role", f"must be assistant; got {shown(role)}")
        out.extend(_assistant(response.get("content"), "response.content", tool_names))
    return native.normalize_messages(out)


def _system(system: Any) -> str:
    if system is None or isinstance(system, str):
        return system or ""
    if not isinstance(system, list):
        raise FieldError("system", f"must be a string or a list of text blocks, got {json_type(system)}")
    return "\n".join(t for j, block in enumerate(system) if (t := _block_text(block, f"system[{j}]")))


def _blocks(content: Any, field: str) -> list[tuple[str, dict]]:
    """The content as (field path, block) pairs; a plain string is one text block."""
    if isinstance(content, str):
        return [(field, {"type": "text", "text": content})]
    if not isinstance(content, list):
        raise FieldError(field, f"must be a string or a list of content blocks, got {json_type(content)}")
    blocks = []
    for j, block in enumerate(content):
        where = f"{field}[{j}]"
        if not isinstance(block, dict):
            raise FieldError(where, f"must be an object, got {json_type(block)}")
        kind = block.get("type")
        if not isinstance(kind, str):
            raise FieldError(f"{where}.type", "is required (a string)" if kind is None else "must be a string")
        blocks.append((where, block))
    return blocks


def _user(content: Any, field: str, tool_names: dict[str, str]) -> list[dict]:
    results, texts = [], []
    for where, block in _blocks(content, field):
        if _is_tool_result(block):
            results.append(_tool_result(block, where, tool_names))
        elif text := _block_text(block, where):
            texts.append(text)
    # Results first: they answer the previous assistant turn; the text is the user's next turn.
    if texts or not results:
        results.append({"role": "user", "content": "\n".join(texts)})
    return results


def _assistant(content: Any, field: str, tool_names: dict[str, str]) -> list[dict]:
    out: list[dict] = []
    thinking: list[str] = []
    texts: list[str] = []
    calls: list[dict] = []

    def flush() -> None:
        if thinking or texts or calls:
            message: dict[str, Any] = {"role": "assistant", "content": "\n".join(thinking + texts)}
            if calls:
                message["tool_calls"] = list(calls)
            out.append(message)
        thinking.clear()
        texts.clear()
        calls.clear()

    for where, block in _blocks(content, field):
        kind = block["type"]
        if kind == "thinking":
            thought = native.require_str(block, "thinking", f"{where}.thinking") or ""
            thinking.append(f"[thinking]\n{thought}\n")
        elif kind == "redacted_thinking":
            thinking.append("[redacted thinking]\n")
        elif kind == "tool_use" or kind in SERVER_TOOL_USE:
            call = _tool_use(block, where)
            if call["id"]:
                tool_names[call["id"]] = call["name"]
            calls.append(call)
        elif _is_tool_result(block):
            # A server tool's result sits mid-message: end the assistant turn so far,
            # show the result, and continue with what the model said after it.
            flush()
            out.append(_tool_result(block, where, tool_names))
        elif text := _block_text(block, where):
            texts.append(text)
    flush()
    if not out:
        out.append({"role": "assistant", "content": ""})
    return out


def _is_tool_result(block: dict) -> bool:
    # tool_result, web_search_tool_result, code_execution_tool_result, mcp_tool_result, ...
    return block["type"] == "tool_result" or block["type"].endswith("_tool_result")


def _tool_use(block: dict, where: str) -> dict:
    name = native.require_str(block, "name", f"{where}.name")
    if not name:
        raise FieldError(f"{where}.name", "must not be empty")
    call_id = native.require_str(block, "id", f"{where}.id", optional=True) or ""
    arguments = block.get("input", {})
    if arguments is None:
        arguments = {}
    return {"id": call_id, "name": name, "arguments": native.check_json_value(arguments, f"{where}.input")}


def _tool_result(block: dict, where: str, tool_names: dict[str, str]) -> dict:
    call_id = native.require_str(block, "tool_use_id", f"{where}.tool_use_id")
    is_error = block.get("is_error", False)
    if is_error is None:
        is_error = False
    if not isinstance(is_error, bool):
        raise FieldError(f"{where}.is_error", f"must be true or false, got {json_type(is_error)}")
    content = block.get("content")
    if block["type"] == "tool_result":
        text = _result_content(content, f"{where}.content")
    else:
        text, server_error = _server_result(content, f"{where}.content")
        is_error = is_error or server_error
    message: dict[str, Any] = {"role": "tool", "content": text, "tool_call_id": call_id}
    if call_id in tool_names:
        message["name"] = tool_names[call_id]
    if is_error:
        message["is_error"] = True
    return message


def _result_content(content: Any, field: str) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "\n".join(t for where, block in _blocks(content, field) if (t := _block_text(block, where)))


def _server_result(content: Any, field: str) -> tuple[str, bool]:
    """Text of a server tool result, and whether it reports an error."""
    if isinstance(content, dict):
        kind = content.get("type")
        if isinstance(kind, str) and kind.endswith("_error"):
            code = content.get("error_code")
            return f"[error] {code if isinstance(code, str) else kind}", True
        return native.compact_json(content, field), False
    if isinstance(content, list) and all(
        isinstance(item, dict) and item.get("type") == "web_search_result" for item in content
    ):
        lines = []
        for j, item in enumerate(content):
            title = native.require_str(item, "title", f"{field}[{j}].title", optional=True) or ""
            url = native.require_str(item, "url", f"{field}[{j}].url", optional=True) or ""
            lines.append(f"{title} <{url}>" if title else url)
        return "\n".join(lines), False
    return _result_content(content, field), False


def _block_text(block: Any, where: str) -> str:
    """Text of a text-like block; a short placeholder for media and unknown blocks."""
    if not isinstance(block, dict):
        raise FieldError(where, f"must be an object, got {json_type(block)}")
    kind = block.get("type")
    if not isinstance(kind, str):
        raise FieldError(f"{where}.type", "is required (a string)" if kind is None else "must be a string")
    if kind == "text":
        return native.require_str(block, "text", f"{where}.text") or ""
    if kind == "document":
        title = block.get("title")
        return f"[document: {title}]" if isinstance(title, str) and title else "[document]"
    return PLACEHOLDERS.get(kind) or placeholder(kind)
