"""OpenAI Responses API items -> native messages.

A record holds the conversation as the Responses API (and the OpenAI Agents SDK, whose
``to_input_list()`` is such a list) carries it:

- ``instructions`` (optional): the system prompt, a string;
- ``input`` (optional): the request's ``input``, a string (one user message) or a list of
  input items: messages (``{"role", "content"}``, typed or not), ``function_call``,
  ``function_call_output``, ``reasoning``, hosted tool calls, ...;
- ``response`` (optional): a ``Response`` object (``model_dump(mode="json")`` of the SDK's
  type) whose ``output`` items are appended; or ``output``, the output items alone.

Mapping: a ``message`` is a turn of its role (``developer`` read as system); ``reasoning``
becomes a part of the assistant's turn labelled ``[reasoning]``, before what it says, so it
never reads as the agent's speech; ``function_call`` (and ``custom_tool_call``, and the
client-run ``computer_call``, ``local_shell_call``, ``shell_call``, ``apply_patch_call``) a
tool call of that turn under its ``call_id``, arguments as given (a JSON string is decoded,
invalid JSON kept as its text); each ``*_output`` item a tool result paired with its call by
``call_id`` (one naming no earlier call is an error). Hosted tools (web and file search, code
interpreter, image generation, MCP, ...) run on OpenAI's side and carry their own result: each
becomes a call named ``<tool> (hosted)`` and its result. Items with nothing to show
(``item_reference``, ``compaction``, ...) leave a visible ``[type]`` marker.

After conversion a fidelity check counts messages, tool calls and results in the source and
in the native messages; any difference is an error naming what was lost.
"""

from __future__ import annotations

from typing import Any

from . import FieldError, native
from .openai import json_type, parse_arguments, placeholder, shown

ROLE_MAP = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
# Hosted (server-side) tools: OpenAI runs them and puts the result in the same item.
HOSTED = {
    "web_search_call": "web_search",
    "file_search_call": "file_search",
    "code_interpreter_call": "code_interpreter",
    "image_generation_call": "image_generation",
    "mcp_call": "mcp",
    "tool_search_call": "tool_search",
}
HOSTED_SUFFIX = " (hosted)"
# Tools the client runs: a call item, and later an output item with the same call_id.
CLIENT_CALLS = {
    "function_call": "function",
    "custom_tool_call": "custom",
    "computer_call": "computer",
    "local_shell_call": "local_shell",
    "shell_call": "shell",
    "apply_patch_call": "apply_patch",
}
CLIENT_OUTPUTS = {
    "function_call_output",
    "custom_tool_call_output",
    "computer_call_output",
    "local_shell_call_output",
    "shell_call_output",
    "apply_patch_call_output",
}
PART_PLACEHOLDERS = {"input_image": "[image]", "input_audio": "[audio]", "computer_screenshot": "[screenshot]"}


def to_native(record: dict) -> list[dict]:
    if not isinstance(record, dict):
        raise FieldError("(record)", f"must be a JSON object, got {json_type(record)}")
    located = list(_located_items(record))
    builder = _Builder()
    instructions = record.get("instructions")
    if instructions is None and isinstance(record.get("response"), dict):
        instructions = record["response"].get("instructions")
        field = "response.instructions"
    else:
        field = "instructions"
    if instructions is not None:
        if isinstance(instructions, str):
            if instructions:
                builder.emit({"role": "system", "content": instructions})
                builder.instruction_messages = 1
        elif isinstance(instructions, list):
            located = [(f"{field}[{i}]", item) for i, item in enumerate(instructions)] + located
        else:
            raise FieldError(field, f"must be a string or a list of input items, got {json_type(instructions)}")
    if not located and not builder.out:
        raise FieldError("input", "is required (or response.output): the record holds no items")
    for where, item in located:
        builder.item(item, where)
    messages = native.normalize_messages(builder.finish())
    _check_fidelity(located, builder, messages)
    return messages


