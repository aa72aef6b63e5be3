"""Assignments (who reviews which item under which arm) and the labels they give.

The claim / lease / submit logic lives in the queue services (issue 4); these tables
and their constraints are the part of the design every later step relies on.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Now

from reviewapp.ingest.models import Item
from reviewapp.studies.models import Arm, Study


class Assignment(models.Model):
    class State(models.TextChoices):
        LEASED = "leased"
        SUBMITTED = "submitted"
        EXPIRED = "expired"
        SKIPPED = "skipped"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="assignments")
    item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="assignments")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="assignments")
    # The arm this reviewer saw the item under (their enrolment's arm, or the
    # within-subjects arm chosen for this slot).
    arm = models.ForeignKey(Arm, on_delete=models.PROTECT, related_name="assignments")
    slot = models.PositiveSmallIntegerField(default=0, help_text="Order among the item's assignments.")
    state = models.CharField(max_length=16, choices=State.choices, default=State.LEASED)
    leased_at = models.DateTimeField(db_default=Now())
    lease_expires_at = models.DateTimeField()
    shown_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    skip_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [
            # Never the same item twice to one reviewer: impossible, not merely unlikely.
            models.UniqueConstraint(fields=["item", "reviewer"], name="assignment_item_reviewer_unique"),
            # At most one live lease per reviewer and study.
            models.UniqueConstraint(
                fields=["study", "reviewer"], condition=Q(state="leased"), name="assignment_one_live_lease"
            ),
        ]
        indexes = [models.Index(fields=["item", "state"], name="assignment_item_state")]

    def __str__(self) -> str:
        return f"{self.item} → {self.reviewer} ({self.state})"


class Label(models.Model):
    """A reviewer's answer. Append-only: a correction is a new row that supersedes."""

    assignment = models.ForeignKey(Assignment, on_delete=models.PROTECT, related_name="labels")
    # Denormalized so metrics load one study's labels in one pass without joins.
    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="labels")
    item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="labels")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="labels")
    arm = models.ForeignKey(Arm, on_delete=models.PROTECT, related_name="labels")
    values = models.JSONField()
    # Reveal mode: the blind answer given before the AI was shown.
    initial_values = models.JSONField(null=True, blank=True)
    confidence = models.FloatField(null=True, blank=True)
    comment = models.TextField(blank=True)
    client_timings = models.JSONField(default=dict, blank=True)
    interactions = models.JSONField(default=dict, blank=True)
    shown_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(db_default=Now())
    supersedes = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="superseded_by"
    )

    class Meta:
        constraints = [
            # One original answer per assignment; corrections chain through `supersedes`.
            models.UniqueConstraint(
                fields=["assignment"], condition=Q(supersedes__isnull=True), name="label_one_original_per_assignment"
            ),
        ]
        indexes = [models.Index(fields=["study", "id"], name="label_study_id")]

    def __str__(self) -> str:
        return f"label {self.pk} on {self.assignment_id}"
