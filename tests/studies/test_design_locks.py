"""Design locks and the configuration audit hold on every path: study pages, the Django admin,
a shell (the ORM), raw SQL. Each refusal has a control showing the same change goes through,
and is recorded, while the study is not locked."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.db import IntegrityError, connection, transaction

from reviewapp.queue.models import Assignment, ItemQuota, Label
from reviewapp.studies.models import Arm, AuditEvent, Enrolment, Study
from reviewapp.studies.services import enrolment_create, study_transition
from tests.builders import enrol_allocated, make_item, user

pytestmark = pytest.mark.django_db


@pytest.fixture
def labelled_study(study) -> Study:
    """The study with one reviewer in the control arm and one label from them."""
    reviewer = user("rev")
    enrolment, _ = enrolment_create(study=study, reviewer=reviewer, source="admin")
    item = make_item(study)
    assignment = Assignment.objects.create(
        study=study, item=item, reviewer=reviewer, arm=enrolment.arm, lease_expires_at="2030-01-01T00:00Z"
    )
    Label.objects.create(assignment=assignment, study=study, item=item, reviewer=reviewer, arm=enrolment.arm, values={})
    return study


def admin_change_form(study: Study, **overrides) -> dict:
    """What the admin's change page posts for the study (inline arms included, unchanged)."""
    data = {
        "title": study.title,
        "instructions": study.instructions,
        "label_schema": '{"fields": [{"name": "decision", "type": "nominal", "choices": ["approve", "reject"], '
        '"decision": true}]}',
        "design": study.design,
        "stratify_by": study.stratify_by,
        "overlap_k": study.overlap_k,
        "lease_seconds": study.lease_seconds,
        "probe_rate": study.probe_rate,
        "reading_wpm": study.reading_wpm,
        "flag_thresholds": "{}",
        "seed": study.seed,
        "item_order": study.item_order,
        "reviewer_share_warning": study.reviewer_share_warning,
        "confidence_level": study.confidence_level,
        "min_reviewers_for_interval": study.min_reviewers_for_interval,
        "arms-TOTAL_FORMS": "0",
        "arms-INITIAL_FORMS": "0",
        "arms-MIN_NUM_FORMS": "0",
        "arms-MAX_NUM_FORMS": "1000",
    }
    data.update(overrides)
    return data


class TestLocksInTheAdmin:
    def test_it_shows_locked_fields_read_only_and_ignores_them_when_posted(self, client, labelled_study, admin_user):
        client.force_login(admin_user)
        url = f"/admin/studies/study/{labelled_study.pk}/change/"
        page = client.get(url).content.decode()
        assert 'name="overlap_k"' not in page and 'name="title"' in page
        assert "edit them on the study&#x27;s Arms page" in page or "edit them on the study's Arms page" in page

        response = client.post(url, admin_change_form(labelled_study, overlap_k=5, title="Renamed"))
        assert response.status_code == 302, response.context["adminform"].form.errors
        labelled_study.refresh_from_db()
        assert (labelled_study.overlap_k, labelled_study.title) == (3, "Renamed")

    def test_it_offers_no_way_to_edit_an_arm(self, client, labelled_study, admin_user):
        client.force_login(admin_user)
        control = labelled_study.arms.get(name="control")
        url = f"/admin/studies/study/{labelled_study.pk}/change/"
        form = admin_change_form(
            labelled_study,
            **{
                "arms-TOTAL_FORMS": "1",
                "arms-INITIAL_FORMS": "1",
                "arms-0-id": str(control.pk),
                "arms-0-study": str(labelled_study.pk),
                "arms-0-name": "control",
                "arms-0-weight": "1",
                "arms-0-shows_ai_rationale": "on",
            },
        )
        response = client.post(url, form)
        assert response.status_code == 302, response.context["adminform"].form.errors  # saved, arms aside
        control.refresh_from_db()
        assert not control.shows_ai_rationale
        assert client.get("/admin/studies/arm/").status_code == 404  # no arm admin of its own

    def test_an_admin_edit_of_k_before_anyone_joined_rebuilds_the_queue_and_is_audited(self, client, study, admin_user):
        make_item(study)
        study_transition(study=study, actor=admin_user, to_status="paused")  # running, then paused
        study_transition(study=study, actor=admin_user, to_status="running")
        assert set(ItemQuota.objects.filter(study=study).values_list("open_slots", flat=True)) == {3}
        client.force_login(admin_user)

        response = client.post(f"/admin/studies/study/{study.pk}/change/", admin_change_form(study, overlap_k=5))

        assert response.status_code == 302
        assert set(ItemQuota.objects.filter(study=study).values_list("open_slots", flat=True)) == {5}
        event = AuditEvent.objects.get(study=study, action="study.update")
        assert event.detail["before"]["overlap_k"] == 3 and event.detail["after"]["overlap_k"] == 5
        assert (event.actor_id, event.actor_name, event.detail["via"]) == (admin_user.pk, "ada", "admin")

    def test_the_admin_cannot_change_the_status_around_the_lifecycle(self, client, admin_user, db):
        draft = Study.objects.create(slug="draft", title="Draft")
        client.force_login(admin_user)
        page = client.get(f"/admin/studies/study/{draft.pk}/change/").content.decode()
        assert 'name="status"' not in page
        client.post(f"/admin/studies/study/{draft.pk}/change/", admin_change_form(draft, status="running"))
        draft.refresh_from_db()
        assert draft.status == "draft"


