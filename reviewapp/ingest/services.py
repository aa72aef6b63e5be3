"""Writing parsed records into the review queue (the one place ingest writes).

``items_ingest`` takes parsed results (``ItemRecord`` or ``RecordError``) and writes
new items with COPY in batches, inside one transaction:

* strict (default): any bad record rolls the whole input back; every error is
  reported with its location, field and reason; nothing is half-written;
* ``skip_invalid``: valid records go in, bad ones are reported.

Idempotent on ``external_id``: a record identical to a stored (committed) one is
counted as a duplicate and skipped; one that differs is an error (it would silently
change what reviewers saw). Concurrent ingests of the same ids are safe: the unique
constraint decides, and the loser rolls back whole with ``ConcurrentIngestError``;
sending it again skips what the winner stored.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.models import Max
from psycopg.copy import QueuedLibpqWriter
from psycopg.errors import UniqueViolation

from reviewapp.jobs import JobProgress, TransientJobError, job_enqueue_on_commit, job_finish
from reviewapp.studies.models import AuditEvent, Study
from reviewapp.studies.schema import decision_field, schema_errors, value_error
from reviewapp.studies.services import StudyRuleError, audit, rationale_arms_over_real_rationales

from . import signals
from .files import parse_file
from .models import IngestJob, Item
from .parsing import BodyError, DecisionCheck, ItemRecord, ParseResult, RecordError

logger = logging.getLogger(__name__)

MAX_ERRORS_KEPT = 1000
DEFAULT_BATCH_SIZE = 2000
COPY_COLUMNS = (
    "study_id",
    "external_id",
    "source_format",
    "payload",
    "source_metadata",
    "content_hash",
    "word_count",
    "ai_recommendation",
    "ai_rationale",
    "ai_confidence",
    "gold_label",
    "is_probe",
    "priority",
    "ingest_job_id",
)


@dataclass
class IngestOutcome:
    seen: int = 0
    created: int = 0
    duplicates: int = 0
    error_count: int = 0
    errors: list[RecordError] = field(default_factory=list)
    committed: bool = False
    strict: bool = True
    # Records whose content is shown only in part by design (an image as a placeholder,
    # redacted reasoning): stored, and said here, never silently (the item says so too).
    warning_count: int = 0
    warnings: list[dict[str, Any]] = field(default_factory=list)

    def add_error(self, error: RecordError) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS_KEPT:
            self.errors.append(error)

    def add_warnings(self, record: ItemRecord) -> None:
        shown_in_part = record.source_metadata.get("fidelity_warnings")
        if not shown_in_part:
            return
        self.warning_count += 1
        if len(self.warnings) < MAX_ERRORS_KEPT:
            self.warnings.append(
                {"location": record.location, "external_id": record.external_id, "warnings": list(shown_in_part)}
            )

    @property
    def rejected(self) -> bool:
        return self.strict and self.error_count > 0

    def summary(self) -> str:
        if self.rejected:
            return (
                f"Rejected: {self.error_count} of {self.seen} records are invalid, so nothing was written "
                f"(fix them, or pass skip_invalid to import the {self.seen - self.error_count} valid ones)."
            )
        parts = [f"{self.created} created", f"{self.duplicates} already present"]
        if self.error_count:
            parts.append(f"{self.error_count} skipped as invalid")
        if self.warning_count:
            parts.append(f"{self.warning_count} with content shown only in part (each item says what)")
        return f"{self.seen} records: " + ", ".join(parts) + "."

    def as_dict(self) -> dict[str, Any]:
        return {
            "records": self.seen,
            "created": self.created,
            "duplicates": self.duplicates,
            "error_count": self.error_count,
            "errors": [e.as_dict() for e in self.errors],
            "errors_truncated": self.error_count > len(self.errors),
            "warning_count": self.warning_count,
            "warnings": self.warnings,
            "committed": self.committed,
            "message": self.summary(),
        }


class _RollBack(Exception):
    pass


def decision_check_for(study: Study) -> DecisionCheck | None:
    """A validator for AI recommendations and gold labels from the study's schema."""
    if schema_errors(study.label_schema):
        return None
    field_spec = decision_field(study.label_schema)
    return lambda value: value_error(field_spec, value)


