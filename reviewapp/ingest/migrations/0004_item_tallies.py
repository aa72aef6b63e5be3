"""Item tallies kept by triggers, and partial indexes for the Items tab's filters.

The tallies: a statement-level trigger with transition tables appends one delta row per
(study, source format) for every statement that inserts, updates or deletes items, so a page
reads a study's item, gold and probe counts from a few rows (reviewapp/ingest/tallies.py),
however many items it has; one COPY of a million rows adds one row, not a million function
calls. The items already there are counted in the same transaction that creates the triggers.

The indexes: keyset pages of the Items tab read the (study, priority desc, id) index from a
cursor until a page is full; under a filter that matches few items (twenty gold labels in a
million items) that walk would pass the whole study. These hold only the matching items.
"""

import django.db.models.deletion
from django.db import migrations, models

FUNCTION = """
CREATE FUNCTION ingest_item_tally() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO ingest_itemtally (study_id, source_format, items, gold, probes)
        SELECT study_id, source_format, count(*), count(*) FILTER (WHERE gold_label IS NOT NULL),
               count(*) FILTER (WHERE is_probe)
        FROM new_rows GROUP BY study_id, source_format;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO ingest_itemtally (study_id, source_format, items, gold, probes)
        SELECT study_id, source_format, -count(*), -count(*) FILTER (WHERE gold_label IS NOT NULL),
               -count(*) FILTER (WHERE is_probe)
        FROM old_rows GROUP BY study_id, source_format;
    ELSE
        INSERT INTO ingest_itemtally (study_id, source_format, items, gold, probes)
        SELECT study_id, source_format, sum(sign), sum(sign * gold), sum(sign * probe)
        FROM (SELECT study_id, source_format, 1 AS sign, (gold_label IS NOT NULL)::int AS gold,
                     is_probe::int AS probe FROM new_rows
              UNION ALL
              SELECT study_id, source_format, -1, (gold_label IS NOT NULL)::int, is_probe::int FROM old_rows) AS d
        GROUP BY study_id, source_format
        HAVING sum(sign) <> 0 OR sum(sign * gold) <> 0 OR sum(sign * probe) <> 0;
    END IF;
    RETURN NULL;
END $$;
"""

# One trigger per event: a trigger with transition tables fires on one event only. ALWAYS:
# bulk loads that skip foreign-key checks with session_replication_role = replica (the
# benchmarks' seeding) still keep the tallies.
TRIGGERS = "".join(
    f"""
CREATE TRIGGER item_tally_{event.lower()} AFTER {event} ON ingest_item
    REFERENCING {refs} FOR EACH STATEMENT EXECUTE FUNCTION ingest_item_tally();
ALTER TABLE ingest_item ENABLE ALWAYS TRIGGER item_tally_{event.lower()};
"""
    for event, refs in (
        ("INSERT", "NEW TABLE AS new_rows"),
        ("UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
        ("DELETE", "OLD TABLE AS old_rows"),
    )
)

BACKFILL = """
INSERT INTO ingest_itemtally (study_id, source_format, items, gold, probes)
SELECT study_id, source_format, count(*), count(*) FILTER (WHERE gold_label IS NOT NULL),
       count(*) FILTER (WHERE is_probe)
FROM ingest_item GROUP BY study_id, source_format;
"""

INDEXES = """
CREATE INDEX IF NOT EXISTS item_gold_queue_order ON ingest_item (study_id, priority DESC, id) WHERE gold_label IS NOT NULL;
CREATE INDEX IF NOT EXISTS item_probe_queue_order ON ingest_item (study_id, priority DESC, id) WHERE is_probe;
"""

DROP = """
DROP TRIGGER IF EXISTS item_tally_insert ON ingest_item;
DROP TRIGGER IF EXISTS item_tally_update ON ingest_item;
DROP TRIGGER IF EXISTS item_tally_delete ON ingest_item;
DROP FUNCTION IF EXISTS ingest_item_tally();
DROP INDEX IF EXISTS item_gold_queue_order;
DROP INDEX IF EXISTS item_probe_queue_order;
"""


class Migration(migrations.Migration):

    dependencies = [
        ("ingest", "0003_job_kernel"),
        ("studies", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="ItemTally",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("source_format", models.CharField(max_length=16)),
                ("items", models.BigIntegerField()),
                ("gold", models.BigIntegerField()),
                ("probes", models.BigIntegerField()),
                (
                    "study",
                    models.ForeignKey(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="studies.study",
                    ),
                ),
            ],
        ),
        migrations.RunSQL(FUNCTION + TRIGGERS + BACKFILL + INDEXES, DROP),
    ]
