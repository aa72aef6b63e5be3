"""What a reviewer's page may contain, built as plain data. Pure: no queries.

The blinding contract lives here. Templates never receive an Item or an Arm, only
the dicts these functions return, and ``ai_view`` copies an AI field into its dict
only when the reviewer's arm shows it (and, in reveal mode, only after the blind
answer is stored). What is not in the dict cannot reach the page.
"""

from __future__ import annotations

import json
from typing import Any

from django.utils.safestring import mark_safe

from reviewapp.rendering import TranscriptText, reveal_hidden_characters, transcript_markdown

# Tool output longer than this shows its head, with the rest behind "show all".
PREVIEW_CHARS = 1200
# Markdown work is bounded so that any transcript's page renders in well under a second:
# each user or agent message formats at most MESSAGE_MARKDOWN_CHARS (a paragraph or more of
# screens), and a page at most PAGE_MARKDOWN_CHARS in all; the rest of a message, and the
# messages past the page's budget, are shown as plain text (nothing is left out).
MESSAGE_MARKDOWN_CHARS = 10_000
PAGE_MARKDOWN_CHARS = 50_000
# One row of keys per choice field, in schema order (then the confidence scale).
KEY_ROWS = ["123456789", "qwertyuio", "asdfghjkl", "zxcvbnm"]
CONFIDENCE_SCALE = [(0.0, "guess"), (0.25, "unsure"), (0.5, "fairly sure"), (0.75, "sure"), (1.0, "certain")]
ROLE_NAMES = {"system": "System prompt", "user": "User", "assistant": "Agent", "tool": "Tool result"}


def transcript_view(payload: dict, *, hidden_title: str | None = None) -> dict:
    """The conversation as the reviewer reads it: messages, tool calls and results.

    Everything in it is untrusted text: markdown goes through the sanitizer, the rest is
    escaped by the template, and invisible reordering characters are shown as markers.
    ``hidden_title`` (a study that hides item titles) stands in for the payload's title,
    which then never enters the dict.
    """
    call_names = {}
    messages = []
    budget = PAGE_MARKDOWN_CHARS
    for index, message in enumerate(payload.get("messages", [])):
        role = message["role"]
        view: dict[str, Any] = {"index": index, "role": role, "role_name": ROLE_NAMES.get(role, role)}
        if role in ("user", "assistant"):
            content = message["content"]
            limit = min(MESSAGE_MARKDOWN_CHARS, budget)
            view.update(_formatted(transcript_markdown(content, limit=limit)))
            if limit == 0 and content:
                view["note"] = "Shown as plain text: this transcript is too long to format all of it."
            budget -= min(len(content), limit)
        else:
            view.update(_clipped(reveal_hidden_characters(_pretty(message["content"]))))
        if role == "assistant":
            view["tool_calls"] = [
                {
                    "id": call["id"],
                    "name": reveal_hidden_characters(call["name"]),
                    **_clipped(reveal_hidden_characters(_pretty(call["arguments"]))),
                }
                for call in message.get("tool_calls", ())
            ]
            call_names.update({call["id"]: call["name"] for call in message.get("tool_calls", ()) if call["id"]})
        if role == "tool":
            name = message.get("name") or call_names.get(message.get("tool_call_id", ""), "tool")
            view["name"] = reveal_hidden_characters(name)
            view["is_error"] = message.get("is_error", False)
        messages.append(view)
    title = hidden_title if hidden_title is not None else reveal_hidden_characters(payload.get("title", ""))
    return {"title": title, "messages": messages}


def item_heading(position: int | None) -> str:
    """What a reviewer sees instead of a hidden title: the item's place in their sequence."""
    return f"Item {position}" if position else "Item"


def _formatted(text: TranscriptText) -> dict:
    return {
        # Safe to mark: the HTML comes out of nh3's allowlist sanitizer (rendering.py).
        "html": mark_safe(text.html),  # noqa: S308
        "text": text.text,
        "rest": text.rest,
        "rest_length": len(text.rest),
        "note": text.note,
    }


def _pretty(value: Any) -> str:
    """JSON (given as data or as a JSON string) indented; other text as it is."""
    original = value
    if isinstance(value, str):
        stripped = value.strip()
        if not stripped or stripped[0] not in "[{":
            return value
        try:
            value = json.loads(stripped)
        except (ValueError, RecursionError):
            return original
    try:
        return json.dumps(value, indent=2, ensure_ascii=False)
    except (ValueError, RecursionError):
        # Nested deeper than the json module recurses: shown as it came.
        return original if isinstance(original, str) else repr(original)


def _clipped(text: str) -> dict:
    if len(text) <= PREVIEW_CHARS:
        return {"text": text, "rest": "", "rest_length": 0, "length": len(text)}
    rest = text[PREVIEW_CHARS:]
    return {"text": text[:PREVIEW_CHARS], "rest": rest, "rest_length": len(rest), "length": len(text)}


def ai_view(item_ai: dict, arm_shows: dict, *, blind_stage: bool) -> dict | None:
    """The AI's output this reviewer may see now, or None.

    ``item_ai`` has the item's ``recommendation``, ``rationale`` and ``confidence``;
    ``arm_shows`` says which of them the arm shows and, for the rationale, whether it is
    shown expanded or behind a "Why?" click (``rationale_display``).
    """
    if blind_stage:
        return None
    shown: dict[str, Any] = {}
    if arm_shows["recommendation"] and item_ai["recommendation"] is not None:
        shown["recommendation"] = item_ai["recommendation"]
    if arm_shows["rationale"]:
        rationale = item_ai["rationale"] or ""
        shown["rationale_html"] = ""
        if rationale:
            shown["rationale"] = _formatted(transcript_markdown(rationale, limit=MESSAGE_MARKDOWN_CHARS))
            shown["rationale_html"] = shown["rationale"]["html"]
        shown["has_rationale_slot"] = True
        shown["rationale_collapsed"] = arm_shows.get("rationale_display") == "collapsed"
    if arm_shows["confidence"] and item_ai["confidence"] is not None:
        shown["confidence_percent"] = round(item_ai["confidence"] * 100)
    return shown or None


