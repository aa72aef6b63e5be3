"""The four exports of a study through the test client, on labels with hand-checked values.

The ``labelled`` study (tests/builders.py): items i1..i4, the AI recommends
"approve" on all four, gold is approve, approve, reject, reject; two control reviewers
answer "arrr" and "aara", two rationale reviewers "aaaa" and "aara" (16 labels).
"""

from __future__ import annotations

import orjson
import pytest
from django.contrib.auth.models import User
from django.http import StreamingHttpResponse

from reviewapp.metrics.stats.rubber_stamp import DEFAULT_THRESHOLDS, INDICATORS
from reviewapp.queue.models import Label
from reviewapp.reports import exports
from reviewapp.review.presenters import INTERACTION_FIELDS, TIMING_FIELDS
from reviewapp.studies.models import AuditEvent
from tests.builders import GOLD, body, compute_metrics, csv_dicts, csv_rows

# Hand-checked (module docstring): (item, arm, decision, gold) in label id order.
LABELS = [
    *[("i1", "control", "approve"), ("i2", "control", "reject"), ("i3", "control", "reject")],
    *[("i4", "control", "reject"), ("i1", "control", "approve"), ("i2", "control", "approve")],
    *[("i3", "control", "reject"), ("i4", "control", "approve")],
    *[(f"i{n}", "rationale", "approve") for n in range(1, 5)],
    *[("i1", "rationale", "approve"), ("i2", "rationale", "approve"), ("i3", "rationale", "reject")],
    ("i4", "rationale", "approve"),
]


