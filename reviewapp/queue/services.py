"""The review queue: claim, lease, skip, submit, expire (docs/design.md, "Queue contract").

Each operation is one short transaction. Double assignment is impossible, not merely
unlikely: (item, reviewer) is unique, ``open_slots`` cannot go negative, and a claim
takes its quota row with FOR UPDATE SKIP LOCKED so racing reviewers pass each other
instead of queueing. One reviewer's own claims are serialized on their cursor row,
so a double click cannot lease two items.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from reviewapp.ingest.models import Item
from reviewapp.studies.models import Arm, Enrolment, Study
from reviewapp.studies.randomization import allocate_assignment
from reviewapp.studies.schema import schema_errors, value_error

from . import order, tallies
from .models import (
    ITEM_ID_SPAN,
    PRIORITY_OFFSET,
    Assignment,
    ItemQuota,
    Label,
    LateSubmission,
    ReviewerCursor,
)

QUOTA = ItemQuota._meta.db_table
ASSIGNMENT = Assignment._meta.db_table
CURSOR = ReviewerCursor._meta.db_table
MAX_COMMENT = 5000
MAX_SKIP_REASON = Assignment._meta.get_field("skip_reason").max_length


class QueueError(Exception):
    """A queue operation that cannot go ahead; ``status`` is the HTTP status to answer with."""

    status = 400


class NotEnrolled(QueueError):
    status = 404


class StudyNotRunning(QueueError):
    status = 409


class StaleLease(QueueError):
    status = 409


class InvalidLabel(QueueError):
    status = 400

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{field}: {reason}" for field, reason in errors.items()))
        self.errors = errors


def arm_keys(study: Study) -> list[int]:
    if study.design == Study.Design.WITHIN:
        return [0]
    return list(study.arms.filter(weight__gt=0).values_list("id", flat=True))


def quotas_sync(*, study: Study, from_item_id: int = 0, pull_back_cursors: bool = True) -> int:
    """Create the missing quota rows (new items, or a study that just started). Idempotent.

    Each row's sort key is the item's priority band, then its place in the band: its id
    (fixed order) or its seeded permutation (shuffled; ``order.py``, computed in SQL).
    ``from_item_id`` limits the work to items from that id on (a fresh ingest). With
    ``pull_back_cursors`` off the caller runs ``cursors_pull_back`` itself, after its
    transaction commits (a long ingest must not hold reviewers' cursor rows).
    """
    shuffled = study.item_order == Study.ItemOrder.SHUFFLED
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {QUOTA} (study_id, item_id, arm_key, sort_key, open_slots, submitted)
            SELECT i.study_id, i.id, keys.arm_key,
                   (%s - i.priority) * %s + CASE WHEN %s THEN reviewapp_item_place(%s, i.id) ELSE i.id END, %s, 0
            FROM {Item._meta.db_table} i CROSS JOIN unnest(%s::bigint[]) AS keys(arm_key)
            WHERE i.study_id = %s AND i.id >= %s
            ON CONFLICT (item_id, arm_key) DO NOTHING
            """,  # noqa: S608 (table names are our models')
            [
                PRIORITY_OFFSET,
                ITEM_ID_SPAN,
                shuffled,
                order.item_key(study.seed),
                study.overlap_k,
                arm_keys(study),
                study.pk,
                from_item_id,
            ],
        )
        created = cursor.rowcount
    if created and pull_back_cursors:
        cursors_pull_back(study=study, from_item_id=from_item_id)
    return created


def cursors_pull_back(*, study: Study, from_item_id: int) -> int:
    """Send back to a new items' band the cursors in a lower-priority band; returns how many.

    A reviewer past a band of new, higher-priority items would meet them only after
    everything else: moved to just before that band, their walk restarts there (from
    their own offset). New items in a reviewer's current band are met where their place
    falls in the walk, or after the rest when it falls in the part already walked. One
    short statement.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH first_new AS (
                SELECT min(sort_key) / %s * %s AS band_start
                FROM {QUOTA} WHERE study_id = %s AND item_id >= %s
            )
            UPDATE {CURSOR} c SET sort_key = first_new.band_start - 1 FROM first_new
            WHERE c.study_id = %s AND c.sort_key >= first_new.band_start + %s
            """,  # noqa: S608 (table names are our models')
            [ITEM_ID_SPAN, ITEM_ID_SPAN, study.pk, from_item_id, study.pk, ITEM_ID_SPAN],
        )
        return cursor.rowcount


