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

from reviewapp.metrics.stats.cluster_robust import cluster_rate, cr2_variance
from reviewapp.metrics.stats.cluster_robust import design_effect as cluster_design_effect
from reviewapp.metrics.stats.clustered import (
    cluster_bootstrap_contrast,
    deference_effect,
    design_effect,
    narrative_increment,
)
from reviewapp.metrics.stats.intervals import Estimate, difference, proportion

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


def bootstrap_difference(first, second, **options) -> Estimate:
    """rate(first) - rate(second) by the cluster bootstrap (the general contrast, weights 1 and -1)."""
    return cluster_bootstrap_contrast((first, second), (1.0, -1.0), **options)


class TestClusteredIntervals:
    def test_it_contrasts_the_pooled_rates_of_the_arms(self):
        arm = (np.array([3, 5]), np.array([10, 10]))
        control = (np.array([1, 2, 0]), np.array([5, 5, 0]))
        estimate = bootstrap_difference(arm, control, min_reviewers=2)
        # Arm: (3 + 5) / (10 + 10) = 0.4; control: (1 + 2) / (5 + 5) = 0.3 (the reviewer
        # with no trials drops out); 0.4 - 0.3 = 0.1 over 30 labels.
        assert estimate.value == pytest.approx(0.1, abs=1e-15)
        assert estimate.n == 30
        assert estimate.method == "cluster bootstrap over reviewers, percentile, 2000 resamples"
        assert estimate.low < estimate.value < estimate.high

    def test_it_resamples_whole_reviewers_independently_within_each_arm(self):
        arm = (np.array([3, 5, 9, 2]), np.array([10, 10, 12, 4]))
        control = (np.array([1, 2, 0, 4, 4]), np.array([5, 5, 0, 9, 6]))
        estimate = bootstrap_difference(arm, control, n_resamples=500, seed=7, min_reviewers=2)
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
        for contrast in (bootstrap_difference, deference_effect):
            assert contrast(arm, with_empty, min_reviewers=2) == contrast(arm, without, min_reviewers=2)
            assert contrast(arm, without, min_reviewers=2).low is not None

    def test_it_gives_the_same_interval_for_the_same_seed(self):
        rng = np.random.default_rng(1)
        arm, control = simulate_arm(rng, 0.9), simulate_arm(rng, 0.2)
        assert bootstrap_difference(arm, control, seed=3) == bootstrap_difference(arm, control, seed=3)
        assert bootstrap_difference(arm, control, seed=3).low != bootstrap_difference(arm, control, seed=4).low
        # The small-sample interval draws nothing: the seed does not matter.
        assert deference_effect(arm, control, seed=3) == deference_effect(arm, control, seed=4)

    def test_it_calls_a_contrast_with_an_empty_arm_undefined(self):
        arm = (np.array([3, 5]), np.array([10, 10]))
        estimate = deference_effect(arm, (np.array([0, 0]), np.array([0, 0])))
        assert (estimate.value, estimate.low, estimate.high, estimate.n) == (None, None, None, 20)
        assert deference_effect(arm, (np.array([]), np.array([]))).value is None

    def test_it_gives_a_single_reviewer_a_value_without_an_interval(self):
        # One reviewer: nothing to say about the spread between reviewers.
        estimate = deference_effect((np.array([3, 5]), np.array([10, 10])), (np.array([1]), np.array([5])))
        assert estimate.value == pytest.approx(0.4 - 0.2) and estimate.low is None and estimate.high is None

    def test_it_gives_reviewers_without_spread_no_interval_rather_than_a_point(self):
        # Every reviewer at the same rate: every resample gives 0, and a zero-width interval
        # would claim certainty. The value stands, the reason says why there is no interval.
        everyone = (np.full(5, 10), np.full(5, 10))
        estimate = bootstrap_difference(everyone, everyone)
        assert (estimate.value, estimate.low, estimate.high, estimate.n) == (0.0, None, None, 100)
        assert estimate.note == "no spread between reviewers: interval not estimable"
        # Positive control: with spread, the same five reviewers an arm get an interval.
        spread = (np.array([2, 4, 6, 8, 10]), np.full(5, 10))
        assert bootstrap_difference(spread, everyone).low is not None

    def test_it_gives_equal_rates_a_difference_interval_of_positive_width(self):
        # The deference effect's interval is built from each arm's, which is never a point.
        everyone = (np.full(5, 10), np.full(5, 10))
        estimate = deference_effect(everyone, everyone)
        assert estimate.value == 0.0 and estimate.low < 0.0 < estimate.high and estimate.note is None

    def test_it_gives_no_interval_below_the_minimum_number_of_reviewers(self):
        # Two reviewers an arm (issue 15): the bootstrap interval was narrower than the naive one.
        assert bootstrap_difference((np.array([3, 7]), np.array([10, 10])), (np.full(5, 5), np.full(5, 10))).note == (
            "too few reviewers (2) for an interval"
        )
        two = (np.array([3, 7]), np.array([10, 10]))
        five = (np.array([1, 3, 5, 7, 9]), np.full(5, 10))
        estimate = deference_effect(two, five)
        assert estimate.value == pytest.approx(0.0, abs=1e-12) and estimate.low is None and estimate.high is None
        assert estimate.note == "too few reviewers (2) for an interval" and estimate.n_reviewers == 2
        # Positive control: the same data with the minimum lowered to 2 do get an interval.
        lowered = deference_effect(two, five, min_reviewers=2)
        assert lowered.low < lowered.value < lowered.high and lowered.note is None
        # At the default minimum of 5 a five-reviewer contrast has its interval.
        assert deference_effect(five, five).low is not None
        with pytest.raises(ValueError, match="min_reviewers"):
            deference_effect(five, five, min_reviewers=1)

    def test_it_refuses_nan_none_and_fractional_counts_naming_the_argument(self):
        good = (np.array([1, 3, 5, 7, 9]), np.full(5, 10))
        assert deference_effect(good, good).value == 0.0  # positive control
        with pytest.raises(ValueError, match=r"`first hits`.*NaN"):
            deference_effect((np.array([1, np.nan, 5, 7, 9]), np.full(5, 10)), good)
        with pytest.raises(ValueError, match=r"`second hits`.*fractional"):
            deference_effect(good, (np.array([1, 2.5, 5, 7, 9]), np.full(5, 10)))
        with pytest.raises(ValueError, match="None"):
            deference_effect((None, np.full(5, 10)), good)
        with pytest.raises(ValueError, match="alike"):
            deference_effect((np.array([1, 3]), np.full(5, 10)), good)
        for confidence in (1.0, 0.0, 1.5, float("nan")):
            with pytest.raises(ValueError, match="confidence"):
                deference_effect(good, good, confidence=confidence)

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
        # 200 simulated studies: 96.0% (deference) and 95.0% (increment) with the small-sample
        # interval over reviewers (cluster_robust.cluster_difference); tests/metrics/test_coverage.py
        # holds the 93-97% band with 2000 studies.
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


