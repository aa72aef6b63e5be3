"""Celery tasks for exports: take ids, call a service, retry what is transient."""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import InterfaceError, OperationalError

from . import services

logger = logging.getLogger(__name__)


@shared_task(bind=True, max_retries=3)
def run_export_job(self, job_id: int) -> None:
    """Write one ExportJob's file. Idempotent: a finished job is left alone, and a rerun
    writes the file again from scratch under a temporary name."""
    try:
        services.export_job_run(job_id=job_id)
    except (OperationalError, InterfaceError) as exc:
        # The database went away mid-export: the partial file was removed, so a retry
        # starts clean. Back off 10, 20, 40 s.
        if self.request.retries >= self.max_retries:
            services.export_job_fail(job_id=job_id, message=f"Gave up after {self.max_retries + 1} attempts: {exc}")
            raise
        raise self.retry(exc=exc, countdown=10 * 2**self.request.retries) from exc
    except Exception as exc:
        logger.exception("export job %s failed", job_id)
        services.export_job_fail(job_id=job_id, message=f"Export failed: {type(exc).__name__}: {exc}")
        raise


@shared_task
def cleanup_old_exports() -> int:
    """Beat: delete export files older than EXPORT_KEEP_DAYS; returns how many."""
    return services.exports_expire()


@shared_task
def recover_jobs() -> int:
    """Beat: enqueue again the jobs whose message was lost (see reviewapp/jobs.py)."""
    return len(services.export_jobs_recover())
