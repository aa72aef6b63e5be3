"""Summary counts of a study read from its tallies, not counted from big tables (the item
counts are the ingest app's: reviewapp/ingest/tallies.py).

Triggers (migration 0005) append a signed delta row for every statement that changes
quota rows or labels. A read sums the study's delta rows: exact as of the read's
snapshot, however many items or labels there are. The number of delta rows grows with
the number of writes since the last compaction (one or two per submitted label), so
``tallies_compact`` folds them into one row per key: the ``queue-refresh-progress`` beat
task does it every 30 s for running studies, and a read that finds many rows does it
itself (a fold costs about as much as the read that found them, never a pass over the
study's items or labels).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db import connection, transaction

from reviewapp.ingest.tallies import item_tallies_drop_orphans, item_tallies_fold
from reviewapp.studies.models import Study

from .models import LabelTally, QuotaTally

QUOTA_TALLY = QuotaTally._meta.db_table
LABEL_TALLY = LabelTally._meta.db_table
STUDY = Study._meta.db_table
# A read that sums more delta rows than this for one study folds them afterwards.
COMPACT_AFTER_ROWS = 500
# Days of label activity kept apart; older days are folded into one row per reviewer and
# arm (``day`` null). Longer than any chart's window (the dashboard shows 14 days).
LABEL_DAYS_KEPT = 62
# Namespace of the advisory lock that lets one session at a time fold a study's tallies.
COMPACT_LOCK = 7_341_003


def quota_shape(study_id: int, arm_key: int | None = None) -> dict[int, dict[int, int]]:
    """Per queue (arm key): how many quota rows (items) have each number of submitted labels."""
    arm_filter = "" if arm_key is None else "AND arm_key = %s"
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT arm_key, submitted, sum(n)::bigint, count(*) FROM {QUOTA_TALLY}
            WHERE study_id = %s {arm_filter} GROUP BY arm_key, submitted
            """,  # noqa: S608
            [study_id] if arm_key is None else [study_id, arm_key],
        )
        rows = cursor.fetchall()
    shape: dict[int, dict[int, int]] = {}
    for key, submitted, n, _ in rows:
        if n:
            shape.setdefault(key, {})[submitted] = int(n)
    if sum(row[3] for row in rows) > COMPACT_AFTER_ROWS:
        tallies_compact(study_id=study_id)
    return shape


@dataclass
class LabelDay:
    reviewer_id: int
    arm_id: int
    day: date | None  # None: days folded together, older than LABEL_DAYS_KEPT
    n: int
    last_at: datetime | None


def label_days(study_id: int) -> list[LabelDay]:
    """The study's labels per reviewer, arm and UTC day (rows: reviewers x active days)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT reviewer_id, arm_id, day, sum(n)::bigint, max(last_at), count(*) FROM {LABEL_TALLY}
            WHERE study_id = %s GROUP BY reviewer_id, arm_id, day
            """,  # noqa: S608
            [study_id],
        )
        rows = cursor.fetchall()
    if sum(row[5] for row in rows) > COMPACT_AFTER_ROWS + len(rows):
        tallies_compact(study_id=study_id)
    return [LabelDay(reviewer, arm, day, int(n), last) for reviewer, arm, day, n, last, _ in rows if n]


def reviewer_label_count(study_id: int, reviewer_id: int) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT coalesce(sum(n), 0)::bigint FROM {LABEL_TALLY} WHERE study_id = %s AND reviewer_id = %s",  # noqa: S608
            [study_id, reviewer_id],
        )
        return int(cursor.fetchone()[0])


def label_count(study_id: int) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT coalesce(sum(n), 0)::bigint FROM {LABEL_TALLY} WHERE study_id = %s", [study_id])  # noqa: S608
        return int(cursor.fetchone()[0])


def tallies_compact(*, study_id: int) -> bool:
    """Fold a study's delta rows into one row per key; False if another session is at it.

    Each fold deletes the rows it read and inserts their sums in one statement, so a read
    sees the study's totals either before or after it, never half. Rows that writers
    append meanwhile are not in the fold's snapshot: they stay, to be folded next time.
    """
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", [COMPACT_LOCK, study_id])
        if not cursor.fetchone()[0]:
            return False
        cursor.execute(
            f"""
            WITH gone AS (DELETE FROM {QUOTA_TALLY} WHERE study_id = %(study)s RETURNING *)
            INSERT INTO {QUOTA_TALLY} (study_id, arm_key, submitted, n)
            SELECT %(study)s, arm_key, submitted, sum(n) FROM gone GROUP BY arm_key, submitted HAVING sum(n) <> 0
            """,  # noqa: S608
            {"study": study_id},
        )
        cursor.execute(f"SELECT max(day) FROM {LABEL_TALLY} WHERE study_id = %s", [study_id])  # noqa: S608
        newest = cursor.fetchone()[0]
        cursor.execute(
            f"""
            WITH gone AS (DELETE FROM {LABEL_TALLY} WHERE study_id = %(study)s RETURNING *)
            INSERT INTO {LABEL_TALLY} (study_id, reviewer_id, arm_id, day, n, last_at)
            SELECT %(study)s, reviewer_id, arm_id, CASE WHEN day >= %(keep_from)s THEN day END, sum(n), max(last_at)
            FROM gone GROUP BY reviewer_id, arm_id, CASE WHEN day >= %(keep_from)s THEN day END HAVING sum(n) <> 0
            """,  # noqa: S608
            {"study": study_id, "keep_from": newest - timedelta(days=LABEL_DAYS_KEPT) if newest else None},
        )
    item_tallies_fold(study_id=study_id)
    return True


def tallies_drop_orphans() -> int:
    """Delete the tally rows of deleted studies (the tallies have no foreign key)."""
    removed = item_tallies_drop_orphans()
    with connection.cursor() as cursor:
        for table in (QUOTA_TALLY, LABEL_TALLY):
            cursor.execute(
                f"DELETE FROM {table} t WHERE NOT EXISTS (SELECT 1 FROM {STUDY} s WHERE s.id = t.study_id)"  # noqa: S608
            )
            removed += cursor.rowcount
    return removed
