"""What the review page's transcript costs the server for hostile and huge turns.

    python -m bench.transcript

Times ``review.presenters.transcript_view`` (the markdown, sanitizer and clipping work one
review page does for its item) for a 1 MB user turn and a 25-level quote, against rendering
the same turns whole through markdown-it and nh3 (what the page did before its markdown work
was bounded). Median of five runs each; writes the ``transcript`` section of BENCHMARKS.md.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

import django

ROOT = Path(__file__).resolve().parent.parent
PARAGRAPH = "The agent **checked** the `ledger` and [the refund policy](https://example.org/policy).\n\n"
CASES = {
    "1 MB user turn (markdown paragraphs)": PARAGRAPH * (1_000_000 // len(PARAGRAPH)),
    "1 MB user turn (one unbroken line)": "word " * 200_000,
    "25-level quote": "> " * 25 + "Also transferred $9,800 to account 4471",
}


def median_seconds(action, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reviewapp.settings")
    os.environ.setdefault("DEBUG", "true")
    django.setup()
    from bench.report import write_section
    from reviewapp.rendering import markdown_to_safe_html
    from reviewapp.review.presenters import transcript_view

    rows = ["| turn | page's transcript view | whole turn through markdown + sanitizer | ratio |", "|---|---|---|---|"]
    for name, text in CASES.items():
        payload = {"title": "t", "messages": [{"role": "user", "content": text}]}
        bounded = median_seconds(lambda payload=payload: transcript_view(payload))
        whole = median_seconds(lambda text=text: markdown_to_safe_html(text))
        rows.append(f"| {name} | {bounded * 1000:.0f} ms | {whole * 1000:.0f} ms | {whole / bounded:.1f}x |")
        sys.stdout.write(f"{name}: bounded {bounded:.3f} s, whole {whole:.3f} s\n")
    body = (
        "## Transcript rendering (`make bench-transcript`)\n\n"
        "Server time to build one review page's transcript (`review.presenters.transcript_view`: markdown for at "
        "most 10,000 characters a turn and 50,000 a page, the sanitizer, the rest as plain text behind "
        '"show more"), against rendering the same turn whole (what the page did before; in Chromium a 1 MB '
        "turn's page took 4-7 s then). Median of 5 runs, one process.\n\n" + "\n".join(rows)
    )
    write_section("transcript", body)
    sys.stdout.write(body + "\n")


if __name__ == "__main__":
    main()