class TestLocksInTheDatabase:
    """A shell or raw SQL: what the admin and the pages refuse, the database refuses too."""

    @pytest.mark.parametrize(
        "change",
        [
            lambda s: Study.objects.filter(pk=s.pk).update(overlap_k=5),
            lambda s: Study.objects.filter(pk=s.pk).update(label_schema={"fields": []}),
            lambda s: Study.objects.filter(pk=s.pk).update(design=Study.Design.WITHIN),
            lambda s: Study.objects.filter(pk=s.pk).update(seed=1),
            lambda s: Arm.objects.filter(study=s, name="control").update(shows_ai_rationale=True),
            lambda s: Arm.objects.filter(study=s, name="control").update(weight=5),
            lambda s: Arm.objects.create(study=s, name="fourth", shows_ai_recommendation=True),
            # An arm nobody was allocated to (Django itself protects one in use).
            lambda s: Arm.objects.filter(study=s, enrolments__isnull=True).first().delete(),
        ],
        ids=["k", "schema", "design", "seed", "arm-shows", "arm-weight", "arm-add", "arm-delete"],
    )
    def test_it_refuses_a_design_change_once_labels_exist(self, labelled_study, change):
        with pytest.raises(IntegrityError, match="Labels exist, so arms, the label schema and the design are locked"):
            with transaction.atomic():
                change(labelled_study)
        assert Arm.objects.get(study=labelled_study, name="control").is_control
        assert Study.objects.get(pk=labelled_study.pk).overlap_k == 3

    def test_it_refuses_it_once_reviewers_are_allocated_even_before_labels(self, study):
        enrol_allocated(study, "rev")
        with pytest.raises(IntegrityError, match="Reviewers have been allocated"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("UPDATE studies_arm SET shows_ai_rationale = true WHERE study_id = %s", [study.pk])

    def test_the_same_changes_go_through_and_are_recorded_before_the_lock(self, study):
        """The control: nothing is allocated yet, so each change is allowed, and audited."""
        already = AuditEvent.objects.filter(study=study).count()  # the fixture's three arms
        Study.objects.filter(pk=study.pk).update(overlap_k=5)
        Arm.objects.filter(study=study, name="control").update(shows_ai_rationale=True)
        Arm.objects.create(study=study, name="fourth")
        Arm.objects.filter(study=study, name="fourth").delete()

        actions = list(AuditEvent.objects.filter(study=study).order_by("id").values_list("action", flat=True))
        assert actions[already:] == ["study.update", "arm.update", "arm.create", "arm.delete"]
        update = AuditEvent.objects.get(study=study, action="study.update")
        assert update.detail["before"] == {"overlap_k": 3} and update.detail["after"] == {"overlap_k": 5}
        # Made outside the services: no actor named, and it says so.
        assert (update.actor_id, update.detail["via"]) == (None, "database")
        arm = AuditEvent.objects.get(study=study, action="arm.update")
        assert arm.detail["before"] == {"shows_ai_rationale": False}
        assert arm.detail["after"] == {"shows_ai_rationale": True}

    def test_renaming_an_arm_stays_allowed_and_recorded(self, labelled_study):
        Arm.objects.filter(study=labelled_study, name="control").update(name="no AI")
        event = AuditEvent.objects.get(study=labelled_study, action="arm.update")
        assert event.detail["before"] == {"name": "control"} and event.detail["after"] == {"name": "no AI"}


class TestAuditRowsOutliveAccounts:
    def test_deleting_a_researcher_keeps_their_name_on_their_events(self, client, study, researcher, admin):
        client.force_login(researcher)
        client.post(f"/studies/{study.slug}/reviewers/", {"invite-kind": "open", "invite-label": "pilot"})
        event = AuditEvent.objects.get(study=study, action="invitation.create")
        assert (event.actor_id, event.actor_name) == (researcher.pk, "rosa")

        researcher_id = researcher.pk
        researcher.delete()

        event.refresh_from_db()
        assert (event.actor_id, event.actor_name) == (researcher_id, "rosa")
        client.force_login(admin)
        assert "rosa" in client.get(f"/studies/{study.slug}/audit/").content.decode()

    def test_the_database_refuses_to_edit_or_delete_an_event(self, study):
        event = AuditEvent.objects.create(study=study, action="test.event", detail={"n": 1})
        with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
            AuditEvent.objects.filter(pk=event.pk).update(detail={"n": 2})
        with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
            AuditEvent.objects.filter(pk=event.pk).delete()
        event.refresh_from_db()
        assert event.detail == {"n": 1}

    def test_deleting_a_study_keeps_its_history(self, db):
        scratch = Study.objects.create(slug="scratch", title="Scratch")
        AuditEvent.objects.create(study=scratch, action="test.event")
        scratch_id = scratch.pk
        scratch.delete()
        assert AuditEvent.objects.filter(study_id=scratch_id, action="test.event").exists()


class TestEnrolmentAfterADeletion:
    """Allocation numbers continue after the highest given: a deleted enrolment leaves a gap."""

    def test_joining_still_works_after_an_enrolment_and_an_unused_account_are_deleted(self, client, study):
        from reviewapp.studies.models import Invitation

        invitation = Invitation.objects.create(study=study)
        for n in range(4):
            enrol_allocated(study, f"early{n}")
        Enrolment.objects.get(reviewer__username="early1").delete()
        User.objects.get(username="early2").delete()  # never labelled: nothing protects it

        form = {"username": "later", "password1": "a-Long-pass-42", "password2": "a-Long-pass-42"}
        response = client.post(invitation.path, form)

        assert response.status_code == 302
        sequences = sorted(Enrolment.objects.filter(study=study).values_list("sequence", flat=True))
        assert sequences == [0, 3, 4]
        deleted = AuditEvent.objects.filter(study=study, action="enrolment.delete")
        assert sorted(e.detail["reviewer"] for e in deleted) == ["early1", "early2"]
