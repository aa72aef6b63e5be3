"""OpenTelemetry GenAI spans (OTLP JSON export) -> one native record per trace.

Follows the OpenTelemetry GenAI semantic conventions: inference spans
(``gen_ai.operation.name`` = ``chat`` / ``text_completion`` / ``generate_content``)
carry ``gen_ai.input.messages``, ``gen_ai.output.messages`` and
``gen_ai.system_instructions`` (JSON: ``[{"role", "parts": [...]}]``); tool spans
(``execute_tool``) carry ``gen_ai.tool.name``, ``gen_ai.tool.call.id``,
``gen_ai.tool.call.arguments`` and ``gen_ai.tool.call.result``. Older
instrumentations are read too: per-message span events (``gen_ai.user.message``,
``gen_ai.choice``, ...) and ``gen_ai.prompt`` / ``gen_ai.completion`` attributes
(a JSON list, or flattened as ``gen_ai.prompt.0.role`` ...).

A trace becomes one transcript: the input of its first inference span, then, in
start-time order, each inference span's output and each tool span's result (a
result already present by call id is skipped). Later inference spans add only what
follows their last assistant message (the tool results and user turns the
application appended), so multi-turn conversations are not lost.

Review fields come from ``reviewapp.*`` attributes on any span (the root span wins):
``reviewapp.external_id`` (default: the trace id), ``reviewapp.title`` (default:
``gen_ai.agent.name``, else the root span's name), ``reviewapp.ai_recommendation``,
``reviewapp.ai_rationale``, ``reviewapp.ai_confidence``, ``reviewapp.gold_label``,
``reviewapp.is_probe``, ``reviewapp.priority``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from . import FieldError, native
from . import openai as openai_format
from .openai import json_type, placeholder, shown

INFERENCE_OPS = ("chat", "text_completion", "generate_content")
AGENT_OPS = ("invoke_agent", "create_agent")
TOOL_OP = "execute_tool"
ROLE_MAP = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "assistant",
    "model": "assistant",  # Gemini's name for the assistant
    "tool": "tool",
    "function": "tool",
}
REVIEW_FIELDS = ("ai_recommendation", "ai_rationale", "ai_confidence", "gold_label", "is_probe", "priority")
LEGACY_INPUT_EVENTS = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}
FLAT_KEY = re.compile(r"^gen_ai\.(prompt|completion)\.(\d{1,6})\.(.+)$")
FLAT_TOOL_CALL = re.compile(r"^tool_calls\.(\d{1,4})\.(id|name|arguments)$")
# OTLP AnyValue nests as {"arrayValue": {"values": [...]}}; bound it so no input can
# drive the decoder into a RecursionError.
MAX_ANY_VALUE_DEPTH = 64
MAX_FLAT_INDEX = native.MAX_MESSAGES


@dataclass
class Span:
    path: str
    index: int
    trace_id: str
    span_id: str
    parent_id: str
    name: str
    start: int | None
    attributes: dict[str, Any]
    resource: dict[str, Any]
    events: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)  # (path, name, attributes)
    status_error: bool = False
    status_message: str = ""

    def attr_path(self, key: str) -> str:
        return f"{self.path}.attributes[{key}]"

    @property
    def operation(self) -> str | None:
        op = self.attributes.get("gen_ai.operation.name")
        return op if isinstance(op, str) else None


def looks_like_otlp(doc: Any) -> bool:
    return isinstance(doc, dict) and "resourceSpans" in doc


def iter_records(doc: dict) -> Iterator[tuple[str, dict | FieldError]]:
    if not isinstance(doc, dict):
        raise FieldError("(document)", f"must be an OTLP JSON object, got {json_type(doc)}")
    resource_spans = doc.get("resourceSpans")
    if not isinstance(resource_spans, list):
        raise FieldError(
            "resourceSpans", f"must be a list (an OTLP JSON trace export), got {json_type(resource_spans)}"
        )
    traces: dict[str, list[Span]] = {}
    broken: dict[str, FieldError] = {}
    yield from _collect_spans(resource_spans, traces, broken)
    for trace_id in {**traces, **broken}:
        location = f"trace {trace_id}"
        if trace_id in broken:
            yield location, broken[trace_id]
            continue
        try:
            yield location, _trace_record(trace_id, traces[trace_id])
        except FieldError as exc:
            yield location, exc


# --- reading the OTLP structure ---------------------------------------------------------


def _collect_spans(
    resource_spans: list, traces: dict[str, list[Span]], broken: dict[str, FieldError]
) -> Iterator[tuple[str, FieldError]]:
    """Group spans by trace; yield errors that belong to no trace (unreadable containers)."""
    count = 0
    for i, resource_span in enumerate(resource_spans):
        path = f"resourceSpans[{i}]"
        try:
            resource = _resource_attributes(resource_span, path)
            scope_spans = _list_field(resource_span, "scopeSpans", path)
        except FieldError as exc:
            yield path, exc
            continue
        for j, scope_span in enumerate(scope_spans):
            scope_path = f"{path}.scopeSpans[{j}]"
            try:
                spans = _list_field(scope_span, "spans", scope_path)
            except FieldError as exc:
                yield scope_path, exc
                continue
            for k, raw in enumerate(spans):
                span_path = f"{scope_path}.spans[{k}]"
                if not isinstance(raw, dict):
                    yield span_path, FieldError(span_path, f"must be an object, got {json_type(raw)}")
                    continue
                trace_id = raw.get("traceId")
                if not isinstance(trace_id, str) or not trace_id:
                    # Without a trace id the span belongs to no record: report it on its own.
                    problem = (
                        "is required" if trace_id in (None, "") else f"must be a string, got {json_type(trace_id)}"
                    )
                    yield span_path, FieldError(f"{span_path}.traceId", problem)
                    continue
                try:
                    span = _span(raw, span_path, count, trace_id, resource)
                except FieldError as exc:
                    broken.setdefault(trace_id, exc)  # report the first problem of that trace
                    continue
                count += 1
                traces.setdefault(trace_id, []).append(span)


def _list_field(obj: Any, key: str, path: str) -> list:
    if not isinstance(obj, dict):
        raise FieldError(path, f"must be an object, got {json_type(obj)}")
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise FieldError(f"{path}.{key}", f"must be a list, got {json_type(value)}")
    return value


def _resource_attributes(resource_span: Any, path: str) -> dict[str, Any]:
    if not isinstance(resource_span, dict):
        raise FieldError(path, f"must be an object, got {json_type(resource_span)}")
    resource = resource_span.get("resource")
    if resource is None:
        return {}
    if not isinstance(resource, dict):
        raise FieldError(f"{path}.resource", f"must be an object, got {json_type(resource)}")
    return _attributes(resource.get("attributes"), f"{path}.resource.attributes")


def _span(raw: dict, path: str, index: int, trace_id: str, resource: dict[str, Any]) -> Span:
    span_id = _optional_str(raw, "spanId", path)
    parent_id = _optional_str(raw, "parentSpanId", path)
    name = _optional_str(raw, "name", path)
    span = Span(
        path=path,
        index=index,
        trace_id=trace_id,
        span_id=span_id,
        parent_id=parent_id,
        name=name,
        start=_nanos(raw.get("startTimeUnixNano"), f"{path}.startTimeUnixNano"),
        attributes=_attributes(raw.get("attributes"), f"{path}.attributes"),
        resource=resource,
    )
    events = raw.get("events")
    if events is not None:
        if not isinstance(events, list):
            raise FieldError(f"{path}.events", f"must be a list, got {json_type(events)}")
        for e, event in enumerate(events):
            event_path = f"{path}.events[{e}]"
            if not isinstance(event, dict):
                raise FieldError(event_path, f"must be an object, got {json_type(event)}")
            event_name = _optional_str(event, "name", event_path)
            attributes = _attributes(event.get("attributes"), f"{event_path}.attributes")
            span.events.append((event_path, event_name, attributes))
    status = raw.get("status")
    if isinstance(status, dict):
        # OTLP JSON writes the enum as 2; some exporters write its name.
        span.status_error = status.get("code") in (2, "2", "STATUS_CODE_ERROR", "ERROR")
        message = status.get("message")
        span.status_message = message if isinstance(message, str) else ""
    return span


def _optional_str(obj: dict, key: str, path: str) -> str:
    value = obj.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise FieldError(f"{path}.{key}", f"must be a string, got {json_type(value)}")
    return value


def _nanos(value: Any, path: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit() and len(value) < 30:
        return int(value)
    raise FieldError(path, "must be an integer number of nanoseconds (a string of digits in OTLP JSON)")


def _attributes(raw: Any, path: str) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, list):
        raise FieldError(path, f"must be a list of key/value objects, got {json_type(raw)}")
    out: dict[str, Any] = {}
    for n, item in enumerate(raw):
        where = f"{path}[{n}]"
        if not isinstance(item, dict):
            raise FieldError(where, f"must be an object with key and value, got {json_type(item)}")
        key = item.get("key")
        if not isinstance(key, str):
            raise FieldError(f"{where}.key", "is required (a string)" if key is None else "must be a string")
        out[key] = _any_value(item.get("value"), f"{where}.value", 0)
    return out


def _any_value(value: Any, path: str, depth: int) -> Any:
    """Decode an OTLP AnyValue into plain JSON (None for an empty value)."""
    if depth > MAX_ANY_VALUE_DEPTH:
        raise FieldError(path, f"nested deeper than {MAX_ANY_VALUE_DEPTH} levels")
    if value is None:
        return None
    if not isinstance(value, dict):
        raise FieldError(path, f'must be an AnyValue object like {{"stringValue": ...}}, got {json_type(value)}')
    if "stringValue" in value:
        return _typed(value["stringValue"], str, f"{path}.stringValue", "a string")
    if "boolValue" in value:
        return _typed(value["boolValue"], bool, f"{path}.boolValue", "true or false")
    if "intValue" in value:
        raw = value["intValue"]
        if isinstance(raw, str) and re.fullmatch(r"-?\d{1,19}", raw):
            raw = int(raw)  # int64 travels as a string in OTLP JSON
        if isinstance(raw, int) and not isinstance(raw, bool):
            if not -(2**63) <= raw < 2**63:
                raise FieldError(f"{path}.intValue", "is outside the 64-bit integer range")
            return raw
        raise FieldError(f"{path}.intValue", "must be an integer (a string of digits in OTLP JSON)")
    if "doubleValue" in value:
        raw = value["doubleValue"]
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):
            return float(raw)
        if isinstance(raw, str):
            try:
                return float(raw)
            except ValueError:
                pass
        raise FieldError(f"{path}.doubleValue", "must be a number")
    if "bytesValue" in value:
        return _typed(value["bytesValue"], str, f"{path}.bytesValue", "a base64 string")
    if "arrayValue" in value:
        values = _values(value["arrayValue"], f"{path}.arrayValue")
        return [_any_value(v, f"{path}.arrayValue.values[{n}]", depth + 1) for n, v in enumerate(values)]
    if "kvlistValue" in value:
        values = _values(value["kvlistValue"], f"{path}.kvlistValue")
        out = {}
        for n, kv in enumerate(values):
            where = f"{path}.kvlistValue.values[{n}]"
            if not isinstance(kv, dict) or not isinstance(kv.get("key"), str):
                raise FieldError(where, "must be an object with a string key and a value")
            out[kv["key"]] = _any_value(kv.get("value"), f"{where}.value", depth + 1)
        return out
    return None


def _typed(value: Any, kind: type, path: str, wanted: str) -> Any:
    if not isinstance(value, kind):
        raise FieldError(path, f"must be {wanted}, got {json_type(value)}")
    return value


def _values(container: Any, path: str) -> list:
    if not isinstance(container, dict):
        raise FieldError(path, f"must be an object with a values list, got {json_type(container)}")
    values = container.get("values", [])
    if values is None:
        return []
    if not isinstance(values, list):
        raise FieldError(f"{path}.values", f"must be a list, got {json_type(values)}")
    return values


# --- one trace -> one record ------------------------------------------------------------


def _trace_record(trace_id: str, spans: list[Span]) -> dict:
    ordered = sorted(spans, key=lambda s: (s.start is None, s.start or 0, s.index))
    by_id = {s.span_id: s for s in spans if s.span_id}
    roots = [s for s in ordered if not s.parent_id or s.parent_id not in by_id]
    root = roots[0] if roots else ordered[0]

    messages = _transcript(ordered, by_id)
    if not messages:
        raise FieldError(
            "gen_ai.input.messages",
            "no span in this trace carries GenAI messages (gen_ai.input.messages, gen_ai.output.messages, "
            "gen_ai.* message events, gen_ai.prompt / gen_ai.completion) or tool results",
        )
    messages = native.normalize_messages(messages)

    review_order = [root] + [s for s in ordered if s is not root]
    record: dict[str, Any] = {
        "external_id": trace_id,
        "title": _title(root, ordered),
        "messages": messages,
        "metadata": _metadata(trace_id, root, ordered),
    }
    external_id = _first_attr(review_order, "reviewapp.external_id")
    if external_id is not None:
        record["external_id"] = str(external_id) if isinstance(external_id, int) else external_id
    for key in REVIEW_FIELDS:
        value = _first_attr(review_order, f"reviewapp.{key}")
        if value is not None:
            record[key] = value
    return record


def _first_attr(spans: list[Span], key: str) -> Any:
    for span in spans:
        value = span.attributes.get(key)
        if value is not None:
            return value
    return None


def _title(root: Span, ordered: list[Span]) -> str:
    review_order = [root, *ordered]
    title = _first_attr(review_order, "reviewapp.title")
    if isinstance(title, str) and title:
        return title
    agents = [root] + [s for s in ordered if s.operation in AGENT_OPS]
    name = _first_attr(agents, "gen_ai.agent.name") or _first_attr(ordered, "gen_ai.agent.name")
    if isinstance(name, str) and name:
        return name
    return root.name or f"trace {root.trace_id}"


def _metadata(trace_id: str, root: Span, ordered: list[Span]) -> dict:
    metadata: dict[str, Any] = {"trace_id": trace_id}
    service = root.resource.get("service.name")
    if isinstance(service, str):
        metadata["service.name"] = service
    inference_first = [s for s in ordered if s.operation in INFERENCE_OPS] + [root, *ordered]
    for key, attrs, spans in (
        ("model", ("gen_ai.response.model", "gen_ai.request.model"), inference_first),
        ("provider", ("gen_ai.provider.name", "gen_ai.system"), inference_first),
        ("agent_name", ("gen_ai.agent.name",), [root, *ordered]),
        ("conversation_id", ("gen_ai.conversation.id",), [root, *ordered]),
    ):
        for attr in attrs:
            value = _first_attr(spans, attr)
            if isinstance(value, str) and value:
                metadata[key] = value
                break
    return metadata


def _transcript(ordered: list[Span], by_id: dict[str, Span]) -> list[dict]:
    inference = [s for s in ordered if _is_inference(s)]
    if not any(_has_messages(s) for s in inference):
        # Some agent frameworks record the conversation on the invoke_agent span only.
        inference = [s for s in ordered if s.operation in AGENT_OPS and _has_messages(s)]
    chosen = {id(s) for s in inference}
    tools = {id(s) for s in ordered if s.operation == TOOL_OP}
    # A chat span inside another chat span is the same call recorded twice (two
    # instrumentations stacked, e.g. a framework over the provider SDK): keep the outer.
    # A chat span inside a tool span is the tool's own business (a sub-agent, a
    # summarizer): the conversation shows only the tool's result.
    inference = [
        s for s in inference if not _has_ancestor_in(s, by_id, chosen) and not _has_ancestor_in(s, by_id, tools)
    ]
    chosen = {id(s) for s in inference}

    state = _Transcript()
    for span in ordered:
        if id(span) in chosen:
            inputs, outputs = _span_messages(span, state.tool_names)
            state.add_inputs(inputs)
            state.add_outputs(outputs)
        elif span.operation == TOOL_OP:
            state.add_tool_span(span)
    return state.messages


def _is_inference(span: Span) -> bool:
    op = span.operation
    if op in INFERENCE_OPS:
        return True
    return op not in (TOOL_OP, *AGENT_OPS) and _has_messages(span)


def _has_messages(span: Span) -> bool:
    attrs = span.attributes
    if any(
        k in attrs for k in ("gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.prompt", "gen_ai.completion")
    ):
        return True
    if any(FLAT_KEY.match(k) for k in attrs):
        return True
    return any(
        name in LEGACY_INPUT_EVENTS or name.startswith(("gen_ai.choice", "gen_ai.content."))
        for _, name, _ in span.events
    )


def _has_ancestor_in(span: Span, by_id: dict[str, Span], chosen: set[int]) -> bool:
    seen = 0
    parent = by_id.get(span.parent_id)
    while parent is not None and seen < len(by_id):  # bounded: parent links may form a cycle
        if id(parent) in chosen:
            return True
        parent = by_id.get(parent.parent_id)
        seen += 1
    return False


class _Transcript:
    def __init__(self) -> None:
        self.messages: list[dict] = []
        self.positions: dict[bytes, list[int]] = {}  # message fingerprint -> its indices
        self.tool_names: dict[str, str] = {}
        self.call_ids: set[str] = set()
        self.result_ids: set[str] = set()
        self.had_inputs = False

    def add_inputs(self, inputs: list[dict]) -> None:
        if not self.had_inputs:
            self.had_inputs = True
            for message in inputs:
                self._append(message)
            return
        # Later calls resend the conversation. Anchor on the last assistant message the
        # input shares with the transcript; what follows it in the input and is not yet in
        # the transcript after that point is new (tool results, a user turn, or assistant
        # turns whose output was not captured).
        keys = [_fingerprint(m) for m in inputs]
        anchor = next(
            (
                (i, self.positions[keys[i]][-1])
                for i in range(len(inputs) - 1, -1, -1)
                if inputs[i]["role"] == "assistant" and keys[i] in self.positions
            ),
            None,
        )
        if anchor is None:
            if not any(m["role"] == "assistant" for m in inputs):
                return  # a retry of the first call, or an unrelated side call
            start, existing = 0, set(self.positions)
        else:
            start = anchor[0] + 1
            existing = {_fingerprint(m) for m in self.messages[anchor[1] + 1 :]}
        for message, key in zip(inputs[start:], keys[start:], strict=True):
            if key not in existing:
                self._append(message)

    def add_outputs(self, outputs: list[dict]) -> None:
        for message in outputs:
            if self.messages and message == self.messages[-1]:
                continue
            self._append(message)

    def add_tool_span(self, span: Span) -> None:
        attrs = span.attributes
        call_id = attrs.get("gen_ai.tool.call.id")
        call_id = str(call_id) if isinstance(call_id, (str, int)) and not isinstance(call_id, bool) else ""
        if call_id and call_id in self.result_ids:
            return
        name = attrs.get("gen_ai.tool.name")
        name = name if isinstance(name, str) and name else ""
        has_result = "gen_ai.tool.call.result" in attrs
        if not has_result and not span.status_error:
            return  # content capture was off: nothing to show
        if (not call_id or call_id not in self.call_ids) and name:
            # The model's request for this call was not recorded (no captured chat
            # output): show the call from the tool span itself so the result has context.
            arguments = openai_format.parse_arguments(
                attrs.get("gen_ai.tool.call.arguments"), span.attr_path("gen_ai.tool.call.arguments")
            )
            self._append(
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [{"id": call_id, "name": name, "arguments": arguments}],
                }
            )
        content = _to_text(attrs.get("gen_ai.tool.call.result"), span.attr_path("gen_ai.tool.call.result"))
        if span.status_error and not content:
            content = span.status_message or "[error]"
        message: dict[str, Any] = {"role": "tool", "content": content}
        if call_id:
            message["tool_call_id"] = call_id
        if name or self.tool_names.get(call_id):
            message["name"] = name or self.tool_names[call_id]
        if span.status_error:
            message["is_error"] = True
        self._append(message)

    def _append(self, message: dict) -> None:
        if message["role"] == "tool":
            call_id = message.get("tool_call_id")
            if call_id:
                if call_id in self.result_ids:
                    return
                self.result_ids.add(call_id)
        for call in message.get("tool_calls", ()):
            if call["id"]:
                self.call_ids.add(call["id"])
                self.tool_names[call["id"]] = call["name"]
        self.positions.setdefault(_fingerprint(message), []).append(len(self.messages))
        self.messages.append(message)


def _fingerprint(message: dict) -> bytes:
    try:
        return orjson.dumps(message, option=orjson.OPT_SORT_KEYS)
    except (orjson.JSONEncodeError, TypeError):
        return repr(message).encode()


# --- the messages of one inference span --------------------------------------------------


def _span_messages(span: Span, tool_names: dict[str, str]) -> tuple[list[dict], list[dict]]:
    attrs = span.attributes
    inputs: list[dict] = []
    outputs: list[dict] = []
    system = _system_instructions(span)
    if "gen_ai.input.messages" in attrs or "gen_ai.output.messages" in attrs:
        for key, target in (("gen_ai.input.messages", inputs), ("gen_ai.output.messages", outputs)):
            if key in attrs:
                path = span.attr_path(key)
                target.extend(_parts_messages(_json_attr(attrs[key], path), path, tool_names))
    elif _legacy_events(span):
        inputs, outputs = _event_messages(span, tool_names)
    else:
        inputs, outputs = _prompt_attributes(span)
    if system and not (inputs and inputs[0]["role"] == "system" and inputs[0]["content"] == system):
        inputs.insert(0, {"role": "system", "content": system})
    return inputs, outputs


def _json_attr(value: Any, path: str) -> Any:
    """Structured attributes travel as JSON strings on most SDKs; accept both forms."""
    if isinstance(value, str):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise FieldError(path, f"is not valid JSON: {exc}") from None
    return value


def _system_instructions(span: Span) -> str:
    key = "gen_ai.system_instructions"
    if key not in span.attributes:
        return ""
    value = span.attributes[key]
    path = span.attr_path(key)
    if isinstance(value, str):
        try:
            parsed = orjson.loads(value)
        except orjson.JSONDecodeError:
            return value  # plain text instructions
        if not isinstance(parsed, list):
            return parsed if isinstance(parsed, str) else value
        value = parsed
    if not isinstance(value, list):
        raise FieldError(path, f"must be a list of parts, got {json_type(value)}")
    texts = []
    for n, part in enumerate(value):
        text = _simple_part_text(part, f"{path}[{n}]")
        if text:
            texts.append(text)
    return "\n".join(texts)


def _simple_part_text(part: Any, path: str) -> str:
    if isinstance(part, str):
        return part
    if not isinstance(part, dict):
        raise FieldError(path, f"must be an object, got {json_type(part)}")
    kind = part.get("type")
    if kind == "text" or (kind is None and "content" in part):
        return _part_str(part, "content", path)
    if not isinstance(kind, str):
        raise FieldError(f"{path}.type", "is required (a string)" if kind is None else "must be a string")
    return _media_placeholder(part, kind)


def _part_str(part: dict, key: str, path: str) -> str:
    value = part.get(key)
    if value is None:
        raise FieldError(f"{path}.{key}", "is required")
    if not isinstance(value, str):
        raise FieldError(f"{path}.{key}", f"must be a string, got {json_type(value)}")
    return value


def _media_placeholder(part: dict, kind: str) -> str:
    if kind in ("blob", "file", "uri"):
        modality = part.get("modality")
        if modality in ("image", "audio", "video", "document"):
            return f"[{modality}]"
        return "[file]"
    return placeholder(kind)


def _parts_messages(value: Any, path: str, tool_names: dict[str, str]) -> list[dict]:
    """Convert a gen_ai.input.messages / gen_ai.output.messages value."""
    if not isinstance(value, list):
        raise FieldError(path, f"must be a JSON array of messages, got {json_type(value)}")
    out: list[dict] = []
    for i, message in enumerate(value):
        where = f"{path}[{i}]"
        if not isinstance(message, dict):
            raise FieldError(where, f"must be an object, got {json_type(message)}")
        role = message.get("role")
        if not isinstance(role, str) or role not in ROLE_MAP:
            raise FieldError(f"{where}.role", f"must be one of {', '.join(ROLE_MAP)}; got {shown(role)}")
        out.extend(_parts_message(ROLE_MAP[role], message, where, tool_names))
    return out


def _parts_message(role: str, message: dict, where: str, tool_names: dict[str, str]) -> list[dict]:
    parts = message.get("parts")
    if parts is None and isinstance(message.get("content"), str):
        parts = [{"type": "text", "content": message["content"]}]  # tolerated shorthand
    if not isinstance(parts, list):
        raise FieldError(
            f"{where}.parts", "is required" if parts is None else f"must be a list, got {json_type(parts)}"
        )
    reasoning: list[str] = []
    texts: list[str] = []
    calls: list[dict] = []
    results: list[dict] = []
    for p, part in enumerate(parts):
        path = f"{where}.parts[{p}]"
        if not isinstance(part, dict):
            raise FieldError(path, f"must be an object, got {json_type(part)}")
        kind = part.get("type")
        if not isinstance(kind, str):
            raise FieldError(f"{path}.type", "is required (a string)" if kind is None else "must be a string")
        if kind == "text":
            texts.append(_part_str(part, "content", path))
        elif kind in ("reasoning", "thinking"):
            reasoning.append(f"[reasoning]\n{_part_str(part, 'content', path)}\n")
        elif kind in ("tool_call", "server_tool_call"):
            if role != "assistant":
                raise FieldError(path, f"a {kind} part belongs in an assistant message, not {role}")
            calls.append(_call_part(part, kind, path))
        elif kind in ("tool_call_response", "server_tool_call_response"):
            results.append(_response_part(part, kind, path, tool_names))
        else:
            texts.append(_media_placeholder(part, kind))
    content = "\n".join(reasoning + texts)
    if role == "assistant":
        message_out: dict[str, Any] = {"role": "assistant", "content": content}
        if calls:
            message_out["tool_calls"] = calls
            for call in calls:
                if call["id"]:
                    tool_names[call["id"]] = call["name"]
        # Server-side tool results arrive in the assistant's own message: show them after it.
        return [message_out, *results]
    if role == "tool" and not results:
        tool: dict[str, Any] = {"role": "tool", "content": content}
        call_id = message.get("id") or message.get("tool_call_id")
        if isinstance(call_id, str) and call_id:
            tool["tool_call_id"] = call_id
            if call_id in tool_names:
                tool["name"] = tool_names[call_id]
        return [tool]
    if role == "tool" or (results and not content):
        return results
    return [*results, {"role": role, "content": content}]


def _call_part(part: dict, kind: str, path: str) -> dict:
    name = _part_str(part, "name", path)
    if not name:
        raise FieldError(f"{path}.name", "must not be empty")
    call_id = part.get("id")
    if call_id is not None and not isinstance(call_id, str):
        raise FieldError(f"{path}.id", f"must be a string, got {json_type(call_id)}")
    if kind == "server_tool_call":
        arguments = native.check_json_value(part.get("server_tool_call", {}), f"{path}.server_tool_call")
    else:
        arguments = openai_format.parse_arguments(part.get("arguments"), f"{path}.arguments")
    return {"id": call_id or "", "name": name, "arguments": arguments}


def _response_part(part: dict, kind: str, path: str, tool_names: dict[str, str]) -> dict:
    call_id = part.get("id")
    if call_id is not None and not isinstance(call_id, str):
        raise FieldError(f"{path}.id", f"must be a string, got {json_type(call_id)}")
    key = "response" if kind == "tool_call_response" else "server_tool_call_response"
    message: dict[str, Any] = {"role": "tool", "content": _to_text(part.get(key), f"{path}.{key}")}
    if call_id:
        message["tool_call_id"] = call_id
        if call_id in tool_names:
            message["name"] = tool_names[call_id]
    return message


def _to_text(value: Any, path: str) -> str:
    """A tool result as reviewers read it: text as-is, anything else as compact JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    native.check_json_value(value, path)
    try:
        return orjson.dumps(value).decode()
    except (orjson.JSONEncodeError, TypeError):
        return str(value)