def quotas_rebuild(*, study: Study) -> None:
    """Recreate the quota rows after the arms, design or overlap changed.

    Only while nobody has been assigned anything: after that the design is locked
    (studies.services.lock_reason), and open slots carry real leases.
    """
    if Assignment.objects.filter(study=study).exists():
        return
    ItemQuota.objects.filter(study=study).delete()
    quotas_sync(study=study)


def leases_expire(*, study: Study, limit: int = 500) -> int:
    """Expire overdue leases and give their slots back; returns how many expired.

    Safe to run from many places at once: overdue leases are taken with SKIP LOCKED, and
    quota rows are locked in id order so two sweeps cannot deadlock on each other.
    """
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH overdue AS (
                SELECT id FROM {ASSIGNMENT}
                WHERE study_id = %s AND state = 'leased' AND lease_expires_at < now()
                ORDER BY lease_expires_at LIMIT %s FOR UPDATE SKIP LOCKED
            ), expired AS (
                UPDATE {ASSIGNMENT} a SET state = 'expired' FROM overdue
                WHERE a.id = overdue.id RETURNING a.item_id, a.quota_arm_key
            ), freed AS (
                SELECT item_id, quota_arm_key, count(*) AS n FROM expired GROUP BY item_id, quota_arm_key
            ), locked AS (
                SELECT q.id, freed.n FROM {QUOTA} q JOIN freed
                  ON q.item_id = freed.item_id AND q.arm_key = freed.quota_arm_key
                ORDER BY q.id FOR UPDATE OF q
            ), bumped AS (
                UPDATE {QUOTA} q SET open_slots = q.open_slots + locked.n FROM locked WHERE q.id = locked.id
            )
            SELECT count(*) FROM expired
            """,  # noqa: S608
            [study.pk, limit],
        )
        return cursor.fetchone()[0]


def progress_refresh(*, study: Study) -> None:
    """Fold the study's tally rows (the beat task's job; the figures are exact without it,
    only reading them costs a little more as delta rows pile up)."""
    tallies.tallies_compact(study_id=study.pk)


def progress_totals(*, study: Study, arm_key: int) -> dict[str, int]:
    """One arm's queue totals for the progress line, exact as of this request.

    Read from the quota tallies that triggers keep (queue/tallies.py): a few rows per arm,
    however many items the queue holds, and no request ever sums the quota rows.
    ``open_items`` are the items that still need labels in this arm (fewer than k
    submitted); ``percent`` is the share of the arm's k x items labels already given.
    """
    shape = tallies.quota_shape(study.pk, arm_key).get(arm_key, {})
    k = study.overlap_k
    items = sum(shape.values())
    submitted = sum(min(done, k) * n for done, n in shape.items())
    open_items = sum(n for done, n in shape.items() if done < k)
    return {"open_items": open_items, "percent": round(100 * submitted / (k * items)) if items else 0}


def _enrolment(study: Study, reviewer) -> Enrolment:
    enrolment = Enrolment.objects.filter(study=study, reviewer=reviewer).select_related("arm").first()
    if enrolment is None:
        raise NotEnrolled("You are not enrolled in this study.")
    return enrolment


REMOVED_REASON = "reviewer removed from the study"


def leases_release_for_removal(*, study: Study, reviewer) -> int:
    """A reviewer is being removed from the study: their live lease (at most one) ends as
    skipped and its slot is given back, in the removal's transaction; returns how many.

    Skipped, not expired: an answer already on its way when the removal commits is then
    refused ("you skipped this item") instead of taking the slot back for a reviewer who is
    no longer enrolled. The cursor row is locked first, as the reviewer's claims lock it, so
    no claim of theirs slips in between; an answer being saved holds the lease's row and is
    waited for."""
    ReviewerCursor.objects.select_for_update().filter(study=study, reviewer=reviewer).first()
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH ended AS (
                UPDATE {ASSIGNMENT} SET state = 'skipped', skip_reason = %s
                WHERE study_id = %s AND reviewer_id = %s AND state = 'leased'
                RETURNING item_id, quota_arm_key
            ), given_back AS (
                UPDATE {QUOTA} q SET open_slots = q.open_slots + 1
                FROM ended WHERE q.item_id = ended.item_id AND q.arm_key = ended.quota_arm_key
            )
            SELECT count(*) FROM ended
            """,  # noqa: S608 (table names are our models')
            [REMOVED_REASON, study.pk, reviewer.pk],
        )
        return cursor.fetchone()[0]


