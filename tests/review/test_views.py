"""The labelling page through the test client: claim, answer, reveal, skip, errors."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from reviewapp.queue.models import Assignment, ItemQuota, Label, LateSubmission
from reviewapp.studies.models import Arm, Study
from tests.builders import enrol, make_items, user

HX = {"HTTP_HX_REQUEST": "true"}


def answer_url(study, assignment_id: int, action: str = "answer") -> str:
    return f"/review/{study.slug}/items/{assignment_id}/{action}/"


def live_assignment(reviewer) -> Assignment:
    return Assignment.objects.get(reviewer=reviewer, state="leased")


@pytest.mark.django_db
class TestReviewPage:
    def test_it_shows_the_next_item_as_a_conversation_with_collapsible_tool_calls(self, client, study):
        make_items(study, 2)
        reviewer = enrol(study, "rev", "control")
        client.force_login(reviewer)
        response = client.get(f"/review/{study.slug}/")
        assert response.status_code == 200
        body = response.content.decode()
        assert "Refund over the limit" in body
        assert '<details class="tool-call" data-track="call">' in body
        assert "&quot;order_id&quot;: &quot;A-1&quot;" in body  # arguments pretty-printed, escaped
        assert "<strong>A-1</strong>" in body  # user markdown rendered
        assert 'data-key="1"' in body and "<kbd>Enter</kbd>" in body
        assert "no-store" in response["Cache-Control"]
        assert '"historyCacheSize": 0' in body

    def test_it_sends_only_the_work_partial_to_htmx(self, client, study):
        make_items(study, 1)
        client.force_login(enrol(study, "rev", "control"))
        response = client.get(f"/review/{study.slug}/", **HX)
        body = response.content.decode()
        assert body.lstrip().startswith('<section id="work"')
        assert "<html" not in body

    def test_it_returns_the_same_lease_on_reload(self, client, study):
        make_items(study, 3)
        reviewer = enrol(study, "rev", "control")
        client.force_login(reviewer)
        client.get(f"/review/{study.slug}/")
        client.get(f"/review/{study.slug}/")
        assert Assignment.objects.filter(reviewer=reviewer).count() == 1

    def test_it_is_a_404_for_someone_not_enrolled(self, client, study):
        make_items(study, 1)
        client.force_login(user("stranger"))
        response = client.get(f"/review/{study.slug}/")
        assert response.status_code == 404
        assert not Assignment.objects.exists()

    def test_it_asks_anonymous_visitors_to_log_in(self, client, study):
        response = client.get(f"/review/{study.slug}/")
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]

    def test_it_says_when_the_study_is_paused(self, client, study):
        make_items(study, 1)
        client.force_login(enrol(study, "rev", "control"))
        Study.objects.filter(pk=study.pk).update(status=Study.Status.PAUSED)
        response = client.get(f"/review/{study.slug}/")
        assert response.status_code == 200
        assert "This study is paused" in response.content.decode()
        assert not Assignment.objects.exists()

    def test_it_shows_an_empty_state_when_nothing_is_left(self, client, study):
        client.force_login(enrol(study, "rev", "control"))
        response = client.get(f"/review/{study.slug}/")
        assert 'id="all-done"' in response.content.decode()


@pytest.mark.django_db
class TestAnswering:
    def test_it_saves_the_label_with_timings_and_loads_the_next_item(self, client, study):
        make_items(study, 2)
        reviewer = enrol(study, "rev", "control")
        client.force_login(reviewer)
        client.get(f"/review/{study.slug}/")
        first = live_assignment(reviewer)
        response = client.post(
            answer_url(study, first.pk),
            {
                "field_decision": "reject",
                "confidence": "0.75",
                "comment": "Over the limit.",
                "interactions": json.dumps({"tool_calls_expanded": 2, "scroll_depth": 0.8, "rationale_opened": 0}),
                "client_timings": json.dumps({"ms_on_page": 5400, "ms_to_first_answer": 3100}),
            },
            **HX,
        )
        assert response.status_code == 200
        assert "Saved." in response.content.decode()
        label = Label.objects.get(assignment=first)
        assert label.values == {"decision": "reject"}
        assert label.confidence == 0.75 and label.comment == "Over the limit."
        assert label.interactions == {"tool_calls_expanded": 2, "scroll_depth": 0.8, "rationale_opened": 0}
        assert label.client_timings == {"ms_on_page": 5400, "ms_to_first_answer": 3100}
        assert label.shown_at is not None and label.submitted_at >= label.shown_at
        second = live_assignment(reviewer)
        assert second.item_id != first.item_id
        assert f"/items/{second.pk}/answer/" in response.content.decode()

    def test_a_double_submit_records_one_label(self, client, study):
        make_items(study, 2)
        reviewer = enrol(study, "rev", "control")
        client.force_login(reviewer)
        client.get(f"/review/{study.slug}/")
        first = live_assignment(reviewer)
        for _ in range(2):
            response = client.post(answer_url(study, first.pk), {"field_decision": "approve"}, **HX)
            assert response.status_code == 200
        assert Label.objects.filter(reviewer=reviewer).count() == 1
        assert ItemQuota.objects.get(item=first.item, arm_key=first.quota_arm_key).submitted == 1
        assert Assignment.objects.filter(reviewer=reviewer).count() == 2  # the next item, leased once

    def test_a_label_outside_the_schema_is_refused_with_the_field_named_and_the_answer_kept(self, client, study):
        make_items(study, 1)
        reviewer = enrol(study, "rev", "control")
        client.force_login(reviewer)
        client.get(f"/review/{study.slug}/")
        assignment = live_assignment(reviewer)
        response = client.post(
            answer_url(study, assignment.pk), {"field_decision": "maybe", "comment": "kept text"}, **HX
        )
        assert response.status_code == 400
        body = response.content.decode()
        assert "&#x27;maybe&#x27; is not one of approve, reject" in body
        assert "kept text" in body
        assert not Label.objects.exists()

    def test_a_missing_decision_is_refused(self, client, study):
        make_items(study, 1)
        reviewer = enrol(study, "rev", "control")
        client.force_login(reviewer)
        client.get(f"/review/{study.slug}/")
        response = client.post(answer_url(study, live_assignment(reviewer).pk), {}, **HX)
        assert response.status_code == 400
        assert "decision is required" in response.content.decode()

    def test_malformed_measurements_are_refused_precisely(self, client, study):
        make_items(study, 1)
        reviewer = enrol(study, "rev", "control")
        client.force_login(reviewer)
        client.get(f"/review/{study.slug}/")
        response = client.post(
            answer_url(study, live_assignment(reviewer).pk),
            {"field_decision": "approve", "interactions": "{not json"},
            **HX,
        )
        assert response.status_code == 400
        assert "interactions: not valid JSON" in response.content.decode()
        assert not Label.objects.exists()

    def test_an_expired_lease_whose_slot_was_taken_gets_a_409_and_the_answer_is_kept(self, client, study):
        Study.objects.filter(pk=study.pk).update(overlap_k=1)
        study.refresh_from_db()
        make_items(study, 1)
        slow, fast = enrol(study, "slow", "control"), enrol(study, "fast", "control")
        client.force_login(slow)
        client.get(f"/review/{study.slug}/")
        late = live_assignment(slow)
        Assignment.objects.filter(pk=late.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
        client.force_login(fast)
        client.get(f"/review/{study.slug}/")  # expires the old lease and takes the slot
        assert live_assignment(fast).item_id == late.item_id
        client.force_login(slow)
        response = client.post(answer_url(study, late.pk), {"field_decision": "reject"}, **HX)
        assert response.status_code == 409
        assert "your answer was kept for the record but not counted" in response.content.decode()
        assert LateSubmission.objects.get(assignment=late).values == {"decision": "reject"}
        assert not Label.objects.exists()

    def test_an_expired_lease_still_counts_when_its_slot_is_free(self, client, study):
        make_items(study, 1)
        reviewer = enrol(study, "rev", "control")
        client.force_login(reviewer)
        client.get(f"/review/{study.slug}/")
        assignment = live_assignment(reviewer)
        Assignment.objects.filter(pk=assignment.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
        response = client.post(answer_url(study, assignment.pk), {"field_decision": "reject"}, **HX)
        assert response.status_code == 200
        assert Label.objects.filter(assignment=assignment).count() == 1

    def test_another_reviewers_assignment_is_a_404(self, client, study):
        make_items(study, 1)
        owner, other = enrol(study, "owner", "control"), enrol(study, "other", "control")
        client.force_login(owner)
        client.get(f"/review/{study.slug}/")
        client.force_login(other)
        response = client.post(answer_url(study, live_assignment(owner).pk), {"field_decision": "approve"}, **HX)
        assert response.status_code == 404
        assert not Label.objects.exists()

    def test_without_javascript_a_submit_redirects_to_the_page(self, client, study):
        make_items(study, 2)
        reviewer = enrol(study, "rev", "control")
        client.force_login(reviewer)
        client.get(f"/review/{study.slug}/")
        response = client.post(answer_url(study, live_assignment(reviewer).pk), {"field_decision": "approve"})
        assert response.status_code == 303 and response["Location"] == f"/review/{study.slug}/"

    def test_get_on_an_answer_address_is_refused(self, client, study):
        make_items(study, 1)
        reviewer = enrol(study, "rev", "control")
        client.force_login(reviewer)
        client.get(f"/review/{study.slug}/")
        assert client.get(answer_url(study, live_assignment(reviewer).pk)).status_code == 405


@pytest.mark.django_db
class TestSkipping:
    def test_it_needs_a_reason_and_never_offers_the_item_again(self, client, study):
        make_items(study, 2)
        reviewer = enrol(study, "rev", "control")
        client.force_login(reviewer)
        client.get(f"/review/{study.slug}/")
        skipped = live_assignment(reviewer)
        response = client.post(answer_url(study, skipped.pk, "skip"), {"reason": "other", "other_reason": ""}, **HX)
        assert response.status_code == 400
        assert "Other reason is required: say why you skip this item." in response.content.decode()
        response = client.post(answer_url(study, skipped.pk, "skip"), {"reason": "I have a conflict of interest"}, **HX)
        assert response.status_code == 200
        assert "you will not see this item again" in response.content.decode()
        skipped.refresh_from_db()
        assert skipped.state == "skipped" and skipped.skip_reason == "I have a conflict of interest"
        assert live_assignment(reviewer).item_id != skipped.item_id
        assert ItemQuota.objects.get(item=skipped.item, arm_key=skipped.quota_arm_key).open_slots == study.overlap_k


@pytest.mark.django_db
class TestRevealMode:
    @pytest.fixture
    def reveal_reviewer(self, study):
        Arm.objects.create(
            study=study, name="reveal", position=3, shows_ai_recommendation=True, shows_ai_rationale=True, reveal=True
        )
        make_items(study, 1, ai_rationale="REVEALED-RATIONALE")
        return enrol(study, "rev", "reveal")

    def test_the_ai_is_sent_only_after_the_blind_answer_is_stored(self, client, study, reveal_reviewer):
        client.force_login(reveal_reviewer)
        blind = client.get(f"/review/{study.slug}/").content.decode()
        assert "REVEALED-RATIONALE" not in blind and "Recommends" not in blind
        assert "First give <strong>your own</strong> answer" in blind
        assignment = live_assignment(reveal_reviewer)
        response = client.post(answer_url(study, assignment.pk, "blind"), {"field_decision": "reject"}, **HX)
        assert response.status_code == 200
        body = response.content.decode()
        assert "REVEALED-RATIONALE" in body and "Recommends" in body
        assert 'value="reject" data-key="2" checked' in body  # the final answer starts from the blind one
        client.post(answer_url(study, assignment.pk), {"field_decision": "approve"}, **HX)
        label = Label.objects.get(assignment=assignment)
        assert label.initial_values == {"decision": "reject"} and label.values == {"decision": "approve"}
        assert label.revealed_at is not None

    def test_the_final_answer_cannot_come_before_the_blind_one(self, client, study, reveal_reviewer):
        client.force_login(reveal_reviewer)
        client.get(f"/review/{study.slug}/")
        response = client.post(
            answer_url(study, live_assignment(reveal_reviewer).pk), {"field_decision": "approve"}, **HX
        )
        assert response.status_code == 400
        assert "Give your own answer first" in response.content.decode()
        assert not Label.objects.exists()

    def test_a_second_blind_answer_does_not_rewrite_the_first(self, client, study, reveal_reviewer):
        client.force_login(reveal_reviewer)
        client.get(f"/review/{study.slug}/")
        assignment = live_assignment(reveal_reviewer)
        client.post(answer_url(study, assignment.pk, "blind"), {"field_decision": "reject"}, **HX)
        client.post(answer_url(study, assignment.pk, "blind"), {"field_decision": "approve"}, **HX)
        assignment.refresh_from_db()
        assert assignment.initial_values == {"decision": "reject"}
