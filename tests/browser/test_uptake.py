"""Treatment uptake from real browser interactions (Chromium): a reviewer whose arm hides the
rationale behind "Why?" opens it on one item and not on the next; a reviewer whose arm shows it
expanded, on a small screen where it sits below the transcript, scrolls it into view on one item
and not on the next. The stored interactions and the metrics count what each really saw."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from reviewapp.metrics.presenters import uptake_rows
from reviewapp.queue.models import Label
from reviewapp.studies.models import Arm
from tests.browser.conftest import open_review, screenshot
from tests.builders import compute_metrics, enrol, make_items, researcher_of

pytestmark = pytest.mark.django_db(transaction=True)
# Past SEEN_MS (static/js/review.js, 1000 ms) with room to spare; the wait is what is measured.
DWELL_MS = 1600
# Long enough that on a small screen the AI panel starts well below the fold.
LONG = {
    "title": "A long exchange",
    "messages": [
        {"role": "user" if n % 2 == 0 else "assistant", "content": f"Turn {n}. " + "Some words to read. " * 40}
        for n in range(12)
    ],
}


def answer_with_keys(page, expected_done: int) -> None:
    """Choose with the shortcut and submit with Enter: nothing scrolls, nothing takes focus."""
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    expect(page.locator("#done-count")).to_have_text(str(expected_done))


def scrolled_to_top(page) -> None:
    """htmx scrolls the window to the top once the next item has settled: wait for it."""
    for _ in range(50):
        if page.evaluate("window.scrollY") == 0:
            return
        page.wait_for_timeout(50)
    raise AssertionError(f"the page stayed scrolled at {page.evaluate('window.scrollY')}px")


class TestUptakeInTheBrowser:
    def test_seen_is_counted_from_what_each_reviewer_opened_or_scrolled_to(
        self, live_server, page_factory, study, client
    ):
        Arm.objects.filter(study=study, name="rationale").update(rationale_display="collapsed")
        Arm.objects.create(
            study=study,
            name="expanded",
            position=3,
            shows_ai_recommendation=True,
            shows_ai_rationale=True,
            rationale_display="expanded",
        )
        make_items(study, 3, payload=LONG, ai_rationale="The order total is **$240**, over the limit.")
        closed = enrol(study, "colette", "rationale")
        opened = enrol(study, "oscar", "expanded")

        # Behind "Why?": opened on the first item, left closed on the second.
        page = page_factory()
        open_review(page, live_server.url, study, "colette")
        assert page.locator("details.ai-rationale:not([open])").count() == 1
        page.click("details.ai-rationale > summary")
        expect(page.locator("details.ai-rationale")).to_have_attribute("open", "")
        page.click("#transcript h2")  # focus off the toggle, where Enter would close it again
        page.wait_for_timeout(DWELL_MS)  # reading it
        # Sent without an answer: refused, and the item comes back with "Why?" closed. What the
        # reviewer already opened still counts.
        page.keyboard.press("Enter")
        expect(page.locator("#answer-form .msg-error")).to_be_visible()
        assert page.locator("details.ai-rationale:not([open])").count() == 1
        answer_with_keys(page, 1)
        page.wait_for_timeout(DWELL_MS)  # in view all along, never opened: still not seen
        answer_with_keys(page, 2)
        # The browser reports the refused answer's 400 itself: the only console line allowed.
        assert [e for e in page.console_errors if "status of 400" not in e] == []

        # Expanded, on a phone-sized screen: below the fold until scrolled to.
        page = page_factory({"width": 600, "height": 700})
        open_review(page, live_server.url, study, "oscar")
        rationale = page.locator("section.ai-rationale.is-expanded")
        assert not rationale.is_visible() or rationale.bounding_box()["y"] > 700  # below the fold
        rationale.scroll_into_view_if_needed()
        page.wait_for_timeout(DWELL_MS)
        screenshot(page, "review-uptake-expanded-in-view")
        answer_with_keys(page, 1)  # the next item comes in at the top of the page
        scrolled_to_top(page)
        page.wait_for_timeout(DWELL_MS)  # time on the page, with the rationale out of view
        answer_with_keys(page, 2)
        assert page.console_errors == []

        closed_labels = [label.interactions for label in Label.objects.filter(reviewer=closed).order_by("id")]
        assert [i["rationale_seen"] for i in closed_labels] == [1, 0]
        assert [i["rationale_opened"] for i in closed_labels] == [1, 0]
        assert closed_labels[0]["rationale_visible_ms"] > 0 and closed_labels[1]["rationale_visible_ms"] == 0
        # On a large screen the recommendation is in view from the start: seen on both.
        assert [i["recommendation_seen"] for i in closed_labels] == [1, 1]

        open_labels = [label.interactions for label in Label.objects.filter(reviewer=opened).order_by("id")]
        assert [i["rationale_seen"] for i in open_labels] == [1, 0]
        assert open_labels[0]["rationale_visible_ms"] >= 1000 > open_labels[1]["rationale_visible_ms"]
        assert [i["recommendation_seen"] for i in open_labels] == [1, 0]
        assert all("rationale_opened" in i and i["rationale_opened"] == 0 for i in open_labels)

        run = compute_metrics(study)
        rows = {(row["arm"], row["part"]): row for row in uptake_rows(run.result)}
        assert (rows["rationale", "rationale"]["seen_count"], rows["rationale", "rationale"]["recorded"]) == (1, 2)
        assert rows["rationale", "rationale"]["display"] == "behind “Why?”"
        assert (rows["expanded", "rationale"]["seen_count"], rows["expanded", "rationale"]["recorded"]) == (1, 2)
        assert (
            rows["expanded", "recommendation"]["seen_count"],
            rows["rationale", "recommendation"]["seen_count"],
        ) == (
            1,
            2,
        )
        assert all(row["unknown"] == 0 for row in rows.values())
        # The control and recommendation arms have no rationale rows.
        assert {arm for arm, part in rows if part == "rationale"} == {"rationale", "expanded"}

        client.force_login(researcher_of(study))
        panel = client.get(f"/studies/{study.slug}/metrics/").content.decode()
        assert 'id="uptake-table"' in panel and "1 of 2 labels" in panel
