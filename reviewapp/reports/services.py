"""Exports: read a report from the database as a stream of bytes; export jobs; the audit trail.

Labels and items are read with a server-side cursor (a named cursor inside a transaction,
``ROW_CHUNK`` rows per fetch) and written chunk by chunk, so memory stays flat however many
rows a study has. The query does the formatting that is cheap in SQL (ISO times, JSON
values as their JSON text) and Python only neutralizes text cells (exports.RowFormat).

An export job (the kind "export" of reviewapp/jobs.py, which claims, retries and recovers
it) writes its file under a temporary name and renames it when complete, so a file that
exists is whole; a redelivered task for a finished job does nothing and a restarted one
starts again from scratch.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from psycopg import sql

from reviewapp.ingest.models import Item
from reviewapp.ingest.tallies import item_counts
from reviewapp.jobs import JobProgress, job_enqueue_on_commit, job_finish
from reviewapp.metrics.models import MetricRun
from reviewapp.metrics.services import latest_run
from reviewapp.queue import tallies
from reviewapp.queue.models import Label
from reviewapp.studies.models import Arm, AuditEvent, Study
from reviewapp.studies.schema import decision_field

from . import exports
from .exports import Column, RowFormat
from .models import ExportJob

logger = logging.getLogger(__name__)

# Rows per FETCH from the server-side cursor, and per bytes chunk of the response.
ROW_CHUNK = 2000
NO_METRICS = "No metrics computed yet; compute them on the study page."


class NoMetrics(Exception):
    """The study has no succeeded MetricRun, so there is no agreement or reviewer report."""


# --- audit -------------------------------------------------------------------------------


def export_logged(*, study: Study, actor, report: str, fmt: str, mode: str, rows: int | None = None, **detail):
    """Every export leaves an AuditEvent ``export.<report>``: who, which format, how many rows."""
    detail = {"format": fmt, "mode": mode, **({"rows": rows} if rows is not None else {}), **detail}
    return AuditEvent.objects.create(study=study, actor=actor, action=f"export.{report}", detail=detail)


# --- summary reports (from the latest MetricRun) -----------------------------------------


@dataclass(frozen=True)
class SummaryReport:
    columns: tuple[Column, ...]
    rows: list[list]
    run: MetricRun

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def csv_rows(self) -> list[list]:
        return [[exports.csv_cell(value) for value in row] for row in self.rows]

    def json_rows(self) -> list[dict]:
        return [dict(zip(self.names, row, strict=True)) for row in self.rows]


def summary_report(study: Study, report: str) -> SummaryReport:
    """The agreement or reviewers report from the study's latest succeeded MetricRun."""
    run = latest_run(study)
    if run is None:
        raise NoMetrics(NO_METRICS)
    common = {"study": study.slug, "run_id": run.pk, "computed_at": exports.iso_utc(run.finished_at)}
    if report == "agreement":
        return SummaryReport(exports.AGREEMENT_COLUMNS, exports.agreement_rows(result=run.result, **common), run)
    ids = [row["reviewer"] for row in run.result["reviewers"]]
    usernames = dict(get_user_model().objects.filter(pk__in=ids).values_list("pk", "username"))
    rows = exports.reviewer_rows(result=run.result, usernames=usernames, **common)
    return SummaryReport(exports.REVIEWER_COLUMNS, rows, run)


# --- row reports (labels, items: straight from the database) ------------------------------


@dataclass(frozen=True)
class RowSource:
    columns: list[Column]
    query: sql.Composed


def _table(model) -> sql.Identifier:
    return sql.Identifier(model._meta.db_table)


def _iso(expression: str) -> sql.Composable:
    # ISO 8601 in UTC with microseconds, the same text for every row (never the session's zone).
    return sql.SQL("""to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')""").format(sql.SQL(expression))


def _json(source: str, key: str) -> sql.Composable:
    """One key of a JSON column as its JSON text: strings keep their quotes, so the writer
    knows a string (neutralized) from a number (kept)."""
    return sql.SQL("({} -> {})::text").format(sql.SQL(source), sql.Literal(key))


