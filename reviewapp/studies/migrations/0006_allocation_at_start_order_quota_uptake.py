"""Issue 14: arms are allocated at Start (joining a draft allocates nothing and locks
nothing), per-reviewer item order, reviewer quotas, the rationale's display per arm,
hidden item titles, and Reopen/Archive.

Existing enrolments were all allocated when they joined: ``allocated_at`` becomes
``joined_at`` and the new ``allocated_at`` copies it. Existing studies keep the fixed
order their queues were built in (the column is added with 'fixed', then new studies
default to 'shuffled').
"""

from django.conf import settings
from django.db import migrations, models


TRIGGERS = r"""
-- Allocated reviewers lock the design; reviewers who joined a draft study do not.
CREATE OR REPLACE FUNCTION reviewapp_design_lock_reason(sid bigint) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN EXISTS (SELECT 1 FROM review_queue_label WHERE study_id = sid)
            THEN 'Labels exist, so arms, the label schema and the design are locked.'
        WHEN EXISTS (SELECT 1 FROM studies_enrolment WHERE study_id = sid AND allocated_at IS NOT NULL)
            THEN 'Reviewers have been allocated to arms, so arms and the design are locked.'
    END
$$;

-- The fields that define the experiment (studies.services.DESIGN_FIELDS).
CREATE OR REPLACE FUNCTION reviewapp_study_design_lock() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed text[] := ARRAY[]::text[];
    reason text;
BEGIN
    IF NEW.label_schema IS DISTINCT FROM OLD.label_schema THEN changed := changed || 'label_schema'::text; END IF;
    IF NEW.design IS DISTINCT FROM OLD.design THEN changed := changed || 'design'::text; END IF;
    IF NEW.stratify_by IS DISTINCT FROM OLD.stratify_by THEN changed := changed || 'stratify_by'::text; END IF;
    IF NEW.overlap_k IS DISTINCT FROM OLD.overlap_k THEN changed := changed || 'overlap_k'::text; END IF;
    IF NEW.seed IS DISTINCT FROM OLD.seed THEN changed := changed || 'seed'::text; END IF;
    IF NEW.item_order IS DISTINCT FROM OLD.item_order THEN changed := changed || 'item_order'::text; END IF;
    IF NEW.hide_item_titles IS DISTINCT FROM OLD.hide_item_titles THEN
        changed := changed || 'hide_item_titles'::text;
    END IF;
    IF cardinality(changed) > 0 THEN
        reason := reviewapp_design_lock_reason(NEW.id);
        IF reason IS NOT NULL THEN
            RAISE EXCEPTION '% Not changed: %.', reason, array_to_string(changed, ', ')
                USING ERRCODE = 'check_violation', CONSTRAINT = 'study_design_locked';
        END IF;
    END IF;
    RETURN NEW;
END
$$;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("studies", "0005_join_signals_and_personal_links"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="enrolment",
            options={"ordering": ["study", "joined_at", "id"]},
        ),
        migrations.AddField(
            model_name="arm",
            name="rationale_display",
            field=models.CharField(
                choices=[("expanded", "Shown expanded"), ("collapsed", "Behind a click")],
                db_default="expanded",
                default="expanded",
                max_length=16,
            ),
        ),
        migrations.AddField(
            model_name="arm",
            name="reviewer_quota",
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
        migrations.RenameField(model_name="enrolment", old_name="allocated_at", new_name="joined_at"),
        migrations.AddField(
            model_name="enrolment",
            name="allocated_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunSQL("UPDATE studies_enrolment SET allocated_at = joined_at", reverse_sql=migrations.RunSQL.noop),
        migrations.AddField(
            model_name="study",
            name="hide_item_titles",
            field=models.BooleanField(db_default=False, default=False),
        ),
        migrations.AddField(
            model_name="study",
            name="item_order",
            field=models.CharField(
                choices=[
                    ("shuffled", "Per-reviewer shuffled order"),
                    ("fixed", "Fixed order (the same for every reviewer)"),
                ],
                db_default="fixed",
                default="fixed",
                max_length=16,
            ),
        ),
        migrations.AlterField(
            model_name="study",
            name="item_order",
            field=models.CharField(
                choices=[
                    ("shuffled", "Per-reviewer shuffled order"),
                    ("fixed", "Fixed order (the same for every reviewer)"),
                ],
                db_default="shuffled",
                default="shuffled",
                max_length=16,
            ),
        ),
        migrations.AddField(
            model_name="study",
            name="reviewer_quota",
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="study",
            name="reviewer_share_warning",
            field=models.FloatField(db_default=0.25, default=0.25),
        ),
        migrations.AlterField(
            model_name="enrolment",
            name="sequence",
            field=models.PositiveIntegerField(
                blank=True, help_text="0-based order of allocation within the stratum.", null=True
            ),
        ),
        migrations.AlterField(
            model_name="study",
            name="status",
            field=models.CharField(
                choices=[
                    ("draft", "Draft"),
                    ("running", "Running"),
                    ("paused", "Paused"),
                    ("closed", "Closed"),
                    ("archived", "Archived"),
                ],
                default="draft",
                max_length=16,
            ),
        ),
        migrations.AddConstraint(
            model_name="arm",
            constraint=models.CheckConstraint(
                condition=models.Q(("reviewer_quota__gte", 1)), name="arm_reviewer_quota_positive"
            ),
        ),
        migrations.AddConstraint(
            model_name="study",
            constraint=models.CheckConstraint(
                condition=models.Q(("reviewer_quota__gte", 1)), name="study_reviewer_quota_positive"
            ),
        ),
        migrations.AddConstraint(
            model_name="study",
            constraint=models.CheckConstraint(
                condition=models.Q(("reviewer_share_warning__gt", 0), ("reviewer_share_warning__lte", 1)),
                name="study_reviewer_share_warning_0_1",
            ),
        ),
        migrations.RunSQL(TRIGGERS, reverse_sql=migrations.RunSQL.noop),
    ]
