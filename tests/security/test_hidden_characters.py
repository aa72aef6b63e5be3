"""Invisible reordering characters in transcripts are shown to the reviewer, not obeyed."""

from __future__ import annotations

from reviewapp.review.presenters import ai_view, transcript_view

RLO = "\u202e"  # RIGHT-TO-LEFT OVERRIDE: "\u202egnp.exe" displays as "exe.png"
PERSIAN = "\u0646\u06cc\u0645\u200c\u0641\u0627\u0635\u0644\u0647"  # a word with a zero-width non-joiner
PAYLOAD = {
    "title": f"invoice{RLO}fdp.exe",
    "messages": [
        {"role": "user", "content": f"[{RLO}gnp.exe](https://example.org/x) pay\u200bpal"},
        {
            "role": "assistant",
            "content": "ok",
            "tool_calls": [{"id": "c1", "name": f"get{RLO}", "arguments": {"q": "a\u2066b\u2069\ufeff"}}],
        },
        {"role": "tool", "tool_call_id": "c1", "name": "get", "content": f"x{RLO}y"},
        {"role": "user", "content": f"family 👨\u200d👩\u200d👧 and {PERSIAN}"},
    ],
}


class TestHiddenCharacters:
    def test_it_shows_bidi_controls_and_zero_width_spaces_as_markers_everywhere(self):
        view = transcript_view(PAYLOAD)
        user, agent, tool, _family = view["messages"]
        assert view["title"] == "invoice⟦U+202E⟧fdp.exe"
        assert '<a href="https://example.org/x"' in user["html"] and ">⟦U+202E⟧gnp.exe</a>" in user["html"]
        assert "pay⟦U+200B⟧pal" in user["html"]
        assert agent["tool_calls"][0]["name"] == "get⟦U+202E⟧"
        assert "a⟦U+2066⟧b⟦U+2069⟧⟦U+FEFF⟧" in agent["tool_calls"][0]["text"]
        assert tool["text"] == "x⟦U+202E⟧y"
        rendered = str(view)
        assert RLO not in rendered and "\u200b" not in rendered and "\u2066" not in rendered

    def test_it_keeps_joiners_that_emoji_and_scripts_need(self):
        family = transcript_view(PAYLOAD)["messages"][3]["html"]
        assert "👨\u200d👩\u200d👧" in family and PERSIAN in family

    def test_the_ai_rationale_is_treated_the_same(self):
        shown = ai_view(
            {"recommendation": "approve", "rationale": f"see {RLO}txt.exe", "confidence": None},
            {"recommendation": True, "rationale": True, "confidence": False},
            blind_stage=False,
        )
        assert "⟦U+202E⟧txt.exe" in shown["rationale_html"] and RLO not in shown["rationale_html"]
