"""Celery tasks for exports (an export job itself runs through reviewapp/jobs.py)."""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task
def cleanup_old_exports() -> int:
    """Beat: delete export files older than EXPORT_KEEP_DAYS; returns how many."""
    return services.exports_expire()