class TestExportReports:
    def test_it_lists_the_four_reports_two_clicks_from_the_study_page(self, client, labelled, researcher):
        client.force_login(researcher)
        study_page = client.get("/studies/refunds/").content.decode()
        assert 'href="/studies/refunds/exports/"' in study_page

        page = client.get("/studies/refunds/exports/").content.decode()

        for title, _ in exports.REPORTS.values():
            assert title in page
        assert 'href="/studies/refunds/exports/labels.csv"' in page
        assert 'href="/studies/refunds/exports/items.jsonl"' in page
        # No metrics yet: the summary reports say where to compute them instead of a link.
        assert "No metrics computed yet" in page and "agreement.csv" not in page
        compute_metrics(labelled)
        page = client.get("/studies/refunds/exports/").content.decode()
        assert 'href="/studies/refunds/exports/agreement.csv"' in page
        assert 'href="/studies/refunds/exports/reviewers.json"' in page

    def test_the_labels_report_has_one_row_per_label_with_its_columns(self, client, labelled, researcher):
        client.force_login(researcher)
        response = client.get("/studies/refunds/exports/labels.csv")

        assert response.status_code == 200
        assert isinstance(response, StreamingHttpResponse)
        assert response["Content-Type"] == "text/csv; charset=utf-8"
        assert response["Content-Disposition"].startswith('attachment; filename="refunds-labels-20')
        assert response["X-Content-Type-Options"] == "nosniff"
        header, *rows = csv_rows(response)
        assert header == LABEL_HEADER
        assert len(rows) == 16
        rows = [dict(zip(header, row, strict=True)) for row in rows]
        assert [(r["item_external_id"], r["arm"], r["decision"]) for r in rows] == LABELS
        assert all(r["value_decision"] == r["decision"] for r in rows)
        assert [r["gold_label"] for r in rows] == [GOLD[r["item_external_id"]] for r in rows]
        assert {(r["study"], r["ai_recommendation"], r["is_probe"], r["is_current"]) for r in rows} == {
            ("refunds", "approve", "false", "true")
        }
        # Not a reveal arm, no correction, no confidence asked: empty cells, not zeros.
        assert {(r["initial_decision"], r["supersedes_label_id"], r["confidence"], r["revealed_at"]) for r in rows} == {
            ("", "", "", "")
        }
        labels = list(Label.objects.filter(study=labelled).select_related("reviewer").order_by("id"))
        for row, label in zip(rows, labels, strict=True):
            assert row["label_id"] == str(label.pk) and row["assignment_id"] == str(label.assignment_id)
            assert row["reviewer"] == label.reviewer.username
            assert row["submitted_at"] == exports.iso_utc(label.submitted_at)
            assert row["shown_at"] == exports.iso_utc(label.shown_at)
            seconds = (label.submitted_at - label.shown_at).total_seconds()
            assert float(row["seconds_to_decide"]) == pytest.approx(seconds, abs=0.0005)
            assert row["position"] == str(label.position)
        # Each reviewer labelled all four items: places 1 to 4 of their own sequence.
        by_reviewer: dict[str, list[str]] = {}
        for row in rows:
            by_reviewer.setdefault(row["reviewer"], []).append(row["position"])
        assert [sorted(places) for places in by_reviewer.values()] == [["1", "2", "3", "4"]] * 4
        # Submitted without uptake measurements: unknown (empty), never 0.
        assert {(r["rationale_seen"], r["recommendation_seen"], r["rationale_visible_ms"]) for r in rows} == {
            ("", "", "")
        }

    def test_the_labels_report_comes_as_json_lines_with_typed_values(self, client, labelled, researcher):
        client.force_login(researcher)
        response = client.get("/studies/refunds/exports/labels.jsonl")

        assert isinstance(response, StreamingHttpResponse)
        assert response["Content-Type"] == "application/x-ndjson"
        lines = [orjson.loads(line) for line in body(response).splitlines()]
        assert len(lines) == 16 and list(lines[0]) == LABEL_HEADER
        assert [(x["item_external_id"], x["arm"], x["decision"]) for x in lines] == LABELS
        assert {(x["is_current"], x["is_probe"], x["initial_decision"], x["confidence"]) for x in lines} == {
            (True, False, None, None)
        }
        assert all(isinstance(x["label_id"], int) and isinstance(x["seconds_to_decide"], float) for x in lines)
        assert all(isinstance(x["position"], int) and x["rationale_seen"] is None for x in lines)

    def test_the_items_report_has_one_row_per_item_and_its_current_labels(self, client, labelled, researcher):
        # A correction supersedes i1's first label: the item still has 4 current labels.
        original = Label.objects.filter(study=labelled, item__external_id="i1").order_by("id").first()
        Label.objects.create(
            assignment=original.assignment,
            study=labelled,
            item=original.item,
            reviewer=original.reviewer,
            arm=original.arm,
            values={"decision": "reject"},
            supersedes=original,
        )
        client.force_login(researcher)

        response = client.get("/studies/refunds/exports/items.csv")

        assert isinstance(response, StreamingHttpResponse)
        header, *rows = csv_rows(response)
        assert header == ITEM_HEADER
        items = {item.external_id: item for item in labelled.items.all()}
        assert rows == [
            [
                "refunds",
                name,
                "native",
                "",
                str(items[name].word_count),
                "approve",
                "",
                GOLD[name],
                "false",
                "0",
                "4",
                exports.iso_utc(items[name].created_at),
            ]
            for name in ("i1", "i2", "i3", "i4")
        ]
        assert items["i1"].word_count == 3  # "Refund order i1?"
        jsonl = [orjson.loads(line) for line in body(client.get("/studies/refunds/exports/items.jsonl")).splitlines()]
        assert [(x["external_id"], x["labels_count"], x["gold_label"], x["is_probe"]) for x in jsonl] == [
            (name, 4, GOLD[name], False) for name in ("i1", "i2", "i3", "i4")
        ]

    def test_a_correction_and_the_label_it_supersedes_are_both_exported(self, client, labelled, researcher):
        original = Label.objects.filter(study=labelled).order_by("id").first()
        correction = Label.objects.create(
            assignment=original.assignment,
            study=labelled,
            item=original.item,
            reviewer=original.reviewer,
            arm=original.arm,
            values={"decision": "reject"},
            comment="misclicked",
            supersedes=original,
        )
        client.force_login(researcher)

        rows = {r["label_id"]: r for r in csv_dicts(client.get("/studies/refunds/exports/labels.csv"))}

        assert len(rows) == 17
        first, fix = rows[str(original.pk)], rows[str(correction.pk)]
        assert (first["decision"], first["is_current"], first["supersedes_label_id"]) == ("approve", "false", "")
        assert (fix["decision"], fix["is_current"], fix["supersedes_label_id"]) == ("reject", "true", str(original.pk))
        assert fix["comment"] == "misclicked"

    def test_the_agreement_report_has_a_row_per_arm_metric_field_and_split(self, client, labelled, researcher):
        run = compute_metrics(labelled)
        client.force_login(researcher)

        response = client.get("/studies/refunds/exports/agreement.csv")

        assert response.status_code == 200 and isinstance(response, StreamingHttpResponse)
        assert response["Content-Disposition"].startswith('attachment; filename="refunds-agreement-20')
        header, *rows = csv_rows(response)
        assert header == AGREEMENT_HEADER
        rows = [dict(zip(header, row, strict=True)) for row in rows]
        by_key = {(r["arm"], r["metric"], r["split"]): r for r in rows}
        # control 12 rows; recommendation (no labels, undefined estimates) 12 + 6 effects + 8
        # uptake of the recommendation; rationale 18 + 8 uptake rows each for the rationale and
        # the recommendation; the narrative increment 6; the sensitivity view 9 (two deference
        # effects and the increment without the flagged reviewers, three splits each). The kappa
        # family on the decision field: Fleiss and Brennan-Prediger per arm, Cohen and Scott in the
        # two arms with exactly two reviewers; decision quality per arm: three rates in three splits,
        # four block / allow counts and the seconds per decision.
        # The effect model (result["effects"]): per contrast and split four measures (odds ratio, risk
        # difference, risk ratio, Cohen's h; the reason where refused): 3 contrasts x 3 splits x 4 = 36, no
        # model p (two reviewers an arm are below the minimum of 5 for an interval: every model row gives that
        # reason), the randomization p where the contrast's arms both have labels (rationale vs control) 3.
        # Rates with the interval over reviewers, per arm: agreement in three splits, over- and
        # under-reliance and accuracy: 3 x 6.
        assert len(rows) == (12 + (18 + 8) + (18 + 16) + 6 + 9 + (4 + 2 + 4) + 3 * (9 + 4 + 1) + (36 + 3) + 3 * 6)
        assert {(r["study"], r["field"], r["run_id"]) for r in rows} == {("refunds", "decision", str(run.pk))}
        assert {r["computed_at"] for r in rows} == {exports.iso_utc(run.finished_at)}

        def numbers(arm, metric, split="all"):
            row = by_key[(arm, metric, split)]
            return row["n"], row["estimate"], row["method"]

        # Control: c1 agrees 1/4, c2 3/4; AI right 1/2 + 2/2; AI wrong 0/2 + 1/2.
        assert numbers("control", "agreement_with_ai") == ("8", "0.5", "wilson")
        assert numbers("control", "agreement_with_ai", "ai_right") == ("4", "0.75", "wilson")
        assert numbers("control", "agreement_with_ai", "ai_wrong") == ("4", "0.25", "wilson")
        # Rationale: 7/8; AI right 4/4; AI wrong 3/4 (= over-reliance); accuracy 2/4 + 3/4.
        assert numbers("rationale", "agreement_with_ai") == ("8", "0.875", "wilson")
        assert numbers("rationale", "agreement_with_ai", "ai_right")[:2] == ("4", "1.0")
        assert numbers("rationale", "overreliance", "ai_wrong") == ("4", "0.75", "wilson")
        assert numbers("rationale", "underreliance", "ai_right")[:2] == ("4", "0.0")
        assert numbers("rationale", "accuracy")[:2] == ("8", "0.625")
        assert numbers("control", "accuracy")[:2] == ("8", "0.75")  # c1 3/4, c2 3/4
        # Deference effect = 0.875 - 0.5 (Newcombe: 16 labels); AI wrong 0.75 - 0.25.
        assert numbers("rationale", "deference_effect_naive") == ("16", "0.375", "newcombe")
        assert numbers("rationale", "deference_effect", "ai_wrong")[:2] == ("8", "0.5")
        # Nobody is flagged (4 labels each, under the minimum): the sensitivity rows repeat the effect.
        assert numbers("rationale", "deference_effect_without_flagged") == numbers("rationale", "deference_effect")
        assert "reviewer-cluster" in numbers("rationale", "deference_effect")[2]
        # Two reviewers an arm, under the minimum of 5: the rates and the effect over reviewers
        # carry their value and the reason, no interval; the label-level rows keep theirs.
        for metric in ("agreement_with_ai_cluster", "deference_effect"):
            row = by_key[("rationale", metric, "all")]
            assert row["estimate"] != "" and (row["ci_low"], row["ci_high"]) == ("", "")
            assert (row["n_reviewers"], row["interval_note"]) == ("2", "too few reviewers (2) for an interval")
        assert by_key[("rationale", "agreement_with_ai_cluster", "all")]["estimate"] == "0.875"
        assert by_key[("rationale", "agreement_with_ai", "all")]["ci_low"] != ""  # positive control
        assert by_key[("rationale", "agreement_with_ai", "all")]["interval_note"] == ""
        assert by_key[("rationale", "overreliance_cluster", "ai_wrong")]["estimate"] == "0.75"
        deff = by_key[("rationale", "design_effect", "all")]
        assert (deff["estimate"], deff["interval_note"]) == ("", "too few reviewers (2) for a design effect")
        # The control arm is the baseline: no effect rows; every estimate lies in its interval.
        assert ("control", "deference_effect", "all") not in by_key
        for row in rows:
            if row["ci_low"]:
                assert float(row["ci_low"]) <= float(row["estimate"]) <= float(row["ci_high"])
        # Alpha, percent agreement and AC1 on the 4 items each arm labelled twice.
        assert (
            numbers("rationale", "alpha")[0] == "4"
            and "krippendorff alpha (nominal)" in numbers("rationale", "alpha")[2]
        )
        assert numbers("rationale", "percent_agreement")[:2] == ("4", "0.75")  # i1, i2, i4 agree; i3 splits
        assert ("rationale", "alpha_with_ai", "all") in by_key
        # No labels in the recommendation arm: undefined (empty), never 0.
        assert numbers("recommendation", "agreement_with_ai") == ("0", "", "wilson")
        increment = by_key[("rationale vs recommendation", "narrative_increment", "all")]
        assert (increment["arm_role"], increment["estimate"]) == ("contrast", "")
        # Reveal-only metrics appear only for reveal arms.
        assert not {r["metric"] for r in rows} & set(exports.REVEAL_METRICS)
        # Uptake: none for the control arm; these labels carry no record, so every one is unknown.
        assert not {r["metric"] for r in rows if r["arm"] == "control"} & {"rationale_seen", "recommendation_seen"}
        assert numbers("rationale", "rationale_seen") == ("0", "", "wilson")
        assert numbers("rationale", "rationale_uptake_unknown") == ("8", "1.0", "wilson")
        assert ("recommendation", "rationale_seen", "all") not in by_key
        assert numbers("recommendation", "recommendation_uptake_unknown") == ("0", "", "wilson")

    def test_the_agreement_report_splits_agreement_by_whether_the_rationale_was_seen(
        self, client, labelled, researcher
    ):
        # Rationale reviewers (AI: approve everywhere) r1 "aaaa" and r2 "aara": r1 saw it on i1
        # and i2, not on i3, and i4 has no record; r2 saw it on i1 and i3, not on i2 and i4.
        seen = {"r1": {"i1": 1, "i2": 1, "i3": 0}, "r2": {"i1": 1, "i2": 0, "i3": 1, "i4": 0}}
        rationale_labels = Label.objects.filter(study=labelled, arm__name="rationale").select_related("item")
        first = min(label.reviewer_id for label in rationale_labels)
        for label in rationale_labels:
            flag = seen["r1" if label.reviewer_id == first else "r2"].get(label.item.external_id)
            if flag is not None:
                Label.objects.filter(pk=label.pk).update(interactions={"rationale_seen": flag})
        compute_metrics(labelled)
        client.force_login(researcher)

        rows = csv_dicts(client.get("/studies/refunds/exports/agreement.csv"))
        by_key = {(r["arm"], r["metric"], r["split"]): (r["n"], r["estimate"]) for r in rows}

        assert by_key[("rationale", "rationale_seen", "all")] == ("7", str(4 / 7))  # i4 of r1 is unknown
        assert by_key[("rationale", "rationale_uptake_unknown", "all")] == ("8", "0.125")
        # Seen: r1 i1 i2 agree, r2 i1 agrees, r2 i3 does not. Not seen: r1 i3, r2 i2, r2 i4 all agree.
        assert by_key[("rationale", "agreement_with_ai_rationale_seen", "all")] == ("4", "0.75")
        assert by_key[("rationale", "agreement_with_ai_rationale_not_seen", "all")] == ("3", "1.0")
        # AI wrong (i3, i4): seen only r2 i3 (reject); not seen r1 i3 and r2 i4 (approve).
        assert by_key[("rationale", "agreement_with_ai_rationale_seen", "ai_wrong")] == ("1", "0.0")
        assert by_key[("rationale", "agreement_with_ai_rationale_not_seen", "ai_wrong")] == ("2", "1.0")
        # The recommendation's uptake was not recorded on any of them: all unknown.
        assert by_key[("rationale", "recommendation_uptake_unknown", "all")] == ("8", "1.0")
        # The labels export carries each label's own record: 1, 0, or empty when unknown.
        labels = csv_dicts(client.get("/studies/refunds/exports/labels.csv"))
        flags = sorted(r["rationale_seen"] for r in labels if r["arm"] == "rationale")
        assert flags == ["", "0", "0", "0", "1", "1", "1", "1"]
        assert {r["rationale_seen"] for r in labels if r["arm"] == "control"} == {""}

    def test_the_agreement_report_as_json_has_the_same_rows_typed(self, client, labelled, researcher):
        run = compute_metrics(labelled)
        client.force_login(researcher)

        data = client.get("/studies/refunds/exports/agreement.json").json()
        csv_version = csv_dicts(client.get("/studies/refunds/exports/agreement.csv"))

        assert (data["study"], data["report"], data["run_id"]) == ("refunds", "agreement", run.pk)
        assert [c["name"] for c in data["columns"]] == AGREEMENT_HEADER
        assert len(data["rows"]) == len(csv_version)
        for typed, text in zip(data["rows"], csv_version, strict=True):
            assert [typed[k] for k in ("arm", "metric", "split")] == [text[k] for k in ("arm", "metric", "split")]
            assert ("" if typed["estimate"] is None else repr(typed["estimate"])) == text["estimate"]

    def test_the_reviewers_report_shows_every_indicator_behind_the_flags(self, client, labelled, researcher):
        run = compute_metrics(labelled)
        client.force_login(researcher)

        header, *rows = csv_rows(client.get("/studies/refunds/exports/reviewers.csv"))

        assert header == REVIEWER_HEADER
        rows = [dict(zip(header, row, strict=True)) for row in rows]
        names = dict(User.objects.values_list("pk", "username"))
        expected = {names[r["reviewer"]]: r for r in run.result["reviewers"]}
        assert {r["reviewer"] for r in rows} == set(expected)
        arms = {r["reviewer"]: r["arm"] for r in rows}
        assert sorted(arms.values()) == ["control", "control", "rationale", "rationale"]
        for row in rows:
            assert row["n_labels"] == "4" and row["run_id"] == str(run.pk)
            # Control reviewers never saw the AI: no AI-based indicators, not zero.
            if row["arm"] == "control":
                assert row["discrimination_gap_raw"] == "" and row["discrimination_gap_n"] == "0"
            for name in ("probe_agree", "fast_share", "entropy"):
                assert row[f"{name}_threshold"] == repr(
                    DEFAULT_THRESHOLDS[f"{name}_{'min' if name == 'entropy' else 'max'}"]
                )
            crossed = expected[row["reviewer"]]["crossed"]
            assert row["crossed_indicators"] == " ".join(crossed) and row["crossed_count"] == str(len(crossed))
            # Two or more crossed, and the reviewer's labels at the minimum (4 here: below it).
            enough = int(row["n_labels"]) >= expected[row["reviewer"]]["min_labels"]
            assert row["flagged"] == ("true" if len(crossed) >= 2 and enough else "false")
            assert {name for name in exports.INDICATOR_DESCRIPTIONS if row[f"{name}_crossed"] == "true"} == set(crossed)
        # Discrimination gap = P(agree | AI right) - P(agree | AI wrong): r1 1 - 1, r2 1 - 1/2.
        gaps = sorted(r["discrimination_gap_raw"] for r in rows if r["arm"] == "rationale")
        assert gaps == ["0.0", "0.5"]
        data = client.get("/studies/refunds/exports/reviewers.json").json()
        assert [c["name"] for c in data["columns"]] == REVIEWER_HEADER and len(data["rows"]) == 4
        assert {type(r["flagged"]) for r in data["rows"]} == {bool}

    def test_without_metrics_the_summary_reports_say_so_instead_of_an_empty_file(self, client, labelled, researcher):
        client.force_login(researcher)
        for report in ("agreement", "reviewers"):
            response = client.get(f"/studies/refunds/exports/{report}.csv")
            assert response.status_code == 409
            assert "Content-Disposition" not in response
            assert b"No metrics computed yet; compute them on the study page." in response.content
            assert b'href="/studies/refunds/#metrics"' in response.content

            response = client.get(f"/studies/refunds/exports/{report}.json")
            assert response.status_code == 409
            assert response.json() == {
                "error": "No metrics computed yet; compute them on the study page.",
                "study_url": "/studies/refunds/",
            }
        assert not AuditEvent.objects.filter(action__startswith="export.").exists()

    def test_an_empty_study_exports_a_header_row_only(self, client, study, researcher):
        client.force_login(researcher)
        assert csv_rows(client.get("/studies/refunds/exports/labels.csv")) == [LABEL_HEADER]
        assert csv_rows(client.get("/studies/refunds/exports/items.csv")) == [ITEM_HEADER]
        assert body(client.get("/studies/refunds/exports/labels.jsonl")) == b""

    def test_a_report_in_a_format_it_does_not_come_in_is_not_found(self, client, study, researcher):
        client.force_login(researcher)
        for path in ("labels.json", "agreement.jsonl", "payloads.csv", "items.xlsx"):
            assert client.get(f"/studies/refunds/exports/{path}").status_code == 404

    def test_the_column_definitions_cover_what_the_app_records(self):
        assert exports.LABEL_TIMING_KEYS == tuple(TIMING_FIELDS)
        assert exports.LABEL_INTERACTION_KEYS == tuple(INTERACTION_FIELDS)
        assert set(exports.INDICATOR_DESCRIPTIONS) == set(INDICATORS)
        assert set(exports.REVEAL_METRICS + exports.RELIANCE_METRICS) <= set(exports.AGREEMENT_METRICS)
        for columns in (
            exports.AGREEMENT_COLUMNS,
            exports.REVIEWER_COLUMNS,
            exports.LABEL_COLUMNS,
            exports.ITEM_COLUMNS,
        ):
            assert all(c.description.strip() for c in columns)
            assert len({c.name for c in columns}) == len(columns)


