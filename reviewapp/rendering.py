"""Markdown from untrusted or semi-trusted authors, rendered to safe HTML.

Two layers: markdown-it with raw HTML disabled (tags come out as text) and its link
validation (no javascript:/vbscript:/data: links), then nh3 (Ammonia) with an
allowlist of tags and only http, https and mailto links. The page's CSP is the third.
"""

from __future__ import annotations

import nh3
from markdown_it import MarkdownIt

_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")

ALLOWED_TAGS = {
    "p", "br", "hr", "strong", "em", "code", "pre", "blockquote", "ul", "ol", "li",
    "h1", "h2", "h3", "h4", "h5", "h6", "a", "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "th": {"align"}, "td": {"align"}}


def markdown_to_safe_html(text: str, *, url_schemes: frozenset[str] = frozenset({"http", "https", "mailto"})) -> str:
    html = _markdown.render(text or "")
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=set(url_schemes),
        link_rel="noopener noreferrer nofollow",
    )


def transcript_markdown_to_safe_html(text: str) -> str:
    """Transcript text is whatever the agent saw: only http(s) links stay links."""
    return markdown_to_safe_html(text, url_schemes=frozenset({"http", "https"}))
