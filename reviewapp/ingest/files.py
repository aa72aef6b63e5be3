"""Reading ingest files from disk: streamed, bounded, with byte progress for progress bars.

Memory stays bounded whatever the file holds: JSON Lines are read one line at a time and a
line longer than the record limit is skipped unread (only its size is counted); a .json
document is read whole only up to ``INGEST_MAX_DOCUMENT_BYTES``; and gzip is decompressed
as a stream that stops past ``INGEST_GZIP_MAX_RATIO`` times the compressed size or
``INGEST_MAX_DECOMPRESSED_BYTES`` (a 1 MB "gzip bomb" expands to gigabytes). An Inspect
``.eval`` log (a zip) is read one sample at a time under the same caps.
"""

from __future__ import annotations

import gzip
import uuid
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .parsing import (
    BodyError,
    DecisionCheck,
    LongLine,
    ParseResult,
    RecordError,
    decode_json,
    parse_document,
    parse_inspect_eval,
    parse_jsonl,
)

JSONL_SUFFIXES = (".jsonl", ".ndjson", ".jsonlines")
# Inspect AI's default log format: a zip of the log's header and one JSON file per sample.
EVAL_SUFFIX = ".eval"
ZIP_MAGIC = b"PK\x03\x04"
# Below this much output the ratio is not checked: a tiny file may expand a lot, harmlessly.
RATIO_FLOOR_BYTES = 1024 * 1024
LINE_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class ReadLimits:
    gzip_max_ratio: int
    max_decompressed_bytes: int
    max_document_bytes: int

    @classmethod
    def from_settings(cls) -> ReadLimits:
        from django.conf import settings

        return cls(
            gzip_max_ratio=settings.INGEST_GZIP_MAX_RATIO,
            max_decompressed_bytes=settings.INGEST_MAX_DECOMPRESSED_BYTES,
            max_document_bytes=settings.INGEST_MAX_DOCUMENT_BYTES,
        )


class DecompressedTooLarge(BodyError):
    """gzip input expands past a limit: refused before it can exhaust memory or disk."""


class CappedGzip:
    """A gzip stream that refuses to produce more than its cap; every read is bounded."""

    def __init__(
        self,
        fileobj: BinaryIO,
        *,
        compressed_size: int,
        ratio: int,
        absolute: int,
        where: str,
        absolute_setting: str = "INGEST_MAX_DECOMPRESSED_BYTES",
    ) -> None:
        self._gzip = gzip.GzipFile(fileobj=fileobj, mode="rb")
        by_ratio = max(ratio * compressed_size, RATIO_FLOOR_BYTES)
        self.cap = min(by_ratio, absolute)
        if by_ratio < absolute:
            self._refusal = (
                f"{where}: decompresses to more than {self.cap:,} bytes, over {ratio} times its "
                f"{compressed_size:,} compressed bytes (INGEST_GZIP_MAX_RATIO); refused as a likely decompression bomb"
            )
        else:
            self._refusal = f"{where}: decompresses to more than the {absolute:,}-byte limit ({absolute_setting})"
        self._where = where
        self.produced = 0

    def read(self, size: int = -1) -> bytes:
        return self._counted(self._gzip.read, size)

    def readline(self, size: int = -1) -> bytes:
        return self._counted(self._gzip.readline, size)

    def _counted(self, read: Callable[[int], bytes], size: int) -> bytes:
        room = self.cap - self.produced + 1  # one byte more than allowed shows that there is more
        size = room if size < 0 else min(size, room)
        try:
            data = read(size)
        except (OSError, EOFError, zlib.error) as exc:
            raise BodyError(f"{self._where}: not valid gzip ({exc})") from None
        self.produced += len(data)
        if self.produced > self.cap:
            raise DecompressedTooLarge(self._refusal)
        return data