# --- older conventions --------------------------------------------------------------------


def _legacy_events(span: Span) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        e
        for e in span.events
        if e[1] in LEGACY_INPUT_EVENTS or e[1] == "gen_ai.choice" or e[1].startswith("gen_ai.content.")
    ]


def _event_messages(span: Span, tool_names: dict[str, str]) -> tuple[list[dict], list[dict]]:
    """Per-message span events: gen_ai.{system,user,assistant,tool}.message and gen_ai.choice."""
    inputs: list[dict] = []
    outputs: list[dict] = []
    for path, name, attrs in _legacy_events(span):
        if name in ("gen_ai.content.prompt", "gen_ai.content.completion"):
            key = "gen_ai.prompt" if name.endswith("prompt") else "gen_ai.completion"
            if key in attrs:
                target = inputs if key == "gen_ai.prompt" else outputs
                target.extend(_openai_list(attrs[key], f"{path}.attributes[{key}]", key == "gen_ai.completion"))
            continue
        body = dict(attrs)
        if "gen_ai.event.content" in attrs:  # Azure AI Inference puts the event body here as JSON
            parsed = _json_attr(attrs["gen_ai.event.content"], f"{path}.attributes[gen_ai.event.content]")
            if isinstance(parsed, dict):
                body.update(parsed)
        if name == "gen_ai.choice":
            message = body.get("message", body)
            message = _json_attr(message, f"{path}.attributes[message]")
            if not isinstance(message, dict):
                raise FieldError(f"{path}.attributes[message]", f"must be an object, got {json_type(message)}")
            outputs.append(_legacy_message("assistant", message, f"{path}.attributes", tool_names))
        else:
            inputs.append(_legacy_message(LEGACY_INPUT_EVENTS[name], body, f"{path}.attributes", tool_names))
    return inputs, outputs


