"""Audit rows outlive accounts and studies, and the database keeps them append-only; the
design locks and the configuration audit hold on every path (app, admin, shell, raw SQL).

Triggers, because these are invariants of the data rather than of one code path: the Django
admin once switched a control arm to show the rationale with labels present, and changed k
with the queue left as it was, without an audit entry. The services still check the locks
first, to answer in a sentence; the triggers are the guarantee behind them.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


# The username of each event's actor, while the accounts still exist.
BACKFILL_ACTOR_NAMES = """
UPDATE studies_auditevent e SET actor_name = u.username FROM auth_user u WHERE u.id = e.actor_id;
"""

TRIGGERS = r"""
-- Who is acting, as the services name it for their transaction (services.acting_as);
-- NULL and 'database' for a change made outside them (a shell, raw SQL).
CREATE FUNCTION reviewapp_actor_id() RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT NULLIF(current_setting('reviewapp.actor_id', true), '')::bigint
$$;
CREATE FUNCTION reviewapp_via() RETURNS text LANGUAGE sql STABLE AS $$
    SELECT COALESCE(NULLIF(current_setting('reviewapp.via', true), ''), 'database')
$$;

-- Why a study's arms and design can no longer change, or NULL (studies.services.lock_reason).
CREATE FUNCTION reviewapp_design_lock_reason(sid bigint) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN EXISTS (SELECT 1 FROM review_queue_label WHERE study_id = sid)
            THEN 'Labels exist, so arms, the label schema and the design are locked.'
        WHEN EXISTS (SELECT 1 FROM studies_enrolment WHERE study_id = sid)
            THEN 'Reviewers have been allocated to arms, so arms and the design are locked.'
    END
$$;

-- The fields that define the experiment (studies.services.DESIGN_FIELDS).
CREATE FUNCTION reviewapp_study_design_lock() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed text[] := ARRAY[]::text[];
    reason text;
BEGIN
    IF NEW.label_schema IS DISTINCT FROM OLD.label_schema THEN changed := changed || 'label_schema'::text; END IF;
    IF NEW.design IS DISTINCT FROM OLD.design THEN changed := changed || 'design'::text; END IF;
    IF NEW.stratify_by IS DISTINCT FROM OLD.stratify_by THEN changed := changed || 'stratify_by'::text; END IF;
    IF NEW.overlap_k IS DISTINCT FROM OLD.overlap_k THEN changed := changed || 'overlap_k'::text; END IF;
    IF NEW.seed IS DISTINCT FROM OLD.seed THEN changed := changed || 'seed'::text; END IF;
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
CREATE TRIGGER study_design_lock BEFORE UPDATE ON studies_study
    FOR EACH ROW EXECUTE FUNCTION reviewapp_study_design_lock();

CREATE FUNCTION reviewapp_arm_design_lock() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    sid bigint;
    reason text;
BEGIN
    -- A new name (a typo fixed) changes no one's experience of the arm: allowed, and audited.
    IF TG_OP = 'UPDATE' AND to_jsonb(NEW) - 'name' = to_jsonb(OLD) - 'name' THEN
        RETURN NEW;
    END IF;
    sid := CASE WHEN TG_OP = 'DELETE' THEN OLD.study_id ELSE NEW.study_id END;
    reason := reviewapp_design_lock_reason(sid);
    IF reason IS NULL AND TG_OP = 'UPDATE' AND NEW.study_id <> OLD.study_id THEN
        reason := reviewapp_design_lock_reason(OLD.study_id);
    END IF;
    IF reason IS NOT NULL THEN
        RAISE EXCEPTION '%', reason USING ERRCODE = 'check_violation', CONSTRAINT = 'arm_design_locked';
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END
$$;
CREATE TRIGGER arm_design_lock BEFORE INSERT OR UPDATE OR DELETE ON studies_arm
    FOR EACH ROW EXECUTE FUNCTION reviewapp_arm_design_lock();

-- Every configuration change, with before and after, whichever path made it.
CREATE FUNCTION reviewapp_audit(sid bigint, action text, detail jsonb) RETURNS void LANGUAGE sql AS $$
    INSERT INTO studies_auditevent (study_id, actor_id, actor_name, action, detail, created_at)
    VALUES (sid, reviewapp_actor_id(), '', action, detail || jsonb_build_object('via', reviewapp_via()), now())
$$;

-- Keys of new_row whose values differ from old_row: {"before": {...}, "after": {...}}.
CREATE FUNCTION reviewapp_changes(old_row jsonb, new_row jsonb, ignored text[]) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object(
        'before', COALESCE(jsonb_object_agg(n.key, old_row -> n.key), '{}'::jsonb),
        'after', COALESCE(jsonb_object_agg(n.key, n.value), '{}'::jsonb))
    FROM jsonb_each(new_row) n
    WHERE NOT n.key = ANY(ignored) AND n.value IS DISTINCT FROM old_row -> n.key