def labels_source(study: Study) -> RowSource:
    """Every label of the study, corrections included, in id order (the order they arrived)."""
    schema = study.label_schema
    names = [f["name"] for f in schema["fields"]]
    fixed: dict[str, sql.Composable] = {
        "label_id": sql.SQL("l.id"),
        "assignment_id": sql.SQL("l.assignment_id"),
        "study": sql.Literal(study.slug),
        "item_external_id": sql.SQL("i.external_id"),
        "reviewer": sql.SQL("u.username"),
        "arm": sql.SQL("a.name"),
        "decision": _json("l.values", decision_field(schema)["name"]),
        "confidence": sql.SQL("l.confidence"),
        "comment": sql.SQL("l.comment"),
        "shown_at": _iso("l.shown_at"),
        "revealed_at": _iso("l.revealed_at"),
        "submitted_at": _iso("l.submitted_at"),
        "seconds_to_decide": sql.SQL("round(extract(epoch FROM l.submitted_at - l.shown_at), 3)::float8"),
        **{key: _json("l.client_timings", key) for key in exports.LABEL_TIMING_KEYS},
        **{key: _json("l.interactions", key) for key in exports.LABEL_INTERACTION_KEYS},
        "supersedes_label_id": sql.SQL("l.supersedes_id"),
        "is_current": sql.SQL("n.id IS NULL"),
        "ai_recommendation": sql.SQL("i.ai_recommendation::text"),
        "gold_label": sql.SQL("i.gold_label::text"),
        "is_probe": sql.SQL("i.is_probe"),
        "position": sql.SQL("l.position"),
    }
    per_field = {f"value_{n}": _json("l.values", n) for n in names} | {
        f"initial_{n}": _json("l.initial_values", n) for n in names
    }
    columns = exports.label_columns(names)
    expressions = [fixed.get(c.name) or per_field[c.name] for c in columns]
    query = sql.SQL(
        "SELECT {columns} FROM {label} l "
        "JOIN {item} i ON i.id = l.item_id "
        "JOIN {user} u ON u.id = l.reviewer_id "
        "JOIN {arm} a ON a.id = l.arm_id "
        # supersedes is one-to-one (unique): at most one correction per label.
        "LEFT JOIN {label} n ON n.supersedes_id = l.id "
        "WHERE l.study_id = {study} ORDER BY l.id"
    ).format(
        columns=sql.SQL(", ").join(expressions),
        label=_table(Label),
        item=_table(Item),
        user=_table(get_user_model()),
        arm=_table(Arm),
        study=sql.Literal(study.pk),
    )
    return RowSource(columns, query)


def items_source(study: Study) -> RowSource:
    """Every item of the study in id order (ingest order), without its transcript."""
    expressions = [
        sql.Literal(study.slug),
        sql.SQL("i.external_id"),
        sql.SQL("i.source_format"),
        sql.SQL("i.payload ->> 'title'"),
        sql.SQL("i.word_count"),
        sql.SQL("i.ai_recommendation::text"),
        sql.SQL("i.ai_confidence"),
        sql.SQL("i.gold_label::text"),
        sql.SQL("i.is_probe"),
        sql.SQL("i.priority"),
        sql.SQL("coalesce(c.n, 0)"),
        _iso("i.created_at"),
    ]
    query = sql.SQL(
        "SELECT {columns} FROM {item} i "
        "LEFT JOIN (SELECT l.item_id, count(*) AS n FROM {label} l WHERE l.study_id = {study} "
        "AND NOT EXISTS (SELECT 1 FROM {label} s WHERE s.supersedes_id = l.id) GROUP BY l.item_id) c "
        "ON c.item_id = i.id "
        "WHERE i.study_id = {study} ORDER BY i.id"
    ).format(
        columns=sql.SQL(", ").join(expressions),
        item=_table(Item),
        label=_table(Label),
        study=sql.Literal(study.pk),
    )
    return RowSource(list(exports.ITEM_COLUMNS), query)


def row_source(study: Study, report: str) -> RowSource:
    return labels_source(study) if report == "labels" else items_source(study)


def row_count(study: Study, report: str) -> int:
    """Rows the labels or items report has now (what decides streaming vs a job), read
    from the tallies rather than counted: the Exports page shows both on every visit."""
    if report == "labels":
        return tallies.label_count(study.pk)
    return item_counts([study.pk])[study.pk].items