def file_kind(name: str) -> str:
    """'jsonl', 'json' (``.gz`` allowed) or 'eval' (an Inspect log, a zip already) from a file name."""
    if name.lower().endswith(EVAL_SUFFIX):
        return "eval"
    lowered = name.lower().removesuffix(".gz")
    if lowered.endswith(JSONL_SUFFIXES):
        return "jsonl"
    if lowered.endswith(".json"):
        return "json"
    raise BodyError(
        f"{name}: cannot tell the format from the name; use .json, .jsonl or .ndjson (optionally .gz), "
        "or .eval for an Inspect AI log"
    )


def parse_file(
    path: Path,
    *,
    format_hint: str | None = None,
    decision_check: DecisionCheck | None = None,
    max_record_bytes: int,
    on_bytes: Callable[[int], None] | None = None,
    kind: str | None = None,
    limits: ReadLimits | None = None,
) -> Iterator[ParseResult]:
    """Yield parsed records from a file; ``on_bytes(position)`` reports progress.

    JSON Lines are read line by line at constant memory, so files of any size
    stream; a .json document is read whole (OTLP exports and Inspect logs are
    single documents), up to ``limits.max_document_bytes``.
    """
    kind = kind or file_kind(path.name)
    limits = limits or ReadLimits.from_settings()
    if kind == "eval":
        yield from parse_eval_file(
            path, decision_check=decision_check, max_record_bytes=max_record_bytes, on_bytes=on_bytes, limits=limits
        )
        return
    with open(path, "rb") as raw:
        stream: BinaryIO | CappedGzip = raw
        if path.name.lower().endswith(".gz"):
            stream = CappedGzip(
                raw,
                compressed_size=path.stat().st_size,
                ratio=limits.gzip_max_ratio,
                absolute=limits.max_decompressed_bytes,
                where=path.name,
            )
        if kind == "json":
            data = read_document(stream, limits.max_document_bytes, path.name)
            if on_bytes:
                on_bytes(raw.tell())
            yield from parse_document(
                data, format_hint=format_hint, decision_check=decision_check, max_record_bytes=max_record_bytes
            )
            return
        lines = _lines_with_progress(bounded_lines(stream, max_record_bytes), raw, on_bytes)
        yield from parse_jsonl(
            lines, format_hint=format_hint, decision_check=decision_check, max_record_bytes=max_record_bytes
        )


def parse_eval_file(
    path: Path,
    *,
    decision_check: DecisionCheck | None,
    max_record_bytes: int,
    limits: ReadLimits,
    on_bytes: Callable[[int], None] | None = None,
) -> Iterator[ParseResult]:
    """Records from an Inspect ``.eval`` log, read with the standard library one sample at a time.

    The layout is Inspect's (``inspect_ai/log/_recorders/eval.py``): ``header.json`` holds the
    log without samples (``_journal/start.json`` until the eval finishes) and each sample is
    ``samples/<id>_epoch_<n>.json``. Memory holds one sample; each member is read only up to
    ``INGEST_MAX_DOCUMENT_BYTES``, and all of them together only up to the gzip caps
    (``INGEST_GZIP_MAX_RATIO`` times the file's size, ``INGEST_MAX_DECOMPRESSED_BYTES``).
    """
    where = path.name
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise BodyError(f"{where}: not a readable Inspect .eval log (a zip archive): {exc}") from None
    with archive:
        budget = _ZipBudget(path.stat().st_size, limits, where)
        members = archive.infolist()
        names = {info.filename for info in members}
        header_name = next((n for n in ("header.json", "_journal/start.json") if n in names), None)
        if header_name is None:
            raise BodyError(f"{where}: not an Inspect .eval log (it has neither header.json nor _journal/start.json)")
        header_info = archive.getinfo(header_name)
        header_bytes = budget.read(archive, header_info, limits.max_document_bytes)
        if header_bytes is None:
            raise BodyError(f"{where}: {header_name} is over {limits.max_document_bytes:,} bytes")
        header = decode_json(header_bytes, f"{where}: {header_name}")
        samples = [i for i in members if i.filename.startswith("samples/") and i.filename.endswith(".json")]
        if not samples:
            raise BodyError(
                f"{where}: the log has no samples (written with --no-log-samples, or the eval wrote none yet)"
            )

        def read_samples() -> Iterator[tuple[str, object]]:
            for info in samples:
                data = budget.read(archive, info, limits.max_document_bytes)
                if on_bytes:
                    on_bytes(info.header_offset + info.compress_size)
                if data is None:
                    reason = (
                        f"{info.file_size:,} bytes exceeds the {limits.max_document_bytes:,}-byte limit "
                        "per sample file (INGEST_MAX_DOCUMENT_BYTES)"
                    )
                    yield info.filename, RecordError(info.filename, "(record)", reason)
                    continue
                try:
                    yield info.filename, decode_json(data, info.filename)
                except BodyError as exc:
                    yield info.filename, RecordError(info.filename, "(record)", str(exc))

        yield from parse_inspect_eval(
            header, read_samples(), decision_check=decision_check, max_record_bytes=max_record_bytes
        )


