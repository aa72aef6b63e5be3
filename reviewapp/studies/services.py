"""Writes that span models for studies: configuration, lifecycle, enrolment, probes.

Every configuration change is checked against the study's locks and written to the
audit log. Validation failures raise ``StudyRuleError`` with a sentence for the user.

The database holds the same locks and writes the configuration audit itself (triggers,
migration studies/0004), so no path around these services (the admin, a shell, raw SQL)
can change a locked design or change anything unrecorded. The services check first to
answer in a sentence, and name the actor for the triggers with ``acting_as``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, F, Max, OuterRef, QuerySet
from django.utils import timezone

from . import signals
from .devices import JoinSignals
from .models import Arm, AuditEvent, Enrolment, Invitation, ReviewerProfile, Study
from .randomization import allocate_reviewer, weights_error
from .schema import schema_errors, without_block_value

# Fields that define the experiment: changing them after reviewers were allocated or
# labels were given would mix two designs in one data set.
DESIGN_FIELDS = ("label_schema", "design", "stratify_by", "overlap_k", "seed", "item_order", "hide_item_titles")

THREE_ARM_PRESET = [
    {"name": "control"},
    {"name": "recommendation", "shows_ai_recommendation": True, "shows_ai_confidence": True},
    {
        "name": "recommendation+rationale",
        "shows_ai_recommendation": True,
        "shows_ai_rationale": True,
        "shows_ai_confidence": True,
    },
]


class StudyRuleError(ValueError):
    """A configuration or lifecycle change the study's rules do not allow."""


def lock_reason(study: Study) -> str | None:
    """Why arms and design can no longer change, or None while they still can.

    The same rule as the database's ``reviewapp_design_lock_reason`` (migration studies/0006):
    reviewers who joined a draft study are not allocated yet, so they lock nothing."""
    if study.has_labels():
        return "Labels exist, so arms, the label schema and the design are locked."
    if study.has_allocated_reviewers():
        return "Reviewers have been allocated to arms, so arms and the design are locked."
    return None


def audit(study: Study | None, actor, action: str, **detail: Any) -> None:
    AuditEvent.objects.create(study=study, actor=actor, action=action, detail=detail)


def acting_as(actor, *, via: str = "app") -> None:
    """Name who changes configuration in the current transaction, for the audit triggers.

    Transaction-local (``set_config(..., true)``): call it inside ``transaction.atomic``.
    ``via`` says which door the change came through ("app", "admin"); a change made with
    no actor named is recorded as via "database".
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('reviewapp.actor_id', %s, true), set_config('reviewapp.via', %s, true)",
            [str(actor.pk) if actor is not None and actor.pk else "", via],
        )


# Constraint names the database's design-lock triggers raise with (migration studies/0004).
LOCK_CONSTRAINTS = ("study_design_locked", "arm_design_locked")


def lock_violation(error: IntegrityError) -> str | None:
    """The database's own sentence when ``error`` is a design-lock trigger's refusal, else None."""
    diag = getattr(error.__cause__, "diag", None)
    if diag is not None and diag.constraint_name in LOCK_CONSTRAINTS:
        return diag.message_primary
    return None


@transaction.atomic
def study_create(*, actor, fields: dict[str, Any], three_arm_preset: bool) -> Study:
    study = Study.objects.create(created_by=actor, **fields)
    study.researchers.add(actor)
    if three_arm_preset:
        arms_apply_preset(study=study, actor=actor)
    audit(study, actor, "study.create", fields=sorted(fields))
    return study


@transaction.atomic
def study_update(*, study: Study, actor, changes: dict[str, Any], via: str = "app") -> list[str]:
    """Apply changed fields; return the names changed. Locked fields raise.

    The audit entry (before and after of each changed field) is written by the database.
    """
    acting_as(actor, via=via)
    changed = [name for name, value in changes.items() if getattr(study, name) != value]
    locked = [name for name in changed if name in DESIGN_FIELDS and not _analysis_only(study, name, changes[name])]
    if locked:
        reason = lock_reason(study)
        if reason:
            raise StudyRuleError(f"{reason} Not changed: {', '.join(locked)}.")
    if not changed:
        return []
    for name in changed:
        setattr(study, name, changes[name])
    study.save(update_fields=[*changed, "updated_at"])
    if {"overlap_k", "design", "item_order"} & set(changed):
        _queue_follow_design(study)
    return changed


def _analysis_only(study: Study, name: str, value: Any) -> bool:
    """A change reviewers never meet, allowed after the lock: the label schema's block value."""
    return name == "label_schema" and without_block_value(study.label_schema) == without_block_value(value)


