"""Celery tasks for metrics (a metric run itself runs through reviewapp/jobs.py)."""

from __future__ import annotations

from celery import shared_task

from reviewapp.studies.models import Study

from . import services
from .models import MetricRun


@shared_task
def refresh_running_studies() -> int:
    """Beat: queue a run for each running study whose data changed; returns how many."""
    queued = 0
    for study in Study.objects.filter(status=Study.Status.RUNNING):
        _, created = services.metric_run_request(study=study, trigger=MetricRun.Trigger.SCHEDULE)
        queued += created
    return queued
