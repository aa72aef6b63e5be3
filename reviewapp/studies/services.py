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
from django.db.models import F, Max
from django.utils import timezone

from . import signals
from .devices import JoinSignals
from .models import Arm, AuditEvent, Enrolment, Invitation, ReviewerProfile, Study
from .randomization import allocate_reviewer, weights_error
from .schema import schema_errors

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
    """Why arms and design can no longer change, or None while they still can."""
    if study.has_labels():
        return "Labels exist, so arms, the label schema and the design are locked."
    if study.has_enrolments():
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
    locked = [name for name in changed if name in DESIGN_FIELDS]
    if locked:
        reason = lock_reason(study)
        if reason:
            raise StudyRuleError(f"{reason} Not changed: {', '.join(locked)}.")
    if not changed:
        return []
    for name in changed:
        setattr(study, name, changes[name])
    study.save(update_fields=[*changed, "updated_at"])
    if {"overlap_k", "design"} & set(changed):
        _queue_follow_design(study)
    return changed


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


@transaction.atomic
def study_transition(*, study: Study, actor, to_status: str) -> None:
    """Move the study along its lifecycle (the database records the change in the audit log)."""
    acting_as(actor)
    study = Study.objects.select_for_update(no_key=True).get(pk=study.pk)
    allowed = study.allowed_transitions()
    if to_status not in allowed:
        raise StudyRuleError(f"A {study.status} study cannot become {to_status}.")
    if to_status == Study.Status.RUNNING:
        # Resuming re-checks what can change while paused (probes generated, their rationales).
        problems = start_problems(study) if study.status == Study.Status.DRAFT else probe_tells(study)
        if problems:
            verb = "start" if study.status == Study.Status.DRAFT else "resume"
            raise StudyRuleError(f"Cannot {verb}: " + " ".join(problems))
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
    """Reviewers per arm and stratum, against each arm's target share."""
    arms, weights = study.arm_weights()
    total_weight = sum(weights) or 1
    counts = Counter(study.enrolments.values_list("stratum", "arm_id"))
    strata = sorted({stratum for stratum, _ in counts}) or [""]
    rows = []
    for arm, weight in zip(arms, weights, strict=True):
        cells = []
        for stratum in strata:
            in_stratum = sum(n for (s, _), n in counts.items() if s == stratum)
            cells.append({"n": counts[(stratum, arm.pk)], "target": round(in_stratum * weight / total_weight, 1)})
        rows.append({"arm": arm, "share": round(100 * weight / total_weight), "cells": cells})
    return {"strata": strata, "rows": rows, "total": sum(counts.values())}


def reviewer_stratum(study: Study, reviewer) -> str:
    if not study.stratify_by:
        return ""
    profile = ReviewerProfile.objects.filter(user=reviewer).first()
    value = (profile.attributes if profile else {}).get(study.stratify_by, "")
    return str(value)[:100]


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
    """Enrol a reviewer and allocate their arm, once. Returns (enrolment, created).

    ``signals`` (hashed device cookie, address, user agent) are stored with a self-service
    enrolment so look-alike sign-ups can be found (``enrolments_alike``)."""
    signals = signals or JoinSignals()
    # Row lock on the study: allocations in a stratum are numbered one at a time.
    study = Study.objects.select_for_update(no_key=True).get(pk=study.pk)
    existing = Enrolment.objects.filter(study=study, reviewer=reviewer).first()
    if existing:
        return existing, False
    if study.status == Study.Status.CLOSED:
        raise StudyRuleError("This study is closed; it takes no new reviewers.")
    if reviewer.is_staff:
        raise StudyRuleError(f"{reviewer.get_username()} is a researcher account; reviewers must be separate accounts.")
    stratum = reviewer_stratum(study, reviewer)
    # The next number after the highest ever given in the stratum, not a count: an enrolment
    # deleted since (with its reviewer's account) leaves a gap, never a number given twice.
    last = Enrolment.objects.filter(study=study, stratum=stratum).aggregate(last=Max("sequence"))["last"]
    sequence = 0 if last is None else last + 1
    arm = allocation = None
    if study.design == Study.Design.BETWEEN:
        arms, weights = study.arm_weights()
        problem = weights_error(weights)
        if problem:
            raise StudyRuleError(problem)
        allocation = allocate_reviewer(weights, study.seed, stratum, sequence)
        arm = arms[allocation.arm_index]
    enrolment = Enrolment.objects.create(
        study=study,
        reviewer=reviewer,
        arm=arm,
        stratum=stratum,
        seed=study.seed,
        sequence=sequence,
        block_index=allocation.block_index if allocation else None,
        block_position=allocation.block_position if allocation else None,
        block_size=allocation.block_size if allocation else None,
        source=source,
        invitation=invitation,
        device_hash=signals.device_hash,
        address_hash=signals.address_hash,
        agent_hash=signals.agent_hash,
        allocated_at=timezone.now(),
    )
    audit(
        study,
        actor or reviewer,
        "enrolment.create",
        reviewer=reviewer.get_username(),
        arm=arm.name if arm else None,
        stratum=stratum,
        sequence=sequence,
        block=enrolment.block_index,
    )
    return enrolment, True


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