class StudyClosed(BodyError):
    """The study is closed: it takes no new items, by any path (API, upload, command, job)."""

    @classmethod
    def of(cls, study: Study) -> StudyClosed:
        return cls(f"Study '{study.slug}' is closed; it accepts no new items.")


def study_closed(study: Study) -> bool:
    """Read afresh: a study closed since ``study`` was loaded is closed."""
    return Study.objects.filter(pk=study.pk, status__in=(Study.Status.CLOSED, Study.Status.ARCHIVED)).exists()


class ConcurrentIngestError(Exception):
    """Another ingest committed some of the same external_ids while this one ran."""

    message = (
        "Another ingest wrote some of these external_ids while this one was running, so nothing from this "
        "input was written. Send it again: items already stored are skipped as duplicates."
    )


def items_ingest(
    *,
    study: Study,
    results: Iterable[ParseResult],
    skip_invalid: bool = False,
    ingest_job_id: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_batch: Callable[[IngestOutcome], None] | None = None,
) -> IngestOutcome:
    if study_closed(study):
        raise StudyClosed.of(study)
    outcome = IngestOutcome(strict=not skip_invalid)
    seen_ids: dict[str, tuple[str, str]] = {}
    # Stored ids are looked up on a second connection so the COPY on the main one can
    # stay open for the whole input: the server stores rows while we parse the next.
    lookup = connections.create_connection(DEFAULT_DB_ALIAS)
    try:
        with transaction.atomic():
            # Items written now get ids above this (ids come from a sequence).
            first_new_id = (study.items.aggregate(last=Max("id"))["last"] or 0) + 1
            with _ItemCopy(study, ingest_job_id) as sink:
                batch: list[ItemRecord] = []
                for result in results:
                    outcome.seen += 1
                    if isinstance(result, RecordError):
                        outcome.add_error(result)
                    elif _first_in_input(result, seen_ids, outcome):
                        outcome.add_warnings(result)
                        batch.append(result)
                    if len(batch) >= batch_size:
                        _write_batch(lookup, study, batch, outcome, sink)
                        batch = []
                        if on_batch:
                            on_batch(outcome)
                _write_batch(lookup, study, batch, outcome, sink)
                if on_batch:
                    on_batch(outcome)
                if outcome.rejected:
                    raise _RollBack
            queued = outcome.created and study.status != Study.Status.DRAFT
            if queued:
                # New items in a study that already started go straight into its queue
                # (the queue app's receivers): their quota rows are invisible to reviewers
                # until this commits, so they block nobody; moving reviewers' cursors back to
                # them locks those rows, so it is left to the very end (below).
                signals.items_added.send(sender=Item, study=study, from_item_id=first_new_id)
        if queued:
            signals.items_committed.send(sender=Item, study=study, from_item_id=first_new_id)
    except _RollBack:
        outcome.created = 0
        return outcome
    except UniqueViolation as exc:
        # The unique (study, external_id) constraint caught a concurrent writer.
        raise ConcurrentIngestError(ConcurrentIngestError.message) from exc
    finally:
        lookup.close()
    outcome.committed = True
    return outcome


def _first_in_input(record: ItemRecord, seen_ids: dict[str, tuple[str, str]], outcome: IngestOutcome) -> bool:
    earlier = seen_ids.get(record.external_id)
    if earlier is None:
        seen_ids[record.external_id] = (record.content_hash, record.location)
        return True
    content_hash, location = earlier
    if content_hash == record.content_hash:
        outcome.duplicates += 1
    else:
        outcome.add_error(
            RecordError(
                record.location,
                "external_id",
                f"repeats {location} with different content",
                record.external_id,
            )
        )
    return False


def _write_batch(lookup, study: Study, batch: list[ItemRecord], outcome: IngestOutcome, sink: _ItemCopy) -> None:
    if not batch:
        return
    with lookup.cursor() as cursor:
        cursor.execute(
            f"SELECT external_id, content_hash FROM {Item._meta.db_table} "  # noqa: S608 (our table name)
            "WHERE study_id = %s AND external_id = ANY(%s)",
            [study.pk, [r.external_id for r in batch]],
        )
        stored = dict(cursor.fetchall())
    new = []
    for record in batch:
        stored_hash = stored.get(record.external_id)
        if stored_hash is None:
            new.append(record)
        elif stored_hash == record.content_hash:
            outcome.duplicates += 1
        else:
            outcome.add_error(
                RecordError(
                    record.location,
                    "external_id",
                    "already exists in this study with different content (items are immutable once ingested)",
                    record.external_id,
                )
            )
    if outcome.rejected:
        # Strict mode: this input will be rolled back, so keep checking but stop writing.
        return
    sink.write(new)
    outcome.created += len(new)


