"""Coverage of the reviewer-cluster intervals in simulated studies with known truth (issue 15).

Each simulated arm has G reviewers whose own agreement rates are drawn from a beta distribution
with mean MU and intraclass correlation ICC = 1 / (a + b + 1) (the beta-binomial model; Griffiths
1973), each reviewer labelling 20 to 60 items: unequal cluster sizes, as in a real study. The
true rate of an arm is MU (cluster sizes are drawn independently of the rates, so the pooled rate
estimates MU). Seeded, so every run gives the same figures; REPLICATIONS studies put the Monte
Carlo standard error of a 95% coverage at sqrt(0.95 * 0.05 / 2000) = 0.5 points, so the 93-97%
band the issue asks for is four standard errors either side.

Measured (printed by ``python -m tests.metrics.test_coverage``): the figures are in the
comments of the tests and in docs/design.md, "Intervals".
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from reviewapp.metrics.stats.cluster_robust import cluster_difference, cluster_rate
from reviewapp.metrics.stats.cluster_robust import design_effect as cluster_design_effect
from reviewapp.metrics.stats.intervals import proportion

ICC = 0.1
REPLICATIONS = 2000
RATES = {"control": 0.5, "recommendation": 0.7}


def simulate_arm(rng: np.random.Generator, reviewers: int, mu: float, icc: float = ICC) -> tuple:
    """(hits, trials) per reviewer: beta-distributed reviewer rates with the given ICC."""
    strength = 1 / icc - 1  # a + b
    rates = rng.beta(mu * strength, (1 - mu) * strength, reviewers)
    trials = rng.integers(20, 61, reviewers)
    return rng.binomial(trials, rates), trials


@cache
def coverage(reviewers: int, seed: int = 0) -> dict[str, float]:
    """Share of REPLICATIONS simulated studies whose nominal 95% interval covers the truth."""
    rng = np.random.default_rng(seed)
    truth = RATES["recommendation"] - RATES["control"]
    hits = {"rate": 0, "wilson": 0, "difference": 0}
    for _ in range(REPLICATIONS):
        control = simulate_arm(rng, reviewers, RATES["control"])
        arm = simulate_arm(rng, reviewers, RATES["recommendation"])
        rate = cluster_rate(*arm)
        hits["rate"] += rate.low <= RATES["recommendation"] <= rate.high
        naive = proportion(int(arm[0].sum()), int(arm[1].sum()))
        hits["wilson"] += naive.low <= RATES["recommendation"] <= naive.high
        difference = cluster_difference(arm, control)
        hits["difference"] += difference.low <= truth <= difference.high
    return {name: count / REPLICATIONS for name, count in hits.items()}


class TestCoverage:
    @pytest.mark.parametrize("reviewers", [20, 40])
    def test_an_arms_rate_interval_covers_the_true_rate_95_percent_of_the_time(self, reviewers):
        # Measured: 94.7% at 20 reviewers an arm, 95.75% at 40 (96.5% at 5, 94.75% at 10).
        assert 0.93 <= coverage(reviewers)["rate"] <= 0.97

    @pytest.mark.parametrize("reviewers", [20, 40])
    def test_the_deference_effect_interval_covers_the_true_effect_95_percent_of_the_time(self, reviewers):
        # Measured: 95.8% at 20 reviewers an arm, 95.5% at 40 (98.1% at 5, 95.65% at 10).
        assert 0.93 <= coverage(reviewers)["difference"] <= 0.97

    def test_the_label_level_interval_does_not(self):
        # The reason for the cluster interval (issue 15: 59-79%): labels treated as independent.
        # Measured: 61.1% at 20 reviewers an arm, 62.35% at 40 (design effect about 5). Also the positive control that
        # this simulation can tell a failing interval from a working one.
        assert coverage(20)["wilson"] < 0.80 and coverage(40)["wilson"] < 0.80

    def test_the_guard_stops_intervals_below_the_minimum_and_only_there(self):
        rng = np.random.default_rng(1)
        for reviewers in (1, 2, 3, 4):
            for _ in range(200):
                arm, control = simulate_arm(rng, reviewers, 0.7), simulate_arm(rng, 20, 0.5)
                for estimate in (cluster_rate(*arm), cluster_difference(arm, control)):
                    assert estimate.value is not None and estimate.low is None and estimate.high is None
                    assert estimate.note == f"too few reviewers ({reviewers}) for an interval"
                assert cluster_design_effect(*arm)[0] is None
        # Positive control: at the default minimum of 5 every simulated arm has its interval, of
        # positive width, and a study that asks for 10 gets none at 8.
        for _ in range(200):
            arm, control = simulate_arm(rng, 5, 0.7), simulate_arm(rng, 5, 0.5)
            for estimate in (cluster_rate(*arm), cluster_difference(arm, control)):
                assert estimate.low < estimate.high and estimate.note is None
            assert cluster_rate(*simulate_arm(rng, 8, 0.7), min_reviewers=10).low is None

    def test_a_design_effect_below_one_is_never_reported_as_real(self):
        # Two to six reviewers with no real clustering (ICC near 0): the CR2 ratio often comes out
        # below 1 by chance; it is reported as 1 with a note, or not at all.
        rng = np.random.default_rng(2)
        clipped = 0
        for _ in range(500):
            hits, trials = simulate_arm(rng, int(rng.integers(2, 7)), 0.6, icc=1e-4)
            deff, note = cluster_design_effect(hits, trials, min_reviewers=2)
            assert deff is None or deff >= 1.0
            clipped += deff == 1.0 and note is not None and "below 1" in note
        assert clipped > 100  # positive control: the clipping is exercised, not vacuous
