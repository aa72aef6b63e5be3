"""Export jobs: a large report written to a private file by a Celery worker, then downloaded."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from reviewapp.jobs import Job
from reviewapp.studies.models import Study


class ExportJob(Job):
    """A large report written to a private file by a background job (reviewapp/jobs.py)."""

    KIND = "export"
    LOCK = 7_341_006
    WORK = "reviewapp.reports.services.export_job_work"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        # The file was deleted after EXPORT_KEEP_DAYS; the row stays for the record.
        EXPIRED = "expired"

    class Report(models.TextChoices):
        LABELS = "labels", "Raw labels"
        ITEMS = "items", "Items"

    class Format(models.TextChoices):
        CSV = "csv", "CSV"
        JSONL = "jsonl", "JSON Lines"

    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.EXPIRED)

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="export_jobs")
    report = models.CharField(max_length=16, choices=Report.choices)
    format = models.CharField(max_length=8, choices=Format.choices, default=Format.CSV)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    rows_done = models.BigIntegerField(default=0)
    rows_total = models.BigIntegerField(default=0)
    # Where the worker writes the file, chosen when the job is created (under EXPORT_DIR,
    # which the app never serves as static or media). The worker takes it from here, not
    # from its own settings, so the process that created the job decides.
    file_path = models.CharField(max_length=500)
    # The name the download gets: <slug>-<report>-<date>.<ext>.
    filename = models.CharField(max_length=255)
    size_bytes = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["study", "-created_at"], name="exportjob_study_time")]
        constraints = [
            # One job at a time per report and format: a double click finds the running one.
            models.UniqueConstraint(
                fields=["study", "report", "format"],
                condition=Q(status__in=["queued", "running"]),
                name="exportjob_one_active",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.report}.{self.format} of {self.study_id} ({self.status})"

    @property
    def is_downloadable(self) -> bool:
        return self.status == self.Status.SUCCEEDED

    @property
    def progress_percent(self) -> int:
        if self.is_finished:
            return 100
        if not self.rows_total:
            return 0
        return min(99, int(100 * self.rows_done / self.rows_total))

    @property
    def content_type(self) -> str:
        return "text/csv; charset=utf-8" if self.format == self.Format.CSV else "application/x-ndjson"