def claim_next(*, study: Study, reviewer, enrolment: Enrolment | None = None) -> Assignment | None:
    """The reviewer's live lease, or a new one on the next item they may review; None when
    there is none, or when the reviewer has labelled their quota (``quota_reached``).

    ``enrolment`` saves a query when the caller already has it (with its arm).
    """
    if study.status != Study.Status.RUNNING:
        raise StudyNotRunning(not_running_message(study))
    if enrolment is None:
        enrolment = _enrolment(study, reviewer)
    if study.design == Study.Design.BETWEEN and enrolment.arm_id is None:
        raise StudyNotRunning("You have not been allocated to the study yet; reload the page in a moment.")
    # One indexed probe when nothing is overdue (a partial index holds only live leases).
    leases_expire(study=study, limit=100)
    with transaction.atomic():
        # Serializes this reviewer's claims (double clicks, two tabs); others are not blocked.
        cursor_row = _locked_cursor(study, reviewer, enrolment)
        # Locked, so a sweep expiring this lease right now is waited for here, before any
        # quota row is held (waiting later, at the insert, could deadlock with the sweep).
        live = (
            Assignment.objects.filter(study=study, reviewer=reviewer, state=Assignment.State.LEASED)
            .select_for_update(of=("self",))
            .select_related("item", "arm")
            .first()
        )
        if live is not None:
            return live
        arm_key = 0 if study.design == Study.Design.WITHIN else enrolment.arm_id
        quota = reviewer_quota(study, enrolment)
        if quota is not None and cursor_row.labels_done >= quota:
            return None
        taken = _walk(study, reviewer, arm_key, cursor_row, quota)
        if taken is None:
            return None
        item_id, open_after, position = taken
        if arm_key:
            slot, arm = study.overlap_k - open_after - 1, enrolment.arm
        else:
            # The arm follows the slot: reuse the slot an expired or skipped lease gave back.
            slot = _free_slot(item_id, study.overlap_k)
            arm = _within_arm(study, item_id, slot)
        now = timezone.now()
        assignment = Assignment.objects.create(
            study=study,
            item_id=item_id,
            reviewer=reviewer,
            arm=arm,
            quota_arm_key=arm_key,
            slot=slot,
            position=position,
            leased_at=now,
            # Claimed to be shown: the page that claims renders it in the same request.
            shown_at=now,
            lease_expires_at=now + timedelta(seconds=study.lease_seconds),
        )
    assignment.item = Item.objects.get(pk=item_id)
    return assignment


def not_running_message(study: Study) -> str:
    if study.status == Study.Status.DRAFT:
        return "This study has not started yet. You are enrolled; come back once the researcher starts it."
    if study.status == Study.Status.PAUSED:
        return "This study is paused; there is nothing to review right now. Come back later."
    return f"This study is {study.status}; there is nothing to review right now."


def reviewer_quota(study: Study, enrolment: Enrolment) -> int | None:
    """The most items this reviewer may label: their arm's quota, else the study's; None: no limit."""
    if enrolment.arm_id is not None and enrolment.arm.reviewer_quota:
        return enrolment.arm.reviewer_quota
    return study.reviewer_quota


def quota_reached(study: Study, enrolment: Enrolment, labels_done: int) -> bool:
    quota = reviewer_quota(study, enrolment)
    return quota is not None and labels_done >= quota


