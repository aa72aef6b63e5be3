"""The rationale shown expanded or behind "Why?" per arm, and the uptake measurements the page
sends with an answer (whether the rationale and the recommendation were seen)."""

from __future__ import annotations

import json

import pytest

from reviewapp.queue.models import Assignment, Label
from reviewapp.studies.models import Arm
from tests.builders import enrol, make_items

HX = {"HTTP_HX_REQUEST": "true"}
RATIONALE = "The order total is over the limit CANARYWHY."


def set_display(study, display: str) -> None:
    Arm.objects.filter(study=study, name="rationale").update(rationale_display=display)


def page(client, study, reviewer) -> str:
    client.force_login(reviewer)
    return client.get(f"/review/{study.slug}/").content.decode()


@pytest.mark.django_db
class TestRationaleDisplay:
    def test_an_expanded_arm_shows_the_rationale_open_and_watched_for_uptake(self, client, study):
        set_display(study, "expanded")
        make_items(study, 1, ai_rationale=RATIONALE)
        body = page(client, study, enrol(study, "open", "rationale"))
        assert '<section class="ai-rationale is-expanded" data-uptake="rationale">' in body
        assert "CANARYWHY" in body
        assert '<details class="ai-rationale"' not in body
        assert '<p data-uptake="recommendation">' in body

    def test_a_collapsed_arm_puts_the_rationale_behind_why(self, client, study):
        set_display(study, "collapsed")
        make_items(study, 1, ai_rationale=RATIONALE)
        body = page(client, study, enrol(study, "closed", "rationale"))
        assert (
            '<details class="ai-rationale" data-track="rationale" data-uptake="rationale" data-uptake-opened>' in body
        )
        assert "<summary>Why? (the AI's reasoning)</summary>" in body
        assert "is-expanded" not in body

    def test_a_control_arm_gets_no_rationale_and_nothing_watched(self, client, study):
        """Blinding: the uptake markup exists only where the arm shows the AI."""
        set_display(study, "expanded")
        make_items(study, 1, ai_rationale=RATIONALE)
        body = page(client, study, enrol(study, "ctrl", "control"))
        assert "data-uptake" not in body and "ai-rationale" not in body and "CANARYWHY" not in body
        # The positive control: the same page in the recommendation arm watches the recommendation only.
        body = page(client, study, enrol(study, "rec", "recommendation"))
        assert '<p data-uptake="recommendation">' in body and 'data-uptake="rationale"' not in body

    def test_the_uptake_measurements_are_stored_with_the_label(self, client, study):
        make_items(study, 2)
        reviewer = enrol(study, "seer", "rationale")
        page(client, study, reviewer)
        assignment = Assignment.objects.get(reviewer=reviewer, state="leased")
        uptake = {
            "rationale_opened": 0,
            "rationale_seen": 1,
            "rationale_visible_ms": 2400,
            "recommendation_seen": 0,
            "recommendation_visible_ms": 300,
        }
        response = client.post(
            f"/review/{study.slug}/items/{assignment.pk}/answer/",
            {"field_decision": "approve", "interactions": json.dumps(uptake)},
            **HX,
        )
        assert response.status_code == 200
        assert Label.objects.get(reviewer=reviewer).interactions == uptake

    def test_a_seen_flag_other_than_0_or_1_is_refused_by_name(self, client, study):
        make_items(study, 1)
        reviewer = enrol(study, "odd", "rationale")
        page(client, study, reviewer)
        assignment = Assignment.objects.get(reviewer=reviewer, state="leased")
        response = client.post(
            f"/review/{study.slug}/items/{assignment.pk}/answer/",
            {"field_decision": "approve", "interactions": json.dumps({"rationale_seen": 2})},
            **HX,
        )
        assert response.status_code == 400
        assert "interactions.rationale_seen: must be a number from 0 to 1" in response.content.decode()
        assert not Label.objects.filter(reviewer=reviewer).exists()
