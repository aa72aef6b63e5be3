"""Studies, their arms, ingest tokens and the audit log."""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Now
from django.utils import timezone

from .schema import DEFAULT_LABEL_SCHEMA


def new_seed() -> int:
    # Fits a signed 64-bit column and numpy's SeedSequence alike.
    return secrets.randbits(62)


def default_label_schema() -> dict:
    return {**DEFAULT_LABEL_SCHEMA, "fields": [dict(f) for f in DEFAULT_LABEL_SCHEMA["fields"]]}


class Study(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft"
        RUNNING = "running"
        PAUSED = "paused"
        CLOSED = "closed"
        # Closed for good: no Reopen (closing can be undone; archiving cannot).
        ARCHIVED = "archived"

    class ItemOrder(models.TextChoices):
        # Each reviewer walks the items from their own seeded starting point in a seeded
        # shuffle, so an item's position in reviewers' sequences is balanced (queue contract).
        SHUFFLED = "shuffled", "Per-reviewer shuffled order"
        # Everyone meets the items in the same order: priority, then the order they arrived.
        FIXED = "fixed", "Fixed order (the same for every reviewer)"

    class Design(models.TextChoices):
        # Each reviewer gets one arm for the whole study (seeded permuted blocks).
        BETWEEN = "between", "Between subjects"
        # The arm is chosen per assignment, counterbalanced across items.
        WITHIN = "within", "Within subjects"

    slug = models.SlugField(max_length=64, unique=True)
    title = models.CharField(max_length=200)
    instructions = models.TextField(blank=True, help_text="Markdown, shown to reviewers (sanitized).")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    label_schema = models.JSONField(default=default_label_schema)
    overlap_k = models.PositiveSmallIntegerField(default=3, help_text="Reviewers per item (per arm where needed).")
    lease_seconds = models.PositiveIntegerField(default=900)
    design = models.CharField(max_length=16, choices=Design.choices, default=Design.BETWEEN)
    stratify_by = models.CharField(max_length=64, blank=True, help_text="Reviewer attribute to stratify on.")
    probe_rate = models.FloatField(default=0.0, help_text="Share of items turned into planted-error probes.")
    reading_wpm = models.PositiveIntegerField(default=238, help_text="Reading-speed floor (Brysbaert 2019: 238 wpm).")
    flag_thresholds = models.JSONField(default=dict, blank=True)
    seed = models.BigIntegerField(default=new_seed)
    item_order = models.CharField(
        max_length=16, choices=ItemOrder.choices, default=ItemOrder.SHUFFLED, db_default=ItemOrder.SHUFFLED
    )
    # The most items one reviewer may label (an arm may set its own); null: no limit.
    reviewer_quota = models.PositiveIntegerField(null=True, blank=True)
    # The study page warns when one reviewer gave more than this share of an arm's labels.
    reviewer_share_warning = models.FloatField(default=0.25, db_default=0.25)
    # Titles can lead the answer ("Agent deletes prod DB"): hidden, reviewers see only "Item N".
    hide_item_titles = models.BooleanField(default=False, db_default=False)
    # Analysis settings (reviewapp/metrics): every interval is at this confidence level, and an
    # arm with fewer reviewers than the minimum gets no reviewer-cluster interval, only the
    # reason (the few-cluster guard; the default of 5 is justified in stats/cluster_robust.py).
    confidence_level = models.FloatField(default=0.95, db_default=0.95)
    min_reviewers_for_interval = models.PositiveSmallIntegerField(default=5, db_default=5)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    # Researchers who configure the study and see its results. Superusers see every study.
    researchers = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="researched_studies")
    created_at = models.DateTimeField(db_default=Now())
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "studies"
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(overlap_k__gte=1), name="study_overlap_k_at_least_1"),
            models.CheckConstraint(condition=Q(lease_seconds__gte=30), name="study_lease_at_least_30s"),
            models.CheckConstraint(condition=Q(probe_rate__gte=0, probe_rate__lte=1), name="study_probe_rate_0_1"),
            models.CheckConstraint(condition=Q(reading_wpm__gte=1), name="study_reading_wpm_positive"),
            models.CheckConstraint(condition=Q(reviewer_quota__gte=1), name="study_reviewer_quota_positive"),
            models.CheckConstraint(
                condition=Q(reviewer_share_warning__gt=0, reviewer_share_warning__lte=1),
                name="study_reviewer_share_warning_0_1",
            ),
            # Strictly inside (0, 1): a confidence of 1 asks for infinitely wide intervals.
            models.CheckConstraint(
                condition=Q(confidence_level__gt=0, confidence_level__lt=1), name="study_confidence_level_0_1"
            ),
            models.CheckConstraint(
                condition=Q(min_reviewers_for_interval__gte=2), name="study_min_reviewers_for_interval_at_least_2"
            ),
        ]

    def __str__(self) -> str:
        return self.title

    # Which lifecycle moves are allowed, and what each is called on a button.
    TRANSITIONS = {
        Status.DRAFT: {Status.RUNNING: "Start"},
        Status.RUNNING: {Status.PAUSED: "Pause", Status.CLOSED: "Close"},
        Status.PAUSED: {Status.RUNNING: "Resume", Status.CLOSED: "Close"},
        # Reopen comes back paused: the researcher resumes when ready.
        Status.CLOSED: {Status.PAUSED: "Reopen", Status.ARCHIVED: "Archive"},
        Status.ARCHIVED: {},
    }
    # Moves that need the study's slug typed to confirm them.
    CONFIRMED_TRANSITIONS = (Status.CLOSED, Status.ARCHIVED)

    def allowed_transitions(self) -> dict[str, str]:
        return self.TRANSITIONS[Study.Status(self.status)]

    @property
    def is_closed(self) -> bool:
        """Closed or archived: takes no items, reviewers or labels."""
        return self.status in (self.Status.CLOSED, self.Status.ARCHIVED)

    @property
    def accepts_reviews(self) -> bool:
        return self.status == self.Status.RUNNING

    def has_labels(self) -> bool:
        return self.labels.exists()

    def has_enrolments(self) -> bool:
        return self.enrolments.exists()

    def has_allocated_reviewers(self) -> bool:
        """Reviewers who joined a draft study wait unallocated until Start; they lock nothing."""
        return self.enrolments.filter(allocated_at__isnull=False).exists()

    def arm_weights(self) -> tuple[list[Arm], list[int]]:
        arms = list(self.arms.order_by("position", "id"))
        return arms, [arm.weight for arm in arms]