def _json_text(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


class _ItemCopy:
    """One COPY into the item table, opened on the first row and kept open to the end."""

    SQL = f"COPY {Item._meta.db_table} ({', '.join(COPY_COLUMNS)}) FROM STDIN"

    def __init__(self, study: Study, ingest_job_id: int | None) -> None:
        self.study_id = study.pk
        self.ingest_job_id = ingest_job_id
        self._stack = ExitStack()
        self._copy = None

    def __enter__(self) -> _ItemCopy:
        return self

    def __exit__(self, *exc_info) -> bool:
        # On an exception psycopg aborts the COPY; otherwise this waits for the server.
        return self._stack.__exit__(*exc_info)

    def write(self, records: list[ItemRecord]) -> None:
        if not records:
            return
        if self._copy is None:
            cursor = self._stack.enter_context(connection.cursor()).cursor
            # A queued writer sends on a background thread: formatting and parsing
            # here overlap with the server storing earlier rows.
            self._copy = self._stack.enter_context(cursor.copy(self.SQL, writer=QueuedLibpqWriter(cursor)))
        for r in records:
            self._copy.write_row(
                (
                    self.study_id,
                    r.external_id,
                    r.source_format,
                    r.payload_json.decode(),
                    orjson.dumps(r.source_metadata).decode(),
                    r.content_hash,
                    r.word_count,
                    _json_text(r.ai_recommendation),
                    r.ai_rationale,
                    r.ai_confidence,
                    _json_text(r.gold_label),
                    r.is_probe,
                    r.priority,
                    self.ingest_job_id,
                )
            )


# --- background ingest jobs (the kind "ingest" of reviewapp/jobs.py) -------------------


def ingest_job_create(
    *,
    study: Study,
    stored_path: Path,
    filename: str,
    format_hint: str = "",
    skip_invalid: bool = False,
    created_by=None,
    token=None,
) -> IngestJob:
    """Record an uploaded file and run its ingest on a worker once the row is committed."""
    job = IngestJob.objects.create(
        study=study,
        filename=filename[:255],
        stored_path=str(stored_path),
        size_bytes=stored_path.stat().st_size,
        format_hint=format_hint,
        skip_invalid=skip_invalid,
        created_by=created_by,
        token=token,
    )
    job_enqueue_on_commit(job)
    return job


def ingest_job_work(job: IngestJob, progress: JobProgress) -> None:
    """The work of an ingest job (run by reviewapp/jobs.py, which claims and retries it).

    The items and the job's outcome commit in one transaction, so a worker that dies mid-job
    leaves either everything (the job reads 'succeeded') or nothing (a rerun starts again from
    scratch). A file that cannot be read, or a strict ingest with bad records, fails the job
    with its reason; either way the upload is deleted and the ingest is audited.
    """
    progress.update(bytes_done=0, force=True)
    try:
        with transaction.atomic():
            results = parse_file(
                Path(job.stored_path),
                format_hint=job.format_hint or None,
                decision_check=decision_check_for(job.study),
                max_record_bytes=settings.INGEST_MAX_RECORD_BYTES,
                on_bytes=lambda position: progress.update(bytes_done=position),
            )
            outcome = items_ingest(
                study=job.study,
                results=results,
                skip_invalid=job.skip_invalid,
                ingest_job_id=job.pk,
                on_batch=lambda o: progress.update(records_seen=o.seen, error_count=o.error_count),
            )
            job_finish(
                job,
                failed=outcome.rejected,
                records_seen=outcome.seen,
                created_count=outcome.created,
                duplicate_count=outcome.duplicates,
                error_count=outcome.error_count,
                errors=[e.as_dict() for e in outcome.errors],
                message=outcome.summary(),
                bytes_done=job.size_bytes,
            )
    except BodyError as exc:
        job_finish(job, failed=True, message=str(exc))
    except ConcurrentIngestError as exc:
        # Another ingest stored some of these ids meanwhile: trying again skips them.
        raise TransientJobError(str(exc)) from exc
    job.refresh_from_db()
    Path(job.stored_path).unlink(missing_ok=True)
    AuditEvent.objects.create(
        study=job.study,
        actor=job.created_by,
        action="ingest.job",
        detail={"job": job.pk, "status": job.status, "created": job.created_count, "errors": job.error_count},
    )


# --- gold labels and probes (the Items tab) --------------------------------------------


@transaction.atomic
def item_set_gold(*, item: Item, gold: Any, actor) -> None:
    field = decision_field(item.study.label_schema)
    if gold is not None:
        problem = value_error(field, gold)
        if problem:
            raise StudyRuleError(f"Gold label {problem}.")
    if item.is_probe and gold == item.ai_recommendation:
        raise StudyRuleError("This item is a probe: its gold label must differ from the AI recommendation.")
    if item.labels.exists():
        raise StudyRuleError("This item already has labels; its gold label can no longer change.")
    before = item.gold_label
    item.gold_label = gold
    item.save(update_fields=["gold_label"])
    audit(item.study, actor, "item.gold", item=item.external_id, before=before, after=gold)


@transaction.atomic
def probes_generate(*, study: Study, actor) -> int:
    """Turn gold items into probes until probes make up the study's probe rate.

    A probe's AI recommendation is set deliberately against gold: to another valid
    value of the decision field, chosen with the study's seed. Only items nobody has
    been assigned yet are used, so no reviewer saw the item before it changed. The
    original recommendation is kept in the item's source metadata.
    """
    problems = schema_errors(study.label_schema)
    if problems:
        raise StudyRuleError("Fix the label schema first: " + " ".join(problems))
    field = decision_field(study.label_schema)
    if field["type"] == "interval":
        raise StudyRuleError("Probes need a nominal or ordinal decision field (a wrong value must be well defined).")
    if study.status == Study.Status.RUNNING and rationale_arms_over_real_rationales(study):
        raise StudyRuleError(
            "An arm shows the AI's rationale, and a generated probe has none until you write it: served now, it "
            "would give itself away. Pause the study, generate the probes, write their rationales, then resume."
        )
    total = study.items.count()
    wanted = round(study.probe_rate * total) - study.items.filter(is_probe=True).count()
    if wanted <= 0:
        return 0
    # Nobody assigned yet (the queue's assignments, through their relation to the item).
    candidates = list(
        study.items.select_for_update(of=("self",))
        .filter(assignments__isnull=True, is_probe=False, gold_label__isnull=False)
        .order_by("id")
    )
    rng = random.Random(f"{study.seed}:probes")
    rng.shuffle(candidates)
    made = []
    for item in candidates[:wanted]:
        wrong = rng.choice([c for c in field["choices"] if c != item.gold_label])
        item.source_metadata = {
            **item.source_metadata,
            "probe_original": {"ai_recommendation": item.ai_recommendation, "ai_rationale": item.ai_rationale},
        }
        item.ai_recommendation = wrong
        # The ingested rationale argued for the old recommendation; a generated probe
        # has none rather than one that contradicts it, until the researcher writes one
        # (probe_tells keeps a study with rationale arms from starting without it).
        item.ai_rationale = ""
        item.is_probe = True
        item.save(update_fields=["source_metadata", "ai_recommendation", "ai_rationale", "is_probe"])
        made.append(item.external_id)
    audit(study, actor, "probes.generate", count=len(made), items=made[:100])
    return len(made)


@transaction.atomic
def probe_rationale_set(*, item: Item, rationale: str, actor) -> None:
    """Give a probe the rationale its arms show: one arguing for the planted (wrong) answer.

    Only before anyone was assigned the item, as for gold labels and probe generation."""
    if not item.is_probe:
        raise StudyRuleError("Only a probe's rationale is written here; real items keep the one they came with.")
    if item.assignments.exists():
        raise StudyRuleError("This probe has been served to a reviewer; its rationale can no longer change.")
    rationale = rationale.strip()
    if "\x00" in rationale:
        raise StudyRuleError("The rationale contains a NUL character, which cannot be stored.")
    before = item.ai_rationale
    item.ai_rationale = rationale
    item.save(update_fields=["ai_rationale"])
    audit(item.study, actor, "probe.rationale", item=item.external_id, before=before, after=rationale)