def _located_items(record: dict):
    source = record.get("input")
    if isinstance(source, str):
        yield "input", {"type": "message", "role": "user", "content": source}
    elif isinstance(source, list):
        yield from ((f"input[{i}]", item) for i, item in enumerate(source))
    elif source is not None:
        raise FieldError("input", f"must be a string or a list of input items, got {json_type(source)}")
    response = record.get("response")
    if response is not None:
        if not isinstance(response, dict):
            raise FieldError("response", f"must be a Responses API response object, got {json_type(response)}")
        output = response.get("output")
        if not isinstance(output, list):
            raise FieldError("response.output", f"must be a list of output items, got {json_type(output)}")
        yield from ((f"response.output[{i}]", item) for i, item in enumerate(output))
        if response.get("status") == "failed":
            error = response.get("error")
            message = error.get("message") if isinstance(error, dict) else None
            yield "response.error", {"type": "_failed", "text": message if isinstance(message, str) else ""}
    output = record.get("output")
    if output is not None:
        if not isinstance(output, list):
            raise FieldError("output", f"must be a list of output items, got {json_type(output)}")
        yield from ((f"output[{i}]", item) for i, item in enumerate(output))


class _Builder:
    """Native messages in reading order; an assistant turn gathers reasoning, text and calls."""

    def __init__(self) -> None:
        self.out: list[dict] = []
        self.instruction_messages = 0
        self.reasoning: list[str] = []
        self.texts: list[str] = []
        self.calls: list[dict] = []
        self.has_message = False
        self.tool_names: dict[str, str] = {}
        self.assistant_texts: list[tuple[str, str]] = []  # (field, text) of each assistant message item

    def emit(self, message: dict) -> None:
        self.flush()
        self.out.append(message)

    def flush(self) -> None:
        if self.reasoning or self.texts or self.calls:
            message: dict[str, Any] = {"role": "assistant", "content": "\n".join(self.reasoning + self.texts)}
            if self.calls:
                message["tool_calls"] = list(self.calls)
            self.out.append(message)
        self.reasoning, self.texts, self.calls, self.has_message = [], [], [], False

    def finish(self) -> list[dict]:
        self.flush()
        return self.out

    def item(self, item: Any, where: str) -> None:
        if not isinstance(item, dict):
            raise FieldError(where, f"must be an object, got {json_type(item)}")
        kind = item.get("type")
        if kind is None and "role" in item:
            kind = "message"  # an "easy" input message: {"role", "content"}
        if not isinstance(kind, str):
            raise FieldError(f"{where}.type", "is required (a string)" if kind is None else "must be a string")
        if kind == "message":
            self.message(item, where)
        elif kind == "reasoning":
            if self.texts or self.calls:
                self.flush()  # reasoning starts the model's next step
            self.reasoning.append(_reasoning(item, where))
        elif kind in CLIENT_CALLS:
            self.call(_client_call(item, kind, where))
        elif kind in CLIENT_OUTPUTS:
            self.emit(_client_output(item, kind, where, self.tool_names))
        elif kind in HOSTED or kind.endswith("_call"):
            call, result = _hosted(item, kind, where)
            self.call(call)
            self.emit(result)
        elif kind == "_failed":
            self.texts.append(f"[error] the response failed{': ' + item['text'] if item['text'] else ''}")
        else:
            # item_reference, compaction, mcp_list_tools, ...: nothing a reviewer can read.
            self.texts.append(placeholder(kind))

    def message(self, item: dict, where: str) -> None:
        role = item.get("role")
        if not isinstance(role, str) or role not in ROLE_MAP:
            raise FieldError(f"{where}.role", f"must be one of {', '.join(ROLE_MAP)}; got {shown(role)}")
        content = _content(item.get("content"), f"{where}.content")
        if ROLE_MAP[role] != "assistant":
            self.emit({"role": ROLE_MAP[role], "content": content})
            return
        if self.has_message or self.calls:
            self.flush()  # a second message, or one after tool calls, is a new turn
        self.has_message = True
        self.assistant_texts.append((where, content))
        if content:
            self.texts.append(content)

    def call(self, call: dict) -> None:
        if call["id"]:
            self.tool_names[call["id"]] = call["name"]
        self.calls.append(call)


