"""Markdown from untrusted or semi-trusted authors, rendered to safe HTML.

Two layers: markdown-it with raw HTML disabled (tags come out as text) and its link
validation (no javascript:/vbscript:/data: links), then nh3 (Ammonia) with an
allowlist of tags and only http, https and mailto links. The page's CSP is the third.

Nothing an author writes may vanish from what the reader sees. Markdown has a few ways
to hide text, each closed here: markdown-it silently drops whatever is nested deeper than
its ``maxNesting`` (such text is shown as plain text instead), an image's alt text would
be stripped with the ``<img>`` (images are not parsed: ``![x](y)`` reads "!" and a link),
a reference definition renders as nothing (not parsed: it shows as written), a link title
or a fence's info string would only be an attribute (both are shown as text), and an
entity such as ``&#x202E;`` would bring back a hidden character (markers are applied to
the output as well). And the work is bounded: ``transcript_markdown`` formats at most
``limit`` characters of a message; the rest is returned as plain text.
"""

from __future__ import annotations

from dataclasses import dataclass

import nh3
from django.utils.html import escape
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.token import Token

_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table").disable(["image", "reference"])
MAX_NESTING = _markdown.options["maxNesting"]

ALLOWED_TAGS = {
    "p", "br", "hr", "strong", "em", "code", "pre", "blockquote", "ul", "ol", "li",
    "h1", "h2", "h3", "h4", "h5", "h6", "a", "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "th": {"align"}, "td": {"align"}}
TRANSCRIPT_SCHEMES = frozenset({"http", "https"})


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


class NestedTooDeeply(ValueError):
    """markdown-it would drop the text below its nesting limit."""


def _fence_with_info(self, tokens, idx, options, env) -> str:
    # The info string after ``` is only a class attribute (which the sanitizer removes):
    # show it, so that text written there is seen.
    info = tokens[idx].info.strip()
    label = f"<p><code>{escapeHtml(info)}</code></p>\n" if info else ""
    return label + self.fence(tokens, idx, options, env)


_markdown.add_render_rule("fence", _fence_with_info)


def _show_link_titles(children: list[Token]) -> list[Token]:
    """A link's title would only show on hover: write it after the link text instead."""
    shown: list[Token] = []
    title = None
    for child in children:
        if child.type == "link_open":
            title = child.attrs.pop("title", None)
        shown.append(child)
        if child.type == "link_close" and title:
            shown.append(Token("text", "", 0, content=f" ({title})"))
            title = None
    return shown


def _render(text: str, url_schemes: frozenset[str]) -> str:
    tokens = _markdown.parse(text)
    # A container opened at this level parses its contents at the limit, where markdown-it
    # skips the rest of the container's lines ("that's not an ordinary situation").
    if any(token.level >= MAX_NESTING - 1 for token in tokens):
        raise NestedTooDeeply
    for token in tokens:
        if token.children:
            token.children = _show_link_titles(token.children)
    html = _markdown.renderer.render(tokens, _markdown.options, {})
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=set(url_schemes),
        link_rel="noopener noreferrer nofollow",
    )


def _as_plain_text(text: str, why: str) -> str:
    return f"<p><em>{escape(why)}</em></p>\n<pre>{escape(text)}</pre>\n"


TOO_DEEP = "Nested too deeply to format (quotes or lists many levels deep): shown as plain text, exactly as written."


def markdown_to_safe_html(text: str, *, url_schemes: frozenset[str] = frozenset({"http", "https", "mailto"})) -> str:
    try:
        return _render(text or "", url_schemes)
    except NestedTooDeeply:
        return _as_plain_text(text, TOO_DEEP)


def transcript_markdown_to_safe_html(text: str) -> str:
    """Transcript text is whatever the agent saw: only http(s) links stay links, hidden characters show."""
    html = markdown_to_safe_html(reveal_hidden_characters(text or ""), url_schemes=TRANSCRIPT_SCHEMES)
    # Again on the output: an entity (&#x202E;) becomes the character only when rendered.
    return reveal_hidden_characters(html)


@dataclass(frozen=True)
class TranscriptText:
    """One message for the page: ``html`` (sanitized) is the formatted part, ``text`` and
    ``rest`` are plain text for the template to escape (``text`` shown, ``rest`` behind
    "show more"), and ``note`` says why part of it is not formatted."""

    html: str
    text: str = ""
    rest: str = ""
    note: str = ""


def transcript_markdown(text: str, *, limit: int, plain_preview: int = 2000) -> TranscriptText:
    """At most ``limit`` characters formatted (cut at a paragraph or line end), the rest plain.

    The cost of markdown-it grows with the text (a megabyte takes seconds, worse for some
    inputs), so the page formats a bounded head and shows the remainder as written.
    With ``limit`` 0 nothing is formatted: the first ``plain_preview`` characters show.
    """
    text = reveal_hidden_characters(text or "")
    if limit <= 0:
        head, rest = cut(text, plain_preview)
        return TranscriptText("", head, rest.lstrip("\n"))
    head, rest = cut(text, limit)
    rest = rest.lstrip("\n")
    try:
        html = _render(head, TRANSCRIPT_SCHEMES)
    except NestedTooDeeply:
        return TranscriptText("", head, rest, TOO_DEEP)
    return TranscriptText(reveal_hidden_characters(html), "", rest)


def cut(text: str, limit: int) -> tuple[str, str]:
    """Split before ``limit`` characters: at the last blank line in the second half, else
    the last line end there, else at ``limit``."""
    if len(text) <= limit:
        return text, ""
    at = text.rfind("\n\n", limit // 2, limit)
    if at < 0:
        at = text.rfind("\n", limit // 2, limit)
    if at < 0:
        at = limit
    return text[:at], text[at:]