def _locked_cursor(study: Study, reviewer, enrolment: Enrolment) -> ReviewerCursor:
    """The reviewer's cursor row, locked; made on first use, with where their walk starts."""
    cursor_row = ReviewerCursor.objects.select_for_update().filter(study=study, reviewer=reviewer).first()
    if cursor_row is None:
        offset = _walk_start(study, enrolment)
        ReviewerCursor.objects.get_or_create(study=study, reviewer=reviewer, defaults={"offset": offset})
        cursor_row = ReviewerCursor.objects.select_for_update().get(study=study, reviewer=reviewer)
    return cursor_row


def _walk_start(study: Study, enrolment: Enrolment) -> int:
    """The place a new reviewer's walk starts at: 0 in fixed order; in shuffled order the
    place of an item drawn uniformly by id from the study's items (``order.py``). Three
    index probes, once per reviewer."""
    if study.item_order != Study.ItemOrder.SHUFFLED:
        return 0
    items = Item.objects.filter(study=study).order_by("id").values_list("id", flat=True)
    first, last = items.first(), items.last()
    if first is None:
        return 0
    draw = order.reviewer_draw(study.seed, enrolment.stratum, enrolment.sequence or 0)
    start_id = items.filter(id__gte=order.start_item_id(draw, first, last)).first()
    return order.item_place(study.seed, start_id, shuffled=True)


def _walk(
    study: Study, reviewer, arm_key: int, cursor_row: ReviewerCursor, quota: int | None
) -> tuple[int, int, int] | None:
    """Take the next item of the reviewer's walk (docs/design.md, "Queue contract").

    Bands go by priority, highest first. In a band the reviewer walks up from their
    offset to the band's end, then wraps to the band's start and up to the offset. The
    cursor is the sort key of the item last taken, so each try is one index range that
    starts where the reviewer left off and does not grow with their history. When the
    walk is exhausted, the bands are walked again from the top: slots given back by skips
    and expired leases behind the cursor, and new items that fell in the part already
    walked, are served last.
    """

    def take(after: int, before: int) -> tuple[int, int, int] | None:
        return _take(study, reviewer, arm_key, cursor_row, quota, after=after, before=before)

    span, offset = ITEM_ID_SPAN, cursor_row.offset
    next_band_from = 0
    if cursor_row.sort_key >= 0:
        band_start = cursor_row.sort_key // span * span
        if cursor_row.sort_key - band_start >= offset:
            taken = take(cursor_row.sort_key, band_start + span) or take(band_start - 1, band_start + offset)
        else:
            taken = take(cursor_row.sort_key, band_start + offset)
        if taken:
            return taken
        next_band_from = band_start + span
    for first_key in dict.fromkeys([next_band_from, 0]):
        band_start = _next_band_start(study, reviewer, arm_key, first_key)
        while band_start is not None:
            taken = take(band_start + offset - 1, band_start + span) or take(band_start - 1, band_start + offset)
            if taken:
                return taken
            band_start = _next_band_start(study, reviewer, arm_key, band_start + span)
    return None


def _next_band_start(study: Study, reviewer, arm_key: int, from_key: int) -> int | None:
    """The start of the first band from ``from_key`` on with an item this reviewer may take."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT q.sort_key / %s * %s FROM {QUOTA} q
            WHERE q.study_id = %s AND q.arm_key = %s AND q.open_slots > 0 AND q.sort_key >= %s
              AND NOT EXISTS (SELECT 1 FROM {ASSIGNMENT} a WHERE a.item_id = q.item_id AND a.reviewer_id = %s)
            ORDER BY q.sort_key LIMIT 1
            """,  # noqa: S608 (table names are our models')
            [ITEM_ID_SPAN, ITEM_ID_SPAN, study.pk, arm_key, from_key, reviewer.pk],
        )
        row = cursor.fetchone()
    return row[0] if row else None


