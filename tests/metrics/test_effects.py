"""The effect model (reviewapp/metrics/stats/effects.py): the same numbers as statsmodels' own
two-way cluster-robust logistic fit, a one-way sandwich written out by hand, effect sizes of a
table worked by hand (Cohen's h against Cohen 1988, table 6.2.1), wider intervals once items
matter, and refusals where no honest number exists."""

from __future__ import annotations

import math

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats
from scipy.special import expit

from reviewapp.metrics.stats.effects import FEW_CLUSTERS, CellFit, effect_model
from tests.builders import compute_metrics, csv_dicts, make_labelled

ARMS = ["control", "recommendation", "rationale"]
CONTRASTS = [("deference", 1, 0), ("deference", 2, 0), ("narrative", 2, 1)]


def crossed_study(seed: int, reviewers_per_arm: int = 10, n_items: int = 60, item_sd: float = 0.0, reviewer_sd=0.5):
    """Every reviewer answers every item; logit P(agree) = arm effect + reviewer effect + item
    effect (+ a shift when the AI is wrong). Between subjects: a reviewer is in one arm."""
    rng = np.random.default_rng(seed)
    item_effect = item_sd * rng.standard_normal(n_items)
    # 0 AI right (60%), 1 AI wrong (20%), 2 no gold (20%), every split present.
    item_split = rng.permutation(np.array([0, 0, 1, 0, 2])[np.arange(n_items) % 5])
    columns = {k: [] for k in ("agree", "arm", "split", "reviewer", "item")}
    for arm, mean in enumerate((0.2, 0.8, 1.2)):
        for r in range(reviewers_per_arm):
            logit = mean + reviewer_sd * rng.standard_normal() + item_effect - 0.7 * (item_split == 1)
            columns["agree"].append((rng.random(n_items) < expit(logit)).astype(int))
            columns["arm"].append(np.full(n_items, arm))
            columns["split"].append(item_split)
            columns["reviewer"].append(np.full(n_items, 1000 + arm * 100 + r))
            columns["item"].append(np.arange(n_items) + 7)
    return {k: np.concatenate(v) for k, v in columns.items()}


def model(data: dict, **kwargs) -> dict:
    return effect_model(
        data["agree"], data["arm"], data["split"], data["reviewer"], data["item"], ARMS, CONTRASTS, **kwargs
    )


def row(result: dict, kind: str, split: str, first: str = "recommendation") -> dict:
    return next(r for r in result["contrasts"] if r["kind"] == kind and r["split"] == split and r["first"] == first)


class TestAgainstStatsmodels:
    def test_it_equals_the_full_glm_fit_with_two_way_clusters(self):
        data = crossed_study(1, item_sd=0.8)
        fit = CellFit(data["agree"].astype(float), data["arm"], data["split"], data["reviewer"], data["item"], 3)
        cell = data["arm"] * 3 + data["split"]
        exog = np.eye(9)[cell]
        reference = sm.GLM(data["agree"], exog, family=sm.families.Binomial()).fit(
            cov_type="cluster", cov_kwds={"groups": np.column_stack([data["reviewer"], data["item"]])}
        )
        assert fit.fitted.all()
        np.testing.assert_allclose(np.log(fit.p / (1 - fit.p)), reference.params, atol=1e-8)
        np.testing.assert_allclose(fit.cov_unadjusted, reference.cov_params(), rtol=1e-7, atol=1e-12)
        # What is used is the nearest positive semi-definite matrix (CGM 2011, sec. 2.3): the
        # same where statsmodels' matrix already is one.
        if np.linalg.eigvalsh(reference.cov_params()).min() >= 0:
            np.testing.assert_allclose(fit.cov, reference.cov_params(), rtol=1e-7, atol=1e-12)
        else:
            assert fit.psd_adjusted and np.linalg.eigvalsh(fit.cov).min() > -1e-12

    def test_the_one_way_reviewer_covariance_is_the_sandwich_written_out(self):
        # H^-1 (sum over reviewers of u_g u_g') H^-1 * G/(G-1) * (N-1)/(N-K), the CRV1 of
        # Cameron & Miller (2015, eq. 11 with the Stata-style factor), by explicit loops.
        data = crossed_study(2, reviewers_per_arm=4, n_items=15)
        fit = CellFit(data["agree"].astype(float), data["arm"], data["split"], data["reviewer"], data["item"], 3)
        cell = data["arm"] * 3 + data["split"]
        k, n = 9, len(cell)
        p = np.array([data["agree"][cell == c].mean() for c in range(k)])
        bread = np.diag([1 / ((cell == c).sum() * p[c] * (1 - p[c])) for c in range(k)])
        meat = np.zeros((k, k))
        reviewers = np.unique(data["reviewer"])
        for g in reviewers:
            u = np.zeros(k)
            for i in np.flatnonzero(data["reviewer"] == g):
                u[cell[i]] += data["agree"][i] - p[cell[i]]
            meat += np.outer(u, u)
        g = len(reviewers)
        expected = bread @ meat @ bread * g / (g - 1) * (n - 1) / (n - k)
        np.testing.assert_allclose(fit.cov_reviewer, expected, rtol=1e-10)


