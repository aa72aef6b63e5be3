"""Hidden item titles: with the study setting on, no response a reviewer can reach carries an
item's title; the reviewer reads "Item <position>" instead. A canary title is planted in every
item, every reviewer-facing response is searched, and the positive control shows the same search
finds the title when the setting is off."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from reviewapp.queue.models import Assignment
from reviewapp.review.presenters import item_heading
from reviewapp.studies.models import Study
from tests.builders import TRANSCRIPT, enrol, make_items

CANARY = "CANARYTITLE5150"
HX = {"HTTP_HX_REQUEST": "true"}


def planted(study: Study, *, hide: bool) -> Study:
    # Set before anyone is enrolled: the design locks titles once reviewers are allocated.
    Study.objects.filter(pk=study.pk).update(hide_item_titles=hide, overlap_k=1)
    study.refresh_from_db()
    make_items(study, 4, payload={**TRANSCRIPT, "title": f"Agent deletes prod DB {CANARY}"})
    return study


def reviewer_responses(client, study: Study, reviewer) -> dict:
    """Every page and partial the reviewer's path through the items reaches."""
    client.force_login(reviewer)
    base = f"/review/{study.slug}/"
    responses = {"home": client.get("/"), "page": client.get(base), "partial": client.get(base, **HX)}
    first = Assignment.objects.get(reviewer=reviewer, state="leased")
    answer = f"{base}items/{first.pk}/answer/"
    responses["invalid answer (htmx)"] = client.post(answer, {"field_decision": "maybe"}, **HX)
    responses["invalid answer (page)"] = client.post(answer, {"field_decision": "maybe"})
    responses["skip without reason"] = client.post(f"{base}items/{first.pk}/skip/", {"reason": ""}, **HX)
    responses["answer, next item"] = client.post(answer, {"field_decision": "approve"}, **HX)
    responses["stale tab"] = client.post(answer, {"field_decision": "reject"}, **HX)
    second = Assignment.objects.get(reviewer=reviewer, state="leased")
    responses["skip, next item"] = client.post(
        f"{base}items/{second.pk}/skip/", {"reason": "I have a conflict of interest"}, **HX
    )
    third = Assignment.objects.get(reviewer=reviewer, state="leased")
    # Past its lease: the answer is refused (400) and the item shown again.
    Assignment.objects.filter(pk=third.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=5))
    responses["late invalid answer"] = client.post(f"{base}items/{third.pk}/answer/", {"field_decision": "x"}, **HX)
    responses["reload"] = client.get(base)
    return responses


def with_canary(responses: dict) -> list[str]:
    return [name for name, response in responses.items() if CANARY in response.content.decode()]


@pytest.mark.django_db
class TestHiddenTitles:
    def test_no_response_a_reviewer_reaches_carries_a_hidden_title(self, client, study):
        planted(study, hide=True)
        reviewer = enrol(study, "hidden", "rationale")
        responses = reviewer_responses(client, study, reviewer)
        assert with_canary(responses) == []
        assert responses["late invalid answer"].status_code == 400
        assert responses["skip, next item"].status_code == 200
        # The reviewer reads the item's place in their sequence instead.
        # The fourth item served: one answered, one skipped, one whose lease ran out before it.
        live = Assignment.objects.get(reviewer=reviewer, state="leased")
        assert live.position == 4
        assert "<h2>Item 4</h2>" in responses["reload"].content.decode()

    def test_the_same_search_finds_the_title_when_titles_are_shown(self, client, study):
        """The positive control: the canary does reach the reviewer with the setting off."""
        planted(study, hide=False)
        responses = reviewer_responses(client, study, enrol(study, "shown", "rationale"))
        found = with_canary(responses)
        assert {"page", "partial", "invalid answer (htmx)", "answer, next item", "reload"} <= set(found)

    def test_the_heading_names_the_items_place_or_says_item(self):
        assert item_heading(7) == "Item 7"
        assert item_heading(None) == "Item"