def _legacy_message(role: str, body: dict, path: str, tool_names: dict[str, str]) -> dict:
    content = body.get("content")
    if content is not None and not isinstance(content, str):
        content = _json_attr(content, f"{path}[content]")
    message: dict[str, Any] = {"role": role, "content": _legacy_content(content, f"{path}[content]")}
    if role == "assistant" and body.get("tool_calls") is not None:
        calls = openai_format.tool_calls(_json_attr(body["tool_calls"], f"{path}[tool_calls]"), f"{path}[tool_calls]")
        if calls:
            message["tool_calls"] = calls
        for call in calls:
            if call["id"]:
                tool_names[call["id"]] = call["name"]
    if role == "tool":
        call_id = body.get("id")
        if isinstance(call_id, str) and call_id:
            message["tool_call_id"] = call_id
            if call_id in tool_names:
                message["name"] = tool_names[call_id]
    return message


def _legacy_content(content: Any, path: str) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, list):
        texts = []
        for n, part in enumerate(content):
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif isinstance(part, dict) and isinstance(part.get("type"), str):
                texts.append(_simple_part_text(part, f"{path}[{n}]"))
            else:
                texts.append(_to_text(part, f"{path}[{n}]"))
        return "\n".join(t for t in texts if t)
    return _to_text(content, path)


