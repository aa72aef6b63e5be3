"""Tallies kept by triggers: quota rows and labels counted per study without a pass (the item
tallies are the ingest app's, ingest/migrations/0004).

Each trigger is statement-level with transition tables: one COPY or INSERT ... SELECT of
a million rows adds one delta row per group (not a million function calls), and a claim
that only moves ``open_slots`` adds nothing (its net delta is zero). The tallies of the
rows already there are written in the same transaction that creates the triggers (which
locks the tables against writes meanwhile), so nothing is counted twice or missed.
"""

import django.db.models.deletion
from django.db import migrations, models

QUOTA = "review_queue_itemquota"
LABEL = "review_queue_label"

# Each function sums +1 for every new row and -1 for every old row by key, and appends
# only keys whose net change is not zero. A branch reads only the transition tables its
# event has (plpgsql plans a statement when it first runs it).
FUNCTIONS = """
CREATE FUNCTION review_queue_quota_tally() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO review_queue_quotatally (study_id, arm_key, submitted, n)
        SELECT study_id, arm_key, submitted, count(*) FROM new_rows GROUP BY study_id, arm_key, submitted;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO review_queue_quotatally (study_id, arm_key, submitted, n)
        SELECT study_id, arm_key, submitted, -count(*) FROM old_rows GROUP BY study_id, arm_key, submitted;
    ELSE
        -- Every claim, expiry and skip updates a quota row without changing ``submitted``:
        -- their net delta is zero and nothing is written.
        INSERT INTO review_queue_quotatally (study_id, arm_key, submitted, n)
        SELECT study_id, arm_key, submitted, sum(sign)
        FROM (SELECT study_id, arm_key, submitted, 1 AS sign FROM new_rows
              UNION ALL
              SELECT study_id, arm_key, submitted, -1 FROM old_rows) AS d
        GROUP BY study_id, arm_key, submitted HAVING sum(sign) <> 0;
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION review_queue_label_tally() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Answers, not rows: a correction supersedes a label, so only originals are counted
    -- (as many as the reviewer's current labels).
    IF TG_OP = 'INSERT' THEN
        INSERT INTO review_queue_labeltally (study_id, reviewer_id, arm_id, day, n, last_at)
        SELECT study_id, reviewer_id, arm_id, (submitted_at AT TIME ZONE 'UTC')::date, count(*), max(submitted_at)
        FROM new_rows WHERE supersedes_id IS NULL GROUP BY 1, 2, 3, 4;
    ELSIF TG_OP = 'DELETE' THEN
        -- Labels are append-only; only test and benchmark clean-ups delete them. The
        -- newest time stays as it was (a maximum cannot be subtracted).
        INSERT INTO review_queue_labeltally (study_id, reviewer_id, arm_id, day, n, last_at)
        SELECT study_id, reviewer_id, arm_id, (submitted_at AT TIME ZONE 'UTC')::date, -count(*), NULL
        FROM old_rows WHERE supersedes_id IS NULL GROUP BY 1, 2, 3, 4;
    ELSE
        INSERT INTO review_queue_labeltally (study_id, reviewer_id, arm_id, day, n, last_at)
        SELECT study_id, reviewer_id, arm_id, day, sum(sign), max(last_at)
        FROM (SELECT study_id, reviewer_id, arm_id, (submitted_at AT TIME ZONE 'UTC')::date AS day, 1 AS sign,
                     submitted_at AS last_at FROM new_rows WHERE supersedes_id IS NULL
              UNION ALL
              SELECT study_id, reviewer_id, arm_id, (submitted_at AT TIME ZONE 'UTC')::date, -1, NULL
              FROM old_rows WHERE supersedes_id IS NULL) AS d
        GROUP BY 1, 2, 3, 4 HAVING sum(sign) <> 0;
    END IF;
    RETURN NULL;
END $$;
"""

# One trigger per event: a trigger with transition tables fires on one event only. ALWAYS:
# bulk loads that skip foreign-key checks with session_replication_role = replica (the
# benchmarks' seeding) still keep the tallies.
TRIGGERS = "".join(
    f"""
CREATE TRIGGER {name}_tally_{event.lower()} AFTER {event} ON {table}
    REFERENCING {refs} FOR EACH STATEMENT EXECUTE FUNCTION review_queue_{name}_tally();
ALTER TABLE {table} ENABLE ALWAYS TRIGGER {name}_tally_{event.lower()};
"""
    for name, table in (("quota", QUOTA), ("label", LABEL))
    for event, refs in (
        ("INSERT", "NEW TABLE AS new_rows"),
        ("UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
        ("DELETE", "OLD TABLE AS old_rows"),
    )
)

# What is there already, counted once while the triggers' locks hold writers off.
BACKFILL = f"""
INSERT INTO review_queue_quotatally (study_id, arm_key, submitted, n)
SELECT study_id, arm_key, submitted, count(*) FROM {QUOTA} GROUP BY study_id, arm_key, submitted;
INSERT INTO review_queue_labeltally (study_id, reviewer_id, arm_id, day, n, last_at)
SELECT study_id, reviewer_id, arm_id, (submitted_at AT TIME ZONE 'UTC')::date, count(*), max(submitted_at)
FROM {LABEL} WHERE supersedes_id IS NULL GROUP BY 1, 2, 3, 4;
"""  # noqa: S608 (our own table names)

DROP = "".join(
    f"DROP TRIGGER IF EXISTS {name}_tally_{event} ON {table};\n"
    for name, table in (("quota", QUOTA), ("label", LABEL))
    for event in ("insert", "update", "delete")
) + "".join(f"DROP FUNCTION IF EXISTS review_queue_{name}_tally();\n" for name in ("quota", "label"))



class Migration(migrations.Migration):

    dependencies = [
        ('review_queue', '0004_cursor_labels_done'),
        ('studies', '0003_arm_messages'),
        ('ingest', '0002_payload_lz4'),
    ]

    operations = [
        # The per-arm totals a beat task refreshed: the quota tallies below replace them.
        migrations.DeleteModel(name='QueueProgress'),
        migrations.CreateModel(
            name='LabelTally',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('reviewer_id', models.BigIntegerField()),
                ('arm_id', models.BigIntegerField()),
                ('day', models.DateField(null=True)),
                ('n', models.BigIntegerField()),
                ('last_at', models.DateTimeField(null=True)),
                ('study', models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='studies.study')),
            ],
        ),
        migrations.CreateModel(
            name='QuotaTally',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('arm_key', models.BigIntegerField()),
                ('submitted', models.IntegerField()),
                ('n', models.BigIntegerField()),
                ('study', models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='studies.study')),
            ],
        ),
        migrations.RunSQL(FUNCTIONS + TRIGGERS + BACKFILL, DROP),
    ]
