"""One computation of a study's metrics: what went in, how long it took, what came out."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from reviewapp.jobs import Job
from reviewapp.studies.models import Study


class MetricRun(Job):
    """One computation of a study's metrics, run as a background job (reviewapp/jobs.py)."""

    KIND = "metrics"
    LOCK = 7_341_002
    WORK = "reviewapp.metrics.services.metric_run_work"

    class Trigger(models.TextChoices):
        MANUAL = "manual"
        SCHEDULE = "schedule"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="metric_runs")
    kind = models.CharField(max_length=32, default="study")
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.MANUAL)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    # Resamples, confidence level, thresholds, seed: enough to reproduce the numbers.
    parameters = models.JSONField(default=dict)
    # What the data looked like: the newest label id, how many labels, when the study
    # was last edited. A run with the same watermark as the last success is skipped.
    watermark = models.JSONField(default=dict)
    progress = models.PositiveSmallIntegerField(default=0)
    timings = models.JSONField(default=dict, blank=True)
    result = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # One run at a time per study: a double click or a beat tick during a run
            # finds the active run instead of starting a second one.
            models.UniqueConstraint(
                fields=["study", "kind"], condition=Q(status__in=["queued", "running"]), name="metricrun_one_active"
            ),
        ]
        indexes = [models.Index(fields=["study", "kind", "status", "-finished_at"], name="metricrun_latest")]

    def __str__(self) -> str:
        return f"metrics of {self.study_id} ({self.status})"

    @property
    def seconds(self) -> float | None:
        return self.timings.get("total_seconds")
