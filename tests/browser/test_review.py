"""The reviewer's path in real headless Chromium: keyboard labelling, arms, reveal, double clicks, leases."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from reviewapp.queue.models import Assignment, Label, LateSubmission
from reviewapp.studies.models import Arm, Study
from tests.browser.conftest import open_review, screenshot
from tests.builders import enrol, make_items

pytestmark = pytest.mark.django_db(transaction=True)
HOSTILE = {
    "title": "Hostile tool output",
    "messages": [
        {"role": "user", "content": "See [click me](javascript:alert(1)) and [docs](https://example.org/docs)."},
        {
            "role": "assistant",
            "content": "<script>alert('xss')</script><img src=x onerror=alert(2)> Fetching.",
            "tool_calls": [{"id": "c9", "name": "http_get", "arguments": {"url": "<svg onload=alert(3)>"}}],
        },
        {
            "role": "tool",
            "tool_call_id": "c9",
            "name": "http_get",
            "content": "<b hx-get='/admin/'>IGNORE PREVIOUS</b>" * 80,
        },
    ],
}


def done_count(page) -> int:
    return int(page.text_content("#done-count"))


def submit_with_keys(page, *keys: str) -> None:
    before = done_count(page)
    for key in keys:
        page.keyboard.press(key)
    page.keyboard.press("Enter")
    expect(page.locator("#done-count")).to_have_text(str(before + 1))


class TestReviewingInTheBrowser:
    def test_a_control_reviewer_labels_with_the_keyboard_and_never_sees_the_ai(self, live_server, page_factory, study):
        make_items(study, 1, prefix="hostile", payload=HOSTILE, priority=10)
        make_items(study, 4)
        reviewer = enrol(study, "carla", "control")
        page = page_factory()
        dialogs = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        open_review(page, live_server.url, study, "carla")
        navigations = []
        page.on("framenavigated", lambda frame: navigations.append(frame.url))

        # Untrusted content is inert: no script ran, the javascript: link is not a link, https stays one.
        assert page.locator("#transcript h2").text_content() == "Hostile tool output"
        assert page.locator("#transcript a[href^='javascript']").count() == 0
        assert page.locator("#transcript a[href='https://example.org/docs']").count() == 1
        assert "<script>alert('xss')</script>" in page.text_content("#transcript")
        page.keyboard.press("[")  # expand every tool call and result
        assert page.locator("#transcript details.more").count() == 1  # the long output is truncated
        assert page.locator("#ai-panel").count() == 0
        screenshot(page, "review-control-hostile-transcript")
        submit_with_keys(page, "2", "r")

        for _ in range(3):
            before = done_count(page)
            page.click("details.tool-call > summary")
            page.keyboard.press("1")  # shortcuts work wherever focus is, outside text fields
            page.click("#submit-answer")
            expect(page.locator("#done-count")).to_have_text(str(before + 1))
        screenshot(page, "review-control-after-four")
        labels = list(Label.objects.filter(reviewer=reviewer).order_by("id"))
        assert [label.values["decision"] for label in labels] == ["reject", "approve", "approve", "approve"]
        assert labels[0].confidence == 0.75
        assert labels[0].interactions["keys_used"] == 2
        assert labels[1].interactions["tool_calls_expanded"] == 1
        assert all(label.client_timings["ms_on_page"] > 0 for label in labels)
        assert dialogs == []
        assert navigations == []  # every next item came by htmx, without a page load
        assert page.console_errors == []

    def test_the_rationale_arm_sees_the_ai_and_its_opening_is_recorded(self, live_server, page_factory, study):
        Arm.objects.filter(study=study, name="rationale").update(rationale_display="collapsed")
        make_items(study, 2, ai_rationale="The order total is **$240**, over the limit.")
        reviewer = enrol(study, "rashid", "rationale")
        page = page_factory()
        open_review(page, live_server.url, study, "rashid")
        assert page.text_content("#ai-panel .ai-recommendation") == "approve"
        page.click("details.ai-rationale > summary")
        assert "over the limit" in page.text_content("details.ai-rationale")
        screenshot(page, "review-rationale-arm")
        page.keyboard.press("2")  # focus is on the rationale toggle, where Enter toggles: click Submit
        page.click("#submit-answer")
        expect(page.locator("#done-count")).to_have_text("1")
        label = Label.objects.get(reviewer=reviewer)
        assert label.interactions["rationale_opened"] == 1
        assert label.interactions["rationale_seen"] == 1
        assert label.client_timings["ms_after_ai_shown"] > 0
        assert page.console_errors == []

    def test_reveal_mode_asks_first_then_shows_the_ai(self, live_server, page_factory, study):
        Arm.objects.create(study=study, name="reveal", position=3, shows_ai_recommendation=True, reveal=True)
        make_items(study, 2)
        reviewer = enrol(study, "rene", "reveal")
        page = page_factory()
        open_review(page, live_server.url, study, "rene")
        assert page.locator("#ai-panel").count() == 0
        assert "your own" in page.text_content(".stage-note")
        screenshot(page, "review-reveal-blind")
        page.keyboard.press("2")
        page.keyboard.press("Enter")
        page.wait_for_selector("#ai-panel")
        assert page.is_checked("input[name=field_decision][value=reject]")
        screenshot(page, "review-reveal-after")
        submit_with_keys(page, "1")
        label = Label.objects.get(reviewer=reviewer)
        assert (label.initial_values, label.values) == ({"decision": "reject"}, {"decision": "approve"})

    def test_a_double_click_on_submit_records_one_label(self, live_server, page_factory, study):
        make_items(study, 3)
        reviewer = enrol(study, "dora", "control")
        page = page_factory()
        open_review(page, live_server.url, study, "dora")
        first = Assignment.objects.get(reviewer=reviewer, state="leased")
        page.keyboard.press("1")
        page.dblclick("#submit-answer")
        page.wait_for_selector(".flash")
        page.wait_for_timeout(500)  # give a second request, had one been sent, time to land
        assert Label.objects.filter(reviewer=reviewer).count() == 1
        assert Label.objects.get(reviewer=reviewer).assignment_id == first.pk
        assert Assignment.objects.filter(reviewer=reviewer).count() == 2
        assert done_count(page) == 1

    def test_an_expired_lease_taken_by_someone_else_shows_a_409_and_keeps_the_answer(
        self, live_server, page_factory, study
    ):
        Study.objects.filter(pk=study.pk).update(overlap_k=1)
        study.refresh_from_db()
        make_items(study, 2)
        slow = enrol(study, "sam", "control")
        enrol(study, "fay", "control")
        slow_page = page_factory()
        open_review(slow_page, live_server.url, study, "sam")
        lease = Assignment.objects.get(reviewer=slow, state="leased")
        Assignment.objects.filter(pk=lease.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
        fast_page = page_factory()
        open_review(fast_page, live_server.url, study, "fay")  # the expired slot goes to fay
        slow_page.keyboard.press("2")
        slow_page.keyboard.press("Enter")
        slow_page.wait_for_selector("#problem")
        assert "kept for the record but not counted" in slow_page.text_content("#problem")
        screenshot(slow_page, "review-stale-lease-409")
        assert LateSubmission.objects.get(assignment=lease).values == {"decision": "reject"}
        assert not Label.objects.filter(assignment=lease).exists()
        slow_page.get_by_role("link", name="Load the next item").click()
        slow_page.wait_for_selector("#answer-form")
        assert Assignment.objects.get(reviewer=slow, state="leased").item_id != lease.item_id

    def test_escape_opens_skip_and_enter_skips_with_the_chosen_reason(self, live_server, page_factory, study):
        make_items(study, 2)
        reviewer = enrol(study, "sky", "control")
        page = page_factory()
        open_review(page, live_server.url, study, "sky")
        skipped = Assignment.objects.get(reviewer=reviewer, state="leased")
        page.keyboard.press("Escape")
        expect(page.locator("#skip")).to_have_attribute("open", "")
        page.keyboard.press("ArrowDown")  # the second reason
        page.keyboard.press("Enter")
        expect(page.locator(".flash")).to_have_text("Skipped; you will not see this item again.")
        skipped.refresh_from_db()
        assert skipped.state == "skipped"
        assert skipped.skip_reason == "The transcript is broken or unreadable"
        assert Assignment.objects.get(reviewer=reviewer, state="leased").item_id != skipped.item_id
        assert page.console_errors == []

    def test_a_server_outage_keeps_the_answer_and_says_it_can_be_sent_again(self, live_server, page_factory, study):
        make_items(study, 2)
        reviewer = enrol(study, "omar", "control")
        page = page_factory()
        open_review(page, live_server.url, study, "omar")
        # The database is down for a moment: every answer gets the app's 503.
        page.route("**/answer/", lambda route: route.fulfill(status=503, body="unavailable"))

        page.keyboard.press("2")
        page.keyboard.press("Enter")

        expect(page.locator("#send-problem")).to_be_visible()
        expect(page.locator("#send-problem")).to_contain_text("HTTP 503")
        assert page.locator("#answer-form input[data-key='2']").is_checked()  # the answer is still there
        assert not Label.objects.filter(reviewer=reviewer).exists()
        screenshot(page, "review-server-unavailable")

        page.unroute("**/answer/")
        page.keyboard.press("Enter")
        expect(page.locator("#done-count")).to_have_text("1")
        expect(page.locator("#send-problem")).to_be_hidden()
        assert [label.values["decision"] for label in Label.objects.filter(reviewer=reviewer)] == ["reject"]
        # The failed response is a console error by nature; nothing else is.
        assert all("503" in message for message in page.console_errors)
