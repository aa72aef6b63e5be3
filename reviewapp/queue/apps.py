from django.apps import AppConfig


class QueueConfig(AppConfig):
    name = "reviewapp.queue"
    label = "review_queue"

    def ready(self) -> None:
        # The queue follows earlier stages through their signals (the flow runs one way:
        # studies and ingest never import the queue). See reviewapp/queue/receivers.py.
        from reviewapp.ingest import signals as ingest_signals
        from reviewapp.studies import signals as study_signals

        from . import receivers

        study_signals.study_opened.connect(receivers.open_queue, dispatch_uid="queue-open")
        study_signals.design_changed.connect(receivers.rebuild_queue, dispatch_uid="queue-rebuild")
        study_signals.reviewer_removing.connect(receivers.release_removed_reviewer, dispatch_uid="queue-release")
        ingest_signals.items_added.connect(receivers.queue_new_items, dispatch_uid="queue-new-items")
        ingest_signals.items_committed.connect(receivers.pull_back_cursors, dispatch_uid="queue-pull-back")
