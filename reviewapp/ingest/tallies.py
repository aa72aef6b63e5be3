"""A study's item counts (items, gold, probes, by source format) read from its tallies.

Triggers (migration 0004) append a signed delta row for every statement that changes items;
a read sums the study's rows, exact as of its snapshot however many items there are. A read
that finds many rows folds them into one row per source format (as does the beat task that
folds every tally, reviewapp/queue/tasks.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import connection, transaction

from reviewapp.studies.models import Study

from .models import ItemTally

ITEM_TALLY = ItemTally._meta.db_table
STUDY = Study._meta.db_table
# A read that sums more delta rows than this for one study folds them afterwards.
COMPACT_AFTER_ROWS = 500
# Namespace of the advisory lock that lets one session at a time fold a study's item tallies.
FOLD_LOCK = 7_341_005


@dataclass
class ItemCounts:
    items: int = 0
    gold: int = 0
    probes: int = 0
    formats: dict[str, int] = field(default_factory=dict)


def item_counts(study_ids: list[int]) -> dict[int, ItemCounts]:
    """Items, gold items, probes and items per source format of each study (one query)."""
    out = {study_id: ItemCounts() for study_id in study_ids}
    if not study_ids:
        return out
    rows_read: dict[int, int] = {}
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT study_id, source_format, sum(items)::bigint, sum(gold)::bigint, sum(probes)::bigint, count(*)
            FROM {ITEM_TALLY} WHERE study_id = ANY(%s) GROUP BY study_id, source_format
            """,  # noqa: S608 (table names are our models')
            [study_ids],
        )
        for study_id, source_format, items, gold, probes, rows in cursor.fetchall():
            counts = out[study_id]
            counts.items += items
            counts.gold += gold
            counts.probes += probes
            if items:
                counts.formats[source_format] = int(items)
            rows_read[study_id] = rows_read.get(study_id, 0) + rows
    for study_id, rows in rows_read.items():
        if rows > COMPACT_AFTER_ROWS:
            item_tallies_fold(study_id=study_id)
    return out


def item_tallies_fold(*, study_id: int) -> bool:
    """Fold a study's item delta rows into one row per source format; False if another
    session is at it. The fold deletes the rows it read and inserts their sums in one
    statement, so a read sees the totals before or after it, never half."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", [FOLD_LOCK, study_id])
        if not cursor.fetchone()[0]:
            return False
        cursor.execute(
            f"""
            WITH gone AS (DELETE FROM {ITEM_TALLY} WHERE study_id = %(study)s RETURNING *)
            INSERT INTO {ITEM_TALLY} (study_id, source_format, items, gold, probes)
            SELECT %(study)s, source_format, sum(items), sum(gold), sum(probes) FROM gone GROUP BY source_format
            HAVING sum(items) <> 0 OR sum(gold) <> 0 OR sum(probes) <> 0
            """,  # noqa: S608
            {"study": study_id},
        )
    return True


def item_tallies_drop_orphans() -> int:
    """Delete the item tally rows of deleted studies (the tallies have no foreign key)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {ITEM_TALLY} t WHERE NOT EXISTS (SELECT 1 FROM {STUDY} s WHERE s.id = t.study_id)"  # noqa: S608
        )
        return cursor.rowcount