def form_view(schema: dict, values: dict, errors: dict[str, str], *, ask_extras: bool = True) -> dict:
    """The answer form from the label schema, with a keyboard key for every choice."""
    rows = iter(KEY_ROWS)
    fields = []
    for spec in schema["fields"]:
        field: dict[str, Any] = {
            "name": spec["name"],
            "input_name": f"field_{spec['name']}",
            "label": spec.get("label") or spec["name"].replace("_", " ").capitalize(),
            "type": spec["type"],
            "decision": spec.get("decision") is True,
            "error": errors.get(spec["name"], ""),
        }
        current = values.get(spec["name"])
        if spec["type"] in ("nominal", "ordinal"):
            keys = next(rows, "")
            field["choices"] = [
                {"value": choice, "key": keys[i] if i < len(keys) else "", "checked": choice == current}
                for i, choice in enumerate(spec["choices"])
            ]
        else:
            field.update({"min": spec["min"], "max": spec["max"], "value": "" if current is None else shown(current)})
        fields.append(field)
    form: dict[str, Any] = {"fields": fields, "errors": errors}
    if ask_extras and schema.get("confidence"):
        keys = next(rows, "")
        chosen = values.get("__confidence")
        form["confidence"] = [
            {"value": value, "label": label, "key": keys[i] if i < len(keys) else "", "checked": value == chosen}
            for i, (value, label) in enumerate(CONFIDENCE_SCALE)
        ]
        form["confidence_error"] = errors.get("confidence", "")
    if ask_extras and schema.get("comment"):
        form["comment"] = shown(values.get("__comment") or "")
        form["comment_error"] = errors.get("comment", "")
    return form


def shown(value: Any) -> Any:
    """A value typed by the reviewer, as the form shows it back: a refused NUL reads as �
    (what a browser would make of it) rather than going into the page as a raw byte."""
    return value.replace("\x00", "\ufffd") if isinstance(value, str) else value


def skip_view(reasons: list[str], *, chosen: str = "", other: str = "", error: str = "") -> dict:
    """The skip form: the reasons offered, and after a refused skip what was chosen and why."""
    return {"reasons": reasons, "chosen": shown(chosen), "other": shown(other), "error": error}


def answer_summary(schema: dict, values: dict) -> str:
    """A stored answer in the reviewer's own terms, field by field: ``decision=approve``."""
    return ", ".join(f"{spec['name']}={values[spec['name']]}" for spec in schema["fields"] if spec["name"] in values)


def answer_from_post(schema: dict, post) -> tuple[dict, float | None, str]:
    """The answer in a form POST: values by field name (interval text to numbers), confidence, comment.

    Values that do not parse are passed on as given so the validator names the field.
    """
    values: dict[str, Any] = {}
    for spec in schema["fields"]:
        raw = post.get(f"field_{spec['name']}")
        if raw is None or raw == "":
            continue
        values[spec["name"]] = _number(raw) if spec["type"] == "interval" else raw
    confidence_raw = post.get("confidence")
    confidence: Any = None
    if confidence_raw not in (None, ""):
        confidence = _number(confidence_raw)
    return values, confidence, post.get("comment", "")


def _number(raw: str) -> Any:
    try:
        number = float(raw)
    except ValueError:
        return raw
    return int(number) if number.is_integer() and "." not in raw else number


# Client-side measurements accepted with a label: name → (type, largest value).
# Treatment uptake (static/js/review.js, docs/reviewer.md "What is recorded"): whether the
# rationale and the recommendation were seen (1) or not (0), and how long each was in view.
# The page sends them only for what the arm shows; a label without them is "unknown".
INTERACTION_FIELDS = {
    "tool_calls_expanded": (int, 10_000),
    "outputs_expanded": (int, 10_000),
    "rationale_opened": (int, 10_000),
    "scroll_depth": (float, 1.0),
    "keys_used": (int, 100_000),
    "rationale_seen": (int, 1),
    "rationale_visible_ms": (int, 86_400_000),
    "recommendation_seen": (int, 1),
    "recommendation_visible_ms": (int, 86_400_000),
}
TIMING_FIELDS = {
    "ms_on_page": (int, 86_400_000),
    "ms_to_first_answer": (int, 86_400_000),
    "ms_after_ai_shown": (int, 86_400_000),
}


def client_measurements(raw: str, allowed: dict[str, tuple[type, float]], name: str) -> dict:
    """Parse the page's JSON measurements; raises ValueError naming what is wrong."""
    if not raw:
        return {}
    if len(raw) > 4000:
        raise ValueError(f"{name}: more than 4,000 characters")
    if "\x00" in raw or "\\u0000" in raw:
        raise ValueError(f"{name}: contains a NUL character (U+0000)")
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"{name}: not valid JSON ({exc.msg} at character {exc.pos})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{name}: must be a JSON object")
    clean: dict[str, Any] = {}
    for key, value in data.items():
        if key not in allowed:
            raise ValueError(f"{name}.{key}: not a known measurement")
        kind, largest = allowed[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= largest:
            raise ValueError(f"{name}.{key}: must be a number from 0 to {largest}")
        clean[key] = kind(value)
    return clean