def _reasoning(item: dict, where: str) -> str:
    texts = []
    for key in ("summary", "content"):
        parts = item.get(key)
        if parts is None:
            continue
        if not isinstance(parts, list):
            raise FieldError(f"{where}.{key}", f"must be a list, got {json_type(parts)}")
        for j, part in enumerate(parts):
            if not isinstance(part, dict):
                raise FieldError(f"{where}.{key}[{j}]", f"must be an object, got {json_type(part)}")
            text = native.require_str(part, "text", f"{where}.{key}[{j}].text")
            if text:
                texts.append(text)
    if not texts:
        hidden = "encrypted" if item.get("encrypted_content") else "no summary"
        return f"[reasoning: not shown ({hidden})]"
    return "[reasoning]\n" + "\n".join(texts) + "\n[/reasoning]"


def _call_id(item: dict, where: str, *, required: bool = True) -> str:
    call_id = native.require_str(item, "call_id", f"{where}.call_id", optional=not required)
    if required and not call_id:
        raise FieldError(f"{where}.call_id", "must not be empty")
    return call_id or ""


def _client_call(item: dict, kind: str, where: str) -> dict:
    call_id = _call_id(item, where)
    if kind == "function_call":
        name = _name(item, where)
        arguments = parse_arguments(item.get("arguments"), f"{where}.arguments")
    elif kind == "custom_tool_call":
        name = _name(item, where)
        arguments = native.require_str(item, "input", f"{where}.input", optional=True) or ""
    else:
        name = CLIENT_CALLS[kind]
        arguments = {k: v for k, v in item.items() if k not in ("type", "id", "call_id", "status")}
        arguments = native.check_json_value(arguments, where)
    return {"id": call_id, "name": name, "arguments": arguments}


def _client_output(item: dict, kind: str, where: str, tool_names: dict[str, str]) -> dict:
    call_id = _call_id(item, where)
    if call_id not in tool_names:
        raise FieldError(f"{where}.call_id", f"{shown(call_id)} matches no tool call before it")
    output = item.get("output")
    if isinstance(output, (str, list)) or output is None:
        text = _content(output, f"{where}.output")
    elif isinstance(output, dict):
        text = _part_text(output, f"{where}.output")
    else:
        raise FieldError(f"{where}.output", f"must be a string or a list of content parts, got {json_type(output)}")
    message: dict[str, Any] = {"role": "tool", "content": text, "tool_call_id": call_id, "name": tool_names[call_id]}
    if item.get("status") == "failed" or item.get("status") == "incomplete":
        message["is_error"] = True
    return message


