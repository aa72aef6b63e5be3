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


# Characters that change what a reader sees without being seen: bidirectional embeddings,
# overrides and isolates reorder the text after them (a file name "\u202egpj.exe" reads
# "exe.jpg"; "Trojan Source"), and zero-width spaces hide inside words (a link text that
# looks like a trusted name). In untrusted transcript text each is shown as a visible
# marker such as ⟦U+202E⟧, so the reviewer sees that it is there. The marker uses no
# Markdown syntax. Joiners (U+200C, U+200D: emoji, Indic and Persian script) and the
# direction marks (U+200E, U+200F, U+061C) are ordinary text and stay.
HIDDEN_CHARACTERS = [*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200B, 0x2060, 0xFEFF]
_REVEALED = {code: f"\u27e6U+{code:04X}\u27e7" for code in HIDDEN_CHARACTERS}


def reveal_hidden_characters(text: str) -> str:
    return text.translate(_REVEALED)


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
    """Transcript text is whatever the agent saw: only http(s) links stay links, hidden characters show."""
    return markdown_to_safe_html(reveal_hidden_characters(text or ""), url_schemes=frozenset({"http", "https"}))
