"""The dashboard's reads: aggregate queries, each at most one pass over one study's rows.

Counts come from the tallies that triggers keep (queue/tallies.py), so no dashboard read
passes over a study's items, quota rows or labels; bench/pages.py times the pages at
10,000 and 1,000,000 items.
Identifiers are our models' table names; every value is a query parameter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connection
from django.db.models import BooleanField, QuerySet
from django.db.models.expressions import RawSQL

from reviewapp.ingest.models import Item
from reviewapp.metrics.models import MetricRun
from reviewapp.queue import tallies
from reviewapp.queue.models import Assignment, ItemQuota, Label
from reviewapp.studies.models import Enrolment, Study

from .dashboard import LabelFact

LABEL = Label._meta.db_table
ITEM = Item._meta.db_table
QUOTA = ItemQuota._meta.db_table
ASSIGNMENT = Assignment._meta.db_table
# A reviewer page reads at most this many of the reviewer's labels for its charts and
# figures (it says so when they have more): the page costs the same for a long history.
TIMELINE_MAX_LABELS = 300
DWELL_CACHE_SECONDS = 24 * 3600


def queue_states(study: Study) -> list[dict]:
    """Per queue (arm_key), how many items are fully labelled (k submitted), in progress (a
    live lease), partially labelled, or not yet claimed.

    The quota tallies say how many items have each number of labels (a few rows per
    arm); only the items under a live lease (at most one per active reviewer, from a
    partial index) are looked up, to move them to "in progress"."""
    k = study.overlap_k
    shape = tallies.quota_shape(study.pk)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT q.arm_key, q.submitted, count(*)
            FROM (
                SELECT DISTINCT item_id, quota_arm_key FROM {ASSIGNMENT}
                WHERE study_id = %(study)s AND state = 'leased' AND lease_expires_at > now()
            ) live
            JOIN {QUOTA} q ON q.item_id = live.item_id AND q.arm_key = live.quota_arm_key
            WHERE q.submitted < %(k)s
            GROUP BY q.arm_key, q.submitted
            """,  # noqa: S608 (table names are our models')
            {"study": study.pk, "k": k},
        )
        live = {(key, submitted): n for key, submitted, n in cursor.fetchall()}
    states = []
    for key in sorted(shape):
        counts = shape[key]
        leased = {submitted: n for (arm_key, submitted), n in live.items() if arm_key == key}
        states.append(
            {
                "arm_key": key,
                "full": sum(n for submitted, n in counts.items() if submitted >= k),
                "partial": sum(n for submitted, n in counts.items() if 0 < submitted < k)
                - sum(n for submitted, n in leased.items() if submitted > 0),
                "in_progress": sum(leased.values()),
                "unclaimed": counts.get(0, 0) - leased.get(0, 0),
            }
        )
    return states


@dataclass
class Activity:
    """Who labelled how much, when: per reviewer (labels, last active, labels per day in the
    window) and labels per arm."""

    reviewers: dict[int, dict] = field(default_factory=dict)
    per_arm: dict[int, int] = field(default_factory=dict)
    last_day: date | None = None


def activity(study: Study, window_days: int) -> Activity:
    """Labels per reviewer, arm and day, read from the label tallies (a row per reviewer
    and active day, however many labels): the window is the ``window_days`` days up to
    the study's newest label."""
    days = tallies.label_days(study.pk)
    last_day = max((row.day for row in days if row.day is not None), default=None)
    out = Activity(last_day=last_day)
    for row in days:
        entry = out.reviewers.setdefault(row.reviewer_id, {"labels": 0, "last_active": None, "days": {}})
        entry["labels"] += row.n
        if row.last_at is not None and (entry["last_active"] is None or row.last_at > entry["last_active"]):
            entry["last_active"] = row.last_at
        out.per_arm[row.arm_id] = out.per_arm.get(row.arm_id, 0) + row.n
        if row.day is not None and row.day > last_day - timedelta(days=window_days):
            entry["days"][row.day] = entry["days"].get(row.day, 0) + row.n
    return out