class _ZipBudget:
    """Decompressed bytes across a zip's members, under the same caps as a gzip stream."""

    def __init__(self, compressed_size: int, limits: ReadLimits, where: str) -> None:
        by_ratio = max(limits.gzip_max_ratio * compressed_size, RATIO_FLOOR_BYTES)
        self.cap = min(by_ratio, limits.max_decompressed_bytes)
        if by_ratio < limits.max_decompressed_bytes:
            self._refusal = (
                f"{where}: decompresses to more than {self.cap:,} bytes, over {limits.gzip_max_ratio} times its "
                f"{compressed_size:,} compressed bytes (INGEST_GZIP_MAX_RATIO); refused as a likely decompression bomb"
            )
        else:
            self._refusal = (
                f"{where}: decompresses to more than the {limits.max_decompressed_bytes:,}-byte limit "
                "(INGEST_MAX_DECOMPRESSED_BYTES)"
            )
        self._where = where
        self.produced = 0

    def read(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes | None:
        """The member's bytes, or None when it is over ``limit`` (read no further than that)."""
        room = min(limit, self.cap - self.produced) + 1
        try:
            with archive.open(info) as member:
                data = member.read(room)
        except (zipfile.BadZipFile, OSError, EOFError, zlib.error, NotImplementedError) as exc:
            raise BodyError(f"{self._where}: {info.filename}: not readable ({exc})") from None
        self.produced += len(data)
        if self.produced > self.cap:
            raise DecompressedTooLarge(self._refusal)
        return None if len(data) > limit else data


def read_document(stream: BinaryIO | CappedGzip, limit: int, where: str) -> bytes:
    """A whole JSON document, refused (unread past the limit) when larger than ``limit``."""
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise BodyError(
            f"{where}: a JSON document over {limit:,} bytes is not read whole (INGEST_MAX_DOCUMENT_BYTES); "
            "send it as JSON Lines (.jsonl, one record per line), which stream at any size"
        )
    return data


def bounded_lines(stream: BinaryIO | CappedGzip, max_record_bytes: int) -> Iterator[bytes | LongLine]:
    """The stream's lines, each read only up to the record limit: a longer one is skipped
    in chunks and comes out as a ``LongLine`` with its size, so memory stays bounded."""
    while line := stream.readline(max_record_bytes + 1):
        if len(line) <= max_record_bytes or line.endswith(b"\n"):
            yield line
            continue
        size = len(line)
        while (chunk := stream.readline(LINE_CHUNK)) and not chunk.endswith(b"\n"):
            size += len(chunk)
        yield LongLine(size + len(chunk.rstrip(b"\r\n")))


def _lines_with_progress(lines, raw, on_bytes: Callable[[int], None] | None) -> Iterator[bytes | LongLine]:
    for number, line in enumerate(lines, start=1):
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
    kept = "".join(
        s for s in Path(original_name).suffixes[-2:] if s.lower() in (".json", ".gz", EVAL_SUFFIX, *JSONL_SUFFIXES)
    )
    return upload_dir / f"{uuid.uuid4().hex}{kept}"
