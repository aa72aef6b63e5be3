"""The cluster bootstrap over reviewers: hand-checked cases and a simulated study with known truth.

The simulated study is the generative model the bootstrap has to survive: three arms
(control, recommendation, rationale) of 60 reviewers, each reviewer with a random intercept
on the logit scale (sd 0.8) and 150 labels. The true deference effect is the difference of
the arms' marginal agreement rates, E[expit(mu + sd * Z)] with Z standard normal, computed
by numerical integration: the population-averaged effect the pooled rates estimate, not
the difference of expit(mu) (which is the effect for a median reviewer).
"""

from __future__ import annotations

import time
from functools import cache

import numpy as np
import pytest
from scipy import integrate, stats
from scipy.special import expit

from reviewapp.metrics.stats.clustered import (
    cluster_bootstrap_contrast,
    deference_effect,
    design_effect,
    narrative_increment,
)
from reviewapp.metrics.stats.intervals import Estimate, difference

SD = 0.8  # between-reviewer sd of the logit of agreeing with the AI
REVIEWERS = 60  # per arm
LABELS = 150  # per reviewer
MEAN_LOGIT = {"control": 0.2, "recommendation": 0.9, "rationale": 1.4}
REPLICATIONS = 200


def marginal_rate(mean_logit: float, sd: float = SD) -> float:
    """E[expit(mean_logit + sd * Z)], Z ~ N(0, 1): the population share of labels agreeing with the AI."""
    value, _ = integrate.quad(lambda z: expit(mean_logit + sd * z) * stats.norm.pdf(z), -np.inf, np.inf, epsabs=1e-13)
    return value


def simulate_arm(
    rng: np.random.Generator, mean_logit: float, sd: float = SD, reviewers: int = REVIEWERS, labels: int = LABELS
) -> tuple[np.ndarray, np.ndarray]:
    """(hits, trials) per reviewer: each reviewer agrees with their own probability."""
    p = expit(mean_logit + sd * rng.standard_normal(reviewers))
    return rng.binomial(labels, p), np.full(reviewers, labels)


def covers(estimate: Estimate, truth: float) -> bool:
    return estimate.low <= truth <= estimate.high


@cache
def coverage() -> dict[str, float]:
    """Share of REPLICATIONS simulated studies whose 95% interval covers the true effect."""
    true_deference = marginal_rate(MEAN_LOGIT["recommendation"]) - marginal_rate(MEAN_LOGIT["control"])
    true_increment = marginal_rate(MEAN_LOGIT["rationale"]) - marginal_rate(MEAN_LOGIT["recommendation"])
    hits = {"deference": 0, "increment": 0, "naive deference": 0, "naive increment": 0}
    for replication in range(REPLICATIONS):
        rng = np.random.default_rng(10_000 + replication)
        arms = {name: simulate_arm(rng, mean_logit) for name, mean_logit in MEAN_LOGIT.items()}
        control, recommendation, rationale = arms["control"], arms["recommendation"], arms["rationale"]
        hits["deference"] += covers(deference_effect(recommendation, control, seed=replication), true_deference)
        hits["increment"] += covers(
            narrative_increment(rationale, recommendation, control, seed=replication), true_increment
        )
        # The naive interval: every label an independent observation (Newcombe 1998).
        pooled = {name: (int(h.sum()), int(t.sum())) for name, (h, t) in arms.items()}
        hits["naive deference"] += covers(difference(*pooled["recommendation"], *pooled["control"]), true_deference)
        hits["naive increment"] += covers(difference(*pooled["rationale"], *pooled["recommendation"]), true_increment)
    return {name: count / REPLICATIONS for name, count in hits.items()}


