"""The queue follows what earlier stages did: studies opened or redesigned, items ingested.

Connected in QueueConfig.ready. Thin: each calls one queue service; the rules are there.
"""

from __future__ import annotations

from . import services


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
    services.leases_release_for_removal(study=study, reviewer=reviewer)
