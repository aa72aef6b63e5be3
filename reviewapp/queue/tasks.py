"""Celery tasks for the queue."""

from __future__ import annotations

from celery import shared_task

from reviewapp.studies.models import Study

from . import services, tallies


@shared_task
def expire_leases() -> int:
    """Free the slots of overdue leases in every running study.

    Claims sweep their own study too; this keeps slots moving (and the progress
    figures true) when nobody is claiming. Idempotent: an expired lease is skipped.
    """
    freed = 0
    for study in Study.objects.filter(status=Study.Status.RUNNING).only("id"):
        while (count := services.leases_expire(study=study, limit=1000)) > 0:
            freed += count
    return freed


@shared_task
def refresh_progress() -> int:
    """Fold the tally rows of every running study, and drop deleted studies'; returns how many.

    The figures are exact without it; folding keeps each read down to a few rows.
    Idempotent: folding folded rows changes nothing.
    """
    studies = list(Study.objects.filter(status=Study.Status.RUNNING).only("id"))
    for study in studies:
        services.progress_refresh(study=study)
    tallies.tallies_drop_orphans()
    return len(studies)