class TestEffectSizes:
    def test_a_two_by_two_table_worked_by_hand(self):
        # recommendation 30/50 agree, control 20/50, each arm spread over 5 reviewers and
        # 10 items, all items with the AI right.
        agree, arm, reviewer, item = [], [], [], []
        for a, hits in ((0, 20), (1, 30)):
            outcomes = np.zeros(50, int)
            outcomes[np.random.default_rng(a).permutation(50)[:hits]] = 1
            agree.append(outcomes)
            arm.append(np.full(50, a))
            reviewer.append(a * 10 + np.arange(50) % 5)
            item.append(np.arange(50) // 5)
        data = {
            "agree": np.concatenate(agree),
            "arm": np.concatenate(arm),
            "split": np.zeros(100, int),
            "reviewer": np.concatenate(reviewer),
            "item": np.concatenate(item),
        }
        out = row(
            effect_model(
                data["agree"],
                data["arm"],
                data["split"],
                data["reviewer"],
                data["item"],
                ARMS[:2],
                [("deference", 1, 0)],
                splits=("ai_right",),
            ),
            "deference",
            "ai_right",
        )
        assert out["odds_ratio"]["value"] == pytest.approx((0.6 / 0.4) / (0.4 / 0.6))  # 2.25
        assert out["risk_ratio"]["value"] == pytest.approx(1.5)
        assert out["risk_difference"]["value"] == pytest.approx(0.2)
        # Cohen (1988), table 6.2.1: phi(0.60) = 1.7722, phi(0.40) = 1.3694, h = 0.4028 (rounded).
        assert out["cohens_h"]["value"] == pytest.approx(1.7722 - 1.3694, abs=2e-4)
        # The intervals are the delta method around each, at t(min(G) - 1) = t(9).
        quantile = stats.t.ppf(0.975, 9)
        se = out["se_log_or"]["two_way"]
        assert out["odds_ratio"]["low"] == pytest.approx(2.25 * math.exp(-quantile * se))
        assert out["odds_ratio"]["high"] == pytest.approx(2.25 * math.exp(quantile * se))
        assert out["p_model"] == pytest.approx(2 * stats.t.sf(math.log(2.25) / se, 9))

    def test_intervals_follow_the_confidence(self):
        data = crossed_study(3)
        narrow = row(model(data, confidence=0.8), "deference", "all")["risk_difference"]
        wide = row(model(data, confidence=0.99), "deference", "all")["risk_difference"]
        assert narrow["value"] == wide["value"]
        assert wide["low"] < narrow["low"] < narrow["value"] < narrow["high"] < wide["high"]

    def test_the_all_split_is_the_pooled_rate_of_every_cell(self):
        data = crossed_study(4)
        out = row(model(data), "deference", "all")
        for arm, rate in ((1, out["rate_first"]), (0, out["rate_second"])):
            assert rate == pytest.approx(data["agree"][data["arm"] == arm].mean())


class TestCrossedClusters:
    def test_two_way_errors_are_wider_than_one_way_when_items_matter(self):
        # Items shift everyone's agreement (sd 1.0 on the logit scale): an arm's rate then
        # varies with the items drawn as well as the reviewers, and clustering by reviewer
        # alone misses that part (about 30% of the standard error here). Positive control:
        # without an item effect the two-way and the one-way errors agree.
        def ratio(item_sd: float, seed: int) -> float:
            data = crossed_study(seed, item_sd=item_sd)
            fit = CellFit(data["agree"].astype(float), data["arm"], data["split"], data["reviewer"], data["item"], 3)
            return float(np.median(np.sqrt(np.diag(fit.cov) / np.diag(fit.cov_reviewer))))

        with_items = [ratio(1.0, seed) for seed in range(20)]
        without = [ratio(0.0, seed) for seed in range(20)]
        assert np.median(with_items) > 1.15 and min(with_items) > 1
        assert 0.93 < np.median(without) < 1.05

    def test_items_nested_in_arms_widen_the_contrast_and_shared_items_do_not(self):
        # The arm contrast is another matter. When every item is seen in every arm (crossed),
        # an item's pull moves both arms alike and cancels from the difference: the two-way
        # error is no wider than the reviewer-only one (here a little narrower). When each item
        # is seen in one arm only (nested), it does not cancel, and only the two-way error sees it.
        def ratio(item_sd: float, seed: int, nested: bool) -> float:
            data = crossed_study(seed, item_sd=item_sd, n_items=90)
            if nested:
                keep = data["item"] % 3 == data["arm"]
                data = {k: v[keep] for k, v in data.items()}
            se = row(model(data), "deference", "ai_right")["se_log_or"]
            return se["two_way"] / se["reviewer"]

        assert np.median([ratio(1.0, seed, nested=True) for seed in range(20)]) > 1.2
        assert np.median([ratio(0.0, seed, nested=True) for seed in range(20)]) < 1.05
        assert np.median([ratio(1.0, seed, nested=False) for seed in range(20)]) < 1.0

    def test_a_contrast_below_the_few_cluster_line_says_so(self):
        few = row(model(crossed_study(5, reviewers_per_arm=4)), "deference", "all")
        many = row(model(crossed_study(5, reviewers_per_arm=FEW_CLUSTERS)), "deference", "all")
        assert few["few_clusters"] is True and many["few_clusters"] is False
        assert "Cameron & Miller 2015" in model(crossed_study(5))["caveat"]


class TestRefusals:
    def test_separation_is_refused_with_its_reason(self):
        data = crossed_study(6)
        data["agree"][(data["arm"] == 2) & (data["split"] == 1)] = 1  # everyone agrees when the AI is wrong
        result = model(data)
        refused = row(result, "deference", "ai_wrong", first="rationale")
        assert "separation" in refused["reason"] and "odds_ratio" not in refused
        assert "separation" in row(result, "deference", "all", first="rationale")["reason"]
        # Positive control: the same contrast in the other split, and the other arm, are fine.
        assert "reason" not in row(result, "deference", "ai_right", first="rationale")
        assert "reason" not in row(result, "deference", "ai_wrong")

    def test_an_arm_with_a_single_reviewer_is_refused(self):
        data = crossed_study(7)
        lone = (data["arm"] == 1) & (data["reviewer"] != 1100)
        data = {k: v[~lone] for k, v in data.items()}
        result = model(data)
        assert row(result, "deference", "all")["reason"].startswith("too few reviewers (1) in arm recommendation")
        assert "reason" not in row(result, "deference", "all", first="rationale")

    def test_an_arm_below_the_study_s_minimum_of_reviewers_is_refused(self):
        data = crossed_study(10, reviewers_per_arm=4)
        refused = row(model(data, min_reviewers=5), "deference", "all")
        assert refused["reason"] == "too few reviewers (4) in arm control for an interval (the study's minimum is 5)"
        assert "odds_ratio" in row(model(data, min_reviewers=4), "deference", "all")  # positive control

    def test_an_empty_arm_is_refused(self):
        data = crossed_study(8)
        keep = data["arm"] != 1
        result = model({k: v[keep] for k, v in data.items()})
        assert row(result, "deference", "all")["reason"] == "no answered labels in arm recommendation (all items)"
        assert row(result, "deference", "ai_wrong")["reason"] == "no answered labels in arm recommendation (AI wrong)"
        assert "reason" not in row(result, "deference", "all", first="rationale")

    def test_a_single_cluster_refuses_the_whole_model(self):
        data = crossed_study(9)
        one = data["reviewer"] == 1000
        result = model({k: v[one] for k, v in data.items()})
        assert "two-way clustering needs at least two" in result["reason"]
        assert result["contrasts"] == []

    @pytest.mark.parametrize(
        "change, message",
        [
            ({"agree": np.full(4, 0.5)}, "0/1"),
            ({"arm": np.array([0.0, 1.0, 0.0, 1.0])}, "whole-number"),
            ({"arm": np.array([0, 1, 5, 1])}, "arm_names"),
            ({"split": np.array([0, 3, 0, 1])}, "split"),
        ],
    )
    def test_bad_inputs_are_errors(self, change, message):
        data = {
            "agree": np.array([0, 1, 1, 0]),
            "arm": np.array([0, 1, 0, 1]),
            "split": np.zeros(4, int),
            "reviewer": np.arange(4),
            "item": np.arange(4),
        }
        model(data)  # positive control: valid as it is
        with pytest.raises(ValueError, match=message):
            model({**data, **change})

    @pytest.mark.parametrize("confidence", [1.0, 0.0, float("nan"), "0.95"])
    def test_a_confidence_outside_0_1_is_an_error(self, confidence):
        with pytest.raises(ValueError, match="confidence"):
            model(crossed_study(1, reviewers_per_arm=2, n_items=5), confidence=confidence)


class TestShown:
    """The panel, the dashboard, agreement.csv and its JSON twin, on the hand-worked study of
    tests/builders.py (two control and two rationale reviewers, four items): there the model
    gives numbers where the AI was wrong (rationale 3 of 4 agree, control 1 of 4: odds ratio
    (3/1) / (1/3) = 9) and refuses the rest with its reason. Two reviewers an arm are below the
    default minimum for an interval (5), so these studies lower it to 2 (the study setting)."""

    @pytest.fixture
    def labelled(self, labelled):
        labelled.min_reviewers_for_interval = 2
        labelled.save(update_fields=["min_reviewers_for_interval"])
        return labelled

    def test_at_the_default_minimum_the_table_gives_the_reason_instead(self, client, study, researcher):
        make_labelled(study)  # min_reviewers_for_interval as a new study has it
        compute_metrics(study)
        client.force_login(researcher)
        page = client.get("/studies/refunds/metrics/").content.decode()
        assert "too few reviewers (2) in arm control for an interval (the study&#x27;s minimum is 5)" in page
        assert "9.00 [" not in page

    def test_the_study_page_panel_has_the_table(self, client, labelled, researcher):
        compute_metrics(labelled)
        client.force_login(researcher)
        page = client.get("/studies/refunds/metrics/").content.decode()
        assert 'id="effects-table"' in page
        assert 'data-contrast="rationale vs control" data-split="AI wrong"' in page
        assert "9.00 [" in page and "+50.0 pp [" in page and "3.00 [" in page  # OR, RD, RR
        assert "separation: all of the 4 labels in arm rationale (AI right) agree with the AI" in page
        assert "no answered labels in arm recommendation" in page
        assert "few reviewers: model intervals may be too narrow" in page
        assert "draws, ± its Monte Carlo standard error" in page and "whole allocation re-run: " in page

    def test_the_dashboard_shows_the_same_table(self, client, labelled, researcher):
        compute_metrics(labelled)
        client.force_login(researcher)
        page = client.get("/studies/refunds/dashboard/").content.decode()
        assert 'id="effects-table"' in page and "9.00 [" in page

    def test_a_run_stored_before_the_effect_model_still_renders(self, client, labelled, researcher):
        run = compute_metrics(labelled)
        del run.result["effects"]
        run.save(update_fields=["result"])
        client.force_login(researcher)
        for url in ("/studies/refunds/metrics/", "/studies/refunds/dashboard/"):
            response = client.get(url)
            assert response.status_code == 200 and b"effects-table" not in response.content
        rows = csv_dicts(client.get("/studies/refunds/exports/agreement.csv"))
        assert rows and not [
            r
            for r in rows
            if r["metric"].startswith(("deference_odds", "deference_p_", "narrative_odds", "narrative_p_"))
        ]

    def test_agreement_csv_has_a_row_per_measure_with_numbers_or_the_reason(self, client, labelled, researcher):
        compute_metrics(labelled)
        client.force_login(researcher)
        rows = csv_dicts(client.get("/studies/refunds/exports/agreement.csv"))
        mine = {(r["arm"], r["metric"], r["split"]): r for r in rows}
        odds = mine[("rationale", "deference_odds_ratio", "ai_wrong")]
        assert float(odds["estimate"]) == pytest.approx(9.0) and float(odds["ci_low"]) < 9 < float(odds["ci_high"])
        assert odds["n"] == "8" and "Cameron, Gelbach & Miller" in odds["method"]
        assert float(mine[("rationale", "deference_cohens_h", "ai_wrong")]["estimate"]) == pytest.approx(
            2 * math.asin(math.sqrt(0.75)) - 2 * math.asin(math.sqrt(0.25))
        )
        refused = mine[("rationale", "deference_odds_ratio", "ai_right")]
        assert refused["estimate"] == "" and refused["method"].startswith("separation")
        test = mine[("rationale", "deference_p_randomization", "all")]
        assert 0 < float(test["ci_low"]) <= float(test["estimate"]) <= float(test["ci_high"]) <= 1
        assert "re-allocations, monte carlo se" in test["method"]
        data = client.get("/studies/refunds/exports/agreement.json").json()
        typed = [
            r
            for r in data["rows"]
            if (r["arm"], r["metric"], r["split"]) == ("rationale", "deference_odds_ratio", "ai_wrong")
        ]
        assert typed[0]["estimate"] == pytest.approx(9.0)
