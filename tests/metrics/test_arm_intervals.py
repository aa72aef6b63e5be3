"""Per-arm rates with intervals over reviewers, the few-cluster guard and the confidence level,
from ``study_metrics`` through the study page's panel and the dashboard (issue 15)."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
from django.template.loader import render_to_string

from reviewapp.metrics.compute import StudySpec, study_metrics
from reviewapp.metrics.presenters import metrics_view
from reviewapp.reports import charts, dashboard

from .test_study_metrics import ARMS, FIELDS, synthetic_spec, synthetic_study

REVIEWERS = 8  # per arm in the synthetic study (the recommendation arm also has a within-subjects one)
RELIANCE = ("overreliance", "underreliance", "accuracy")
REVEAL = ("switch_fraction", "rair", "rsr", "accuracy_initial")


def spec(**options) -> StudySpec:
    base = synthetic_spec()
    return StudySpec(**{**{name: getattr(base, name) for name in base.__dataclass_fields__}, **options})


@pytest.fixture(scope="module")
def data():
    return synthetic_study()


@pytest.fixture(scope="module")
def result(data):
    return study_metrics(data, spec())


@pytest.fixture(scope="module")
def guarded(data):
    """The same study with a minimum of 10 reviewers per arm: every interval over reviewers withheld."""
    return study_metrics(data, spec(min_reviewers=10))


def arms(result: dict) -> dict[str, dict]:
    return {arm["name"]: arm for arm in result["arms"]}


def width(estimate: dict) -> float:
    return estimate["high"] - estimate["low"]


class TestArmIntervals:
    def test_every_arm_rate_has_an_interval_over_reviewers_beside_the_label_level_one(self, result):
        for arm in result["arms"]:
            for split in ("all", "ai_right", "ai_wrong"):
                wilson, cluster = arm["agreement_with_ai"][split], arm["agreement_with_ai_cluster"][split]
                assert cluster["value"] == pytest.approx(wilson["value"]) and cluster["n"] == wilson["n"]
                assert cluster["low"] <= cluster["value"] <= cluster["high"] and cluster["note"] is None
                assert width(cluster) >= width(wilson) - 1e-12  # never narrower than treating labels as independent
            names = RELIANCE + (REVEAL if arm["reveal"] else ())
            for name in names:
                cluster = arm["reliance_cluster"][name]
                assert cluster["value"] == pytest.approx(arm["reliance"][name]["value"])
                # RAIR and RSR condition on few labels: some arms have fewer than 5 reviewers with any.
                if cluster["n_reviewers"] >= 5:
                    assert cluster["low"] is not None and cluster["note"] is None
                else:
                    assert cluster["low"] is None and cluster["note"].startswith("too few reviewers")
        assert set(arms(result)["reveal"]["reliance_cluster"]) >= set(REVEAL)
        assert not set(arms(result)["control"]["reliance_cluster"]) & set(REVEAL)
        assert all(arm["design_effect"] is None or arm["design_effect"] >= 1 for arm in result["arms"])

    def test_below_the_minimum_every_interval_over_reviewers_gives_way_to_the_reason(self, guarded):
        assert guarded["parameters"]["min_reviewers"] == 10
        for arm in guarded["arms"]:
            n = arm["agreement_with_ai_cluster"]["all"]["n_reviewers"]
            note = f"too few reviewers ({n}) for an interval"
            estimates = [*arm["agreement_with_ai_cluster"].values(), *arm["reliance_cluster"].values()]
            estimates += [effect["cluster"] for effect in (arm["deference_effect"] or {}).values()]
            for estimate in estimates:
                assert estimate["low"] is None and estimate["high"] is None
                assert estimate["note"].startswith("too few reviewers (") and estimate["value"] is not None
            assert arm["agreement_with_ai_cluster"]["all"]["note"] == note
            assert arm["design_effect"] is None and arm["design_effect_note"].startswith("too few reviewers")
            # Positive control: the label-level intervals are still there.
            assert arm["agreement_with_ai"]["all"]["low"] is not None
        assert guarded["narrative_increment"]["all"]["cluster"]["note"].startswith("too few reviewers")
        assert guarded["narrative_increment"]["all"]["newcombe"]["low"] is not None

    def test_the_studys_confidence_reaches_every_interval_over_reviewers(self, data, result):
        at_90 = study_metrics(data, spec(confidence=0.90))
        assert at_90["parameters"]["confidence"] == 0.90
        for arm_90, arm_95 in zip(at_90["arms"], result["arms"], strict=True):
            pairs = [(arm_90["agreement_with_ai_cluster"]["all"], arm_95["agreement_with_ai_cluster"]["all"])]
            pairs += [
                (arm_90["reliance_cluster"][n], arm_95["reliance_cluster"][n]) for n in arm_95["reliance_cluster"]
            ]
            if arm_95["deference_effect"]:
                pairs.append(
                    (arm_90["deference_effect"]["all"]["cluster"], arm_95["deference_effect"]["all"]["cluster"])
                )
            for narrow, wide in pairs:
                assert narrow["value"] == pytest.approx(wide["value"])
                if wide["low"] is not None:
                    assert width(narrow) < width(wide)
        narrow, wide = at_90["narrative_increment"]["all"]["cluster"], result["narrative_increment"]["all"]["cluster"]
        assert width(narrow) < width(wide)

    @pytest.mark.parametrize(("option", "value"), [("confidence", 1.0), ("confidence", 0.0), ("min_reviewers", 1)])
    def test_a_spec_with_an_impossible_setting_is_refused(self, option, value):
        with pytest.raises(ValueError, match=f"`{option}`"):
            spec(**{option: value})
        assert StudySpec(arms=ARMS, fields=FIELDS, thresholds={}).confidence == 0.95  # positive control


class TestShown:
    def test_the_panel_shows_both_intervals_and_the_confidence_level(self, data):
        result = study_metrics(data, spec(confidence=0.90))
        view = metrics_view(result, {})
        recommendation = next(arm for arm in view["arms"] if arm["name"] == "recommendation")
        assert recommendation["agreement_cluster"]["all"].startswith("over reviewers [")
        assert recommendation["reliance_cluster"]["accuracy"].startswith("over reviewers [")
        html = render_to_string(
            "metrics/_panel.html", {"metrics": view, "study": SimpleNamespace(slug="s"), "latest": None}
        )
        assert "Intervals are 90%" in html and "over reviewers [" in html

    def test_the_panel_says_why_there_is_no_interval(self, guarded):
        view = metrics_view(guarded, {})
        html = render_to_string(
            "metrics/_panel.html", {"metrics": view, "study": SimpleNamespace(slug="s"), "latest": None}
        )
        assert '<small class="muted">too few reviewers (8) for an interval</small>' in html
        assert "over reviewers [" not in html
        # The effect's value stands with the reason, not as a bare number.
        effect = next(arm for arm in view["arms"] if arm["name"] == "rationale")["effect"]["all"]
        assert effect.endswith("(too few reviewers (8) for an interval)")
        assert "too few reviewers (8) for a design effect" in html

    def test_the_dashboard_chart_writes_the_reason_beside_a_dot_without_whiskers(self, result, guarded):
        def svg(result):
            return str(
                charts.dot_whisker(
                    dashboard.deference_panels(result),
                    domain=(0.0, 1.0),
                    ticks=[0.0, 0.5, 1.0],
                    tick_label=str,
                    axis_title="agreement",
                    aria_label="agreement",
                    chart_id="chart-deference",
                )
            )

        withheld = svg(guarded)
        assert 'class="dash-reason"' in withheld and "too few reviewers (8) for an interval" in withheld
        assert 'class="dash-reason"' not in svg(result)  # positive control: whiskers, no reason
        table = dashboard.deference_table(guarded)
        assert table[0]["cells"][0]["cluster"] == "too few reviewers (8) for an interval"
        effects = dashboard.effect_table(guarded)
        assert effects[0]["design_effect_note"].startswith("too few reviewers")

    def test_a_single_reviewer_shows_the_reason_not_a_bare_dot(self, result):
        single = copy.deepcopy(result)
        arm = single["arms"][0]
        arm["agreement_with_ai_cluster"]["all"] |= {"low": None, "high": None, "n_reviewers": 1}
        arm["agreement_with_ai_cluster"]["all"]["note"] = "too few reviewers (1) for an interval"
        row = dashboard.deference_panels(single)[0].rows[0]
        assert row.low is None and row.reason == "too few reviewers (1) for an interval"

    def test_a_run_computed_before_these_intervals_still_renders(self, result):
        old = copy.deepcopy(result)
        del old["parameters"]["min_reviewers"]
        for arm in old["arms"]:
            for key in ("agreement_with_ai_cluster", "reliance_cluster", "design_effect_note"):
                del arm[key]
        view = metrics_view(old, {})
        assert view["arms"][0]["agreement_cluster"] == {} and view["min_reviewers"] is None
        html = render_to_string(
            "metrics/_panel.html", {"metrics": view, "study": SimpleNamespace(slug="s"), "latest": None}
        )
        assert "over reviewers [" not in html and "Intervals are 95%" in html
        assert dashboard.deference_panels(old)[0].rows[0].low is not None  # Wilson, as before
