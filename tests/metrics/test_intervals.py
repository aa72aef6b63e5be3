"""Wilson and Newcombe intervals against the published values in the reference file."""

from __future__ import annotations

import pytest

from reviewapp.metrics.stats.intervals import Estimate, difference, newcombe_interval, proportion, wilson_interval

from .reference import vector


class TestIntervals:
    @pytest.mark.parametrize("name", ["binom_ci_18_of_20", "binom_ci_4_of_20"])
    def test_it_reproduces_the_wilson_interval_of_r_binom(self, name):
        case = vector(name)
        low, high = wilson_interval(case["data"]["count"], case["data"]["nobs"])
        assert (low, high) == pytest.approx(case["expected"]["wilson"], abs=1e-12)

    def test_it_reproduces_newcombes_hybrid_score_interval_of_fagerland_2015(self):
        case = vector("fagerland2015_diff_7of34_vs_1of34")
        data = case["data"]
        low, high = newcombe_interval(data["count1"], data["nobs1"], data["count2"], data["nobs2"])
        # Printed to three decimals in the paper.
        assert round(low, 3) == case["expected"]["newcombe_hybrid_score"][0]
        assert round(high, 2) == case["expected"]["newcombe_hybrid_score"][1]

    def test_it_gives_an_estimate_with_its_method_and_n(self):
        estimate = proportion(18, 20)
        assert estimate.value == 0.9 and estimate.n == 20 and estimate.method == "wilson"
        assert estimate.low < 0.9 < estimate.high
        assert difference(7, 34, 1, 34).value == pytest.approx(6 / 34)

    def test_it_calls_an_estimate_without_data_undefined_not_zero(self):
        assert proportion(0, 0) == Estimate(None, None, None, 0, "wilson")
        assert difference(1, 2, 0, 0).value is None

    def test_the_interval_of_all_or_nothing_stays_inside_zero_and_one(self):
        assert proportion(0, 10).low == 0.0
        assert proportion(10, 10).high == pytest.approx(1.0)
