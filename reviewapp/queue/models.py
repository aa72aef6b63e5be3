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

# Items are served by priority band (high first), then by their place in the band: the
# item's id (fixed order) or a seeded hash of it (shuffled order, see ``order.py``). Both
# fold into one ascending integer so "what comes after this reviewer's cursor" is a single
# index range.
PRIORITY_OFFSET = 1_000_000
ITEM_ID_SPAN = 10**12


def queue_sort_key(priority: int, place: int) -> int:
    return (PRIORITY_OFFSET - priority) * ITEM_ID_SPAN + place


class ItemQuota(models.Model):
    """Open review slots of one item: per arm in between-subjects studies, per item within.

    ``open_slots`` = k - live leases - submitted labels. The claim query reads only
    rows with open slots (a partial index), so finished items cost nothing.
    """

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="quotas")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="quotas")
    # The arm's id in between-subjects studies; 0 when the arm is chosen per assignment.
    arm_key = models.BigIntegerField()
    sort_key = models.BigIntegerField()
    open_slots = models.IntegerField()
    submitted = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["item", "arm_key"], name="quota_item_arm_unique"),
            models.CheckConstraint(condition=Q(open_slots__gte=0), name="quota_open_not_negative"),
        ]
        indexes = [
            models.Index(fields=["study", "arm_key", "sort_key"], condition=Q(open_slots__gt=0), name="quota_claimable")
        ]

    def __str__(self) -> str:
        return f"quota {self.item_id}/{self.arm_key}: {self.open_slots} open"


class ReviewerCursor(models.Model):
    """Where a reviewer is in the queue: claims scan forward from here, so the
    next-item query does not grow with the reviewer's history."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE)
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    sort_key = models.BigIntegerField(default=-1)
    # Where in each priority band this reviewer's walk starts (0 in fixed order; a seeded
    # place in shuffled order): the walk goes up from here and wraps around once.
    offset = models.BigIntegerField(default=0, db_default=0)
    # Items served so far (answered or skipped): the next one is served at position served + 1.
    served = models.PositiveIntegerField(default=0, db_default=0)
    # Labels this reviewer gave in the study (originals, not corrections): the progress
    # line reads it instead of counting a history that grows without bound.
    labels_done = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["study", "reviewer"], name="cursor_unique")]

    def __str__(self) -> str:
        return f"cursor of {self.reviewer_id} in {self.study_id}"


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
    # Which ItemQuota row this assignment holds a slot of (the arm id, or 0 within subjects).
    quota_arm_key = models.BigIntegerField(default=0)
    state = models.CharField(max_length=16, choices=State.choices, default=State.LEASED)
    leased_at = models.DateTimeField(db_default=Now())
    lease_expires_at = models.DateTimeField()
    shown_at = models.DateTimeField(null=True, blank=True)
    # Reveal mode: the blind answer, recorded before the AI's output is sent at all.
    initial_values = models.JSONField(null=True, blank=True)
    revealed_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    skip_reason = models.CharField(max_length=200, blank=True)
    # 1-based place of this item in the reviewer's sequence (null for assignments made
    # before positions were recorded).
    position = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            # Never the same item twice to one reviewer: impossible, not merely unlikely.
            models.UniqueConstraint(fields=["item", "reviewer"], name="assignment_item_reviewer_unique"),
            # At most one live lease per reviewer and study.
            models.UniqueConstraint(
                fields=["study", "reviewer"], condition=Q(state="leased"), name="assignment_one_live_lease"
            ),
        ]
        indexes = [
            models.Index(fields=["item", "state"], name="assignment_item_state"),
            models.Index(
                fields=["study", "lease_expires_at"], condition=Q(state="leased"), name="assignment_live_leases"
            ),
        ]

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
    # Server timings: item shown, AI revealed (reveal mode), answer received.
    shown_at = models.DateTimeField(null=True, blank=True)
    revealed_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(db_default=Now())
    # The item's place in the reviewer's sequence (copied from the assignment).
    position = models.PositiveIntegerField(null=True, blank=True)
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
        indexes = [
            models.Index(fields=["study", "id"], name="label_study_id"),
            # A reviewer's labels newest first (their page), from any point (keyset pages).
            models.Index(fields=["study", "reviewer", "submitted_at", "id"], name="label_reviewer_time"),
        ]

    def __str__(self) -> str:
        return f"label {self.pk} on {self.assignment_id}"


class LateSubmission(models.Model):
    """An answer that arrived after its lease expired and its slot was taken.

    Kept for audit, never counted: the reviewer is told (409) and the answer is not lost.
    """

    assignment = models.ForeignKey(Assignment, on_delete=models.PROTECT, related_name="late_submissions")
    values = models.JSONField()
    payload = models.JSONField(default=dict, blank=True)
    reason = models.CharField(max_length=200)
    received_at = models.DateTimeField(db_default=Now())

    def __str__(self) -> str:
        return f"late answer on {self.assignment_id}"


# --- Tallies -------------------------------------------------------------------------
# Summary counts that researcher pages read instead of counting a million rows per
# request. PostgreSQL triggers (migration 0005) append one signed delta row per statement
# that inserts, updates or deletes items, quota rows or labels; a page sums a study's
# rows, and ``tallies.tallies_compact`` folds them back into one row per key. Deltas are
# only ever appended, so writers never wait on each other for a counter row (an ingest
# holding its transaction open for minutes blocks nobody). The study column has no
# foreign key constraint: the triggers add rows while a study's items are being deleted.


class QuotaTally(models.Model):
    """How many quota rows of one arm's queue have ``submitted`` labels: the queue's shape
    (fully, partially, not yet labelled items, labels given) without a pass over it."""

    study = models.ForeignKey(Study, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    arm_key = models.BigIntegerField()
    submitted = models.IntegerField()
    n = models.BigIntegerField()

    def __str__(self) -> str:
        return f"quota tally {self.study_id}/{self.arm_key}: {self.n:+d} with {self.submitted}"


class LabelTally(models.Model):
    """Labels (originals: a correction replaces one) per reviewer, arm and UTC day (``day``
    is null for days folded together because they are older than any activity chart
    shows), and the newest one's time."""

    study = models.ForeignKey(Study, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    reviewer_id = models.BigIntegerField()
    arm_id = models.BigIntegerField()
    day = models.DateField(null=True)
    n = models.BigIntegerField()
    last_at = models.DateTimeField(null=True)

    def __str__(self) -> str:
        return f"label tally {self.study_id}/{self.reviewer_id}/{self.day}: {self.n:+d}"