class Arm(models.Model):
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="arms")
    name = models.CharField(max_length=64)
    position = models.PositiveSmallIntegerField(default=0)
    weight = models.PositiveIntegerField(default=1, help_text="Relative allocation weight.")
    shows_ai_recommendation = models.BooleanField(default=False)
    shows_ai_rationale = models.BooleanField(default=False)
    shows_ai_confidence = models.BooleanField(default=False)
    # Reveal mode: the reviewer answers blind first, then sees the AI, then answers again.
    reveal = models.BooleanField(default=False)

    class RationaleDisplay(models.TextChoices):
        EXPANDED = "expanded", "Shown expanded"
        # Behind a "Why?" click: a weaker treatment, since many reviewers never open it.
        COLLAPSED = "collapsed", "Behind a click"

    rationale_display = models.CharField(
        max_length=16,
        choices=RationaleDisplay.choices,
        default=RationaleDisplay.EXPANDED,
        db_default=RationaleDisplay.EXPANDED,
    )
    # The most items one reviewer in this arm may label; null: the study's quota.
    reviewer_quota = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["study", "position", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["study", "name"],
                name="arm_name_unique_per_study",
                violation_error_message="Arm names must be unique within a study.",
            ),
            models.CheckConstraint(condition=Q(reviewer_quota__gte=1), name="arm_reviewer_quota_positive"),
            models.CheckConstraint(
                condition=Q(reveal=False) | Q(shows_ai_recommendation=True),
                name="arm_reveal_shows_recommendation",
                violation_error_message="Reveal mode needs the AI recommendation shown.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.study.slug}/{self.name}"

    @property
    def is_control(self) -> bool:
        return not (self.shows_ai_recommendation or self.shows_ai_rationale or self.shows_ai_confidence)

    def quota(self) -> int | None:
        """The most items one reviewer in this arm may label (the arm's own, else the study's)."""
        return self.reviewer_quota or self.study.reviewer_quota


TOKEN_PREFIX = "rvw_"  # noqa: S105 (a public prefix, not a secret)


def hash_token(plaintext: str) -> str:
    # Tokens carry 256 random bits, so a fast hash is enough: there is nothing to
    # brute-force, and lookup by hash keeps authentication one indexed query.
    return hashlib.sha256(plaintext.encode()).hexdigest()


class IngestToken(models.Model):
    """A write-only bearer token for one study's ingest API. Stored hashed."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="ingest_tokens")
    name = models.CharField(max_length=100)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    # The first characters, so admins can tell tokens apart without the secret.
    display_prefix = models.CharField(max_length=12, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(db_default=Now())
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.display_prefix}…)"

    @classmethod
    def issue(cls, *, study: Study, name: str, created_by=None) -> tuple[IngestToken, str]:
        """Create a token; the plaintext is returned once and never stored."""
        token = cls(study=study, name=name, created_by=created_by)
        plaintext = token.set_new_secret()
        token.save()
        return token, plaintext

    def set_new_secret(self) -> str:
        plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
        self.token_hash = hash_token(plaintext)
        self.display_prefix = plaintext[:12]
        return plaintext

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def revoke(self) -> None:
        self.revoked_at = timezone.now()
        self.save(update_fields=["revoked_at"])


class AuditEvent(models.Model):
    """Append-only record of who did what: enrolments, config edits, ingests, exports.

    The database keeps it append-only (a trigger refuses UPDATE and DELETE), so the rows
    outlive what they name: the study and actor columns are plain ids without foreign-key
    constraints (deleting an account or a study must not rewrite its history), and the
    actor's username is copied into ``actor_name`` when the row is written (by a trigger,
    whichever path writes it). Configuration changes to studies and arms are recorded by
    triggers too, with before and after, so the admin, a shell or raw SQL cannot skip them
    (migration 0004; services name the actor with ``services.acting_as``).
    """

    study = models.ForeignKey(
        Study,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="audit_events",
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    actor_name = models.CharField(max_length=150, blank=True, default="", db_default="")
    action = models.CharField(max_length=64)
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["study", "-created_at"], name="audit_study_time")]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.action}"


class ReviewerProfile(models.Model):
    """Attributes a study may stratify its randomization on (e.g. experience)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reviewer_profile")
    attributes = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"profile of {self.user}"


