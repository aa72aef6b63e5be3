"""A researcher reads the dashboard in real headless Chromium: charts, htmx sorting, a reviewer's page."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from reviewapp.demo.simulation import SIMULATED_QUOTA, SIMULATED_SLUG, simulated_study
from tests.browser.conftest import log_in, screenshot
from tests.builders import user

pytestmark = pytest.mark.django_db(transaction=True)


def first_reviewer(page) -> str:
    return page.locator("#reviewer-table tbody tr").first.get_attribute("data-reviewer")


def stamps(study) -> set[str]:
    """The simulation's two rubber stamps: the first two reviewers allocated to the rationale arm."""
    enrolments = study.enrolments.filter(arm__shows_ai_rationale=True).order_by("sequence", "id")
    return {e.reviewer.username for e in enrolments.select_related("reviewer")[:2]}


class TestDashboardInTheBrowser:
    def test_a_researcher_reads_the_charts_sorts_reviewers_and_opens_one(self, live_server, page_factory):
        # 24 simulated reviewers through the real queue (two rubber stamps), metrics computed.
        researcher = user("ada", is_staff=True)
        study = simulated_study(researcher, lambda message: None)
        base = live_server.url
        page = page_factory()
        log_in(page, base, "ada")

        page.goto(f"{base}/studies/{SIMULATED_SLUG}/")
        page.click("nav.tabs >> text=Dashboard")
        page.wait_for_url(f"{base}/studies/{SIMULATED_SLUG}/dashboard/")

        # Server-rendered SVG charts, each an image with a label and the numbers beside it.
        for chart in ("queue", "days", "deference", "effects", "agreement", "dwell"):
            locator = page.locator(f"svg#chart-{chart}[role=img]")
            expect(locator).to_be_visible()
            assert locator.get_attribute("aria-label")
        deference = page.locator("svg#chart-deference")
        for text in ("All items", "AI right", "AI wrong", "control", "recommendation", "baseline: control"):
            assert text in deference.text_content()
        rows = page.locator("svg#chart-effects text.dash-row-label")
        assert rows.filter(has_text="narrative increment").count() == 3  # one per split
        assert "%" in page.text_content("#deference-table")
        assert page.locator("#reviewer-table tbody tr").count() == 24
        # The two rubber stamps are flagged and ringed on the dwell chart. Which items each
        # simulated reviewer meets follows the shuffle (item ids), so a careful reviewer is
        # now and then flagged too on this synthetic data: a few, never most.
        flagged = page.locator("#reviewer-table tr.dash-flagged")
        assert {flagged.nth(i).get_attribute("data-reviewer") for i in range(flagged.count())} >= stamps(study)
        assert 2 <= flagged.count() <= 4
        assert page.locator("svg#chart-dwell g.dash-mark circle.dash-ring").count() == flagged.count()
        screenshot(page, "dashboard")

        # Sorting swaps the table in place (htmx), keeps the page, and puts the sort in the URL.
        page.evaluate("window.dashboardMarker = 'still here'")
        page.click("#reviewer-table a[data-sort=reviewer]")
        expect(page.locator("#reviewer-table th[aria-sort=ascending] a[data-sort=reviewer]")).to_be_visible()
        assert first_reviewer(page) == "sim-reviewer-01"
        page.click("#reviewer-table a[data-sort=reviewer]")
        expect(page.locator("#reviewer-table th[aria-sort=descending] a[data-sort=reviewer]")).to_be_visible()
        assert first_reviewer(page) == "sim-reviewer-24"
        page.click("#reviewer-table a[data-sort=fast_share]")
        expect(page.locator("#reviewer-table th[aria-sort=descending] a[data-sort=fast_share]")).to_be_visible()
        assert page.locator("#reviewer-table tbody tr").first.get_attribute("class") == "dash-flagged"
        assert page.evaluate("window.dashboardMarker") == "still here"
        assert "sort=fast_share" in page.url

        # The fastest reviewer is a rubber stamp: their page shows why.
        stamp = first_reviewer(page)
        page.click(f"#reviewer-table a:text-is('{stamp}')")
        page.wait_for_selector("svg#chart-timeline")
        assert "flagged" in page.text_content("h2")
        crossed = page.locator("#indicator-table tr.dash-crossed")
        assert crossed.count() >= 2
        assert "Faster than reading floor" in crossed.all_text_contents()[0] + crossed.all_text_contents()[1]
        timeline = page.locator("svg#chart-timeline")
        assert "reading floor" in timeline.text_content()
        # Every simulated reviewer labels their quota.
        assert timeline.locator("g.dash-mark").count() == SIMULATED_QUOTA
        assert timeline.locator("g.dash-is-probe").count() >= 1
        expect(page.locator("svg#chart-running[role=img]")).to_be_visible()
        screenshot(page, "dashboard-reviewer")

        page.click("#recent-labels >> text=Older →")
        expect(page.locator("#recent-labels")).to_contain_text("← Newer")
        expect(page.locator("#recent-labels")).to_contain_text(f"25 shown of {SIMULATED_QUOTA} labels")
        assert study.labels.filter(reviewer__username=stamp).count() == SIMULATED_QUOTA

        assert page.console_errors == []
        assert [e for e in page.console_errors if "Content Security Policy" in e or "CSP" in e] == []
