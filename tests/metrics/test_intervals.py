"""Wilson and Newcombe intervals against the published values in the reference file."""

from __future__ import annotations

import numpy as np
import pytest

from reviewapp.metrics.stats.intervals import (
    Estimate,
    check_confidence,
    difference,
    newcombe_interval,
    proportion,
    wilson_interval,
)

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


class TestInputs:
    """Bad inputs raise ValueError naming the argument, instead of a silently wrong interval."""

    def test_it_accepts_whole_counts_of_any_numeric_type(self):
        # Positive control for the refusals below: ints, numpy ints and whole floats all work.
        assert wilson_interval(4, 20) == wilson_interval(np.int64(4), 20.0)
        assert proportion(4.0, np.int32(20)).value == 0.2

    @pytest.mark.parametrize(
        ("count", "n", "argument"),
        [(None, 20, "count"), (float("nan"), 20, "count"), (2.5, 20, "count"), (4, None, "n"), (-1, 20, "count")],
    )
    def test_it_refuses_a_count_that_is_not_a_whole_number(self, count, n, argument):
        with pytest.raises(ValueError, match=f"`{argument}`"):
            wilson_interval(count, n)
        with pytest.raises(ValueError, match=f"`{argument}`"):
            proportion(count, n)

    def test_it_refuses_more_events_than_trials(self):
        with pytest.raises(ValueError, match=r"`count` .* cannot exceed `n`"):
            proportion(21, 20)
        with pytest.raises(ValueError, match="`count2`"):
            difference(1, 5, 6, 5)
        with pytest.raises(ValueError, match="`n1`"):
            newcombe_interval(1, 2.5, 1, 5)

    @pytest.mark.parametrize("confidence", [1.0, 0.0, -0.5, 1.5, float("nan"), None, "0.95", True])
    def test_it_refuses_a_confidence_outside_zero_and_one(self, confidence):
        with pytest.raises(ValueError, match="`confidence`"):
            wilson_interval(4, 20, confidence)
        with pytest.raises(ValueError, match="`confidence`"):
            difference(7, 34, 1, 34, confidence)

    def test_it_passes_the_confidence_through(self):
        # A 90% interval sits inside the 95% one around the same estimate; 0.999 is wider still.
        at_90, at_95, at_999 = (proportion(4, 20, c) for c in (0.90, 0.95, 0.999))
        assert at_999.low < at_95.low < at_90.low < 0.2 < at_90.high < at_95.high < at_999.high
        assert check_confidence(0.95) == 0.95