def start_problems(study: Study) -> list[str]:
    """What stops a study from running, as sentences."""
    problems = [f"Label schema: {e}" for e in schema_errors(study.label_schema)]
    _arms, weights = study.arm_weights()
    problem = weights_error(weights)
    if problem:
        problems.append(problem)
    if not study.items.exists():
        problems.append("The study has no items yet; ingest some transcripts first.")
    return problems + probe_tells(study)


def probe_tells(study: Study) -> list[str]:
    """What would let a reviewer tell the probes from real items, as sentences (none: fine).

    A probe must look like any other item in everything an arm shows. Where an arm shows
    the AI's rationale and real items come with one, a probe without a rationale is the
    only item reading "No reasoning was given": a tell, and a probe a careful reviewer
    passes for the wrong reason. Checked before the study starts or resumes.
    """
    rationale_arms = rationale_arms_over_real_rationales(study)
    if not rationale_arms:
        return []
    bare = study.items.filter(is_probe=True, ai_rationale="").count()
    if not bare:
        return []
    return [
        f"{bare} probe{'s have' if bare != 1 else ' has'} no rationale, but arm {', '.join(rationale_arms)} shows "
        "the AI's rationale and the real items have one, so reviewers could tell the probes apart. Write each "
        "probe's rationale (Items tab, Probes), or ingest probes with their own."
    ]


def rationale_arms_over_real_rationales(study: Study) -> list[str]:
    """The arms showing the rationale, when real items come with one (else an empty one tells nothing)."""
    arms = [arm.name for arm in study.arms.filter(shows_ai_rationale=True, weight__gt=0)]
    if arms and study.items.filter(is_probe=False).exclude(ai_rationale="").exists():
        return arms
    return []


def confirmation_error(study: Study, to_status: str, confirmation: str | None) -> str | None:
    """Why a move that needs the study's slug typed (Close, Archive) is not confirmed, or None."""
    if to_status not in Study.CONFIRMED_TRANSITIONS:
        return None
    if (confirmation or "").strip() == study.slug:
        return None
    verb = study.allowed_transitions().get(to_status, to_status).lower()
    return f"To {verb} the study, type its slug ({study.slug}) to confirm. Nothing was changed."


@transaction.atomic
def study_transition(*, study: Study, actor, to_status: str, confirmation: str | None = None) -> None:
    """Move the study along its lifecycle (the database records the change in the audit log).

    Close and Archive take ``confirmation``, the study's slug as the researcher typed it.
    Starting a draft allocates everyone who joined it, in the same transaction."""
    acting_as(actor)
    study = Study.objects.select_for_update(no_key=True).get(pk=study.pk)
    allowed = study.allowed_transitions()
    if to_status not in allowed:
        if study.status == Study.Status.ARCHIVED:
            raise StudyRuleError("This study is archived; archiving is permanent, so it cannot be reopened.")
        raise StudyRuleError(f"A {study.status} study cannot become {to_status}.")
    problem = confirmation_error(study, to_status, confirmation)
    if problem:
        raise StudyRuleError(problem)
    if to_status == Study.Status.RUNNING:
        # Resuming re-checks what can change while paused (probes generated, their rationales).
        problems = start_problems(study) if study.status == Study.Status.DRAFT else probe_tells(study)
        if problems:
            verb = "start" if study.status == Study.Status.DRAFT else "resume"
            raise StudyRuleError(f"Cannot {verb}: " + " ".join(problems))
        if study.status == Study.Status.DRAFT:
            enrolments_allocate(study=study, actor=actor)
    study.status = to_status
    study.save(update_fields=["status", "updated_at"])
    if to_status == Study.Status.RUNNING:
        # The queue app opens the study's queue (one quota row per item and arm, k slots each).
        signals.study_opened.send(sender=Study, study=study)


