"""What ingest tells later stages, without importing them (the flow runs one way).

Receivers (connected in each subscribing app's AppConfig.ready):

- ``items_added(study, from_item_id)``: items with ids from ``from_item_id`` on were written
  to a study past draft, inside the transaction that writes them. reviewapp/queue/receivers.py
  gives them quota rows, invisible to reviewers until the commit.
- ``items_committed(study, from_item_id)``: the same items, once that transaction's work is
  done. The queue app moves reviewers' cursors back to them, in a short statement of its own
  (a long ingest must not hold reviewers' rows).
"""

from __future__ import annotations

from django.dispatch import Signal

items_added = Signal()
items_committed = Signal()
