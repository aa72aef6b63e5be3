"""Real headless Chromium (Debian's package) driven by Playwright, against the live server."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.builders import PASSWORD
from tests.conftest import ROOT

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
# Playwright's sync API runs an event loop in this thread; the ORM calls the tests
# make between browser steps are ordinary blocking calls, which is fine here.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


# Module scope: Playwright's sync API keeps an asyncio loop running while it is open,
# which would break later tests that run their own loop (Inspect AI's eval does).
@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        if os.environ.get("CI"):
            pytest.fail(f"No Chromium at {CHROMIUM}: CI must run the browser tests (.ci/run installs it).")
        pytest.skip(
            f"No Chromium at {CHROMIUM}: install Debian's 'chromium' package (CI's .ci/run does) or set CHROMIUM_PATH"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def page_factory(browser):
    """New isolated browser contexts (one per user); collects console errors and CSP violations."""
    contexts = []

    def make(viewport: dict | None = None):
        context = browser.new_context(viewport=viewport or {"width": 1280, "height": 900})
        page = context.new_page()
        # Names the element behind a CSP violation (the console message alone does not).
        page.add_init_script(
            "document.addEventListener('securitypolicyviolation', e => console.error('CSP violation:',"
            " e.violatedDirective, e.target && e.target.outerHTML ? e.target.outerHTML.slice(0, 200) : ''))"
        )
        page.console_errors = []
        page.on("console", lambda m: page.console_errors.append(m.text) if m.type == "error" else None)
        contexts.append(context)
        return page

    yield make
    for context in contexts:
        context.close()


def screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def log_in(page, base: str, username: str, password: str = PASSWORD) -> None:
    """Log in through the form, as a person would, and wait for the home page."""
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")


def open_review(page, base: str, study, username: str) -> None:
    """Log in as a reviewer and open the study's first item."""
    log_in(page, base, username)
    page.click("text=Start reviewing")
    page.wait_for_selector("#answer-form")
    # The keyboard shortcuts are bound by a deferred script: a key pressed before it ran is lost.
    page.wait_for_load_state("domcontentloaded")
