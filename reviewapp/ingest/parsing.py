"""From bytes to validated item records: pure functions, no Django, no database.

Input is either a JSON document (one record, a list of records, ``{"items": [...]}``,
an OTLP JSON export or an Inspect AI log) or JSON Lines (one record per line).
Each record comes out as an ``ItemRecord`` ready to write, or a ``RecordError``
that names where it was (line / index / trace / sample), which field, and why.
The writer (services.py) decides what to do with errors; nothing here writes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import orjson

from .formats import FieldError, anthropic, inspect_log, native, openai, openai_responses, otel

RECORD_FORMATS = ("native", "openai", "anthropic", "openai_responses")
DOCUMENT_FORMATS = ("otel", "inspect")
ALL_FORMATS = RECORD_FORMATS + DOCUMENT_FORMATS
MESSAGE_CONVERTERS: dict[str, Callable[[dict], list[dict]]] = {
    "native": lambda record: native.normalize_messages(record.get("messages")),
    "openai": openai.to_native,
    "anthropic": anthropic.to_native,
    "openai_responses": openai_responses.to_native,
}
MAX_EXTERNAL_ID = 255
MAX_TITLE = 500
MAX_RATIONALE = 100_000
# Bounded so the queue can fold (priority, id) into one sortable integer.
PRIORITY_LIMIT = 1_000_000


@dataclass(slots=True)
class ItemRecord:
    location: str
    external_id: str
    source_format: str
    payload: dict
    payload_json: bytes
    source_metadata: dict
    content_hash: str
    word_count: int
    ai_recommendation: Any = None
    ai_rationale: str = ""
    ai_confidence: float | None = None
    gold_label: Any = None
    is_probe: bool = False
    priority: int = 0


@dataclass(slots=True)
class RecordError:
    location: str
    field: str
    reason: str
    external_id: str | None = None

    def __str__(self) -> str:
        who = f" (external_id {self.external_id!r})" if self.external_id else ""
        return _printable(f"{self.location}{who}: {self.field}: {self.reason}")

    def as_dict(self) -> dict:
        # Stored as JSONB with the job (which cannot hold U+0000): a NUL the input put in
        # an id, a key or a location is written out instead.
        return {key: _printable(value) if isinstance(value, str) else value for key, value in asdict(self).items()}


def _printable(text: str) -> str:
    return text.replace("\x00", "\\u0000")


ParseResult = ItemRecord | RecordError
DecisionCheck = Callable[[Any], "str | None"]


class BodyError(ValueError):
    """The input as a whole cannot be read (not JSON, not UTF-8, unknown format, too big)."""

    def __init__(self, message: str) -> None:
        # The message is stored as the job's text (PostgreSQL text cannot hold U+0000).
        super().__init__(_printable(message))


def too_big(size: int, limit: int) -> str:
    return f"{size:,} bytes exceeds the {limit:,}-byte limit per record (INGEST_MAX_RECORD_BYTES)"


class LongLine:
    """A JSON Lines line longer than the record limit, skipped unread (only its size is kept)."""

    __slots__ = ("size",)

    def __init__(self, size: int) -> None:
        self.size = size


def decode_json(data: bytes, where: str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise BodyError(f"{where}: not valid JSON: {_json_reason(exc)}") from None


def _json_reason(exc: orjson.JSONDecodeError) -> str:
    # orjson reports recursion as a decode error; say it in the user's terms.
    text = str(exc)
    if "recursion" in text.lower() or "depth limit" in text.lower():
        return "nested too deeply"
    return text


# --- entry points ---------------------------------------------------------------------


DEFAULT_MAX_RECORD_BYTES = 4 * 1024 * 1024


def parse_document(
    data: bytes,
    *,
    format_hint: str | None = None,
    decision_check: DecisionCheck | None = None,
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
) -> Iterator[ParseResult]:
    """Parse a whole JSON document (a JSON request body or a .json file)."""
    doc = decode_json(data, "body")
    yield from _records_from_document(doc, format_hint, decision_check, max_record_bytes)


def parse_jsonl(
    lines: Iterable[bytes | LongLine],
    *,
    format_hint: str | None = None,
    decision_check: DecisionCheck | None = None,
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
) -> Iterator[ParseResult]:
    """Parse JSON Lines lazily, one record per non-blank line (for streaming big files).

    A reader that bounds its lines (files.py) passes a ``LongLine`` for one it skipped.
    """
    for number, line in enumerate(lines, start=1):
        location = f"line {number}"
        size = line.size if isinstance(line, LongLine) else len(line)
        if size > max_record_bytes:
            yield RecordError(location, "(record)", too_big(size, max_record_bytes))
            continue
        if not line.strip():
            continue
        try:
            raw = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            yield RecordError(location, "(record)", f"not valid JSON: {_json_reason(exc)}")
            continue
        if isinstance(raw, dict) and _document_format(raw, None) in DOCUMENT_FORMATS:
            # An OTLP export or Inspect log on one line: expand it like a .json file.
            for item in _records_from_document(raw, format_hint, decision_check, max_record_bytes):
                item.location = f"{location}, {item.location}"
                yield item
            continue
        yield build_item(raw, location, format_hint, decision_check)


def parse_inspect_eval(
    header: Any,
    samples: Iterable[tuple[str, Any]],
    *,
    decision_check: DecisionCheck | None = None,
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
) -> Iterator[ParseResult]:
    """An Inspect ``.eval`` log read sample by sample (files.py opens the zip).

    ``header`` is the log without its samples; ``samples`` yields ``(member name, decoded
    sample)``, or ``(member name, RecordError)`` for a sample that could not be read.
    """
    try:
        run = inspect_log.run_info(header)
    except FieldError as exc:
        raise BodyError(f"header: {exc.field}: {exc.reason}") from None
    for index, (_name, sample) in enumerate(samples):
        if isinstance(sample, RecordError):
            yield sample
            continue
        location, raw = inspect_log.sample_record(sample, index, run)
        if isinstance(raw, FieldError):
            yield RecordError(location, raw.field, raw.reason)
        else:
            yield _oversize(raw, location, max_record_bytes) or build_item(
                {**raw, "format": "native"}, location, None, decision_check, "inspect"
            )


def _records_from_document(
    doc: Any, format_hint: str | None, decision_check: DecisionCheck | None, max_record_bytes: int
):
    kind = _document_format(doc, format_hint)
    if kind in DOCUMENT_FORMATS:
        iter_records = otel.iter_records if kind == "otel" else inspect_log.iter_records
        yield from _expand(iter_records, doc, kind, decision_check, max_record_bytes)
        return
    if isinstance(doc, list):
        located = ((f"item {index}", raw) for index, raw in enumerate(doc))
    elif isinstance(doc, dict) and isinstance(doc.get("items"), list):
        located = ((f"items[{index}]", raw) for index, raw in enumerate(doc["items"]))
    elif isinstance(doc, dict):
        located = iter([("item 0", doc)])
    else:
        raise BodyError(f"body: expected a JSON object or array of records, got {type(doc).__name__}")
    for location, raw in located:
        yield _oversize(raw, location, max_record_bytes) or build_item(raw, location, format_hint, decision_check)


def _oversize(raw: Any, location: str, max_record_bytes: int) -> RecordError | None:
    """The limit JSON Lines has per line, for a record inside a document: its size as JSON.

    Without it a 10 MB record in a list would be stored, and no review page could show it.
    """
    try:
        size = len(orjson.dumps(raw))
    except orjson.JSONEncodeError:
        return None  # not serializable as it stands (too deep, say): build_item names why
    if size <= max_record_bytes:
        return None
    external_id = raw.get("external_id") if isinstance(raw, dict) else None
    return RecordError(location, "(record)", too_big(size, max_record_bytes), _shown_id(external_id))


def _shown_id(external_id: Any) -> str | None:
    return external_id if isinstance(external_id, str) else None


def _document_format(doc: Any, format_hint: str | None) -> str | None:
    if format_hint in DOCUMENT_FORMATS:
        return format_hint
    if otel.looks_like_otlp(doc):
        return "otel"
    if inspect_log.looks_like_inspect_log(doc):
        return "inspect"
    return None


def _expand(iter_records, doc: Any, source_format: str, decision_check: DecisionCheck | None, max_record_bytes: int):
    try:
        for location, raw in iter_records(doc):
            if isinstance(raw, FieldError):
                yield RecordError(location, raw.field, raw.reason)
            else:
                # The converter already built native messages; validate the envelope.
                yield _oversize(raw, location, max_record_bytes) or build_item(
                    {**raw, "format": "native"}, location, None, decision_check, source_format
                )
    except FieldError as exc:
        raise BodyError(f"body: {exc.field}: {exc.reason}") from None


# --- one record -----------------------------------------------------------------------


def build_item(
    raw: Any,
    location: str,
    format_hint: str | None,
    decision_check: DecisionCheck | None,
    source_format: str | None = None,
) -> ParseResult:
    """Validate one record's envelope and transcript; return an ItemRecord or RecordError."""
    if not isinstance(raw, dict):
        return RecordError(location, "(record)", f"must be a JSON object, got {type(raw).__name__}")
    try:
        return _build_item(raw, location, format_hint, decision_check, source_format)
    except FieldError as exc:
        return RecordError(location, exc.field, exc.reason, _shown_id(raw.get("external_id")))


