"""Partial indexes for the items tab's gold and probe filters, in queue order.

Keyset pages read the (study, priority desc, id) index from a cursor until a page is
full; under a filter that matches few items (twenty gold labels in a million items) that
walk would pass the whole study. These indexes hold only the matching items, so such a
page reads what it shows. They live here (the queue's order) rather than on the Item
model: the ingest app owns the table, and no other code depends on them.
"""

from django.db import migrations

ITEM = "ingest_item"

CREATE = f"""
CREATE INDEX IF NOT EXISTS item_gold_queue_order ON {ITEM} (study_id, priority DESC, id) WHERE gold_label IS NOT NULL;
CREATE INDEX IF NOT EXISTS item_probe_queue_order ON {ITEM} (study_id, priority DESC, id) WHERE is_probe;
"""
DROP = "DROP INDEX IF EXISTS item_gold_queue_order; DROP INDEX IF EXISTS item_probe_queue_order;"


class Migration(migrations.Migration):
    dependencies = [
        ("review_queue", "0006_label_reviewer_time"),
        ("ingest", "0002_payload_lz4"),
    ]

    operations = [migrations.RunSQL(CREATE, DROP)]
