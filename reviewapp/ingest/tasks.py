"""Celery tasks for ingest: take ids, call a service, retry what is transient."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from . import services
from .models import IngestJob

logger = logging.getLogger(__name__)


@shared_task(bind=True, max_retries=5)
def run_ingest_job(self, job_id: int) -> None:
    try:
        services.ingest_job_run(job_id=job_id)
    except (OperationalError, InterfaceError, services.ConcurrentIngestError) as exc:
        # The database went away, or another ingest raced us on the same ids: the
        # job's transaction rolled back, so a retry starts clean (and skips what the
        # other ingest stored). Back off 5, 10, 20, 40, 80 s.
        if self.request.retries >= self.max_retries:
            services.ingest_job_fail(job_id=job_id, message=f"Gave up after {self.max_retries} retries: {exc}")
            raise
        raise self.retry(exc=exc, countdown=5 * 2**self.request.retries) from exc
    except Exception as exc:
        logger.exception("ingest job %s failed", job_id)
        services.ingest_job_fail(job_id=job_id, message=f"Ingest failed: {type(exc).__name__}: {exc}")
        raise


@shared_task
def cleanup_finished_uploads() -> int:
    """Delete upload files whose job finished more than an hour ago (left by a crash)."""
    cutoff = timezone.now() - timedelta(hours=1)
    removed = 0
    finished = IngestJob.objects.filter(
        status__in=[IngestJob.Status.SUCCEEDED, IngestJob.Status.FAILED], finished_at__lt=cutoff
    ).values_list("stored_path", flat=True)
    upload_dir = Path(settings.UPLOAD_DIR).resolve()
    for stored in finished.iterator():
        path = Path(stored)
        if path.resolve().parent == upload_dir and path.exists():
            path.unlink()
            removed += 1
    return removed


@shared_task
def recover_jobs() -> int:
    """Beat: enqueue again the jobs whose message was lost (see reviewapp/jobs.py)."""
    return len(services.ingest_jobs_recover())