def enrolled_reviewers(study: Study) -> list[dict]:
    fields = ("reviewer_id", "reviewer__username", "arm__name", "allocated_at")
    rows = Enrolment.objects.filter(study=study).values(*fields)
    # Reviewers who joined a draft study have no arm until it starts.
    unarmed = {True: "per assignment", False: "not allocated yet"}
    return [
        {
            "id": row["reviewer_id"],
            "name": row["reviewer__username"],
            "arm": row["arm__name"] or unarmed[row["allocated_at"] is not None],
        }
        for row in rows
    ]


def reviewer_dwell(study: Study, run: MetricRun) -> dict[int, dict]:
    """Per reviewer: median seconds from shown to submitted, and agreement with the AI's
    recommendation (the hidden one in the control arm), over the labels the metrics run
    saw (id <= its watermark), so the plot describes the same data as the other charts.

    Metric runs store these numbers per reviewer; for runs from before they did, a full
    pass with a join and a per-reviewer median (about 1.3 s at a million labels) is
    computed once per run and cached (Django's cache; per process with
    the default local-memory cache)."""
    reviewers = (run.result or {}).get("reviewers", [])
    if reviewers and all("dwell" in row for row in reviewers):
        # Runs since the metrics compute it themselves: no extra pass over the labels.
        return {row["reviewer"]: row["dwell"] for row in reviewers}
    key = f"dashboard:dwell:{study.pk}:{run.pk}:{run.watermark.get('max_label_id', 0)}"
    cached = cache.get(key)
    if cached is not None:
        return cached
    decision = next(f for f in study.label_schema["fields"] if f.get("decision"))["name"]
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT reviewer_id,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds),
                   count(*) FILTER (WHERE answered),
                   count(*) FILTER (WHERE answered AND agrees)
            FROM (
                SELECT l.reviewer_id,
                       extract(epoch FROM l.submitted_at - l.shown_at)::float8 AS seconds,
                       (l.values ->> %(field)s) IS NOT NULL AND i.ai_recommendation IS NOT NULL AS answered,
                       (l.values -> %(field)s) = i.ai_recommendation AS agrees
                FROM {LABEL} l JOIN {ITEM} i ON i.id = l.item_id
                WHERE l.study_id = %(study)s AND l.id <= %(max_id)s
                  AND NOT EXISTS (SELECT 1 FROM {LABEL} s WHERE s.supersedes_id = l.id)
            ) per_label
            GROUP BY reviewer_id
            """,  # noqa: S608
            {"study": study.pk, "field": decision, "max_id": run.watermark.get("max_label_id", 0)},
        )
        out = {
            reviewer_id: {"median_seconds": median, "n": n, "agree": agree}
            for reviewer_id, median, n, agree in cursor.fetchall()
        }
    cache.set(key, out, DWELL_CACHE_SECONDS)
    return out


def reviewer_labels(study: Study, reviewer_id: int) -> QuerySet[Label]:
    """The reviewer's labels in this study, corrected ones included (see ``superseded``)."""
    return Label.objects.filter(study=study, reviewer_id=reviewer_id)


def superseded(label_ids: list[int]) -> set[int]:
    """Which of these labels a correction replaced: a lookup of a page's ids in the unique
    ``supersedes`` index. (A join in the page's query would let the planner hash every
    label of the study to find the few corrections.)"""
    return set(Label.objects.filter(supersedes_id__in=label_ids).values_list("supersedes_id", flat=True))