def cr2_by_matrices(hits: np.ndarray, trials: np.ndarray) -> tuple[float, float]:
    """CR2 variance and Bell-McCaffrey df of the intercept-only regression, label by label, with
    the matrices of Bell & McCaffrey (2002) written out: an independent check of the O(G) formulas."""
    y = np.concatenate([np.r_[np.ones(int(h)), np.zeros(int(t - h))] for h, t in zip(hits, trials, strict=True)])
    cluster = np.repeat(np.arange(len(trials)), trials.astype(int))
    n = len(y)
    x = np.ones((n, 1))
    bread = np.linalg.inv(x.T @ x)
    hat = x @ bread @ x.T
    residual = y - hat @ y
    meat = np.zeros((1, 1))
    blocks = []
    for g in range(len(trials)):
        rows = cluster == g
        values, vectors = np.linalg.eigh(np.eye(rows.sum()) - hat[np.ix_(rows, rows)])
        adjust = vectors @ np.diag(values**-0.5) @ vectors.T
        score = x[rows].T @ adjust @ residual[rows]
        meat += np.outer(score, score)
        column = np.zeros((n, 1))
        column[rows] = adjust @ x[rows] @ bread  # the cluster's contribution to the contrast
        blocks.append(column)
    variance = float((bread @ meat @ bread)[0, 0])
    # V = sum_g (c_g' M y)^2 with c_g the columns above; under y ~ N(., I): eigenvalues of C' M C.
    c = np.hstack(blocks)
    m = np.eye(n) - hat
    eigen = np.linalg.eigvalsh(c.T @ m @ c)
    return variance, float(eigen.sum() ** 2 / (eigen**2).sum())


