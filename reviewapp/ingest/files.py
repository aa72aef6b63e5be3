"""Reading ingest files from disk: streamed, with byte progress for progress bars."""

from __future__ import annotations

import gzip
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from .parsing import BodyError, DecisionCheck, ParseResult, parse_document, parse_jsonl

JSONL_SUFFIXES = (".jsonl", ".ndjson", ".jsonlines")


def file_kind(name: str) -> str:
    """'jsonl' or 'json' from a file name (``.gz`` allowed)."""
    lowered = name.lower().removesuffix(".gz")
    if lowered.endswith(JSONL_SUFFIXES):
        return "jsonl"
    if lowered.endswith(".json"):
        return "json"
    raise BodyError(f"{name}: cannot tell the format from the name; use .json, .jsonl or .ndjson (optionally .gz)")


def parse_file(
    path: Path,
    *,
    format_hint: str | None = None,
    decision_check: DecisionCheck | None = None,
    max_record_bytes: int,
    on_bytes: Callable[[int], None] | None = None,
    kind: str | None = None,
) -> Iterator[ParseResult]:
    """Yield parsed records from a file; ``on_bytes(position)`` reports progress.

    JSON Lines are read line by line at constant memory, so files of any size
    stream; a .json document is read whole (OTLP exports and Inspect logs are
    single documents).
    """
    kind = kind or file_kind(path.name)
    with open(path, "rb") as raw:
        stream = gzip.GzipFile(fileobj=raw) if path.name.lower().endswith(".gz") else raw
        if kind == "json":
            data = stream.read()
            if on_bytes:
                on_bytes(raw.tell())
            yield from parse_document(data, format_hint=format_hint, decision_check=decision_check)
            return
        lines = _lines_with_progress(stream, raw, on_bytes)
        yield from parse_jsonl(
            lines, format_hint=format_hint, decision_check=decision_check, max_record_bytes=max_record_bytes
        )


def _lines_with_progress(stream, raw, on_bytes: Callable[[int], None] | None) -> Iterator[bytes]:
    for number, line in enumerate(stream, start=1):
        if on_bytes and number % 500 == 0:
            on_bytes(raw.tell())
        yield line
    if on_bytes:
        on_bytes(raw.tell())


def new_upload_path(original_name: str) -> Path:
    """Where an uploaded file waits for the worker: our own name, the original's format suffixes.

    The client's file name is only a label, never part of a path.
    """
    from django.conf import settings

    upload_dir = Path(settings.UPLOAD_DIR)
    upload_dir.mkdir(parents=True, exist_ok=True)
    kept = "".join(s for s in Path(original_name).suffixes[-2:] if s.lower() in (".json", ".gz", *JSONL_SUFFIXES))
    return upload_dir / f"{uuid.uuid4().hex}{kept}"