class Enrolment(models.Model):
    """A reviewer in a study, with the arm the server allocated.

    Joining a draft study enrols without allocating (``allocated_at`` null): arms are
    allocated when the study starts, so nobody joining early locks the design. Once
    allocated, the allocation is never edited."""

    class Source(models.TextChoices):
        INVITATION = "invitation"
        ADMIN = "admin"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="enrolments")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="enrolments")
    # Null in within-subjects studies: there the arm is chosen per assignment.
    arm = models.ForeignKey(Arm, null=True, blank=True, on_delete=models.PROTECT, related_name="enrolments")
    stratum = models.CharField(max_length=100, blank=True)
    # Everything needed to recompute the allocation: seed, order in the stratum, block.
    seed = models.BigIntegerField()
    # Null until allocated.
    sequence = models.PositiveIntegerField(
        null=True, blank=True, help_text="0-based order of allocation within the stratum."
    )
    block_index = models.PositiveIntegerField(null=True, blank=True)
    block_position = models.PositiveIntegerField(null=True, blank=True)
    block_size = models.PositiveIntegerField(null=True, blank=True)
    source = models.CharField(max_length=16, choices=Source.choices)
    invitation = models.ForeignKey("Invitation", null=True, blank=True, on_delete=models.SET_NULL)
    joined_at = models.DateTimeField(db_default=Now())
    allocated_at = models.DateTimeField(null=True, blank=True)
    # Who joined from where, as keyed hashes (never the raw values): the browser's device
    # cookie, the client address and the user agent at sign-up (studies/devices.py). They
    # tell apart the participants of an open link as well as the web allows, so a second
    # account from the same browser is refused and look-alike sign-ups are shown.
    # (With database defaults too: bulk loaders and SQL that name no such column still insert.)
    device_hash = models.CharField(max_length=64, blank=True, default="", db_default="", db_index=True)
    address_hash = models.CharField(max_length=64, blank=True, default="", db_default="")
    agent_hash = models.CharField(max_length=64, blank=True, default="", db_default="")

    class Meta:
        ordering = ["study", "joined_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["study", "reviewer"], name="enrolment_once_per_study"),
            models.UniqueConstraint(fields=["study", "stratum", "sequence"], name="enrolment_sequence_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.reviewer} in {self.study.slug}"

    @property
    def arm_display(self) -> str:
        """The arm as the researcher's pages name it."""
        if self.allocated_at is None:
            return "not allocated yet"
        return self.arm.name if self.arm_id else "per assignment"


def new_invitation_token() -> str:
    return secrets.token_urlsafe(24)


class Invitation(models.Model):
    """A link reviewers follow to join a study.

    Unlike ingest tokens it is kept readable, so researchers can copy the link again
    later: it only lets someone join as a reviewer, and it can be revoked or capped.
    """

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="invitations")
    label = models.CharField(max_length=100, blank=True, help_text="For you: e.g. 'pilot cohort'.")
    # A personal link: single use, and the account that joins through it has this address.
    email = models.EmailField(blank=True, default="", db_default="")
    token = models.CharField(max_length=64, unique=True, default=new_invitation_token, editable=False)
    # Copied onto the reviewer's profile on joining, e.g. {"experience": "expert"}.
    attributes = models.JSONField(default=dict, blank=True)
    max_uses = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: unlimited.")
    uses = models.PositiveIntegerField(default=0)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.label or f"invitation {self.pk}"

    @property
    def path(self) -> str:
        return f"/join/{self.token}/"

    @property
    def kind(self) -> str:
        """'personal' (one person, by email), 'single-use' or 'open' (anyone with the link)."""
        if self.email:
            return "personal"
        return "single-use" if self.max_uses == 1 else "open"

    def unusable_reason(self) -> str | None:
        if self.revoked_at is not None:
            return "This invitation was revoked."
        if self.expires_at is not None and self.expires_at <= timezone.now():
            return "This invitation has expired."
        if self.max_uses is not None and self.uses >= self.max_uses:
            return "This invitation has been used as many times as it allows."
        if self.study.is_closed:
            return "This study is closed."
        return None