class TestClusteredIntervals:
    def test_it_contrasts_the_pooled_rates_of_the_arms(self):
        arm = (np.array([3, 5]), np.array([10, 10]))
        control = (np.array([1, 2, 0]), np.array([5, 5, 0]))
        estimate = deference_effect(arm, control)
        # Arm: (3 + 5) / (10 + 10) = 0.4; control: (1 + 2) / (5 + 5) = 0.3 (the reviewer
        # with no trials drops out); 0.4 - 0.3 = 0.1 over 30 labels.
        assert estimate.value == pytest.approx(0.1, abs=1e-15)
        assert estimate.n == 30
        assert estimate.method == "cluster bootstrap over reviewers, percentile, 2000 resamples"
        assert estimate.low < estimate.value < estimate.high

    def test_it_resamples_whole_reviewers_independently_within_each_arm(self):
        arm = (np.array([3, 5, 9, 2]), np.array([10, 10, 12, 4]))
        control = (np.array([1, 2, 0, 4, 4]), np.array([5, 5, 0, 9, 6]))
        estimate = deference_effect(arm, control, n_resamples=500, seed=7)
        # The same bootstrap by hand: draw 4 of each arm's 4 reviewers (control's reviewer
        # without trials dropped) with replacement, arm first, as scipy.stats.bootstrap
        # does with paired=False; the 2.5% and 97.5% quantiles of the contrast. This pins
        # scipy's draw order: if a scipy upgrade fails only this test, the order changed.
        rng = np.random.default_rng(7)
        hits, trials = arm[0].astype(float), arm[1].astype(float)
        control_hits, control_trials = np.array([1.0, 2.0, 4.0, 4.0]), np.array([5.0, 5.0, 9.0, 6.0])
        i, j = rng.integers(0, 4, (500, 4)), rng.integers(0, 4, (500, 4))
        contrasts = hits[i].sum(1) / trials[i].sum(1) - control_hits[j].sum(1) / control_trials[j].sum(1)
        assert (estimate.low, estimate.high) == pytest.approx(np.quantile(contrasts, [0.025, 0.975]), rel=1e-12)

    def test_it_drops_reviewers_without_trials(self):
        arm = (np.array([3, 5, 4]), np.array([10, 10, 9]))
        with_empty = (np.array([1, 0, 2, 0]), np.array([5, 0, 5, 0]))
        without = (np.array([1, 2]), np.array([5, 5]))
        assert deference_effect(arm, with_empty) == deference_effect(arm, without)

    def test_it_gives_the_same_interval_for_the_same_seed(self):
        rng = np.random.default_rng(1)
        arm, control = simulate_arm(rng, 0.9), simulate_arm(rng, 0.2)
        assert deference_effect(arm, control, seed=3) == deference_effect(arm, control, seed=3)
        assert deference_effect(arm, control, seed=3).low != deference_effect(arm, control, seed=4).low

    def test_it_calls_a_contrast_with_an_empty_arm_undefined(self):
        arm = (np.array([3, 5]), np.array([10, 10]))
        estimate = deference_effect(arm, (np.array([0, 0]), np.array([0, 0])))
        method = "cluster bootstrap over reviewers, percentile, 2000 resamples"
        assert estimate == Estimate(None, None, None, 20, method)
        assert deference_effect(arm, (np.array([]), np.array([]))).value is None

    def test_it_gives_a_single_reviewer_a_value_without_an_interval(self):
        # One reviewer: nothing to say about the spread between reviewers.
        estimate = deference_effect((np.array([3, 5]), np.array([10, 10])), (np.array([1]), np.array([5])))
        assert estimate.value == pytest.approx(0.4 - 0.2) and estimate.low is None and estimate.high is None

    def test_it_gives_reviewers_without_spread_a_point_interval(self):
        everyone = (np.full(5, 10), np.full(5, 10))
        assert deference_effect(everyone, everyone) == Estimate(
            0.0, 0.0, 0.0, 100, "cluster bootstrap over reviewers, percentile, 2000 resamples"
        )

    def test_it_refuses_impossible_counts(self):
        with pytest.raises(ValueError, match="hits <= trials"):
            deference_effect((np.array([11, 1]), np.array([10, 10])), (np.array([1, 1]), np.array([5, 5])))
        with pytest.raises(ValueError, match="weights"):
            cluster_bootstrap_contrast([(np.array([1, 1]), np.array([5, 5]))], [1.0, -1.0])

    def test_it_weighs_a_general_contrast(self):
        rng = np.random.default_rng(2)
        arms = [simulate_arm(rng, mean_logit) for mean_logit in MEAN_LOGIT.values()]
        rates = [h.sum() / t.sum() for h, t in arms]
        estimate = cluster_bootstrap_contrast(arms, [0.5, 0.5, -1.0], n_resamples=500)
        assert estimate.value == pytest.approx(0.5 * rates[0] + 0.5 * rates[1] - rates[2])
        assert estimate.n == 3 * REVIEWERS * LABELS

    def test_it_lets_the_control_cancel_from_the_narrative_increment(self):
        rng = np.random.default_rng(3)
        control, recommendation, rationale = (simulate_arm(rng, mean_logit) for mean_logit in MEAN_LOGIT.values())
        increment = narrative_increment(rationale, recommendation, control, seed=5)
        # (r_rat - r_ctl) - (r_rec - r_ctl) = r_rat - r_rec, with the same interval whatever the control.
        assert increment == deference_effect(rationale, recommendation, seed=5)
        assert increment == narrative_increment(rationale, recommendation, simulate_arm(rng, -2.0), seed=5)

    def test_it_runs_a_three_arm_study_of_a_million_labels_in_a_tenth_of_a_second(self):
        rng = np.random.default_rng(4)
        # 3 arms x 67 reviewers x 5000 labels = 1,005,000 labels.
        control, recommendation, rationale = (
            simulate_arm(rng, mean_logit, reviewers=67, labels=5000) for mean_logit in MEAN_LOGIT.values()
        )
        timings = []
        for _ in range(3):  # best of three, so a busy machine does not fail the test
            start = time.perf_counter()
            deference_effect(recommendation, control)
            deference_effect(rationale, control)
            narrative_increment(rationale, recommendation, control)
            timings.append(time.perf_counter() - start)
        assert min(timings) < 0.1

    def test_it_takes_the_true_effect_from_the_marginal_rates(self):
        # The integral agrees with a large simulation of the same model ...
        z = np.random.default_rng(5).standard_normal(2_000_000)
        assert marginal_rate(0.9) == pytest.approx(expit(0.9 + SD * z).mean(), abs=1e-3)
        # ... and differs from the naive difference of expit(mean logit), the median reviewer's
        # effect (0.161 vs 0.145 here), by more than a cluster-bootstrap interval's precision.
        true_effect = marginal_rate(0.9) - marginal_rate(0.2)
        assert expit(0.9) - expit(0.2) - true_effect > 0.01

    def test_it_covers_the_true_deference_effect_in_a_simulated_study(self):
        # 200 simulated studies; with 3000 the coverage of both effects is 0.94-0.95.
        assert coverage()["deference"] >= 0.90
        assert coverage()["increment"] >= 0.90

    def test_it_shows_the_naive_interval_covers_far_less_often(self):
        # Treating 9000 labels per arm as independent ignores a design effect near 18:
        # the Newcombe interval is about 4 times too narrow and covers in roughly a third of studies.
        assert coverage()["naive deference"] < 0.75
        assert coverage()["naive increment"] < 0.75

    def test_it_measures_the_design_effect_kish_predicts(self):
        mean_logit = MEAN_LOGIT["control"]
        # Intraclass correlation of the binary labels: Var(p_i) / (p(1 - p)), p_i the
        # reviewers' probabilities; Kish (1965): Deff = 1 + (m - 1) rho for m labels each.
        p = marginal_rate(mean_logit)
        second_moment, _ = integrate.quad(
            lambda z: expit(mean_logit + SD * z) ** 2 * stats.norm.pdf(z), -np.inf, np.inf, epsabs=1e-13
        )
        rho = (second_moment - p**2) / (p * (1 - p))
        kish = 1 + (LABELS - 1) * rho  # about 19 here
        effects = [
            design_effect(*simulate_arm(np.random.default_rng(seed), mean_logit), seed=seed) for seed in range(20)
        ]
        assert min(effects) > 2
        assert np.mean(effects) == pytest.approx(kish, rel=0.15)

    def test_it_measures_a_design_effect_near_one_without_reviewer_differences(self):
        effects = [
            design_effect(*simulate_arm(np.random.default_rng(seed), 0.5, sd=0.0), seed=seed) for seed in range(20)
        ]
        # One arm of 60 reviewers estimates it within about ±0.2; the mean of 20 within ±0.05.
        assert np.mean(effects) == pytest.approx(1.0, abs=0.15)

    def test_it_takes_the_design_effect_as_a_ratio_of_variances(self):
        hits, trials = simulate_arm(np.random.default_rng(6), 0.2)
        p, n = hits.sum() / trials.sum(), trials.sum()
        # The ideal bootstrap variance of a ratio over k resampled clusters is
        # sum_i (h_i - p t_i)^2 / T^2 (nonparametric delta method; Davison & Hinkley 1997);
        # 20,000 resamples estimate it to within about 1%.
        variance = np.sum((hits - p * trials) ** 2) / n**2
        expected = variance / (p * (1 - p) / n)
        assert design_effect(hits, trials, n_resamples=20_000) == pytest.approx(expected, rel=0.05)

    def test_it_takes_the_same_options_for_the_design_effect_as_for_a_contrast(self):
        hits, trials = simulate_arm(np.random.default_rng(7), 0.2)
        options = {"n_resamples": 500, "confidence": 0.9, "seed": 1}
        assert design_effect(hits, trials, **options) == design_effect(hits, trials, n_resamples=500, seed=1)
        assert cluster_bootstrap_contrast([(hits, trials)], [1.0], **options).n == trials.sum()

    def test_it_calls_the_design_effect_undefined_without_spread_to_measure(self):
        assert design_effect(np.array([10, 10]), np.array([10, 10])) is None  # rate 1: no binomial variance
        assert design_effect(np.array([3]), np.array([10])) is None  # one reviewer
        assert design_effect(np.array([0, 0]), np.array([0, 0])) is None  # no trials
