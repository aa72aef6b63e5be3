"""Close and Archive need the study's slug typed; Reopen undoes Close (audited) unless the study
was archived; Pause and Resume stay one click. Every refusal has its control."""

from __future__ import annotations

import pytest

from reviewapp.studies.models import AuditEvent, Invitation, Study
from reviewapp.studies.services import StudyRuleError, enrolment_create, study_transition
from tests.builders import make_item, user

pytestmark = pytest.mark.django_db

STATUS = "/studies/refunds/status/"


def status_events(study: Study) -> list[tuple[str, str, str]]:
    events = AuditEvent.objects.filter(study=study, action="study.status").order_by("id")
    return [(e.detail["before"], e.detail["after"], e.actor_name) for e in events]


def now(study: Study) -> str:
    return Study.objects.get(pk=study.pk).status


class TestLifecycle:
    def test_it_closes_only_with_the_slug_typed(self, client, study, researcher):
        client.force_login(researcher)
        for wrong in ({}, {"confirm_slug": ""}, {"confirm_slug": "refund"}, {"confirm_slug": "REFUNDS"}):
            response = client.post(STATUS, {"to": "closed", **wrong}, follow=True)
            assert (
                "To close the study, type its slug (refunds) to confirm. Nothing was changed."
                in response.content.decode()
            )
            assert now(study) == "running"
        assert status_events(study) == []

        response = client.post(STATUS, {"to": "closed", "confirm_slug": " refunds "}, follow=True)
        assert "Study is now closed." in response.content.decode()
        assert now(study) == "closed"
        assert status_events(study) == [("running", "closed", "rosa")]

    def test_the_service_refuses_a_close_without_confirmation(self, study, researcher):
        with pytest.raises(StudyRuleError, match="to confirm"):
            study_transition(study=study, actor=researcher, to_status="closed")
        assert now(study) == "running"
        study_transition(study=study, actor=researcher, to_status="closed", confirmation="refunds")
        assert now(study) == "closed"

    def test_pause_and_resume_stay_one_click(self, client, study, researcher):
        client.force_login(researcher)
        client.post(STATUS, {"to": "paused"})
        assert now(study) == "paused"
        client.post(STATUS, {"to": "running"})
        assert now(study) == "running"

    def test_reopen_brings_a_closed_study_back_paused_and_is_audited(self, client, study, researcher):
        client.force_login(researcher)
        client.post(STATUS, {"to": "closed", "confirm_slug": "refunds"})
        response = client.post(STATUS, {"to": "paused"}, follow=True)
        assert "Study is now paused." in response.content.decode()
        assert now(study) == "paused"
        assert status_events(study) == [("running", "closed", "rosa"), ("closed", "paused", "rosa")]
        event = AuditEvent.objects.filter(study=study, action="study.status").latest("id")
        assert (event.actor_id, event.detail["via"]) == (researcher.pk, "app")

    def test_archive_needs_the_slug_and_is_permanent(self, client, study, researcher):
        client.force_login(researcher)
        client.post(STATUS, {"to": "closed", "confirm_slug": "refunds"})
        client.post(STATUS, {"to": "archived", "confirm_slug": "wrong"})
        assert now(study) == "closed"
        client.post(STATUS, {"to": "archived", "confirm_slug": "refunds"})
        assert now(study) == "archived"

        for to in ("paused", "running", "closed"):
            response = client.post(STATUS, {"to": to, "confirm_slug": "refunds"}, follow=True)
            assert "archiving is permanent, so it cannot be reopened" in response.content.decode()
            assert now(study) == "archived"
        assert status_events(study) == [("running", "closed", "rosa"), ("closed", "archived", "rosa")]

    def test_the_study_page_explains_close_and_offers_reopen(self, client, study, researcher):
        client.force_login(researcher)
        page = client.get("/studies/refunds/").content.decode()
        assert "Closing stops the study." in page and "reviewers can no longer label" in page.lower()
        assert 'name="confirm_slug"' in page and "Archiving is permanent" not in page
        client.post(STATUS, {"to": "closed", "confirm_slug": "refunds"})
        page = client.get("/studies/refunds/").content.decode()
        assert ">Reopen</button>" in page and "Archiving is permanent." in page
        client.post(STATUS, {"to": "archived", "confirm_slug": "refunds"})
        page = client.get("/studies/refunds/").content.decode()
        assert ">Reopen</button>" not in page and 'name="confirm_slug"' not in page

    def test_the_controls_are_for_the_studys_researchers_only(self, client, study, cast):
        client.force_login(cast.outsider)
        assert client.post(STATUS, {"to": "closed", "confirm_slug": "refunds"}).status_code == 404
        client.force_login(cast.reviewer)
        assert client.post(STATUS, {"to": "closed", "confirm_slug": "refunds"}).status_code == 403
        assert now(study) == "running"


class TestClosedAndArchivedStudies:
    @pytest.mark.parametrize("status", ["closed", "archived"])
    def test_they_take_no_new_items_or_reviewers(self, client, study, token, status):
        Study.objects.filter(pk=study.pk).update(status=status)
        response = client.post(
            "/api/studies/refunds/items",
            b'{"external_id": "x", "messages": [{"role": "user", "content": "hi"}]}',
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {token}",
        )
        assert response.status_code == 409 and "closed" in response.content.decode()
        with pytest.raises(StudyRuleError, match=f"This study is {status}; it takes no new reviewers"):
            enrolment_create(study=study, reviewer=user("late"), source="admin")
        invitation = Invitation.objects.create(study_id=study.pk)
        assert Invitation.objects.get(pk=invitation.pk).unusable_reason() == "This study is closed."

    def test_a_paused_study_still_takes_them(self, client, study, token):
        """The control: the same requests succeed while the study is only paused."""
        Study.objects.filter(pk=study.pk).update(status="paused")
        response = client.post(
            "/api/studies/refunds/items",
            b'{"external_id": "x", "messages": [{"role": "user", "content": "hi"}]}',
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {token}",
        )
        assert response.status_code in (200, 201, 202), response.content
        enrolment, created = enrolment_create(study=study, reviewer=user("late"), source="admin")
        assert created and enrolment.allocated_at is not None

    def test_an_archived_study_refuses_uploads(self, client, study, researcher):
        make_item(study)
        Study.objects.filter(pk=study.pk).update(status="archived")
        client.force_login(researcher)
        response = client.post("/studies/refunds/upload/", {}, follow=True)
        assert "is closed; it accepts no new items" in response.content.decode()

    @pytest.mark.parametrize(("status", "offered"), [("paused", True), ("closed", False), ("archived", False)])
    def test_the_study_page_offers_uploads_and_tokens_only_while_items_are_taken(
        self, client, study, researcher, status, offered
    ):
        Study.objects.filter(pk=study.pk).update(status=status)
        client.force_login(researcher)
        page = client.get("/studies/refunds/").content.decode()
        assert ('action="/studies/refunds/upload/"' in page) is offered
        assert ("Create ingest token" in page) is offered
        assert ("it takes no new transcripts" in page) is not offered