# The stable headers: a change here is a change of the documented format (docs/researcher-guide.md, "Exports").
LABEL_HEADER = [
    "label_id",
    "assignment_id",
    "study",
    "item_external_id",
    "reviewer",
    "arm",
    "decision",
    "value_decision",
    "initial_decision",
    "confidence",
    "comment",
    "shown_at",
    "revealed_at",
    "submitted_at",
    "seconds_to_decide",
    "ms_on_page",
    "ms_to_first_answer",
    "ms_after_ai_shown",
    "tool_calls_expanded",
    "outputs_expanded",
    "rationale_opened",
    "scroll_depth",
    "keys_used",
    "supersedes_label_id",
    "is_current",
    "ai_recommendation",
    "gold_label",
    "is_probe",
    "position",
    "rationale_seen",
    "rationale_visible_ms",
    "recommendation_seen",
    "recommendation_visible_ms",
]
ITEM_HEADER = [
    "study",
    "external_id",
    "source_format",
    "title",
    "word_count",
    "ai_recommendation",
    "ai_confidence",
    "gold_label",
    "is_probe",
    "priority",
    "labels_count",
    "created_at",
]
AGREEMENT_HEADER = [
    "study",
    "arm",
    "arm_role",
    "metric",
    "field",
    "split",
    "n",
    "estimate",
    "ci_low",
    "ci_high",
    "method",
    "computed_at",
    "run_id",
    "n_reviewers",
    "interval_note",
]
REVIEWER_HEADER = [
    "study",
    "reviewer",
    "arm",
    "n_labels",
    *[
        f"{name}_{part}"
        for name in (
            "probe_agree",
            "discrimination_gap",
            "fast_share",
            "streak_ratio",
            "entropy",
            "evidence_opened",
            "drift",
        )
        for part in ("raw", "shrunk", "n", "threshold", "crossed")
    ],
    "flagged",
    "crossed_count",
    "crossed_indicators",
    "computed_at",
    "run_id",
]
