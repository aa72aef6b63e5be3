"""In real headless Chromium: the methods paragraph's copy button on the dashboard, and the planner
loaded into the study settings page and computed in place (htmx), under the strict CSP."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import log_in, screenshot
from tests.builders import compute_metrics, make_labelled

pytestmark = pytest.mark.django_db(transaction=True)


class TestMethodsAndPlannerInTheBrowser:
    def test_the_copy_button_puts_the_methods_paragraph_on_the_clipboard(
        self, live_server, page_factory, study, researcher
    ):
        compute_metrics(make_labelled(study))
        base = live_server.url
        page = page_factory()
        page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
        log_in(page, base, researcher.username)

        page.goto(f"{base}/studies/refunds/dashboard/")
        paragraph = page.locator("#methods-paragraph")
        expect(paragraph).to_contain_text("We ran a between-subjects experiment with 3 arms")
        page.click("button[data-copy-target=methods-paragraph]")

        expect(page.locator("#methods-copy-status")).to_have_text("Copied.")
        copied = page.evaluate("navigator.clipboard.readText()")
        assert copied == paragraph.inner_text().strip() and "16 labels from 4 reviewers" in copied
        page.click("button[data-copy-target=methods-table]")
        assert "rationale" in page.evaluate("navigator.clipboard.readText()").splitlines()[-1]
        assert page.console_errors == []  # no CSP violation, no script error
        screenshot(page, "methods")

    def test_the_planner_loads_on_the_settings_page_and_computes_in_place(
        self, live_server, page_factory, study, researcher
    ):
        base = live_server.url
        page = page_factory()
        log_in(page, base, researcher.username)

        page.goto(f"{base}/studies/refunds/settings/")
        form = page.locator("#planner-form")
        expect(form).to_be_visible()  # fetched by htmx once the page loaded
        page.evaluate("window.settingsMarker = 'still here'")
        form.locator("[name=reviewers_per_arm]").fill("30")
        form.locator("[name=icc]").fill("0.05")
        form.locator("button[type=submit]").click()

        rows = page.locator("#planner-table tbody tr")
        expect(rows).to_have_count(3, timeout=30_000)
        assert "Narrative increment" in rows.nth(2).inner_text()
        assert page.url == f"{base}/studies/refunds/settings/"  # swapped in place, not a new page
        assert page.evaluate("window.settingsMarker") == "still here"
        assert "400 simulated studies per power" in page.inner_text("#planner")
        assert page.console_errors == []
        screenshot(page, "planner")