$$;

CREATE FUNCTION reviewapp_study_audit() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changes jsonb := reviewapp_changes(to_jsonb(OLD), to_jsonb(NEW), ARRAY['updated_at', 'status']);
BEGIN
    IF changes -> 'after' <> '{}'::jsonb THEN
        PERFORM reviewapp_audit(NEW.id, 'study.update', changes);
    END IF;
    IF NEW.status IS DISTINCT FROM OLD.status THEN
        PERFORM reviewapp_audit(NEW.id, 'study.status', jsonb_build_object('before', OLD.status, 'after', NEW.status));
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER study_audit AFTER UPDATE ON studies_study
    FOR EACH ROW EXECUTE FUNCTION reviewapp_study_audit();

CREATE FUNCTION reviewapp_arm_audit() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changes jsonb;
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM reviewapp_audit(NEW.study_id, 'arm.create', jsonb_build_object('arm', NEW.name, 'after', to_jsonb(NEW)));
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM reviewapp_audit(OLD.study_id, 'arm.delete', jsonb_build_object('arm', OLD.name, 'before', to_jsonb(OLD)));
    ELSE
        changes := reviewapp_changes(to_jsonb(OLD), to_jsonb(NEW), ARRAY[]::text[]);
        IF changes -> 'after' <> '{}'::jsonb THEN
            PERFORM reviewapp_audit(NEW.study_id, 'arm.update', changes || jsonb_build_object('arm', OLD.name));
        END IF;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER arm_audit AFTER INSERT OR UPDATE OR DELETE ON studies_arm
    FOR EACH ROW EXECUTE FUNCTION reviewapp_arm_audit();

-- Enrolments are written once; one that goes (with its reviewer's account) leaves a record.
CREATE FUNCTION reviewapp_enrolment_delete_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM reviewapp_audit(OLD.study_id, 'enrolment.delete', jsonb_build_object(
        'reviewer_id', OLD.reviewer_id,
        'reviewer', (SELECT username FROM auth_user WHERE id = OLD.reviewer_id),
        'arm_id', OLD.arm_id, 'stratum', OLD.stratum, 'sequence', OLD.sequence));
    RETURN NULL;
END
$$;
CREATE TRIGGER enrolment_delete_audit AFTER DELETE ON studies_enrolment
    FOR EACH ROW EXECUTE FUNCTION reviewapp_enrolment_delete_audit();

-- The actor's name is kept with the event: accounts can be deleted, history cannot.
CREATE FUNCTION reviewapp_audit_actor_name() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.actor_name = '' AND NEW.actor_id IS NOT NULL THEN
        NEW.actor_name := COALESCE((SELECT username FROM auth_user WHERE id = NEW.actor_id), '');
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER audit_actor_name BEFORE INSERT ON studies_auditevent
    FOR EACH ROW EXECUTE FUNCTION reviewapp_audit_actor_name();

CREATE FUNCTION reviewapp_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'Audit events are append-only: % refused.', TG_OP
        USING ERRCODE = 'check_violation', CONSTRAINT = 'audit_append_only';
END
$$;
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON studies_auditevent
    FOR EACH ROW EXECUTE FUNCTION reviewapp_audit_append_only();
"""

DROP_TRIGGERS = """
DROP TRIGGER audit_append_only ON studies_auditevent;
DROP TRIGGER audit_actor_name ON studies_auditevent;
DROP TRIGGER enrolment_delete_audit ON studies_enrolment;
DROP TRIGGER arm_audit ON studies_arm;
DROP TRIGGER study_audit ON studies_study;
DROP TRIGGER arm_design_lock ON studies_arm;
DROP TRIGGER study_design_lock ON studies_study;
DROP FUNCTION reviewapp_audit_append_only(), reviewapp_audit_actor_name(), reviewapp_enrolment_delete_audit(), reviewapp_arm_audit(),
    reviewapp_study_audit(), reviewapp_changes(jsonb, jsonb, text[]), reviewapp_audit(bigint, text, jsonb),
    reviewapp_arm_design_lock(), reviewapp_study_design_lock(), reviewapp_design_lock_reason(bigint),
    reviewapp_via(), reviewapp_actor_id();
"""


class Migration(migrations.Migration):

    dependencies = [
        ('studies', '0003_arm_messages'),
        ('review_queue', '0001_initial'),  # the locks read review_queue_label
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='auditevent',
            name='actor_name',
            field=models.CharField(blank=True, db_default='', default='', max_length=150),
        ),
        migrations.AlterField(
            model_name='auditevent',
            name='actor',
            field=models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AlterField(
            model_name='auditevent',
            name='study',
            field=models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='audit_events', to='studies.study'),
        ),
        migrations.RunSQL(BACKFILL_ACTOR_NAMES, migrations.RunSQL.noop),
        migrations.RunSQL(TRIGGERS, DROP_TRIGGERS),
    ]