def _build_item(raw, location, format_hint, decision_check, source_format) -> ItemRecord:
    external_id = _external_id(raw.get("external_id"))
    record_format = raw.get("format", format_hint or detect_record_format(raw))
    if not isinstance(record_format, str):
        raise FieldError("format", f"must be a string, one of {', '.join(ALL_FORMATS)}")
    if record_format not in MESSAGE_CONVERTERS:
        if record_format in DOCUMENT_FORMATS:
            raise FieldError("format", f"{record_format!r} is a whole-document format; send the document itself")
        raise FieldError("format", f"must be one of {', '.join(ALL_FORMATS)}; got {record_format!r}")
    messages = MESSAGE_CONVERTERS[record_format](raw)
    title = _optional_str(raw, "title", MAX_TITLE)
    payload = {"title": title or "", "messages": messages}
    metadata = raw.get("metadata", {})
    if not isinstance(metadata, dict):
        raise FieldError("metadata", "must be an object")
    native.check_json_value(metadata, "metadata")

    recommendation = _decision_value(raw, "ai_recommendation", decision_check)
    gold = _decision_value(raw, "gold_label", decision_check)
    is_probe = raw.get("is_probe", False)
    if not isinstance(is_probe, bool):
        raise FieldError("is_probe", "must be true or false")
    if is_probe and (gold is None or recommendation is None):
        raise FieldError("is_probe", "a probe needs both gold_label and ai_recommendation")
    if is_probe and gold == recommendation:
        raise FieldError("is_probe", "a probe's ai_recommendation must differ from its gold_label")

    payload_json = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
    _reject_nul(payload_json, messages, "messages")
    metadata_json = orjson.dumps(metadata)
    _reject_nul(metadata_json, metadata, "metadata")
    rationale = _optional_str(raw, "ai_rationale", MAX_RATIONALE) or ""
    confidence = _confidence(raw.get("ai_confidence"))
    # The hash covers everything a reviewer or a metric would see differently, so a
    # re-send is "identical" only if it would change nothing.
    digest = hashlib.sha256(payload_json)
    digest.update(orjson.dumps([recommendation, rationale, confidence, gold, is_probe]))
    return ItemRecord(
        location=location,
        external_id=external_id,
        source_format=source_format or record_format,
        payload=payload,
        payload_json=payload_json,
        source_metadata=metadata,
        content_hash=digest.hexdigest(),
        word_count=count_words(payload),
        ai_recommendation=recommendation,
        ai_rationale=rationale,
        ai_confidence=confidence,
        gold_label=gold,
        is_probe=is_probe,
        priority=_priority(raw.get("priority", 0)),
    )


