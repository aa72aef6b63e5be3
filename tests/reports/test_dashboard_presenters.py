"""The dashboard presenters (pure): result JSON and counts in, rows and chart data out."""

from __future__ import annotations

from datetime import UTC, date, datetime

from reviewapp.reports import dashboard


def estimate(value, low=None, high=None, n=10, method="wilson"):
    return {"value": value, "low": low, "high": high, "n": n, "method": method}


def contrast(effect):
    return {"cluster": estimate(*effect), "newcombe": estimate(*effect)}


def arm(name, role, agreement, effect=None):
    return {
        "name": name,
        "role": role,
        "reveal": False,
        "n_labels": 10,
        "n_reviewers": 2,
        "agreement_with_ai": {split: estimate(*agreement) for split in ("all", "ai_right", "ai_wrong")},
        "deference_effect": None if effect is None else {s: contrast(effect) for s in ("all", "ai_right", "ai_wrong")},
        "design_effect": 1.5,
        "agreement": {"decision": {"level": "nominal", "humans": {"alpha": estimate(0.4, 0.2, 0.6)}}},
    }


RESULT = {
    "decision_field": "decision",
    "arms": [
        arm("control", "control", (0.5, 0.3, 0.7)),
        arm("recommendation", "recommendation", (0.7, 0.5, 0.85), (0.2, 0.05, 0.35)),
    ],
    "narrative_increment": None,
    "reviewers": [],
}


def row(rid, name, **fields):
    defaults = {
        "arm": "control",
        "enrolled": True,
        "labels": 0,
        "last_active": None,
        "days": [],
        "flagged": False,
        "crossed": [],
        "indicators": dashboard.indicator_cells(None),
        "in_metrics": False,
    }
    return dashboard.ReviewerRow(id=rid, name=name, **{**defaults, **fields})


class TestDashboardPresenters:
    def test_deference_panels_draw_the_control_rate_as_the_baseline(self):
        panels = dashboard.deference_panels(RESULT)
        assert [p.title for p in panels] == ["All items", "AI right", "AI wrong"]
        assert panels[0].reference == 0.5 and panels[0].reference_label == "baseline: control 50.0%"
        recommendation = panels[0].rows[1]
        assert (recommendation.value, recommendation.low, recommendation.high) == (0.7, 0.5, 0.85)
        assert recommendation.note == "recommendation: 70.0% [50.0, 85.0], n = 10"

    def test_effect_panels_have_a_row_per_ai_arm_around_zero(self):
        panels = dashboard.effect_panels(RESULT)
        assert [[r.label for r in p.rows] for p in panels] == [["recommendation"]] * 3
        assert panels[0].reference == 0.0
        assert panels[0].rows[0].note == "recommendation vs control: +20.0 pp [+5.0, +35.0], n = 10"
        assert dashboard.effect_table(RESULT)[0]["cells"][0]["cluster"] == "+20.0 pp [+5.0, +35.0]"

    def test_the_estimate_domain_holds_every_interval(self):
        panels = dashboard.effect_panels(RESULT)
        assert dashboard.estimate_domain(panels, low=-0.1, high=0.1) == (-0.1, 0.4)

    def test_an_unknown_sort_key_falls_back_to_flags_first(self):
        rows = [
            row(1, "b", in_metrics=True),
            row(2, "a", flagged=True, crossed=["fast_share", "entropy"], in_metrics=True),
            row(3, "c"),
        ]
        ordered, key, direction = dashboard.sort_rows(rows, "__class__", "up")
        assert (key, direction) == ("flags", "desc")
        assert [r.name for r in ordered] == ["a", "b", "c"]  # c has no metrics: last

    def test_missing_values_sort_last_both_ways(self):
        cells = dashboard.indicator_cells
        rows = [
            row(1, "a", indicators=cells({"indicators": {"fast_share": {"shrunk": 0.2}}})),
            row(2, "b"),
            row(3, "c", indicators=cells({"indicators": {"fast_share": {"shrunk": 0.9}}})),
        ]
        up, _, _ = dashboard.sort_rows(rows, "fast_share", "asc")
        down, _, _ = dashboard.sort_rows(rows, "fast_share", "desc")
        assert [r.name for r in up] == ["a", "c", "b"]
        assert [r.name for r in down] == ["c", "a", "b"]

    def test_sorting_by_name_and_last_active(self):
        early, late = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)
        rows = [row(1, "Bea", last_active=early), row(2, "al", last_active=late), row(3, "cy")]
        assert [r.name for r in dashboard.sort_rows(rows, "reviewer", None)[0]] == ["al", "Bea", "cy"]
        assert [r.name for r in dashboard.sort_rows(rows, "last_active", "desc")[0]] == ["al", "Bea", "cy"]

    def test_the_columns_toggle_the_current_sort(self):
        thresholds = dashboard.thresholds_for({"fast_share_max": 0.4})
        columns = {c["key"]: c for c in dashboard.table_columns("labels", "desc", thresholds)}
        assert columns["labels"]["query"] == "sort=labels&dir=asc" and columns["labels"]["aria"] == "descending"
        assert columns["reviewer"]["query"] == "sort=reviewer&dir=asc" and columns["reviewer"]["aria"] == "none"
        assert columns["fast_share"]["limit"] == "> 0.4" and columns["entropy"]["limit"] == "< 0.3"
        assert set(columns) == set(dashboard.SORT_KEYS)

    def test_running_rates_skip_labels_without_an_ai_answer(self):
        def fact(seq, decision, ai):
            return dashboard.LabelFact(seq, datetime(2026, 1, 1, tzinfo=UTC), 5.0, decision, ai, None, False, 100, "x")

        facts = [fact(1, "a", "a"), fact(2, "r", None), fact(3, "r", "a"), fact(4, "a", "a")]
        cumulative, rolling = dashboard.running_rates(facts, window=2)
        assert cumulative == [(1, 1.0), (3, 0.5), (4, 2 / 3)]
        assert rolling == [(1, 1.0), (3, 0.5), (4, 0.5)]
        summary = dashboard.reviewer_summary(facts, reading_wpm=240)
        assert summary["agree"] == "66.7%" and summary["n_with_ai"] == 3
        assert summary["fast"] == "100.0%"  # 5 s for 100 words at 240 wpm (25 s)

    def test_running_rates_are_thinned_for_long_sessions(self):
        facts = [
            dashboard.LabelFact(i, datetime(2026, 1, 1, tzinfo=UTC), 1.0, "a", "a", None, False, 1, "x")
            for i in range(1, 2001)
        ]
        cumulative, rolling = dashboard.running_rates(facts, max_points=600)
        assert len(cumulative) <= 601 and cumulative[-1][0] == 2000 and len(rolling) == len(cumulative)

    def test_queue_rows_and_the_activity_window(self):
        rows = dashboard.queue_rows(
            [{"arm_key": 7, "full": 1, "partial": 2, "in_progress": 1, "unclaimed": 0}], {7: "control"}
        )
        assert rows[0]["name"] == "control" and rows[0]["total"] == 4
        assert [c["n"] for c in rows[0]["cells"]] == [1, 2, 1, 0]
        assert rows[0]["cells"][1]["share"] == "50.0%"
        window = dashboard.activity_window(date(2026, 3, 14), days=3)
        assert window == [date(2026, 3, 12), date(2026, 3, 13), date(2026, 3, 14)]
        assert dashboard.daily_totals({(1, date(2026, 3, 13)): 4, (2, date(2026, 3, 13)): 1}, window) == [
            ("2026-03-12", 0),
            ("2026-03-13", 5),
            ("2026-03-14", 0),
        ]