# --- arms -------------------------------------------------------------------------


def _check_arms_editable(study: Study, actor) -> None:
    """Name the actor for the audit, and refuse while the design is locked.

    The study row is held (FOR NO KEY UPDATE, as an enrolment holds it) so nobody is
    allocated to an arm while the arms change.
    """
    acting_as(actor)
    Study.objects.select_for_update(no_key=True).filter(pk=study.pk).first()
    reason = lock_reason(study)
    if reason:
        raise StudyRuleError(reason)


@transaction.atomic
def arms_apply_preset(*, study: Study, actor) -> list[Arm]:
    """Create the classic three arms: control, recommendation, recommendation + rationale.

    The database writes one audit entry per arm created."""
    _check_arms_editable(study, actor)
    if study.arms.exists():
        raise StudyRuleError("The study already has arms; the preset only fills an empty study.")
    arms = [Arm.objects.create(study=study, position=i, **spec) for i, spec in enumerate(THREE_ARM_PRESET)]
    _queue_follow_design(study)
    return arms


@transaction.atomic
def arms_save(*, study: Study, actor, arms: list[dict[str, Any]], delete_ids: list[int]) -> None:
    """Replace the study's arm configuration (from the arms form) in one step.

    The database writes an audit entry per arm created, changed (before and after) or deleted."""
    _check_arms_editable(study, actor)
    weights = [spec["weight"] for spec in arms]
    problem = weights_error(weights)
    if problem:
        raise StudyRuleError(problem)
    names = [spec["name"] for spec in arms]
    if len(set(names)) != len(names):
        raise StudyRuleError("Two arms have the same name; arm names must be unique within a study.")
    for spec in arms:
        if spec.get("reveal") and not spec.get("shows_ai_recommendation"):
            raise StudyRuleError(f"Arm '{spec['name']}': reveal mode needs the AI recommendation shown.")
    Arm.objects.filter(study=study, pk__in=delete_ids).delete()
    for position, spec in enumerate(arms):
        arm_id = spec.pop("id", None)
        spec["position"] = position
        if arm_id:
            Arm.objects.filter(study=study, pk=arm_id).update(**spec)
        else:
            Arm.objects.create(study=study, **spec)
    _queue_follow_design(study)


def _queue_follow_design(study: Study) -> None:
    """A started study whose arms or overlap changed before anyone was enrolled: the queue app
    rebuilds its queue."""
    if study.status != Study.Status.DRAFT:
        signals.design_changed.send(sender=Study, study=study)


# --- enrolment --------------------------------------------------------------------


def arm_balance(study: Study) -> dict:
    """Reviewers per arm and stratum, against each arm's target share.

    Reviewers who joined a draft study are counted apart (``waiting``): they have no arm
    until the study starts."""
    arms, weights = study.arm_weights()
    total_weight = sum(weights) or 1
    waiting = study.enrolments.filter(allocated_at__isnull=True).count()
    counts = Counter(study.enrolments.filter(allocated_at__isnull=False).values_list("stratum", "arm_id"))
    strata = sorted({stratum for stratum, _ in counts}) or [""]
    rows = []
    for arm, weight in zip(arms, weights, strict=True):
        cells = []
        for stratum in strata:
            in_stratum = sum(n for (s, _), n in counts.items() if s == stratum)
            cells.append({"n": counts[(stratum, arm.pk)], "target": round(in_stratum * weight / total_weight, 1)})
        rows.append({"arm": arm, "share": round(100 * weight / total_weight), "cells": cells})
    allocated = sum(counts.values())
    return {"strata": strata, "rows": rows, "allocated": allocated, "waiting": waiting, "total": allocated + waiting}