def _take(
    study: Study,
    reviewer,
    arm_key: int,
    cursor_row: ReviewerCursor,
    quota: int | None,
    *,
    after: int,
    before: int,
) -> tuple[int, int, int] | None:
    """Take a slot of the first claimable item with ``after < sort key < before``, and move
    the cursor there.

    One statement: the reviewer's quota is checked on their cursor row (locked by the
    caller), the quota row is locked with SKIP LOCKED (racing reviewers pass each other
    instead of queueing), its open slots decremented, the cursor moved and its count of
    items served raised. Returns (item id, open slots left, position in the reviewer's
    sequence) or None when nothing is claimable.
    """
    if before <= after + 1:
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH room AS (
                SELECT 1 FROM {CURSOR} c WHERE c.id = %s AND (%s::int IS NULL OR c.labels_done < %s::int)
            ), picked AS (
                SELECT q.id FROM {QUOTA} q
                WHERE q.study_id = %s AND q.arm_key = %s AND q.open_slots > 0
                  AND q.sort_key > %s AND q.sort_key < %s
                  AND EXISTS (SELECT 1 FROM room)
                  AND NOT EXISTS (
                      SELECT 1 FROM {ASSIGNMENT} a WHERE a.item_id = q.item_id AND a.reviewer_id = %s
                  )
                ORDER BY q.sort_key LIMIT 1
                FOR UPDATE OF q SKIP LOCKED
            ), taken AS (
                UPDATE {QUOTA} q SET open_slots = q.open_slots - 1 FROM picked WHERE q.id = picked.id
                RETURNING q.item_id, q.sort_key, q.open_slots
            ), moved AS (
                UPDATE {CURSOR} c SET sort_key = taken.sort_key, served = c.served + 1 FROM taken WHERE c.id = %s
                RETURNING c.served
            )
            SELECT taken.item_id, taken.open_slots, moved.served FROM taken, moved
            """,  # noqa: S608 (table names are our models')
            [cursor_row.pk, quota, quota, study.pk, arm_key, after, before, reviewer.pk, cursor_row.pk],
        )
        return cursor.fetchone()


def _free_slot(item_id: int, k: int) -> int:
    """The lowest slot of a within-subjects item that no live or submitted assignment holds.

    The caller has just taken the item's quota row (locked), so this cannot race; a slot
    was open, so fewer than k assignments hold one and the set below is never empty.
    """
    held = set(
        Assignment.objects.filter(
            item_id=item_id, quota_arm_key=0, state__in=[Assignment.State.LEASED, Assignment.State.SUBMITTED]
        ).values_list("slot", flat=True)
    )
    return min(set(range(k)) - held)


def _within_arm(study: Study, item_id: int, slot: int) -> Arm:
    arms, weights = study.arm_weights()
    return arms[allocate_assignment(weights, study.seed, item_id, slot).arm_index]


@transaction.atomic
def assignment_skip(*, study: Study, reviewer, assignment_id: int, reason: str) -> Assignment:
    """Give the item back with a reason; it is never offered to this reviewer again."""
    reason = (reason or "").strip()
    problem = skip_reason_error(reason)
    if problem:
        raise InvalidLabel({"reason": problem})
    assignment = _own_assignment(study, reviewer, assignment_id)
    if assignment.state == Assignment.State.SKIPPED:
        return assignment
    if assignment.state != Assignment.State.LEASED:
        raise StaleLease(f"This item is already {assignment.state}; it cannot be skipped now.")
    assignment.state = Assignment.State.SKIPPED
    assignment.skip_reason = reason
    assignment.save(update_fields=["state", "skip_reason"])
    _give_back_slot(assignment)
    return assignment


def skip_reason_error(reason: str) -> str | None:
    """What is wrong with a skip reason (after the field's name), or None. Pure."""
    if not reason:
        return "is required: say why you skip this item"
    # PostgreSQL text cannot hold U+0000: refused here, named, instead of a 500.
    if "\x00" in reason:
        return "contains a NUL character (U+0000), which cannot be stored: remove it"
    if len(reason) > MAX_SKIP_REASON:
        return f"is {len(reason):,} characters; the limit is {MAX_SKIP_REASON}"
    return None


def _own_assignment(study: Study, reviewer, assignment_id: int) -> Assignment:
    # Scoped to this reviewer and study: someone else's id is simply not found.
    assignment = (
        Assignment.objects.select_for_update(of=("self",))
        .filter(pk=assignment_id, study=study, reviewer=reviewer)
        .select_related("item", "arm")
        .first()
    )
    if assignment is None:
        raise NotEnrolled("No such assignment.")
    return assignment


def _give_back_slot(assignment: Assignment) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {QUOTA} SET open_slots = open_slots + 1 WHERE item_id = %s AND arm_key = %s",  # noqa: S608
            [assignment.item_id, assignment.quota_arm_key],
        )


