import json

from django import template
from django.utils.safestring import mark_safe

from reviewapp.rendering import markdown_to_safe_html, reveal_hidden_characters

register = template.Library()


@register.filter
def markdown(text: str) -> str:
    # Safe to mark: the HTML comes out of nh3's allowlist sanitizer (see rendering.py).
    return mark_safe(markdown_to_safe_html(text))  # noqa: S308


@register.filter
def reveal_hidden(text) -> str:
    """Untrusted plain text with its invisible reordering characters shown as markers (still escaped)."""
    return reveal_hidden_characters(str(text)) if text is not None else ""


@register.filter
def json_shown(value) -> str:
    """Data as JSON text (not Python's repr, which writes hidden characters as escapes) with
    its hidden characters shown as markers; escaped by the template like any text."""
    return reveal_hidden_characters(json.dumps(value, ensure_ascii=False, default=str))
