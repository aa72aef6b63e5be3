"""A researcher removes a reviewer who has given no labels: their live lease goes back to the
queue, the removal is audited with its actor; a reviewer with labels stays."""

from __future__ import annotations

import pytest
from django.test import Client

from reviewapp.queue.models import Assignment, ItemQuota, Label
from reviewapp.queue.services import StaleLease, claim_next, label_submit
from reviewapp.studies.models import AuditEvent, Enrolment
from tests.builders import APPROVE, make_items

pytestmark = pytest.mark.django_db

REVIEWERS = "/studies/refunds/reviewers/"


def remove_url(enrolment: Enrolment) -> str:
    return f"/studies/refunds/reviewers/{enrolment.pk}/remove/"


def open_slots(item_id: int, arm_key: int) -> int:
    return ItemQuota.objects.get(item_id=item_id, arm_key=arm_key).open_slots


class TestReviewerRemoval:
    def test_it_removes_a_reviewer_without_labels_and_names_the_actor(self, client, study, researcher, reviewer):
        enrolment = Enrolment.objects.get(study=study, reviewer=reviewer)
        client.force_login(researcher)
        page = client.get(REVIEWERS).content.decode()
        assert f'action="{remove_url(enrolment)}"' in page

        response = client.post(remove_url(enrolment), follow=True)

        assert "rev was removed from the study." in response.content.decode()
        assert not Enrolment.objects.filter(pk=enrolment.pk).exists()
        event = AuditEvent.objects.get(study=study, action="enrolment.delete")
        assert (event.actor_id, event.actor_name, event.detail["via"]) == (researcher.pk, "rosa", "app")
        assert event.detail["reviewer"] == "rev"

    def test_it_gives_back_the_slot_of_a_live_lease(self, client, study, researcher, reviewer):
        make_items(study, 1)
        lease = claim_next(study=study, reviewer=reviewer)
        slots = open_slots(lease.item_id, lease.quota_arm_key)
        client.force_login(researcher)

        client.post(remove_url(Enrolment.objects.get(study=study, reviewer=reviewer)))

        lease.refresh_from_db()
        assert (lease.state, lease.skip_reason) == (Assignment.State.SKIPPED, "reviewer removed from the study")
        assert open_slots(lease.item_id, lease.quota_arm_key) == slots + 1

    def test_an_answer_already_on_its_way_does_not_count_after_removal(self, client, study, researcher, reviewer):
        make_items(study, 1)
        lease = claim_next(study=study, reviewer=reviewer)
        client.force_login(researcher)
        client.post(remove_url(Enrolment.objects.get(study=study, reviewer=reviewer)))

        # The answer's request passed the enrolment check before the removal committed.
        with pytest.raises(StaleLease):
            label_submit(study=study, reviewer=reviewer, assignment_id=lease.pk, values=APPROVE)

        assert not Label.objects.filter(assignment=lease).exists()
        assert open_slots(lease.item_id, lease.quota_arm_key) == study.overlap_k

    def test_it_refuses_a_reviewer_with_labels_and_changes_nothing(self, client, study, researcher, reviewer):
        make_items(study, 2)
        first = claim_next(study=study, reviewer=reviewer)
        label_submit(study=study, reviewer=reviewer, assignment_id=first.pk, values=APPROVE)
        live = claim_next(study=study, reviewer=reviewer)
        slots = open_slots(live.item_id, live.quota_arm_key)
        enrolment = Enrolment.objects.get(study=study, reviewer=reviewer)
        client.force_login(researcher)
        assert f'action="{remove_url(enrolment)}"' not in client.get(REVIEWERS).content.decode()

        response = client.post(remove_url(enrolment), follow=True)

        assert "rev has given 1 label, so they cannot be removed" in response.content.decode()
        assert Enrolment.objects.filter(pk=enrolment.pk).exists()
        live.refresh_from_db()
        assert live.state == Assignment.State.LEASED and open_slots(live.item_id, live.quota_arm_key) == slots
        assert not AuditEvent.objects.filter(study=study, action="enrolment.delete").exists()

    def test_only_the_studys_researchers_may_remove(self, client, study, cast):
        enrolment = Enrolment.objects.get(study=study, reviewer=cast.other_reviewer)
        client.force_login(cast.outsider)
        assert client.post(remove_url(enrolment)).status_code == 404
        client.force_login(cast.reviewer)
        assert client.post(remove_url(enrolment)).status_code == 403
        client.force_login(cast.researcher)
        assert client.get(remove_url(enrolment)).status_code == 405
        assert Enrolment.objects.filter(pk=enrolment.pk).exists()
        assert client.post(remove_url(enrolment)).status_code == 302  # the control
        assert not Enrolment.objects.filter(pk=enrolment.pk).exists()

    def test_it_needs_the_csrf_token(self, study, researcher, reviewer):
        enrolment = Enrolment.objects.get(study=study, reviewer=reviewer)
        browser = Client(enforce_csrf_checks=True)
        browser.force_login(researcher)
        assert browser.post(remove_url(enrolment)).status_code == 403
        assert Enrolment.objects.filter(pk=enrolment.pk).exists()
        token = browser.get(REVIEWERS).context["csrf_token"]
        assert browser.post(remove_url(enrolment), {"csrfmiddlewaretoken": str(token)}).status_code == 302
        assert not Enrolment.objects.filter(pk=enrolment.pk).exists()

    def test_a_removed_reviewer_loses_the_review_page(self, client, study, researcher, reviewer):
        make_items(study, 1)
        client.force_login(reviewer)
        assert client.get("/review/refunds/").status_code == 200
        admin = Client()
        admin.force_login(researcher)
        admin.post(remove_url(Enrolment.objects.get(study=study, reviewer=reviewer)))
        assert client.get("/review/refunds/").status_code == 404