def reviewer_stratum(study: Study, reviewer) -> str:
    return reviewer_strata(study, [reviewer])[reviewer.pk]


def reviewer_strata(study: Study, reviewers) -> dict[int, str]:
    """Each reviewer's stratum (their profile's value of the study's ``stratify_by``), by id."""
    strata = {reviewer.pk: "" for reviewer in reviewers}
    if not study.stratify_by:
        return strata
    for user_id, attributes in ReviewerProfile.objects.filter(user_id__in=strata).values_list("user_id", "attributes"):
        strata[user_id] = str((attributes or {}).get(study.stratify_by, ""))[:100]
    return strata


def _next_sequences(study: Study) -> dict[str, int]:
    """Per stratum, the next allocation number: one after the highest ever given, not a count
    (an enrolment deleted since leaves a gap, never a number given twice)."""
    rows = (
        Enrolment.objects.filter(study=study, sequence__isnull=False)
        .order_by()
        .values_list("stratum")
        .annotate(last=Max("sequence"))
    )
    return {stratum: last + 1 for stratum, last in rows}


def _allocate(study: Study, enrolment: Enrolment, stratum: str, sequence: int, arms: list[Arm], weights, now) -> None:
    """Fill in the enrolment's allocation (unsaved): the arm the study's seeded permuted blocks
    give the ``sequence``-th reviewer of ``stratum``; within subjects, only the order."""
    enrolment.stratum = stratum
    enrolment.seed = study.seed
    enrolment.sequence = sequence
    enrolment.allocated_at = now
    if study.design == Study.Design.BETWEEN:
        allocation = allocate_reviewer(weights, study.seed, stratum, sequence)
        enrolment.arm = arms[allocation.arm_index]
        enrolment.block_index = allocation.block_index
        enrolment.block_position = allocation.block_position
        enrolment.block_size = allocation.block_size


def _allocation_inputs(study: Study) -> tuple[list[Arm], list[int]]:
    arms, weights = study.arm_weights()
    if study.design == Study.Design.BETWEEN:
        problem = weights_error(weights)
        if problem:
            raise StudyRuleError(problem)
    return arms, weights


def _allocation_detail(enrolment: Enrolment) -> dict[str, Any]:
    return {
        "reviewer": enrolment.reviewer.get_username(),
        "arm": enrolment.arm.name if enrolment.arm else None,
        "stratum": enrolment.stratum,
        "sequence": enrolment.sequence,
        "block": enrolment.block_index,
    }


def enrolments_allocate(*, study: Study, actor) -> list[Enrolment]:
    """Allocate everyone who joined the draft study, in the order they joined (the caller,
    Start, holds the study's row, so nobody joins meanwhile). One audit event per reviewer.

    Each reviewer's stratum is read now: ``stratify_by`` may have changed during the draft.
    The allocation is the one they would have had joining the running study in this order,
    so it is reproducible from the seed and the join order alone."""
    waiting = list(
        Enrolment.objects.select_for_update()
        .filter(study=study, allocated_at__isnull=True)
        .select_related("reviewer")
        .order_by("joined_at", "id")
    )
    if not waiting:
        return []
    arms, weights = _allocation_inputs(study)
    strata = reviewer_strata(study, [enrolment.reviewer for enrolment in waiting])
    sequences = _next_sequences(study)
    now = timezone.now()
    for enrolment in waiting:
        stratum = strata[enrolment.reviewer_id]
        sequence = sequences.get(stratum, 0)
        sequences[stratum] = sequence + 1
        _allocate(study, enrolment, stratum, sequence, arms, weights, now)
    fields = ["arm", "stratum", "seed", "sequence", "block_index", "block_position", "block_size", "allocated_at"]
    Enrolment.objects.bulk_update(waiting, fields)
    AuditEvent.objects.bulk_create(
        AuditEvent(study=study, actor=actor, action="enrolment.allocate", detail=_allocation_detail(enrolment))
        for enrolment in waiting
    )
    return waiting


