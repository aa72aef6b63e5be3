"""Inspect AI eval logs (``--log-format json``) -> one native record per sample.

Schema: ``inspect_ai/log/_log.py`` (EvalLog, EvalSpec, EvalSample),
``inspect_ai/model/_chat_message.py`` (ChatMessage*), ``inspect_ai/_util/content.py``
(Content*) and ``inspect_ai/tool/_tool_call.py`` (ToolCall, ToolCallError).
The binary ``.eval`` format (Inspect's default) is a zip archive of the same objects: the log
without its samples in ``header.json`` (``_journal/start.json`` while the eval still runs) and
one EvalSample per ``samples/<id>_epoch_<n>.json``; ``files.py`` reads it sample by sample and
hands them to ``iter_sample_records``.
"""

from __future__ import annotations

from collections import Counter
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
    run = run_info(doc)
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
        yield sample_record(sample, index, run)


def run_info(doc: Any) -> dict:
    """What every sample of one log shares: task, model and the ids of this run.

    Raises ``FieldError`` for a log that is malformed as a whole.
    """
    if not isinstance(doc, dict):
        raise FieldError("(document)", f"must be an Inspect log object, got {json_type(doc)}")
    spec = doc.get("eval")
    if not isinstance(spec, dict):
        raise FieldError("eval", f"must be an object (the Inspect eval spec), got {json_type(spec)}")
    task = native.require_str(spec, "task", "eval.task") or ""
    run: dict[str, Any] = {"task": task}
    for key in ("model", "eval_id", "run_id", "task_id"):
        if isinstance(spec.get(key), str) and spec[key]:
            run[key] = spec[key]
    return run


def sample_record(sample: Any, index: int, run: dict) -> tuple[str, dict | FieldError]:
    """One sample as ``(location, native record or FieldError)``."""
    location = _location(sample, index)
    try:
        return location, _sample_record(sample, run)
    except FieldError as exc:
        return location, exc


def _location(sample: Any, index: int) -> str:
    if isinstance(sample, dict):
        sample_id, epoch = sample.get("id"), sample.get("epoch")
        if _is_id(sample_id) and isinstance(epoch, int) and not isinstance(epoch, bool):
            return f"sample {sample_id} epoch {epoch}"
    return f"samples[{index}]"


def _is_id(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _sample_record(sample: Any, run: dict) -> dict:
    task = run["task"]
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
    fidelity = _fidelity(sample.get("messages"), messages)
    remaining = {k: v for k, v in metadata.items() if k not in REVIEW_FIELDS and k != "external_id"}
    # The eval id names one run of one task by one model, so two models' runs of the same
    # task (or a rerun) are different items, and re-sending the same log is idempotent.
    run_id = run.get("eval_id") or run.get("run_id")
    default_id = f"{task}/{run_id}/{sample_id}/{epoch}" if run_id else f"{task}/{sample_id}/{epoch}"
    record: dict[str, Any] = {
        "external_id": metadata.get("external_id") or default_id,
        "title": f"{task} — sample {sample_id}" + (f" (epoch {epoch})" if epoch != 1 else ""),
        "messages": messages,
        # Sample metadata first, so a user key cannot mask which task/sample/run this was.
        "metadata": {**remaining, **run, "sample_id": sample_id, "epoch": epoch, "fidelity": fidelity},
    }
    target = sample.get("target")
    if target is not None and target != "":
        record["metadata"]["target"] = native.check_json_value(target, "target")
    scores = _scores(sample.get("scores"))
    if scores:
        record["metadata"]["scores"] = scores
    warnings = _lost_by_design(sample.get("messages"))
    if warnings:
        record["metadata"]["fidelity_warnings"] = warnings
    error = sample.get("error")
    if error is not None:
        # An errored sample is kept (its transcript shows how far it got) and marked as such.
        message = error.get("message") if isinstance(error, dict) else None
        record["metadata"]["sample_error"] = message if isinstance(message, str) and message else "error"
    for key in REVIEW_FIELDS:
        if metadata.get(key) is not None:
            record[key] = metadata[key]
    return record


def _counts(messages: list) -> dict:
    return {
        "messages": len(messages),
        "tool_calls": sum(len(m.get("tool_calls") or []) for m in messages if isinstance(m, dict)),
        "tool_results": sum(1 for m in messages if isinstance(m, dict) and m.get("role") == "tool"),
    }


def _fidelity(source: list, stored: list[dict]) -> dict:
    """Messages, tool calls and tool results in the sample against what will be stored.

    Any difference is an error naming what was lost: a transcript missing a turn must not
    reach a reviewer looking whole.
    """
    counted, kept = _counts(source), _counts(stored)
    lost = [f"{counted[k] - kept[k]} of {counted[k]} {k.replace('_', ' ')}" for k in counted if counted[k] != kept[k]]
    if lost:
        raise FieldError("messages", "would lose " + ", ".join(lost) + " in conversion")
    return counted


def _lost_by_design(source: list) -> list[str]:
    """What the transcript shows only as a marker: media and documents as ``[image]`` and the
    like, redacted reasoning (an encrypted blob) as ``[redacted reasoning]``; said, never silent."""
    kinds: Counter[str] = Counter()
    for message in source:
        content = message.get("content") if isinstance(message, dict) else None
        for part in content if isinstance(content, list) else []:
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "reasoning" and part.get("redacted") is True:
                kinds["redacted reasoning"] += 1
            elif isinstance(kind, str) and kind not in ("text", "reasoning", "tool_use"):
                kinds[placeholder(kind).strip("[]")] += 1
    return [f"{n} {kind} part{'s' if n != 1 else ''} shown as a placeholder" for kind, n in sorted(kinds.items())]


def _scores(raw: Any) -> dict:
    """Each scorer's value (and answer and explanation, where given): ``{name: {...}}``."""
    if not isinstance(raw, dict):
        return {}
    out = {}
    for name, score in raw.items():
        if not isinstance(score, dict) or "value" not in score:
            continue
        kept = {k: score[k] for k in ("value", "answer", "explanation") if score.get(k) is not None}
        out[str(name)] = native.check_json_value(kept, f"scores.{name}")
    return out


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
