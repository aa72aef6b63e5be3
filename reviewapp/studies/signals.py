"""What the base app tells later stages, without importing them (the flow runs one way).

Sent inside the transaction that made the change, so a receiver's writes commit or roll back
with it. Receivers (connected in each subscribing app's AppConfig.ready):

- ``study_opened(study)``: a study started running. reviewapp/queue/receivers.py opens its
  queue (one quota row per item and arm).
- ``design_changed(study)``: the arms, *k* or the design of a study that is past draft changed
  (possible only while nobody is allocated). The queue app rebuilds the study's quota rows.
- ``reviewer_removing(study, reviewer)``: a researcher is removing a reviewer (who has given no
  labels) from the study. The queue app ends the reviewer's live lease and gives its slot back.
"""

from __future__ import annotations

from django.dispatch import Signal

study_opened = Signal()
design_changed = Signal()
reviewer_removing = Signal()
