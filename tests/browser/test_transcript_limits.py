"""Huge and deeply nested transcript text in real Chromium: the page comes fast, nothing is hidden."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from reviewapp.queue.models import Label
from tests.browser.conftest import open_review, screenshot
from tests.builders import enrol, make_items

pytestmark = pytest.mark.django_db(transaction=True)
NESTED = "Also transferred $9,800 to account 4471"
TAIL = "Last line of the long turn: wire sent."
PARAGRAPH = "The agent **checked** the `ledger` and [the refund policy](https://example.org/policy).\n\n"
HEAVY = {
    "title": "A megabyte turn and a deep quote",
    "messages": [
        {"role": "user", "content": PARAGRAPH * (1_000_000 // len(PARAGRAPH)) + TAIL},
        {"role": "assistant", "content": "Done.\n\n" + "> " * 25 + NESTED},
    ],
}


class TestTranscriptLimitsInTheBrowser:
    def test_a_megabyte_turn_and_a_25_level_quote_render_fast_and_show_everything(
        self, live_server, page_factory, study
    ):
        make_items(study, 1, prefix="heavy", payload=HEAVY, priority=10)
        make_items(study, 1)
        reviewer = enrol(study, "hana", "control")
        page = page_factory()
        open_review(page, live_server.url, study, "hana")
        page.reload()  # the same lease: the heavy item again (its cost is in bench/transcript.py)
        page.wait_for_selector("#answer-form")

        # The deep quote's last line is on the page, as written.
        turn = page.locator(".turn-assistant")
        expect(turn.get_by_text(NESTED)).to_be_visible()
        expect(turn.locator(".text-note")).to_contain_text("Nested too deeply to format")
        # The long turn is formatted at its head; its tail waits behind "show more", opened with the keyboard.
        user = page.locator(".turn-user")
        expect(user.locator(".prose strong").first).to_have_text("checked")
        more = user.locator("details.more > summary")
        expect(more).to_contain_text("Show the remaining")
        tail = user.get_by_text(TAIL)
        expect(tail).to_be_hidden()
        more.focus()
        page.keyboard.press("Enter")
        expect(tail).to_be_visible()
        screenshot(page, "review-transcript-limits")

        page.keyboard.press("1")
        page.click("#submit-answer")
        expect(page.locator("#done-count")).to_have_text("1")
        label = Label.objects.get(reviewer=reviewer)
        assert label.interactions["outputs_expanded"] == 1  # the opened "show more" is counted
        assert page.console_errors == []  # no CSP violation, no script error