def _prompt_attributes(span: Span) -> tuple[list[dict], list[dict]]:
    """gen_ai.prompt / gen_ai.completion: a JSON list, or flattened gen_ai.prompt.0.role ..."""
    attrs = span.attributes
    inputs: list[dict] = []
    outputs: list[dict] = []
    if "gen_ai.prompt" in attrs:
        inputs = _openai_list(attrs["gen_ai.prompt"], span.attr_path("gen_ai.prompt"), False)
    if "gen_ai.completion" in attrs:
        outputs = _openai_list(attrs["gen_ai.completion"], span.attr_path("gen_ai.completion"), True)
    flat: dict[str, dict[int, dict]] = {"prompt": {}, "completion": {}}
    for key, value in attrs.items():
        match = FLAT_KEY.match(key)
        if not match:
            continue
        kind, index, rest = match.group(1), int(match.group(2)), match.group(3)
        if index >= MAX_FLAT_INDEX:
            raise FieldError(span.attr_path(key), f"message index is over {MAX_FLAT_INDEX}")
        message = flat[kind].setdefault(index, {})
        call = FLAT_TOOL_CALL.match(rest)
        if call:
            calls = message.setdefault("_calls", {})
            slot = calls.setdefault(int(call.group(1)), {})
            slot[call.group(2)] = value
        else:
            message[rest] = value
    for kind, target in (("prompt", inputs), ("completion", outputs)):
        if not flat[kind]:
            continue
        messages = []
        indices = sorted(flat[kind])
        for index in indices:
            raw = flat[kind][index]
            message: dict[str, Any] = {
                "role": raw.get("role") or ("assistant" if kind == "completion" else "user"),
                "content": raw.get("content"),
            }
            if isinstance(raw.get("tool_call_id"), str):
                message["tool_call_id"] = raw["tool_call_id"]
            if raw.get("_calls"):
                message["tool_calls"] = [
                    {
                        "id": c.get("id") or "",
                        "type": "function",
                        "function": {"name": c.get("name"), "arguments": c.get("arguments")},
                    }
                    for _, c in sorted(raw["_calls"].items())
                ]
            messages.append(message)
        try:
            target.extend(openai_format.to_native({"messages": messages}))
        except FieldError as exc:
            # Name the attribute the user actually set: gen_ai.prompt.3.content, not messages[1].content.
            match = re.match(r"^messages\[(\d+)\]\.?(.*)$", exc.field)
            if not match:
                raise FieldError(span.attr_path(f"gen_ai.{kind}"), exc.reason) from None
            where = f"gen_ai.{kind}.{indices[int(match.group(1))]}" + (f".{match.group(2)}" if match.group(2) else "")
            raise FieldError(span.attr_path(where), exc.reason) from None
    return inputs, outputs


def _openai_list(value: Any, path: str, is_completion: bool) -> list[dict]:
    role = "assistant" if is_completion else "user"
    if isinstance(value, str):
        try:
            parsed = orjson.loads(value)
        except orjson.JSONDecodeError:
            return [{"role": role, "content": value}]  # plain text
        if not isinstance(parsed, (list, dict)):
            return [{"role": role, "content": parsed if isinstance(parsed, str) else value}]
        value = parsed
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise FieldError(path, f"must be a list of messages, got {json_type(value)}")
    if is_completion:
        value = [{**m, "role": m.get("role") or "assistant"} if isinstance(m, dict) else m for m in value]
    return _openai_messages(value, path)


def _openai_messages(messages: list, path: str) -> list[dict]:
    """Older attributes hold OpenAI-style messages: reuse that converter, re-rooting error paths."""
    if not messages:
        return []
    try:
        return openai_format.to_native({"messages": messages})
    except FieldError as exc:
        raise FieldError(path + exc.field.removeprefix("messages"), exc.reason) from None
