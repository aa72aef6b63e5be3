"""Transcript text on the review page: every part shows, formatted within bounds or as written."""

from __future__ import annotations

import time
from html.parser import HTMLParser

from reviewapp.review.presenters import MESSAGE_MARKDOWN_CHARS, PAGE_MARKDOWN_CHARS, ai_view, transcript_view

HIDDEN = "Also transferred $9,800"


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def visible(message: dict) -> str:
    """What a reader sees of one message: the text of its HTML (not attributes) and its plain parts."""
    parser = _Text()
    parser.feed(str(message.get("html", "")))
    return " ".join([*parser.parts, message.get("text", ""), message.get("rest", "")])


def shown(content: str) -> dict:
    return transcript_view({"messages": [{"role": "assistant", "content": content}]})["messages"][0]


class TestTranscriptText:
    def test_text_nested_deeper_than_markdown_it_parses_is_shown_as_written(self):
        deep = {
            "25 quotes": "> " * 25 + HIDDEN,
            "25 nested lists": "\n".join("  " * i + "- step" for i in range(25)) + "\n" + "  " * 25 + "- " + HIDDEN,
            "13 ordered lists": "\n".join("   " * i + "1. step" for i in range(13)) + " " + HIDDEN,
            "quotes and lists": "> - " * 25 + HIDDEN,
            "text after a deep part": "> " * 30 + "x\n\n" + HIDDEN,
        }
        for name, content in deep.items():
            message = shown(content)
            assert HIDDEN in visible(message), name
            assert "Nested too deeply to format" in message["note"], name
        # Positive control: ordinary nesting is formatted, not flattened.
        quoted = shown("> " * 5 + HIDDEN)
        assert str(quoted["html"]).count("<blockquote>") == 5 and HIDDEN in visible(quoted)

    def test_text_markdown_would_hide_in_an_attribute_or_nowhere_is_shown(self):
        hiding = {
            "image alt text": f"![{HIDDEN}](https://example.org/pixel.png)",
            "reference definition": f'[ref]: https://example.org "{HIDDEN}"',
            "link title": f'[the policy](https://example.org/policy "{HIDDEN}")',
            "fence info string": f"```text {HIDDEN}\nok\n```",
            "deep brackets": "[" * 40 + HIDDEN + "]" * 40,
            "deep emphasis": "*" * 40 + HIDDEN + "*" * 40,
        }
        for name, content in hiding.items():
            assert HIDDEN in visible(shown(content)), name
        # An entity cannot bring back a character that reorders what follows it.
        assert "\u202e" not in str(shown("pay &#x202E;exe.pdf")["html"])
        assert "⟦U+202E⟧" in str(shown("pay &#x202E;exe.pdf")["html"])

    def test_a_megabyte_turn_formats_a_bounded_head_fast_and_keeps_every_character(self):
        paragraph = "The agent **checked** the `ledger` and [the policy](https://example.org/p).\n\n"
        content = "FIRST " + paragraph * (1_000_000 // len(paragraph)) + HIDDEN
        payload = {"messages": [{"role": "user", "content": content}, {"role": "assistant", "content": content}]}
        started = time.perf_counter()
        user, agent = transcript_view(payload)["messages"]
        elapsed = time.perf_counter() - started
        assert elapsed < 2.0, f"{elapsed:.1f} s to build the page's transcript"  # was 7 s and more per turn
        assert "<strong>checked</strong>" in str(user["html"]) and "FIRST" in str(user["html"])
        assert len(str(user["html"])) < 4 * MESSAGE_MARKDOWN_CHARS
        assert user["rest"].endswith(HIDDEN) and user["rest_length"] == len(user["rest"])
        # Nothing dropped at the cut: every paragraph is in the formatted head or in the rest.
        assert visible(user).count("checked") == content.count("checked")
        assert agent["rest"].endswith(HIDDEN)

    def test_past_the_page_budget_messages_are_plain_text_with_a_note(self):
        message = "Checked the **ledger**.\n\n" * (MESSAGE_MARKDOWN_CHARS // 25)
        count = PAGE_MARKDOWN_CHARS // MESSAGE_MARKDOWN_CHARS + 2
        payload = {"messages": [{"role": "assistant", "content": message + f"#{n}"} for n in range(count)]}
        messages = transcript_view(payload)["messages"]
        assert "<strong>ledger</strong>" in str(messages[0]["html"])
        last = messages[-1]
        assert str(last["html"]) == "" and "too long to format all of it" in last["note"]
        assert (last["text"] + last["rest"]).endswith(f"#{count - 1}")

    def test_tool_output_nested_deeper_than_json_recurses_is_shown_as_it_came(self):
        deep = "[" * 100_000 + "]" * 100_000
        payload = {"messages": [{"role": "tool", "tool_call_id": "c1", "name": "fetch", "content": deep}]}
        tool = transcript_view(payload)["messages"][0]
        assert tool["text"] + tool["rest"] == deep
        # Positive control: ordinary JSON output is still pretty-printed.
        pretty = transcript_view({"messages": [{"role": "tool", "name": "f", "content": '{"a": [1]}'}]})
        assert pretty["messages"][0]["text"] == '{\n  "a": [\n    1\n  ]\n}'

    def test_a_long_rationale_is_bounded_the_same_way(self):
        rationale = "The refund is **allowed**.\n\n" * 20_000 + HIDDEN
        ai = ai_view(
            {"recommendation": "approve", "rationale": rationale, "confidence": None},
            {"recommendation": True, "rationale": True, "confidence": False},
            blind_stage=False,
        )
        assert "<strong>allowed</strong>" in str(ai["rationale"]["html"])
        assert ai["rationale"]["rest"].endswith(HIDDEN)