def _hosted(item: dict, kind: str, where: str) -> tuple[dict, dict]:
    call_id = native.require_str(item, "id", f"{where}.id", optional=True) or ""
    status = item.get("status")
    tool = HOSTED.get(kind) or kind.removesuffix("_call")
    if kind == "web_search_call":
        action = item.get("action")
        arguments: Any = action if isinstance(action, dict) else {}
        sources = arguments.get("sources") if isinstance(arguments, dict) else None
        sources = sources if isinstance(sources, list) else []
        urls = [s["url"] for s in sources if isinstance(s, dict) and isinstance(s.get("url"), str)]
        result = "\n".join(urls)
    elif kind == "file_search_call":
        arguments = {"queries": item.get("queries")}
        results = item.get("results")
        result = native.compact_json(results, f"{where}.results") if results else ""
    elif kind == "code_interpreter_call":
        arguments = native.require_str(item, "code", f"{where}.code", optional=True) or ""
        outputs = item.get("outputs")
        lines = []
        if isinstance(outputs, list):
            for output in outputs:
                if isinstance(output, dict) and output.get("type") == "logs" and isinstance(output.get("logs"), str):
                    lines.append(output["logs"])
                elif isinstance(output, dict) and output.get("type") == "image":
                    lines.append("[image]")
        result = "\n".join(lines)
    elif kind == "image_generation_call":
        arguments = {}
        result = "[image]" if item.get("result") else ""
    elif kind == "mcp_call":
        server = native.require_str(item, "server_label", f"{where}.server_label", optional=True) or "mcp"
        tool = f"{server}.{_name(item, where)}"
        arguments = parse_arguments(item.get("arguments"), f"{where}.arguments")
        error = item.get("error")
        result = native.require_str(item, "output", f"{where}.output", optional=True) or ""
        if error:
            result = f"[error] {error if isinstance(error, str) else native.compact_json(error, f'{where}.error')}"
            status = "failed"
    else:
        arguments = {k: v for k, v in item.items() if k not in ("type", "id", "status")}
    name = tool + HOSTED_SUFFIX
    call = {"id": call_id, "name": name, "arguments": native.check_json_value(arguments, where)}
    message: dict[str, Any] = {"role": "tool", "content": result or f"[{status or 'done'}]", "name": name}
    if call_id:
        message["tool_call_id"] = call_id
    if status in ("failed", "incomplete"):
        message["is_error"] = True
    return call, message


def _name(item: dict, where: str) -> str:
    name = native.require_str(item, "name", f"{where}.name")
    if not name:
        raise FieldError(f"{where}.name", "must not be empty")
    return name


def _content(content: Any, field: str) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise FieldError(field, f"must be a string or a list of content parts, got {json_type(content)}")
    return "\n".join(text for j, part in enumerate(content) if (text := _part_text(part, f"{field}[{j}]")))


def _part_text(part: Any, field: str) -> str:
    if not isinstance(part, dict):
        raise FieldError(field, f"must be an object, got {json_type(part)}")
    kind = part.get("type")
    if not isinstance(kind, str):
        raise FieldError(f"{field}.type", "is required (a string)" if kind is None else "must be a string")
    if kind in ("input_text", "output_text", "text", "summary_text", "reasoning_text"):
        return native.require_str(part, "text", f"{field}.text") or ""
    if kind == "refusal":
        return f"[refusal] {native.require_str(part, 'refusal', f'{field}.refusal')}"
    if kind == "input_file":
        filename = part.get("filename")
        return f"[file: {filename}]" if isinstance(filename, str) and filename else "[file]"
    return PART_PLACEHOLDERS.get(kind) or placeholder(kind)


def _check_fidelity(located: list[tuple[str, Any]], builder: _Builder, messages: list[dict]) -> None:
    """Messages, tool calls and results in the source against the native messages: never lose one silently."""
    source = {"messages": 0, "tool calls": 0, "tool results": 0}
    for _where, item in located:
        kind = item.get("type") or ("message" if "role" in item else None)
        if kind == "message" and ROLE_MAP.get(item.get("role")) != "assistant":
            source["messages"] += 1
        elif kind in CLIENT_CALLS:
            source["tool calls"] += 1
        elif kind in CLIENT_OUTPUTS:
            source["tool results"] += 1
        elif isinstance(kind, str) and (kind in HOSTED or kind.endswith("_call")):
            source["tool calls"] += 1
            source["tool results"] += 1
    stored = {
        # A string ``instructions`` adds a system message that is no item of the source.
        "messages": sum(1 for m in messages if m["role"] in ("system", "user")) - builder.instruction_messages,
        "tool calls": sum(len(m.get("tool_calls", ())) for m in messages),
        "tool results": sum(1 for m in messages if m["role"] == "tool"),
    }
    for what, count in source.items():
        if stored[what] != count:
            raise FieldError("(record)", f"{count} {what} in the source but {stored[what]} converted; some were lost")
    assistant_text = "\n".join(m["content"] for m in messages if m["role"] == "assistant")
    for where, text in builder.assistant_texts:
        if text and text not in assistant_text:
            raise FieldError(where, "its text was lost in conversion")