def row_chunks(query: sql.Composed, chunk_size: int = ROW_CHUNK) -> Iterator[list[tuple]]:
    """The query's rows, ``chunk_size`` at a time, from a server-side cursor.

    Inside a transaction, so the cursor is not WITH HOLD (which would make the server
    compute and store every row before the first one is sent). A client that goes away
    closes the generator, which ends the transaction.
    """
    with transaction.atomic():
        connection.ensure_connection()
        text = query.as_string(connection.connection)
        with connection.chunked_cursor() as cursor:
            cursor.execute(text)
            while rows := cursor.fetchmany(chunk_size):
                yield rows


def row_stream(source: RowSource, fmt: str, on_rows: Callable[[int], None] | None = None) -> Iterator[bytes]:
    """The report as CSV or JSON Lines bytes; ``on_rows(n)`` is told of every chunk read."""
    row_format = RowFormat(source.columns)

    def chunks(convert):
        for rows in row_chunks(source.query):
            if on_rows is not None:
                on_rows(len(rows))
            yield [convert(row) for row in rows]

    if fmt == "csv":
        return exports.csv_stream(row_format.names, chunks(row_format.csv_row))
    return exports.jsonl_stream(chunks(row_format.json_row))


# --- export jobs -------------------------------------------------------------------------


def active_job(study: Study, report: str, fmt: str) -> ExportJob | None:
    return (
        ExportJob.objects.filter(study=study, report=report, format=fmt).exclude(status__in=ExportJob.FINISHED).first()
    )


def export_job_create(*, study: Study, report: str, fmt: str, actor, rows_total: int = 0) -> tuple[ExportJob, bool]:
    """Queue a job that writes the report to a file; (job, created). A job for the same
    report and format that is still queued or running is returned instead of a second one."""
    if (job := active_job(study, report, fmt)) is not None:
        return job, False
    export_dir = Path(settings.EXPORT_DIR)
    export_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    day = timezone.now().date().isoformat()
    try:
        with transaction.atomic():
            job = ExportJob.objects.create(
                study=study,
                report=report,
                format=fmt,
                requested_by=actor,
                rows_total=rows_total,
                # Our own random name: nothing the user typed becomes part of a path.
                file_path=str(export_dir / f"{uuid.uuid4().hex}.{fmt}"),
                filename=exports.export_filename(study.slug, report, day, fmt),
            )
            export_logged(study=study, actor=actor, report=report, fmt=fmt, mode="job", rows=rows_total, job=job.pk)
            job_enqueue_on_commit(job)
    except IntegrityError:
        # Another request queued the same export between our check and our insert.
        return active_job(study, report, fmt), False
    return job, True


def export_job_work(job: ExportJob, progress: JobProgress) -> None:
    """The work of an export job (run by reviewapp/jobs.py, which claims and retries it).

    The file is written under a fresh temporary name per attempt and renamed when complete,
    so a file that exists is whole and a half-written one is never mistaken for the export."""
    rows_total = row_count(job.study, job.report)
    progress.update(rows_done=0, rows_total=rows_total, force=True)
    final = Path(job.file_path)
    final.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temp = final.with_name(f".{final.name}.{uuid.uuid4().hex}.part")
    rows = 0

    def written(count: int) -> None:
        nonlocal rows
        rows += count
        progress.update(rows_done=rows)

    try:
        descriptor = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as out:
            for chunk in row_stream(row_source(job.study, job.report), job.format, on_rows=written):
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, final)
    finally:
        temp.unlink(missing_ok=True)
    job_finish(job, rows_done=rows, rows_total=rows_total, size_bytes=final.stat().st_size)


def exports_expire(*, now=None) -> int:
    """Delete the files of jobs finished more than EXPORT_KEEP_DAYS ago (the rows stay, as
    'expired'), and temporary files a killed worker left; returns how many files went."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.EXPORT_KEEP_DAYS)
    export_dir = Path(settings.EXPORT_DIR).resolve()
    removed = 0
    old = ExportJob.objects.filter(status=ExportJob.Status.SUCCEEDED, finished_at__lt=cutoff)
    for job in old.only("pk", "file_path").iterator():
        path = Path(job.file_path)
        if path.resolve().parent == export_dir and path.exists():
            path.unlink()
            removed += 1
        ExportJob.objects.filter(pk=job.pk).update(status=ExportJob.Status.EXPIRED)
    if export_dir.is_dir():
        stale = now.timestamp() - 86400
        for part in export_dir.glob(".*.part"):
            if part.stat().st_mtime < stale:
                part.unlink(missing_ok=True)
                removed += 1
    return removed
