"""Celery tasks for ingest (the ingest job itself runs through reviewapp/jobs.py)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from .models import IngestJob


@shared_task
def cleanup_finished_uploads() -> int:
    """Delete upload files whose job finished more than an hour ago (left by a crash)."""
    cutoff = timezone.now() - timedelta(hours=1)
    removed = 0
    finished = IngestJob.objects.filter(status__in=IngestJob.FINISHED, finished_at__lt=cutoff).values_list(
        "stored_path", flat=True
    )
    upload_dir = Path(settings.UPLOAD_DIR).resolve()
    for stored in finished.iterator():
        path = Path(stored)
        if path.resolve().parent == upload_dir and path.exists():
            path.unlink()
            removed += 1
    return removed