@transaction.atomic
def enrolment_create(
    *,
    study: Study,
    reviewer,
    source: str,
    actor=None,
    invitation: Invitation | None = None,
    signals: JoinSignals | None = None,
):
    """Enrol a reviewer, once. Returns (enrolment, created).

    In a running or paused study the arm is allocated at once; in a draft study the reviewer
    waits unallocated (locking nothing) until Start allocates everyone who joined.
    ``signals`` (hashed device cookie, address, user agent) are stored with a self-service
    enrolment so look-alike sign-ups can be found (``enrolments_alike``)."""
    signals = signals or JoinSignals()
    # Row lock on the study: allocations in a stratum are numbered one at a time, and
    # nobody joins while Start allocates.
    study = Study.objects.select_for_update(no_key=True).get(pk=study.pk)
    existing = Enrolment.objects.filter(study=study, reviewer=reviewer).first()
    if existing:
        return existing, False
    if study.is_closed:
        raise StudyRuleError(f"This study is {study.status}; it takes no new reviewers.")
    if reviewer.is_staff:
        raise StudyRuleError(f"{reviewer.get_username()} is a researcher account; reviewers must be separate accounts.")
    enrolment = Enrolment(
        study=study,
        reviewer=reviewer,
        seed=study.seed,
        source=source,
        invitation=invitation,
        device_hash=signals.device_hash,
        address_hash=signals.address_hash,
        agent_hash=signals.agent_hash,
    )
    if study.status != Study.Status.DRAFT:
        arms, weights = _allocation_inputs(study)
        stratum = reviewer_stratum(study, reviewer)
        sequence = _next_sequences(study).get(stratum, 0)
        _allocate(study, enrolment, stratum, sequence, arms, weights, timezone.now())
    enrolment.save()
    detail = _allocation_detail(enrolment) if enrolment.allocated_at else {"reviewer": reviewer.get_username()}
    audit(study, actor or reviewer, "enrolment.create", allocated=enrolment.allocated_at is not None, **detail)
    return enrolment, True


@transaction.atomic
def enrolment_remove(*, study: Study, actor, enrolment_id: int) -> str:
    """Take a reviewer who has given no labels out of the study; returns their username.

    Their live lease, if any, is given back first (the queue app's receiver), so no item
    waits on a reviewer who is gone and no answer can arrive on it. The database records
    the deletion (``enrolment.delete``, with the actor named here)."""
    acting_as(actor)
    # The study's row, as a join and Start hold it: nobody is allocated meanwhile.
    study = Study.objects.select_for_update(no_key=True).get(pk=study.pk)
    enrolment = (
        Enrolment.objects.select_for_update().select_related("reviewer").filter(study=study, pk=enrolment_id).first()
    )
    if enrolment is None:
        raise StudyRuleError("That reviewer is not in this study (removed already?).")
    name = enrolment.reviewer.get_username()
    signals.reviewer_removing.send(sender=Study, study=study, reviewer=enrolment.reviewer)
    # Counted after the lease is released: an answer being saved on it has committed by then
    # (the release waits for its row), so it is counted here and refuses the removal.
    labels = study.labels.filter(reviewer=enrolment.reviewer).count()
    if labels:
        raise StudyRuleError(
            f"{name} has given {labels} label{'s' if labels != 1 else ''}, so they cannot be removed: their labels "
            "are part of the study's data. Stop them reviewing by pausing the study, or exclude them in analysis."
        )
    enrolment.delete()
    return name


SAME_BROWSER_MESSAGE = (
    "This browser has already joined this study with another account. Log in with that account to "
    "continue. If you are someone else sharing this computer, ask the researcher for a personal link."
)