def reviewer_label_facts(study: Study, reviewer_id: int) -> tuple[list[LabelFact], int]:
    """The reviewer's latest TIMELINE_MAX_LABELS labels in submit order, and how many they
    have (from the label tallies): one range of the (study, reviewer, submitted_at, id)
    index, however long the reviewer's history."""
    decision = next(f for f in study.label_schema["fields"] if f.get("decision"))["name"]
    total = tallies.reviewer_label_count(study.pk, reviewer_id)
    rows = list(
        reviewer_labels(study, reviewer_id)
        .order_by("-submitted_at", "-id")
        .values_list(
            "id",
            "submitted_at",
            "shown_at",
            "values",
            "item__ai_recommendation",
            "item__gold_label",
            "item__is_probe",
            "item__word_count",
            "item__external_id",
        )[:TIMELINE_MAX_LABELS]
    )
    replaced = superseded([row[0] for row in rows])
    rows = [row[1:] for row in reversed(rows) if row[0] not in replaced]
    first = max(1, total - len(rows) + 1)
    facts = []
    for offset, (submitted, shown, values, ai, gold, probe, words, external_id) in enumerate(rows):
        facts.append(
            LabelFact(
                seq=first + offset,
                submitted_at=submitted,
                seconds=_seconds(shown, submitted),
                decision=(values or {}).get(decision),
                ai=ai,
                gold=gold,
                is_probe=probe,
                word_count=words,
                external_id=external_id,
            )
        )
    return facts, max(total, len(facts))


def _seconds(shown: datetime | None, submitted: datetime) -> float | None:
    return None if shown is None else (submitted - shown).total_seconds()


@dataclass
class LabelPage:
    """A page of a reviewer's labels, newest first, found from the label after or before
    it (keyset): an old page costs what the newest does, where OFFSET would skip them all."""

    labels: list[Label]
    has_newer: bool
    has_older: bool


def recent_labels(study: Study, reviewer_id: int, *, older: int | None, newer: int | None, size: int) -> LabelPage:
    """``size`` labels older than label ``older``, newer than label ``newer``, or the newest;
    labels a correction replaced are left out (a page may then show a few fewer)."""
    labels = (
        reviewer_labels(study, reviewer_id)
        .select_related("item")
        .only(
            "id",
            "values",
            "shown_at",
            "submitted_at",
            "item__external_id",
            "item__ai_recommendation",
            "item__gold_label",
            "item__is_probe",
        )
    )
    anchor_id = older if older is not None else newer
    anchor = None
    if anchor_id is not None:
        # Scoped like the page: another reviewer's or study's label id is no anchor.
        anchor = Label.objects.filter(pk=anchor_id, study=study, reviewer_id=reviewer_id).values_list(
            "submitted_at", "id"
        )
        anchor = anchor.first()
    # A row comparison is one range of the (study, reviewer, submitted_at, id) index.
    if anchor is not None and older is not None:
        position = RawSQL(f"({LABEL}.submitted_at, {LABEL}.id) < (%s, %s)", anchor, output_field=BooleanField())  # noqa: S611 (values are parameters)
        rows = list(labels.filter(position).order_by("-submitted_at", "-id")[: size + 1])
        return LabelPage(labels=_current(rows[:size]), has_newer=True, has_older=len(rows) > size)
    if anchor is not None:
        position = RawSQL(f"({LABEL}.submitted_at, {LABEL}.id) > (%s, %s)", anchor, output_field=BooleanField())  # noqa: S611
        rows = list(labels.filter(position).order_by("submitted_at", "id")[: size + 1])
        return LabelPage(labels=_current(rows[:size][::-1]), has_newer=len(rows) > size, has_older=True)
    rows = list(labels.order_by("-submitted_at", "-id")[: size + 1])
    return LabelPage(labels=_current(rows[:size]), has_newer=False, has_older=len(rows) > size)


def _current(labels: list[Label]) -> list[Label]:
    replaced = superseded([label.pk for label in labels])
    return [label for label in labels if label.pk not in replaced]


def usernames(result: dict | None, enrolled: list[dict]) -> dict[int, str]:
    """Names of reviewers the result has who are not enrolled (rare: the rows stay visible)."""
    known = {person["id"] for person in enrolled}
    missing = [row["reviewer"] for row in (result or {}).get("reviewers", []) if row["reviewer"] not in known]
    if not missing:
        return {}
    return dict(get_user_model().objects.filter(pk__in=missing).values_list("pk", "username"))
