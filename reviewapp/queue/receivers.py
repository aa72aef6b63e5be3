"""The queue follows what earlier stages did: studies opened or redesigned, items ingested.

Connected in QueueConfig.ready. Thin: each calls one queue service; the rules are there.
"""

from __future__ import annotations

from django.db import connection

from . import services
from .models import Assignment, ItemQuota, ReviewerCursor


def open_queue(sender, *, study, **kwargs) -> None:
    """A study started: one quota row per item (and arm), k slots each."""
    services.quotas_sync(study=study)


def rebuild_queue(sender, *, study, **kwargs) -> None:
    services.quotas_rebuild(study=study)


def queue_new_items(sender, *, study, from_item_id: int, **kwargs) -> None:
    services.quotas_sync(study=study, from_item_id=from_item_id, pull_back_cursors=False)


def pull_back_cursors(sender, *, study, from_item_id: int, **kwargs) -> None:
    services.cursors_pull_back(study=study, from_item_id=from_item_id)


def release_removed_reviewer(sender, *, study, reviewer, **kwargs) -> None:
    """A reviewer is being removed from the study: their live lease (at most one) ends as
    expired and its slot is given back, in the removal's transaction.

    Their cursor row is locked first, as their claims lock it, so no claim of theirs slips in
    between; an answer being saved on the lease holds its row, and is waited for."""
    ReviewerCursor.objects.select_for_update().filter(study=study, reviewer=reviewer).first()
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH ended AS (
                UPDATE {Assignment._meta.db_table} SET state = 'expired'
                WHERE study_id = %s AND reviewer_id = %s AND state = 'leased'
                RETURNING item_id, quota_arm_key
            )
            UPDATE {ItemQuota._meta.db_table} q SET open_slots = q.open_slots + 1
            FROM ended WHERE q.item_id = ended.item_id AND q.arm_key = ended.quota_arm_key
            """,  # noqa: S608 (table names are our models')
            [study.pk, reviewer.pk],
        )
