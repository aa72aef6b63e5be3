"""A stale second tab sending a different answer is told that the first answer stands."""

from __future__ import annotations

import pytest

from reviewapp.queue.models import Assignment, Label
from reviewapp.studies.models import Arm
from tests.builders import enrol, make_items

HX = {"HTTP_HX_REQUEST": "true"}


def answer(client, study, assignment, data: dict, action: str = "answer", **extra):
    return client.post(f"/review/{study.slug}/items/{assignment.pk}/{action}/", data, **extra)


@pytest.mark.django_db
class TestStaleSecondTab:
    def test_a_different_second_answer_is_told_the_first_one_stands(self, client, study):
        make_items(study, 3)
        reviewer = enrol(study, "rev", "recommendation")
        client.force_login(reviewer)
        client.get(f"/review/{study.slug}/")
        first = Assignment.objects.get(reviewer=reviewer, state="leased")
        assert "Saved." in answer(client, study, first, {"field_decision": "reject"}, **HX).content.decode()

        # The other tab still shows the first item and sends "approve" for it.
        response = answer(client, study, first, {"field_decision": "approve", "comment": "ok"}, **HX)
        body = response.content.decode()
        assert response.status_code == 200
        assert "This item was already answered (in another tab?); your first answer stands: decision=reject." in body
        assert "Saved." not in body  # was "Saved."
        assert [label.values for label in Label.objects.filter(reviewer=reviewer)] == [{"decision": "reject"}]

        # Positive control: the same answer again (a double click) is simply "Saved.".
        response = answer(client, study, first, {"field_decision": "reject"}, **HX)
        assert "Saved." in response.content.decode() and "already answered" not in response.content.decode()

    def test_without_javascript_the_warning_follows_the_redirect(self, client, study):
        make_items(study, 2)
        reviewer = enrol(study, "rev", "control")
        client.force_login(reviewer)
        client.get(f"/review/{study.slug}/")
        first = Assignment.objects.get(reviewer=reviewer, state="leased")
        answer(client, study, first, {"field_decision": "approve"})
        response = answer(client, study, first, {"field_decision": "reject"}, follow=True)
        assert "your first answer stands: decision=approve." in response.content.decode()

    def test_a_second_blind_answer_in_reveal_mode_is_told_the_first_one_stands(self, client, study):
        Arm.objects.create(study=study, name="reveal", position=3, shows_ai_recommendation=True, reveal=True)
        make_items(study, 1)
        reviewer = enrol(study, "rev", "reveal")
        client.force_login(reviewer)
        client.get(f"/review/{study.slug}/")
        leased = Assignment.objects.get(reviewer=reviewer)
        answer(client, study, leased, {"field_decision": "reject"}, action="blind", **HX)
        response = answer(client, study, leased, {"field_decision": "approve"}, action="blind", **HX)
        assert "Your own answer was already saved (in another tab?); it stands: decision=reject." in (
            response.content.decode()
        )
        leased.refresh_from_db()
        assert leased.initial_values == {"decision": "reject"}