def detect_record_format(raw: dict) -> str:
    """The format of a record that names none: native, unless it has the Responses API's shape.

    A Responses API record has ``input`` items (or a ``response`` object / ``output`` items) and
    no ``messages``; every other format keeps its transcript under ``messages``.
    """
    if "messages" in raw:
        return "native"
    response = raw.get("response")
    if "input" in raw or isinstance(raw.get("output"), list):
        return "openai_responses"
    if isinstance(response, dict) and response.get("object") == "response":
        return "openai_responses"
    return "native"


def _external_id(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise FieldError("external_id", "is required (a string)" if value is None else "must be a string")
    if not value.strip():
        raise FieldError("external_id", "must not be empty")
    if len(value) > MAX_EXTERNAL_ID:
        raise FieldError("external_id", f"is {len(value)} characters; the limit is {MAX_EXTERNAL_ID}")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise FieldError("external_id", "must not contain control characters")
    return value


def _optional_str(raw: dict, key: str, limit: int) -> str | None:
    value = native.require_str(raw, key, key, optional=True)
    if value is None:
        return None
    if len(value) > limit:
        raise FieldError(key, f"is {len(value)} characters; the limit is {limit}")
    if "\x00" in value:
        raise FieldError(key, "contains a NUL character")
    return value


def _decision_value(raw: dict, key: str, decision_check: DecisionCheck | None) -> Any:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, (dict, list)):
        raise FieldError(key, "must be a single value (string or number)")
    if isinstance(value, str) and "\x00" in value:
        raise FieldError(key, "contains a NUL character")
    if decision_check is not None:
        problem = decision_check(value)
        if problem:
            raise FieldError(key, f"{problem} (the study's decision field)")
    return value