def label_errors(schema: dict, values: Any, confidence: Any, comment: Any) -> dict[str, str]:
    """Every problem with a submitted answer, by field name. Pure."""
    if schema_errors(schema):
        return {"(study)": "the study's label schema is invalid"}
    if not isinstance(values, dict):
        return {"(values)": "must be an object of field: value"}
    errors: dict[str, str] = {}
    fields = {f["name"]: f for f in schema["fields"]}
    for name in values.keys() - fields.keys():
        errors[name] = "is not a field of this study's label schema"
    for name, field in fields.items():
        if name not in values or values[name] in (None, ""):
            if field.get("decision") or field.get("required", True):
                errors[name] = "is required"
            continue
        if isinstance(values[name], str) and "\x00" in values[name]:
            errors[name] = "contains a NUL character (U+0000): remove it"
            continue
        problem = value_error(field, values[name])
        if problem:
            errors[name] = problem
    if confidence is not None and (
        isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0 <= confidence <= 1
    ):
        errors["confidence"] = "must be a number between 0 and 1"
    if comment is not None and (not isinstance(comment, str) or len(comment) > MAX_COMMENT):
        errors["comment"] = f"must be text of at most {MAX_COMMENT} characters"
    elif comment and "\x00" in comment:
        errors["comment"] = "contains a NUL character (U+0000), which cannot be stored: remove it"
    return errors


@transaction.atomic
def blind_answer_record(*, study: Study, reviewer, assignment_id: int, values: dict) -> Assignment:
    """Reveal mode, step one: store the reviewer's own answer; only then may the AI be shown.

    Idempotent, and the first blind answer stands: a second call cannot rewrite it
    after the reviewer has seen the AI.
    """
    assignment = _own_assignment(study, reviewer, assignment_id)
    if not assignment.arm.reveal:
        raise QueueError("This arm does not ask for an answer before showing the AI.")
    if assignment.initial_values is not None:
        return assignment
    if assignment.state != Assignment.State.LEASED or assignment.lease_expires_at < timezone.now():
        raise StaleLease("Your time on this item ran out. Load the next item to continue.")
    errors = label_errors(study.label_schema, values, None, None)
    if errors:
        raise InvalidLabel(errors)
    assignment.initial_values = values
    assignment.revealed_at = timezone.now()
    assignment.save(update_fields=["initial_values", "revealed_at"])
    return assignment


LATE_MESSAGE = (
    "Your time on this item ran out and another reviewer has taken it; your answer was kept for the "
    "record but not counted. Load the next item to continue."
)


def label_submit(
    *,
    study: Study,
    reviewer,
    assignment_id: int,
    values: dict,
    confidence: float | None = None,
    comment: str = "",
    client_timings: dict | None = None,
    interactions: dict | None = None,
) -> tuple[Label, bool]:
    """Record an answer once (see ``_label_submit``); a late answer is kept, then refused.

    The refusal is raised after the transaction commits, so the kept answer stays.
    """
    with transaction.atomic():
        result = _label_submit(
            study=study,
            reviewer=reviewer,
            assignment_id=assignment_id,
            values=values,
            confidence=confidence,
            comment=comment,
            client_timings=client_timings,
            interactions=interactions,
        )
    if isinstance(result, str):
        raise StaleLease(result)
    return result


