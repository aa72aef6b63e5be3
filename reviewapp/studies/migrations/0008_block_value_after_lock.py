"""The label schema's block value is analysis only: the design lock compares the schema
without it, so a researcher can mark (or change) which answer blocks the agent's action
after reviewers were allocated (studies.schema.without_block_value holds the same rule).
"""

from django.db import migrations

TRIGGERS = r"""
-- The schema as reviewers meet it: every field without its "block_value".
CREATE OR REPLACE FUNCTION reviewapp_schema_as_labelled(schema jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN jsonb_typeof(schema -> 'fields') = 'array' THEN jsonb_set(schema, '{fields}', COALESCE(
        (SELECT jsonb_agg(CASE WHEN jsonb_typeof(f) = 'object' THEN f - 'block_value' ELSE f END ORDER BY n)
         FROM jsonb_array_elements(schema -> 'fields') WITH ORDINALITY AS t(f, n)), '[]'::jsonb))
    ELSE schema END
$$;

-- The fields that define the experiment (studies.services.DESIGN_FIELDS).
CREATE OR REPLACE FUNCTION reviewapp_study_design_lock() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed text[] := ARRAY[]::text[];
    reason text;
BEGIN
    IF reviewapp_schema_as_labelled(NEW.label_schema) IS DISTINCT FROM reviewapp_schema_as_labelled(OLD.label_schema) THEN
        changed := changed || 'label_schema'::text;
    END IF;
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
    dependencies = [("studies", "0007_analysis_confidence_and_min_reviewers")]

    operations = [migrations.RunSQL(TRIGGERS, reverse_sql=migrations.RunSQL.noop)]