@transaction.atomic
def invitation_accept(*, invitation: Invitation, user, signals: JoinSignals | None = None):
    """Join the invitation's study, once per person as far as the link kind and the browser tell.

    A personal link (by email) joins only the account with its address; any link refuses a
    second account from a browser that already joined the study (its device cookie), so a
    participant cannot sign up again to land in another arm. Returns (enrolment, created).
    """
    signals = signals or JoinSignals()
    invitation = Invitation.objects.select_for_update().select_related("study").get(pk=invitation.pk)
    already = Enrolment.objects.filter(study=invitation.study, reviewer=user).first()
    if already:
        return already, False
    reason = invitation.unusable_reason()
    if reason:
        raise StudyRuleError(reason)
    if invitation.email and invitation.email.lower() != (user.email or "").lower():
        raise StudyRuleError(
            "This is a personal link for another email address; the account joining through it must use that address."
        )
    same_browser = Enrolment.objects.filter(study=invitation.study, device_hash=signals.device_hash)
    if signals.device_hash and same_browser.exists():
        raise StudyRuleError(SAME_BROWSER_MESSAGE)
    if invitation.attributes:
        profile, _ = ReviewerProfile.objects.get_or_create(user=user)
        profile.attributes = {**profile.attributes, **invitation.attributes}
        profile.save(update_fields=["attributes"])
    Invitation.objects.filter(pk=invitation.pk).update(uses=F("uses") + 1)
    return enrolment_create(
        study=invitation.study,
        reviewer=user,
        source=Enrolment.Source.INVITATION,
        invitation=invitation,
        signals=signals,
    )


@transaction.atomic
def invitations_create(
    *,
    study: Study,
    actor,
    kind: str,
    label: str = "",
    max_uses: int | None = None,
    emails: list[str] = (),
    attributes: dict | None = None,
) -> list[Invitation]:
    """Create an open link (optionally capped), a single-use link, or one personal link per address."""
    attributes = attributes or {}
    if kind == "personal":
        known = set(study.invitations.filter(email__in=emails, revoked_at__isnull=True).values_list("email", flat=True))
        fresh = [email for email in dict.fromkeys(emails) if email not in known]
        made = [
            Invitation.objects.create(
                study=study, label=label, email=email, max_uses=1, attributes=attributes, created_by=actor
            )
            for email in fresh
        ]
    else:
        uses = 1 if kind == "single-use" else max_uses
        made = [
            Invitation.objects.create(study=study, label=label, max_uses=uses, attributes=attributes, created_by=actor)
        ]
    for invitation in made:
        audit(
            study,
            actor,
            "invitation.create",
            invitation=invitation.pk,
            label=label,
            kind=invitation.kind,
            email=invitation.email or None,
            max_uses=invitation.max_uses,
        )
    return made


def enrolments_listed(study: Study) -> QuerySet[Enrolment]:
    """The study's reviewers in join order, each with ``has_labels`` (one index probe each:
    the Remove button is offered only to reviewers who have given none)."""
    has_labels = Exists(study.labels.filter(reviewer_id=OuterRef("reviewer_id")))
    return (
        study.enrolments.select_related("reviewer", "arm").annotate(has_labels=has_labels).order_by("joined_at", "id")
    )


def enrolments_alike(study: Study) -> list[dict]:
    """Groups of enrolments that look like one person: the same browser (device cookie), or the
    same address and user agent. For the researcher to judge; a shared office computer or a
    fleet of identical laptops looks alike too. Two queries, whatever the number of reviewers."""
    signals = study.enrolments.values_list("id", "device_hash", "address_hash", "agent_hash")
    groups: dict[tuple[str, str], list[int]] = {}
    for enrolment_id, device, address, agent in signals:
        if device:
            groups.setdefault(("same browser", device), []).append(enrolment_id)
        if address and agent:
            groups.setdefault(("same address and browser type", address + agent), []).append(enrolment_id)
    alike_groups, seen = [], set()
    for (signal, _key), ids in groups.items():
        if len(ids) > 1 and frozenset(ids) not in seen:
            seen.add(frozenset(ids))
            alike_groups.append((signal, ids))
    wanted = {enrolment_id for _signal, ids in alike_groups for enrolment_id in ids}
    members = study.enrolments.filter(pk__in=wanted).select_related("reviewer", "arm").in_bulk()
    return [
        {"signal": signal, "enrolments": sorted((members[i] for i in ids), key=lambda e: (e.joined_at, e.pk))}
        for signal, ids in alike_groups
    ]