class TestClusterRate:
    """One arm's rate with its reviewer-cluster interval and the few-cluster guard (stats/cluster_robust.py)."""

    def test_it_matches_the_cr2_variance_and_bell_mccaffrey_df_written_as_matrices(self):
        hits, trials = np.array([2.0, 9, 1, 4, 7, 0]), np.array([5.0, 12, 3, 9, 8, 4])
        rate, variance, df = cr2_variance(hits, trials)
        expected_variance, expected_df = cr2_by_matrices(hits, trials)
        assert rate == pytest.approx(hits.sum() / trials.sum())
        assert variance == pytest.approx(expected_variance, rel=1e-10)
        assert df == pytest.approx(expected_df, rel=1e-10)
        assert df < len(trials) - 1  # unequal clusters: fewer df than G - 1

    def test_it_has_g_minus_one_df_for_equal_clusters(self):
        _, _, df = cr2_variance(np.array([2.0, 4, 6, 8, 10]), np.full(5, 10.0))
        assert df == pytest.approx(4.0)

    def test_it_reproduces_a_hand_computed_interval(self):
        # p = 30/50 = 0.6; residual sums -4, -2, 0, 2, 4; V = 40 / (0.8 * 50^2) = 0.02;
        # binomial 0.24 / 50 = 0.0048, deff = 4.1667; t(4, 0.975) = 2.7764;
        # k = t^2 deff / N = 0.64236; Wilson with z^2/n -> k: centre (0.6 + k/2)/(1 + k),
        # half sqrt(k)/(1 + k) * sqrt(0.24 + k/4).
        estimate = cluster_rate(np.array([2, 4, 6, 8, 10]), np.full(5, 10))
        k = stats.t.ppf(0.975, 4) ** 2 * (0.02 / 0.0048) / 50
        centre, half = (0.6 + k / 2) / (1 + k), np.sqrt(k) / (1 + k) * np.sqrt(0.24 + k / 4)
        assert estimate.value == pytest.approx(0.6)
        assert (estimate.low, estimate.high) == pytest.approx((centre - half, centre + half), rel=1e-12)
        assert (estimate.n, estimate.n_reviewers, estimate.df, estimate.note) == (50, 5, 4.0, None)

    def test_it_is_never_narrower_than_the_label_level_wilson_interval(self):
        rng = np.random.default_rng(11)
        for _ in range(50):
            g = int(rng.integers(5, 30))
            trials = rng.integers(1, 40, g)
            hits = rng.binomial(trials, rng.beta(2, 2))
            cluster = cluster_rate(hits, trials)
            naive = proportion(int(hits.sum()), int(trials.sum()))
            assert cluster.high - cluster.low >= naive.high - naive.low - 1e-12

    def test_it_gives_equal_rates_a_real_interval_and_clips_the_design_effect(self):
        # Every reviewer at 50%: the CR2 variance is 0, which is noise, not certainty.
        hits, trials = np.full(6, 5), np.full(6, 10)
        estimate = cluster_rate(hits, trials)
        assert estimate.low < 0.5 < estimate.high and estimate.note is None
        deff, note = cluster_design_effect(hits, trials)
        assert deff == 1.0 and note.startswith("estimated 0.00, below 1")
        # Positive control: reviewers who differ have a design effect above 1, without a note.
        deff, note = cluster_design_effect(np.array([1, 9, 2, 8, 5, 5]), trials)
        assert deff > 1 and note is None

    def test_it_gives_no_interval_below_the_minimum_number_of_reviewers(self):
        hits, trials = np.array([3, 7, 4, 9]), np.full(4, 10)
        estimate = cluster_rate(hits, trials)
        assert estimate.value == pytest.approx(23 / 40) and estimate.low is None and estimate.high is None
        assert estimate.note == "too few reviewers (4) for an interval"
        assert cluster_design_effect(hits, trials) == (None, "too few reviewers (4) for a design effect")
        # Positive control: the same four reviewers with the minimum lowered to 4.
        lowered = cluster_rate(hits, trials, min_reviewers=4)
        assert lowered.low < lowered.value < lowered.high and lowered.note is None

    def test_it_tells_a_single_reviewer_why_there_is_no_interval(self):
        estimate = cluster_rate(np.array([3]), np.array([10]), min_reviewers=2)
        assert (estimate.value, estimate.low, estimate.high) == (0.3, None, None)
        assert estimate.note == "too few reviewers (1) for an interval"
        assert cluster_rate(np.array([0]), np.array([0])).note == "no labels"

    def test_it_passes_the_confidence_through_and_refuses_one(self):
        hits, trials = np.array([2, 4, 6, 8, 10, 3]), np.full(6, 10)
        at_90, at_95 = cluster_rate(hits, trials, confidence=0.90), cluster_rate(hits, trials, confidence=0.95)
        assert at_95.low < at_90.low < at_90.value == at_95.value < at_90.high < at_95.high
        for confidence in (1.0, 0.0, float("nan"), None):
            with pytest.raises(ValueError, match="`confidence`"):
                cluster_rate(hits, trials, confidence=confidence)

    @pytest.mark.parametrize(
        ("hits", "trials", "message"),
        [
            (None, [10, 10], "`hits` is None"),
            ([1, float("nan")], [10, 10], "`hits` holds NaN"),
            ([1, 2.5], [10, 10], "`hits` holds fractional"),
            ([1, 2], [10, 10, 10], "alike"),
            ([1, 2], [10, float("inf")], "`trials` holds NaN or infinite"),
            ([11, 2], [10, 10], "hits <= trials"),
        ],
    )
    def test_it_refuses_bad_counts_naming_the_argument(self, hits, trials, message):
        assert cluster_rate([1, 2], [10, 10], min_reviewers=2).value == 0.15  # positive control
        with pytest.raises(ValueError, match=message):
            cluster_rate(hits, trials)
