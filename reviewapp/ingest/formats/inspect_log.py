"""Inspect AI eval logs (``--log-format json``) -> one native record per sample.

Schema: ``inspect_ai/log/_log.py`` (EvalLog, EvalSpec, EvalSample),
``inspect_ai/model/_chat_message.py`` (ChatMessage*), ``inspect_ai/_util/content.py``
(Content*) and ``inspect_ai/tool/_tool_call.py`` (ToolCall, ToolCallError).
The binary ``.eval`` format is a zip archive; convert it with ``inspect log convert
--to json`` first.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from . import FieldError, native
from .openai import json_type, placeholder, shown

REVIEW_FIELDS = ("ai_recommendation", "ai_rationale", "ai_confidence", "gold_label", "is_probe", "priority")
ROLES = ("system", "user", "assistant", "tool")
# Inspect moves large or repeated strings (mostly images) out of messages into
# sample.attachments and leaves "attachment://<hash>" in their place.
ATTACHMENT_PREFIX = "attachment://"


def looks_like_inspect_log(doc: Any) -> bool:
    if not isinstance(doc, dict) or "version" not in doc:
        return False
    spec = doc.get("eval")
    return isinstance(spec, dict) and "task" in spec


def iter_records(doc: dict) -> Iterator[tuple[str, dict | FieldError]]:
    if not isinstance(doc, dict):
        raise FieldError("(document)", f"must be an Inspect log object, got {json_type(doc)}")
    spec = doc.get("eval")
    if not isinstance(spec, dict):
        raise FieldError("eval", f"must be an object (the Inspect eval spec), got {json_type(spec)}")
    task = native.require_str(spec, "task", "eval.task") or ""
    model = spec.get("model") if isinstance(spec.get("model"), str) else None
    samples = doc.get("samples")
    if samples is None:
        raise FieldError(
            "samples",
            "the log has no samples (written with --no-log-samples, or a header-only export); "
            "export the full log with `inspect log dump`",
        )
    if not isinstance(samples, list):
        raise FieldError("samples", f"must be a list, got {json_type(samples)}")
    for index, sample in enumerate(samples):
        location = _location(sample, index)
        try:
            yield location, _sample_record(sample, task, model)
        except FieldError as exc:
            yield location, exc


def _location(sample: Any, index: int) -> str:
    if isinstance(sample, dict):
        sample_id, epoch = sample.get("id"), sample.get("epoch")
        if _is_id(sample_id) and isinstance(epoch, int) and not isinstance(epoch, bool):
            return f"sample {sample_id} epoch {epoch}"
    return f"samples[{index}]"


def _is_id(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _sample_record(sample: Any, task: str, model: str | None) -> dict:
    if not isinstance(sample, dict):
        raise FieldError("(sample)", f"must be an object, got {json_type(sample)}")
    sample_id = sample.get("id")
    if not _is_id(sample_id):
        raise FieldError(
            "id", "is required (a string or integer)" if sample_id is None else "must be a string or integer"
        )
    epoch = sample.get("epoch", 1)
    if not isinstance(epoch, int) or isinstance(epoch, bool):
        raise FieldError("epoch", f"must be an integer, got {json_type(epoch)}")
    metadata = sample.get("metadata")
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise FieldError("metadata", f"must be an object, got {json_type(metadata)}")
    attachments = sample.get("attachments")
    attachments = attachments if isinstance(attachments, dict) else {}

    messages = _messages(sample.get("messages"), attachments)
    remaining = {k: v for k, v in metadata.items() if k not in REVIEW_FIELDS and k != "external_id"}
    record: dict[str, Any] = {
        "external_id": metadata.get("external_id") or f"{task}/{sample_id}/{epoch}",
        "title": f"{task} — sample {sample_id}" + (f" (epoch {epoch})" if epoch != 1 else ""),
        "messages": messages,
        # Sample metadata first, so a user key cannot mask which task/sample this was.
        "metadata": {**remaining, "task": task, "sample_id": sample_id, "epoch": epoch},
    }
    if model:
        record["metadata"]["model"] = model
    error = sample.get("error")
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        record["metadata"]["sample_error"] = error["message"]
    for key in REVIEW_FIELDS:
        if metadata.get(key) is not None:
            record[key] = metadata[key]
    return record


def _messages(raw: Any, attachments: dict) -> list[dict]:
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        raise FieldError("messages", f"must be a list of messages, got {json_type(raw)}")
    tool_names: dict[str, str] = {}
    out = [_message(m, f"messages[{i}]", attachments, tool_names) for i, m in enumerate(raw)]
    if not out:
        raise FieldError("messages", "the sample has no messages (did it fail before the solver ran?)")
    return native.normalize_messages(out)


def _message(message: Any, field: str, attachments: dict, tool_names: dict[str, str]) -> dict:
    if not isinstance(message, dict):
        raise FieldError(field, f"must be an object, got {json_type(message)}")
    role = message.get("role")
    if role not in ROLES:
        raise FieldError(f"{field}.role", f"must be one of {', '.join(ROLES)}; got {shown(role)}")
    content = _content(message.get("content"), f"{field}.content", attachments)
    if role == "assistant":
        out: dict[str, Any] = {"role": "assistant", "content": content}
        calls = _tool_calls(message.get("tool_calls"), f"{field}.tool_calls")
        if calls:
            out["tool_calls"] = calls
            tool_names.update({c["id"]: c["name"] for c in calls if c["id"]})
        return out
    if role == "tool":
        out = {"role": "tool", "content": content}
        call_id = native.require_str(message, "tool_call_id", f"{field}.tool_call_id", optional=True)
        if call_id:
            out["tool_call_id"] = call_id
        name = native.require_str(message, "function", f"{field}.function", optional=True)
        name = name or tool_names.get(call_id or "")
        if name:
            out["name"] = name
        error = message.get("error")
        if error is not None:
            out["is_error"] = True
            out["content"] = _with_error(content, error, f"{field}.error", attachments)
        return out
    return {"role": role, "content": content}


def _with_error(content: str, error: Any, field: str, attachments: dict) -> str:
    if not isinstance(error, dict):
        raise FieldError(field, f"must be an object with type and message, got {json_type(error)}")
    text = _resolve(native.require_str(error, "message", f"{field}.message", optional=True) or "", attachments)
    kind = error.get("type")
    label = f"Error ({kind})" if isinstance(kind, str) and kind not in ("", "unknown") else "Error"
    line = f"{label}: {text}" if text else label
    return f"{content}\n\n{line}" if content else line


def _tool_calls(raw: Any, field: str) -> list[dict]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise FieldError(field, f"must be a list, got {json_type(raw)}")
    calls = []
    for j, call in enumerate(raw):
        where = f"{field}[{j}]"
        if not isinstance(call, dict):
            raise FieldError(where, f"must be an object, got {json_type(call)}")
        name = native.require_str(call, "function", f"{where}.function")
        if not name:
            raise FieldError(f"{where}.function", "must not be empty")
        call_id = native.require_str(call, "id", f"{where}.id", optional=True) or ""
        arguments = call.get("arguments")
        arguments = {} if arguments is None else native.check_json_value(arguments, f"{where}.arguments")
        calls.append({"id": call_id, "name": name, "arguments": arguments})
    return calls


def _content(content: Any, field: str, attachments: dict) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return _resolve(content, attachments)
    if not isinstance(content, list):
        raise FieldError(field, f"must be a string or a list of content objects, got {json_type(content)}")
    reasoning, texts = [], []
    for j, item in enumerate(content):
        where = f"{field}[{j}]"
        if not isinstance(item, dict):
            raise FieldError(where, f"must be an object, got {json_type(item)}")
        kind = item.get("type")
        if not isinstance(kind, str):
            raise FieldError(f"{where}.type", "is required (a string)" if kind is None else "must be a string")
        if kind == "text":
            text = _resolve(native.require_str(item, "text", f"{where}.text") or "", attachments)
            texts.append(f"[refusal] {text}" if item.get("refusal") is True else text)
        elif kind == "reasoning":
            reasoning.append(_reasoning(item, where, attachments))
        elif kind == "tool_use":
            texts.append(_server_tool_use(item, where, attachments))
        elif kind == "document":
            filename = item.get("filename")
            texts.append(f"[document: {filename}]" if isinstance(filename, str) and filename else "[document]")
        else:
            texts.append(placeholder(kind))  # image, audio, video, data, ...
    return "\n".join(t for t in reasoning + texts if t)


def _reasoning(item: dict, where: str, attachments: dict) -> str:
    text = _resolve(native.require_str(item, "reasoning", f"{where}.reasoning") or "", attachments)
    summary = native.require_str(item, "summary", f"{where}.summary", optional=True)
    if item.get("redacted") is True:
        # Redacted reasoning holds the provider's encrypted blob, not text: show the summary only.
        return f"[reasoning summary]\n{summary}\n" if summary else "[redacted reasoning]\n"
    return f"[reasoning]\n{text}\n"


def _server_tool_use(item: dict, where: str, attachments: dict) -> str:
    """ContentToolUse: a provider-side tool (web search, MCP) the model ran within its turn."""
    name = native.require_str(item, "name", f"{where}.name", optional=True) or "tool"
    tool_type = native.require_str(item, "tool_type", f"{where}.tool_type", optional=True)
    arguments = _resolve(native.require_str(item, "arguments", f"{where}.arguments", optional=True) or "", attachments)
    result = _resolve(native.require_str(item, "result", f"{where}.result", optional=True) or "", attachments)
    error = native.require_str(item, "error", f"{where}.error", optional=True)
    head = f"[{tool_type}: {name}]" if tool_type else f"[{name}]"
    lines = [f"{head} {arguments}".rstrip()]
    if result:
        lines.append(result)
    if error:
        lines.append(f"Error: {error}")
    return "\n".join(lines)


def _resolve(text: str, attachments: dict) -> str:
    if text.startswith(ATTACHMENT_PREFIX):
        value = attachments.get(text[len(ATTACHMENT_PREFIX) :])
        if isinstance(value, str):
            return value
    return text
