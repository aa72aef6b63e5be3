"""python manage.py ingest --study SLUG FILE... : stream transcripts into a study's queue."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from reviewapp.ingest.files import file_kind, new_upload_path, parse_file
from reviewapp.ingest.parsing import ALL_FORMATS, BodyError
from reviewapp.ingest.services import (
    DEFAULT_BATCH_SIZE,
    ConcurrentIngestError,
    IngestOutcome,
    StudyClosed,
    decision_check_for,
    ingest_job_create,
    items_ingest,
    study_closed,
)
from reviewapp.studies.models import AuditEvent, Study

ERRORS_SHOWN = 50


class Command(BaseCommand):
    help = (
        "Ingest transcripts (.jsonl/.ndjson streamed line by line, or .json documents; .gz allowed; "
        "Inspect AI .eval logs sample by sample) "
        "into a study. All-or-nothing per file unless --skip-invalid."
    )

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", type=Path, metavar="FILE")
        parser.add_argument("--study", required=True, help="Study slug.")
        parser.add_argument("--format", choices=ALL_FORMATS, help="Source format (default: per record, or detected).")
        parser.add_argument("--skip-invalid", action="store_true", help="Import valid records, report the rest.")
        parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
        parser.add_argument("--background", action="store_true", help="Queue each file for a Celery worker.")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar (e.g. in logs).")

    def handle(self, *args, **options):
        study = Study.objects.filter(slug=options["study"]).first()
        if study is None:
            raise CommandError(f"No study with slug {options['study']!r}.")
        if study_closed(study):
            raise CommandError(str(StudyClosed.of(study)))
        for path in options["files"]:
            if not path.is_file():
                raise CommandError(f"{path}: no such file.")
            try:
                file_kind(path.name)
            except BodyError as exc:
                raise CommandError(str(exc)) from None
        failed = False
        for path in options["files"]:
            if options["background"]:
                self._enqueue(study, path, options)
            else:
                failed |= not self._ingest(study, path, options)
        if failed:
            raise CommandError("Some files were rejected; see the errors above. Nothing from them was written.")

    def _ingest(self, study: Study, path: Path, options) -> bool:
        size = path.stat().st_size
        bar = tqdm(
            total=size,
            unit="B",
            unit_scale=True,
            desc=path.name,
            disable=options["no_progress"],
            file=sys.stderr,
        )

        def on_bytes(position: int) -> None:
            bar.update(position - bar.n)

        def on_batch(outcome: IngestOutcome) -> None:
            bar.set_postfix(records=outcome.seen, errors=outcome.error_count, refresh=False)

        results = parse_file(
            path,
            format_hint=options["format"],
            decision_check=decision_check_for(study),
            max_record_bytes=settings.INGEST_MAX_RECORD_BYTES,
            on_bytes=on_bytes,
        )
        try:
            outcome = items_ingest(
                study=study,
                results=results,
                skip_invalid=options["skip_invalid"],
                batch_size=options["batch_size"],
                on_batch=on_batch,
            )
        except (BodyError, ConcurrentIngestError) as exc:
            bar.close()
            self.stderr.write(self.style.ERROR(f"{path}: {exc}"))
            return False
        bar.close()
        for error in outcome.errors[:ERRORS_SHOWN]:
            self.stderr.write(f"{path}: {error}")
        if outcome.error_count > ERRORS_SHOWN:
            self.stderr.write(f"{path}: ... and {outcome.error_count - ERRORS_SHOWN} more errors")
        style = self.style.ERROR if outcome.rejected else self.style.SUCCESS
        self.stdout.write(style(f"{path}: {outcome.summary()}"))
        AuditEvent.objects.create(
            study=study,
            action="ingest.command",
            detail={"file": path.name, "created": outcome.created, "errors": outcome.error_count},
        )
        return not outcome.rejected

    def _enqueue(self, study: Study, path: Path, options) -> None:
        # The worker may run elsewhere and the caller may delete the file: copy it.
        stored = new_upload_path(path.name)
        shutil.copyfile(path, stored)
        job = ingest_job_create(
            study=study,
            stored_path=stored,
            filename=path.name,
            format_hint=options["format"] or "",
            skip_invalid=options["skip_invalid"],
        )
        self.stdout.write(f"{path}: queued as ingest job {job.pk}; follow it on /studies/{study.slug}/")
