"""An admin sets up a three-arm study in a real browser; a reviewer joins by link."""

from __future__ import annotations

import re

import pytest

from reviewapp.studies.models import Enrolment, Study
from tests.browser.conftest import log_in, screenshot
from tests.builders import user
from tests.conftest import FIXTURES

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


class TestStudySetupInTheBrowser:
    def test_it_creates_a_study_ingests_invites_and_shows_balance(
        self, live_server, page_factory, celery_worker_process
    ):
        user("ada", is_staff=True)
        base = live_server.url
        admin = page_factory()
        log_in(admin, base, "ada")

        admin.click("text=New study")
        admin.fill("#id_title", "Agent deploys")
        admin.fill("#id_slug", "agent-deploys")
        assert admin.is_checked("#id_three_arm_preset")
        admin.click("text=Create study")
        admin.wait_for_url(f"{base}/studies/agent-deploys/")
        assert "created as a draft" in admin.text_content("main")

        admin.set_input_files("#id_file", str(FIXTURES / "demo" / "transcripts.jsonl"))
        admin.click("text=Upload and ingest")
        # The jobs table polls with htmx until the worker has finished.
        admin.wait_for_selector("#jobs .badge-succeeded", timeout=60_000)
        admin.reload()
        assert "48" in admin.text_content(".cards")
        screenshot(admin, "study-overview")

        admin.click("nav.tabs >> text=Reviewers")
        assert admin.is_checked("#id_invite-kind_0")  # personal links are the default
        admin.fill("#id_invite-emails", "rita@example.org")
        admin.click("text=Create links")
        assert "rita@example.org" in admin.text_content("main")
        link = re.search(r"https?://\S+/join/\S+/", admin.text_content("code.copy")).group(0)

        reviewer = page_factory()
        reviewer.goto(link)
        assert reviewer.input_value("#id_email") == "rita@example.org" and reviewer.is_disabled("#id_email")
        reviewer.fill("#id_username", "rita")
        reviewer.fill("#id_password1", "a-Long-pass-42")
        reviewer.fill("#id_password2", "a-Long-pass-42")
        reviewer.click("text=Create account and join")
        reviewer.wait_for_url(f"{base}/")
        assert "Agent deploys" in reviewer.text_content("main")
        screenshot(reviewer, "reviewer-home")
        # The reviewer's pages say nothing of arms or the AI.
        assert "recommendation" not in reviewer.content()

        # Joining a draft allocates nothing: the arm comes at Start, so the design stays open.
        admin.reload()
        assert Enrolment.objects.get(reviewer__username="rita").arm is None
        assert "1 reviewer joined and is not allocated yet" in admin.text_content("main")

        admin.click("nav.tabs >> text=Overview")
        admin.click("button:has-text('Start')")
        assert "Study is now running." in admin.text_content("main")
        assert Study.objects.get(slug="agent-deploys").status == Study.Status.RUNNING

        admin.click("nav.tabs >> text=Reviewers")
        arm = Enrolment.objects.get(reviewer__username="rita").arm.name
        balance = admin.text_content("table.table")
        assert arm in balance and "(0.3)" in balance
        screenshot(admin, "study-reviewers")

        for page in (admin, reviewer):
            violations = [e for e in page.console_errors if "Content Security Policy" in e]
            assert violations == []

    def test_it_refuses_a_reviewer_on_researcher_pages(self, live_server, page_factory):
        user("rex")
        page = page_factory()
        log_in(page, live_server.url, "rex")
        response = page.goto(f"{live_server.url}/studies/new/")
        assert response.status == 403
        assert "not open to reviewer accounts" in page.text_content("main")