def _label_submit(
    *,
    study: Study,
    reviewer,
    assignment_id: int,
    values: dict,
    confidence: float | None = None,
    comment: str = "",
    client_timings: dict | None = None,
    interactions: dict | None = None,
) -> tuple[Label, bool] | str:
    """Record an answer once. Returns (label, created); a repeat returns the first label;
    a message for the reviewer when the answer came too late to count (it is stored as a
    LateSubmission).

    In reveal arms the blind answer is the one stored by ``blind_answer_record``, never
    one sent with the final answer.
    """
    assignment = _own_assignment(study, reviewer, assignment_id)
    if assignment.state == Assignment.State.SUBMITTED:
        # Answered already (a double click, a retry): the first answer stands.
        return Label.objects.get(assignment=assignment, supersedes__isnull=True), False
    if assignment.arm.reveal and assignment.initial_values is None:
        raise QueueError("Give your own answer first; the AI's is shown after it.")
    errors = label_errors(study.label_schema, values, confidence, comment)
    if errors:
        raise InvalidLabel(errors)
    now = timezone.now()
    if assignment.state == Assignment.State.SKIPPED:
        raise StaleLease("You skipped this item; the answer was not recorded.")
    if assignment.state == Assignment.State.LEASED and assignment.lease_expires_at < now:
        # Overdue but not yet swept: expire it now, as the sweep would.
        assignment.state = Assignment.State.EXPIRED
        assignment.save(update_fields=["state"])
        _give_back_slot(assignment)
    if assignment.state == Assignment.State.EXPIRED:
        refusal = _late_refusal(study, reviewer, assignment)
        if refusal is not None:
            reason, message = refusal
            LateSubmission.objects.create(
                assignment=assignment,
                values=values,
                payload={"confidence": confidence, "comment": comment, "initial_values": assignment.initial_values},
                reason=reason,
            )
            return message
    label = Label.objects.create(
        assignment=assignment,
        study=study,
        item=assignment.item,
        reviewer=reviewer,
        arm=assignment.arm,
        values=values,
        initial_values=assignment.initial_values,
        confidence=confidence,
        comment=comment or "",
        client_timings=client_timings or {},
        interactions=interactions or {},
        shown_at=assignment.shown_at,
        revealed_at=assignment.revealed_at,
        submitted_at=now,
        position=assignment.position,
    )
    assignment.state = Assignment.State.SUBMITTED
    assignment.submitted_at = now
    assignment.save(update_fields=["state", "submitted_at"])
    ItemQuota.objects.filter(item=assignment.item, arm_key=assignment.quota_arm_key).update(
        submitted=F("submitted") + 1
    )
    ReviewerCursor.objects.filter(study=study, reviewer=reviewer).update(labels_done=F("labels_done") + 1)
    return label, True


QUOTA_LATE_MESSAGE = (
    "Your time on this item ran out, and you have since reached the number of items you are asked to do; "
    "your answer was kept for the record but not counted."
)


def _late_refusal(study: Study, reviewer, assignment: Assignment) -> tuple[str, str] | None:
    """Why an answer on an expired lease cannot count, as (reason kept, message), or None
    once its slot is taken back.

    A late answer must not take the reviewer past their quota: they may have been given
    another item since the lease ran out, and that one counts against it too.
    """
    enrolment = Enrolment.objects.filter(study=study, reviewer=reviewer).select_related("arm").first()
    quota = reviewer_quota(study, enrolment) if enrolment is not None else None
    if quota is not None:
        cursor_row = _locked_cursor(study, reviewer, enrolment)
        live = Assignment.objects.filter(study=study, reviewer=reviewer, state=Assignment.State.LEASED).count()
        if cursor_row.labels_done + live >= quota:
            return "lease expired and the reviewer's quota was reached", QUOTA_LATE_MESSAGE
    if not _retake_slot(assignment):
        return "lease expired and the slot was taken", LATE_MESSAGE
    return None


def _retake_slot(assignment: Assignment) -> bool:
    """A late answer still counts if its slot is free: take it back."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {QUOTA} SET open_slots = open_slots - 1 "  # noqa: S608
            "WHERE item_id = %s AND arm_key = %s AND open_slots > 0",
            [assignment.item_id, assignment.quota_arm_key],
        )
        return cursor.rowcount == 1
