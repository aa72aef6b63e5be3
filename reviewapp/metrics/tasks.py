"""Celery tasks for metrics: take ids, call a service, retry with backoff."""

from __future__ import annotations

import logging

from celery import shared_task

from reviewapp.studies.models import Study

from . import services
from .models import MetricRun

logger = logging.getLogger(__name__)


@shared_task(bind=True, max_retries=3)
def compute_metrics(self, run_id: int) -> None:
    """Compute one MetricRun. Idempotent: a finished run is left alone, and the result is
    stored in the same update that finishes the run."""
    try:
        services.metric_run_execute(run_id=run_id)
    except Exception as exc:
        logger.exception("metric run %s failed (attempt %s)", run_id, self.request.retries + 1)
        message = f"{type(exc).__name__}: {exc}"
        if self.request.retries >= self.max_retries:
            services.metric_run_fail(run_id=run_id, message=f"Gave up after {self.max_retries + 1} attempts: {message}")
            raise
        services.metric_run_retrying(run_id=run_id, message=message)
        # Back off 10, 20, 40 s: a database restart or a busy worker has time to pass.
        raise self.retry(exc=exc, countdown=10 * 2**self.request.retries) from exc


@shared_task
def refresh_running_studies() -> int:
    """Beat: queue a run for each running study whose data changed; returns how many."""
    queued = 0
    for study in Study.objects.filter(status=Study.Status.RUNNING):
        _, created = services.metric_run_request(study=study, trigger=MetricRun.Trigger.SCHEDULE)
        queued += created
    return queued


@shared_task
def recover_runs() -> int:
    """Beat: enqueue again the runs whose message was lost (see reviewapp/jobs.py)."""
    return len(services.metric_runs_recover())