def _confidence(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FieldError("ai_confidence", "must be a number between 0 and 1")
    if not 0 <= value <= 1:
        raise FieldError("ai_confidence", f"{value} is outside 0..1")
    return float(value)


def _priority(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise FieldError("priority", "must be an integer")
    if not -PRIORITY_LIMIT <= value <= PRIORITY_LIMIT:
        raise FieldError("priority", f"{value} is outside -{PRIORITY_LIMIT:,}..{PRIORITY_LIMIT:,}")
    return value


def _reject_nul(serialized: bytes, value: Any, field: str) -> None:
    # PostgreSQL's jsonb and text cannot hold U+0000; find where it is so the
    # error names the field instead of failing the whole COPY later.
    if b"\\u0000" not in serialized:
        return
    raise FieldError(_find_nul(value, field) or field, "contains a NUL character (\\u0000)")


def _find_nul(value: Any, path: str) -> str | None:
    stack = [(value, path)]
    while stack:
        node, where = stack.pop()
        if isinstance(node, str) and "\x00" in node:
            return where
        if isinstance(node, dict):
            for key, child in node.items():
                if "\x00" in key:
                    return f"{where}.{key!r}"
                stack.append((child, f"{where}.{key}"))
        elif isinstance(node, list):
            stack.extend((child, f"{where}[{i}]") for i, child in enumerate(node))
    return None


def count_words(payload: dict) -> int:
    """Words a reviewer reads: message text plus tool-call arguments."""
    words = len(payload.get("title", "").split())
    for message in payload["messages"]:
        words += len(message["content"].split())
        for call in message.get("tool_calls", ()):
            arguments = call["arguments"]
            text = arguments if isinstance(arguments, str) else orjson.dumps(arguments).decode()
            words += len(text.split())
    return words
