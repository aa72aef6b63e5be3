"""Items (the transcripts under review) and background ingest jobs."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Now

from reviewapp.jobs import Job
from reviewapp.rendering import reveal_hidden_characters
from reviewapp.studies.models import IngestToken, Study


class SourceFormat(models.TextChoices):
    NATIVE = "native", "Native JSON"
    OPENAI = "openai", "OpenAI Chat Completions"
    ANTHROPIC = "anthropic", "Anthropic Messages"
    OTEL = "otel", "OpenTelemetry GenAI (OTLP JSON)"
    INSPECT = "inspect", "Inspect AI eval log"
    OPENAI_RESPONSES = "openai_responses", "OpenAI Responses API"


class Item(models.Model):
    """One transcript to review.

    ``payload`` holds only what every reviewer may see (title and normalized
    messages). What an arm may hide (AI recommendation, rationale, confidence,
    gold, probe flag) lives in separate columns, so a view that sends ``payload``
    cannot leak it by accident. ``source_metadata`` is for researchers only.
    """

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="items")
    external_id = models.CharField(max_length=255)
    source_format = models.CharField(max_length=16, choices=SourceFormat.choices)
    payload = models.JSONField()
    source_metadata = models.JSONField(default=dict, blank=True)
    # sha256 of the canonical payload: tells a harmless re-send from a conflicting one.
    content_hash = models.CharField(max_length=64)
    # Words a reviewer must read: the reading-speed floor is word_count / wpm.
    word_count = models.PositiveIntegerField(default=0)
    ai_recommendation = models.JSONField(null=True, blank=True)
    ai_rationale = models.TextField(blank=True, default="")
    ai_confidence = models.FloatField(null=True, blank=True)
    gold_label = models.JSONField(null=True, blank=True)
    # A planted error: the AI recommendation deliberately disagrees with gold.
    is_probe = models.BooleanField(default=False)
    priority = models.IntegerField(default=0, help_text="Higher is reviewed first.")
    ingest_job = models.ForeignKey("IngestJob", null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        ordering = ["study", "-priority", "id"]
        constraints = [
            models.UniqueConstraint(fields=["study", "external_id"], name="item_external_id_unique_per_study"),
            models.CheckConstraint(
                condition=Q(ai_confidence__isnull=True) | Q(ai_confidence__gte=0, ai_confidence__lte=1),
                name="item_ai_confidence_0_1",
            ),
            models.CheckConstraint(
                condition=Q(is_probe=False)
                | (
                    Q(gold_label__isnull=False, ai_recommendation__isnull=False)
                    & ~Q(ai_recommendation=models.F("gold_label"))
                ),
                name="item_probe_contradicts_gold",
            ),
        ]
        indexes = [
            models.Index(fields=["study", "-priority", "id"], name="item_study_priority"),
            # A study's items by id alone: where a reviewer's walk starts (queue/order.py).
            models.Index(fields=["study", "id"], name="item_study_id"),
        ]

    def __str__(self) -> str:
        # The admin shows it (lists, breadcrumbs, links): hidden characters as markers.
        return reveal_hidden_characters(f"{self.study.slug}:{self.external_id}")

    @property
    def ai_is_right(self) -> bool | None:
        """Whether the AI recommendation matches gold; None without gold."""
        if self.gold_label is None or self.ai_recommendation is None:
            return None
        return self.ai_recommendation == self.gold_label


class IngestJob(Job):
    """A file ingested in the background by a Celery worker, with its progress (reviewapp/jobs.py)."""

    KIND = "ingest"
    LOCK = 7_341_004
    WORK = "reviewapp.ingest.services.ingest_job_work"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="ingest_jobs")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    token = models.ForeignKey(IngestToken, null=True, blank=True, on_delete=models.SET_NULL)
    filename = models.CharField(max_length=255)
    stored_path = models.CharField(max_length=500)
    size_bytes = models.BigIntegerField(default=0)
    format_hint = models.CharField(max_length=16, blank=True, choices=SourceFormat.choices)
    # Import the valid records and report the rest, instead of all-or-nothing.
    skip_invalid = models.BooleanField(default=False)
    bytes_done = models.BigIntegerField(default=0)
    records_seen = models.PositiveIntegerField(default=0)
    created_count = models.PositiveIntegerField(default=0)
    duplicate_count = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    # The outcome, as the uploader reads it: "3 records: 3 created", or why the file was refused.
    message = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return reveal_hidden_characters(f"{self.filename} ({self.status})")

    @property
    def progress_percent(self) -> int:
        if self.is_finished:
            return 100
        if not self.size_bytes:
            return 0
        return min(99, int(100 * self.bytes_done / self.size_bytes))


class ItemTally(models.Model):
    """Items of a study by source format: how many, how many with gold, how many probes.

    Delta rows appended by triggers (migration 0004), read by ``tallies.item_counts`` and folded
    by ``tallies.item_tallies_fold``. No foreign-key constraint, so writers append without
    touching the study row; a deleted study's rows go with ``tallies.item_tallies_drop_orphans``."""

    study = models.ForeignKey(Study, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    source_format = models.CharField(max_length=16)
    items = models.BigIntegerField()
    gold = models.BigIntegerField()
    probes = models.BigIntegerField()

    def __str__(self) -> str:
        return f"item tally {self.study_id}/{self.source_format}: {self.items:+d}"
