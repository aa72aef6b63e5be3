"""Rubber-stamp indicators: hand-computed cases, the expected longest run against simulation,
a simulated room, shrinkage, thresholds and the control arm. Pure: no database."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from reviewapp.metrics.stats.rubber_stamp import (
    AI_INDICATORS,
    DEFAULT_THRESHOLDS,
    INDICATORS,
    MIN_LABELS_TO_FLAG,
    PRIOR_STRENGTH_MAX,
    PRIOR_STRENGTH_MIN,
    beta_binomial_prior,
    expected_longest_run,
    reviewer_indicators,
    schilling_expected_longest_run,
    shrink_proportions,
    shrink_toward_mean,
)

# Brysbaert 2019: 238 words per minute; 119 words take 30 seconds to read.
WPM = 238


def hand_case(reviewer: int = 7) -> dict:
    """One reviewer, ten decisions in submit order 0..9 (see the arithmetic in the tests)."""
    return {
        "reviewer": np.full(10, reviewer),
        "agree": np.array([1, 0, 1, 0, 1, 1, 1, 1, 1, 1], dtype=np.int8),
        "ai_right": np.array([1, 1, 1, 0, 1, 0, 1, -1, 1, -1], dtype=np.int8),
        "is_probe": np.array([0, 0, 0, 0, 0, 1, 0, 1, 0, 0], dtype=bool),
        "seconds": np.array([10, 40, 29.9, np.nan, 31, 5, 60, 30, 100, 20], dtype=float),
        "floor_seconds": np.full(10, 119 / WPM * 60),
        "evidence_opened": np.array([1, 0, 0, 0, 1, 0, 0, 0, 0, 1], dtype=bool),
        "label_code": np.array([0, 0, 1, 2, 0, 0, -1, 0, 1, 0]),
        "order": np.arange(10, dtype=float),
        "n_categories": 3,
    }


def exact_longest_run_by_enumeration(p: float, n: int) -> float:
    total = 0.0
    for bits in range(2**n):
        sequence = [(bits >> i) & 1 for i in range(n)]
        longest = run = 0
        for bit in sequence:
            run = run + 1 if bit else 0
            longest = max(longest, run)
        ones = sum(sequence)
        total += longest * p**ones * (1 - p) ** (n - ones)
    return total


def simulated_longest_runs(p: float, n: int, sequences: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    draws = rng.random((sequences, n)) < p
    run = np.zeros(sequences, dtype=np.int64)
    longest = np.zeros(sequences, dtype=np.int64)
    for column in draws.T:
        run = (run + 1) * column
        np.maximum(longest, run, out=longest)
    return longest


def room(seed: int = 5, careful: int = 30, stamps: int = 3, labels: int = 200) -> dict:
    """Careful reviewers (ids 0..careful-1) and rubber stamps (ids 100..): the stamps agree
    with everything (planted errors included), decide at a third of the reading floor and
    almost never open the evidence. Decisions have three categories."""
    rng = np.random.default_rng(seed)
    ids = [*range(careful), *range(100, 100 + stamps)]
    parts: dict[str, list] = {key: [] for key in hand_case() if key != "n_categories"}
    for reviewer in ids:
        stamp = reviewer >= 100
        probe = rng.random(labels) < 0.1
        ai_right = np.where(probe, 0, (rng.random(labels) < 0.85).astype(np.int8)).astype(np.int8)
        if stamp:
            agree = np.ones(labels, dtype=np.int8)
        else:  # catches most AI errors, sometimes overrules a right AI
            agree = np.where(ai_right == 1, rng.random(labels) < 0.92, rng.random(labels) < 0.2).astype(np.int8)
        ai_label = rng.choice(3, size=labels, p=[0.6, 0.3, 0.1])
        other = (ai_label + rng.integers(1, 3, size=labels)) % 3
        words = rng.integers(60, 400, size=labels)
        floor = words / WPM * 60
        seconds = floor * (0.3 if stamp else rng.lognormal(0.8, 0.4, size=labels))
        parts["reviewer"].append(np.full(labels, reviewer))
        parts["agree"].append(agree)
        parts["ai_right"].append(ai_right)
        parts["is_probe"].append(probe)
        parts["seconds"].append(seconds)
        parts["floor_seconds"].append(floor)
        parts["evidence_opened"].append(rng.random(labels) < (0.02 if stamp else 0.6))
        parts["label_code"].append(np.where(agree == 1, ai_label, other))
        parts["order"].append(np.sort(rng.random(labels)) * 3600)
    data = {key: np.concatenate(values) for key, values in parts.items()}
    data["n_categories"] = 3
    return data


def by_reviewer(rows: list[dict]) -> dict:
    return {row["reviewer"]: row for row in rows}


class TestRubberStamp:
    # --- hand-computed indicators (one reviewer: the room is the reviewer, so shrunk == raw)

    def test_it_computes_the_probe_agreement_by_hand(self):
        # Probes are rows 5 and 7; the reviewer agreed with both planted errors: 2/2 = 1.0.
        probe = reviewer_indicators(**hand_case())[0]["indicators"]["probe_agree"]
        assert probe["raw"] == 1.0 and probe["n"] == 2
        assert probe["crossed"] is True  # 1.0 > 0.5

    def test_it_computes_the_discrimination_gap_by_hand(self):
        # AI right (ai_right == 1, not a probe): rows 0,1,2,4,6,8, agree 1,0,1,1,1,1 -> 5/6.
        # AI wrong (ai_right == 0 or probe): rows 3,5,7, agree 0,1,1 -> 2/3 (row 7 has no gold
        # but is a probe). Row 9 (no gold, not a probe) is in neither. 5/6 - 2/3 = 1/6, n = 9.
        gap = reviewer_indicators(**hand_case())[0]["indicators"]["discrimination_gap"]
        assert gap["raw"] == pytest.approx(1 / 6) and gap["n"] == 9
        assert gap["crossed"] is False  # 0.167 >= 0.1

    def test_it_computes_the_fast_share_by_hand(self):
        # Floor = 119 words / 238 wpm * 60 = 30 s. Timed rows: 9 (row 3 is NaN). Faster than
        # 30 s: 10, 29.9, 5, 20 -> 4 (30 itself is not faster). 4/9.
        fast = reviewer_indicators(**hand_case())[0]["indicators"]["fast_share"]
        assert fast["raw"] == pytest.approx(4 / 9) and fast["n"] == 9
        assert fast["crossed"] is True  # 0.444 > 0.3

    def test_it_computes_the_streak_ratio_by_hand(self):
        # Agree in order: 1 0 1 0 1 1 1 1 1 1 -> longest run 6 (rows 4..9); p = 8/10, n = 10.
        streak = reviewer_indicators(**hand_case())[0]["indicators"]["streak_ratio"]
        expected = exact_longest_run_by_enumeration(0.8, 10)
        assert expected == pytest.approx(5.747573555, abs=1e-9)
        assert streak["raw"] == pytest.approx(6 / expected) and streak["n"] == 10
        assert streak["crossed"] is False  # 1.04 <= 2

    def test_it_computes_the_entropy_by_hand(self):
        # Codes 0,0,1,2,0,0,(missing),0,1,0 -> counts 6, 2, 1 of 9; shares 2/3, 2/9, 1/9.
        # H = 2/3 ln(3/2) + 2/9 ln(9/2) + 1/9 ln 9 = 0.27031 + 0.33424 + 0.24414 = 0.84869 nats;
        # / ln 3 = 0.77251.
        entropy = reviewer_indicators(**hand_case())[0]["indicators"]["entropy"]
        h = 2 / 3 * math.log(3 / 2) + 2 / 9 * math.log(9 / 2) + 1 / 9 * math.log(9)
        assert entropy["raw"] == pytest.approx(h / math.log(3)) and entropy["raw"] == pytest.approx(0.77251, abs=1e-5)
        assert entropy["n"] == 9 and entropy["crossed"] is False

    def test_it_computes_the_evidence_share_by_hand(self):
        # Opened on rows 0, 4, 9: 3/10 = 0.3 (not below 0.2).
        evidence = reviewer_indicators(**hand_case())[0]["indicators"]["evidence_opened"]
        assert evidence["raw"] == pytest.approx(0.3) and evidence["n"] == 10 and evidence["crossed"] is False

    def test_it_computes_the_drift_by_hand(self):
        # First half (rows 0-4): 1 0 1 0 1 -> 3/5; second half (rows 5-9): 5/5. 1 - 0.6 = 0.4.
        drift = reviewer_indicators(**hand_case())[0]["indicators"]["drift"]
        assert drift["raw"] == pytest.approx(0.4) and drift["n"] == 10 and drift["crossed"] is True

    def test_it_leaves_the_middle_decision_of_an_odd_session_out_of_the_drift(self):
        # 1 0 | 1 | 1 1: halves of 2, the middle 1 in neither: 2/2 - 1/2 = 0.5.
        case = {key: value[:5] if isinstance(value, np.ndarray) else value for key, value in hand_case().items()}
        case["agree"] = np.array([1, 0, 1, 1, 1], dtype=np.int8)
        drift = reviewer_indicators(**case)[0]["indicators"]["drift"]
        assert drift["raw"] == pytest.approx(0.5) and drift["n"] == 4

    def test_it_flags_the_hand_case_on_the_three_crossed_indicators_and_shows_them(self):
        row = reviewer_indicators(**hand_case(), min_labels=10)[0]
        assert row["reviewer"] == 7 and row["n"] == 10
        assert row["crossed"] == ["probe_agree", "fast_share", "drift"]
        assert row["flagged"] is True
        assert list(row["indicators"]) == list(INDICATORS)
        for indicator in row["indicators"].values():
            assert set(indicator) == {"raw", "shrunk", "n", "threshold", "crossed"}
            assert indicator["shrunk"] == pytest.approx(indicator["raw"])  # a room of one

    def test_it_uses_submit_order_not_row_order(self):
        case = hand_case()
        shuffle = np.random.default_rng(0).permutation(10)
        shuffled = {key: value[shuffle] if isinstance(value, np.ndarray) else value for key, value in case.items()}
        assert reviewer_indicators(**shuffled) == reviewer_indicators(**case)

    # --- expected longest run

    @pytest.mark.parametrize(("p", "n"), [(0.5, 3), (0.3, 8), (0.8, 10), (0.95, 12)])
    def test_it_computes_the_expected_longest_run_exactly_for_short_sessions(self, p, n):
        # n = 3, p = 1/2 by hand: runs 0,1,1,2,1,1,2,3 over the 8 sequences -> 11/8.
        assert expected_longest_run(p, n)[0] == pytest.approx(exact_longest_run_by_enumeration(p, n), abs=1e-12)
        assert expected_longest_run(0.5, 3)[0] == pytest.approx(11 / 8)
        assert expected_longest_run(0.6, 2)[0] == pytest.approx(2 * 0.6)  # 2p^2 + 2pq = 2p

    def test_schillings_formula_matches_a_simulated_mean(self):
        # log_{1/0.7}(100 * 0.3) + 0.5772 / ln(1/0.7) - 1/2 = 9.536 + 1.618 - 0.5 = 10.654.
        simulated = simulated_longest_runs(0.7, 100, sequences=20_000, seed=3).mean()  # SE ~ 0.025
        formula = float(schilling_expected_longest_run(0.7, 100))
        assert formula == pytest.approx(10.654, abs=1e-3)
        assert abs(formula - simulated) < 0.3
        assert abs(expected_longest_run(0.7, 100)[0] - simulated) < 0.1  # the exact path

    @pytest.mark.parametrize(("p", "n"), [(0.7, 400), (0.995, 600)])
    def test_the_long_session_approximations_match_a_simulated_mean(self, p, n):
        # 400 * 0.3 = 120 expected disagreements: Schilling. 600 * 0.005 = 3: spacings mixture
        # (Schilling's formula gives ~ 246 there against ~ 333).
        simulated = simulated_longest_runs(p, n, sequences=4_000, seed=4).mean()
        assert expected_longest_run(p, n)[0] == pytest.approx(simulated, rel=0.02)

    def test_it_guards_the_rates_zero_and_one(self):
        assert expected_longest_run([1.0, 0.0], [40, 40]).tolist() == [40.0, 0.0]
        assert math.isnan(expected_longest_run(0.5, 0)[0])
        case = hand_case()
        case["agree"] = np.ones(10, dtype=np.int8)
        assert reviewer_indicators(**case)[0]["indicators"]["streak_ratio"]["raw"] == 1.0

    # --- shrinkage

    def test_it_fits_the_beta_prior_by_maximum_likelihood(self):
        # Against a brute-force search of scipy's own beta-binomial log-likelihood over a grid
        # of (mu, a + b): the optimizer finds the same maximum (Griffiths 1973).
        x, n = np.array([2, 5, 9, 1, 8, 6, 3]), np.array([20, 20, 20, 20, 20, 12, 30])
        a, b = beta_binomial_prior(x, n)
        mus, strengths = np.linspace(0.01, 0.99, 197), np.exp(np.linspace(np.log(4), np.log(50), 300))
        grid = [(stats.betabinom.logpmf(x, n, mu * s, (1 - mu) * s).sum(), mu, s) for mu in mus for s in strengths]
        _best, mu, strength = max(grid)
        assert a + b == pytest.approx(strength, rel=0.02) and a / (a + b) == pytest.approx(mu, abs=0.006)
        assert stats.betabinom.logpmf(x, n, a, b).sum() >= _best - 1e-6
        # Posterior mean of 2/20 under that prior: (2 + a) / (20 + a + b).
        assert shrink_proportions(x, n)[0] == pytest.approx((2 + a) / (20 + a + b))

    def test_it_recovers_a_known_beta_prior_from_simulated_reviewers(self):
        # 400 reviewers, rates from Beta(3, 7) (a + b = 10), 20-300 labels each.
        rng = np.random.default_rng(3)
        n = rng.integers(20, 300, size=400)
        x = rng.binomial(n, rng.beta(3, 7, size=400))
        a, b = beta_binomial_prior(x, n)
        assert a + b == pytest.approx(10, rel=0.15) and a / (a + b) == pytest.approx(0.3, abs=0.02)

    def test_one_reviewer_with_one_label_does_not_move_the_prior(self):
        # Issue 15's case: 30 reviewers at 7/70 (no spread beyond binomial noise: a + b = 50),
        # then one reviewer with a single label, 1/1. The unweighted method of moments read the
        # rate 1.0 as spread and fell to a + b = 4.1 for everyone; in the likelihood a single
        # label says nothing about the spread.
        x, n = np.full(30, 7), np.full(30, 70)
        assert sum(beta_binomial_prior(x, n)) == pytest.approx(PRIOR_STRENGTH_MAX)
        a, b = beta_binomial_prior(np.append(x, 1), np.append(n, 1))
        assert a + b == pytest.approx(PRIOR_STRENGTH_MAX)
        # The room's 30 careful reviewers keep their shrinkage: 7/70 stays near 0.1, not pulled.
        assert shrink_proportions(np.append(x, 1), np.append(n, 1))[0] == pytest.approx(0.1, abs=0.005)
        # Positive control: a reviewer whose 70 labels really differ (70/70) is spread, and
        # moves the prior (a + b falls well below 50).
        a, b = beta_binomial_prior(np.append(x, 70), np.append(n, 70))
        assert a + b < 20

    def test_a_room_with_real_spread_gets_a_weak_prior(self):
        # Half the reviewers at 10%, half at 50%, 50 labels each: far more spread than binomial
        # noise, so the prior is weak (near its minimum) whichever way it is fitted.
        x, n = np.array([5] * 10 + [25] * 10), np.full(20, 50)
        a, b = beta_binomial_prior(x, n)
        assert PRIOR_STRENGTH_MIN <= a + b < 10

    def test_it_holds_the_beta_prior_to_its_bounds(self):
        # Rates 0, 1, 0.5: rho = (0.25 / 0.25 - 0.1) / 0.9 = 1 -> a + b = 0 -> held at 4:
        # a = b = 2, so 0/10 -> 2/14.
        shrunk = shrink_proportions(np.array([0, 10, 5]), np.array([10, 10, 10]))
        assert shrunk.tolist() == pytest.approx([2 / 14, 12 / 14, 7 / 14])
        # No spread beyond binomial noise (all 5/10): the moment estimate is infinite -> 50.
        a, b = beta_binomial_prior(np.array([5, 5, 5]), np.array([10, 10, 10]))
        assert a + b == pytest.approx(PRIOR_STRENGTH_MAX)
        assert PRIOR_STRENGTH_MIN == 4.0

    def test_it_shrinks_other_indicators_toward_the_mean_by_the_method_of_moments(self):
        # Raw 0 and 2, v = 1/10 each (sigma^2 = 1), n = 10: m = 1, Var = 2, tau^2 = 2 - 1 = 1,
        # n0 = 10 * 1 / 1 = 10, w = 10 / 20 -> 0.5 and 1.5.
        shrunk = shrink_toward_mean(np.array([0.0, 2.0]), np.array([1.0, 1.0]), np.array([10, 10]))
        assert shrunk.tolist() == pytest.approx([0.5, 1.5])
        # Raw 0 and 1, v = 0.1: tau^2 = 0.5 - 0.1 = 0.4, n0 = 2.5 -> held at 4: w = 10/14.
        shrunk = shrink_toward_mean(np.array([0.0, 1.0]), np.array([0.1, 0.1]), np.array([10, 10]))
        assert shrunk.tolist() == pytest.approx([0.5 - 0.5 * 10 / 14, 0.5 + 0.5 * 10 / 14])
        # Raw 0 and 1, v = 1: tau^2 < 0 -> n0 = 50: w = 10/60.
        shrunk = shrink_toward_mean(np.array([0.0, 1.0, np.nan]), np.array([1.0, 1.0, 1.0]), np.array([10, 10, 0]))
        assert shrunk[:2].tolist() == pytest.approx([0.5 - 0.5 / 6, 0.5 + 0.5 / 6]) and math.isnan(shrunk[2])

    def test_the_normal_prior_weighs_reviewers_by_precision(self):
        # DerSimonian & Laird (1986) by hand: raw 0, 1, 2 with v = 0.1, 0.1, 10 -> w = 10, 10, 0.1;
        # fixed mean = (0 + 10 + 0.2) / 20.1 = 0.50746; Q = 10 * 0.50746^2 + 10 * 0.49254^2 +
        # 0.1 * 1.49254^2 = 5.2229; tau^2 = (5.2229 - 2) / (20.1 - 200.01 / 20.1) = 0.31765; the mean
        # weighted by 1 / (v + tau^2): (0 + 2.3946 + 2 * 0.09692) / (2 * 2.3946 + 0.09692) = 0.52976.
        from reviewapp.metrics.stats.rubber_stamp import _between_variance

        mean, tau2 = _between_variance(np.array([0.0, 1.0, 2.0]), np.array([0.1, 0.1, 10.0]))
        assert (mean, tau2) == pytest.approx((0.52976, 0.31765), abs=5e-5)
        # 30 reviewers near 0.8 on 100 labels each; one more with a single label at 0 leaves the
        # room's shrunken values where they were (the unweighted moments moved them by 0.009) ...
        rng = np.random.default_rng(0)
        raw, v, n = 0.8 + rng.normal(0, 0.03, 30), np.full(30, 0.005), np.full(30, 100.0)
        alone = shrink_toward_mean(raw, v, n)
        tiny = shrink_toward_mean(np.append(raw, 0.0), np.append(v, 0.5), np.append(n, 1))
        assert np.abs(tiny[:30] - alone).max() < 0.001
        # ... while a reviewer at 0 on 100 labels does move them (positive control).
        big = shrink_toward_mean(np.append(raw, 0.0), np.append(v, 0.005), np.append(n, 100))
        assert np.abs(big[:30] - alone).max() > 0.005

    def test_shrinkage_pulls_a_reviewer_with_3_labels_much_more_than_one_with_300(self):
        data = room(careful=20, stamps=0, labels=100)
        extra = {key: [value] for key, value in data.items() if key != "n_categories"}
        for reviewer, labels in ((500, 3), (600, 300)):
            case = hand_case(reviewer)
            rows = np.arange(labels) % 10
            for key in extra:
                extra[key].append(case[key][rows])
            extra["order"][-1] = np.arange(labels, dtype=float)
            extra["evidence_opened"][-1] = np.zeros(labels, dtype=bool)  # never opened
            extra["label_code"][-1] = np.zeros(labels, dtype=np.int64)  # always the same label
        merged = {key: np.concatenate(values) for key, values in extra.items()}
        rows = by_reviewer(reviewer_indicators(**merged, n_categories=3))
        for name in ("evidence_opened", "entropy"):  # a beta-binomial and a normal shrinkage
            few, many = rows[500]["indicators"][name], rows[600]["indicators"][name]
            assert few["raw"] == many["raw"] == 0.0
            assert few["shrunk"] - few["raw"] > 5 * (many["shrunk"] - many["raw"])
            assert few["crossed"] is False and many["crossed"] is True

    # --- the room

    def test_it_flags_exactly_the_rubber_stamps_in_a_simulated_room(self):
        rows = by_reviewer(reviewer_indicators(**room()))
        assert {reviewer for reviewer, row in rows.items() if row["flagged"]} == {100, 101, 102}
        for reviewer in (100, 101, 102):
            assert {"probe_agree", "discrimination_gap", "fast_share", "evidence_opened"} <= set(
                rows[reviewer]["crossed"]
            )
        assert all(len(rows[reviewer]["crossed"]) <= 1 for reviewer in range(30))

    def test_it_does_not_flag_a_reviewer_who_crosses_one_indicator(self):
        data = room()
        hurried = data["reviewer"] == 4  # careful, but reads at half the floor
        data["seconds"] = np.where(hurried, data["floor_seconds"] * 0.5, data["seconds"])
        row = by_reviewer(reviewer_indicators(**data))[4]
        assert row["crossed"] == ["fast_share"] and row["flagged"] is False
        assert row["indicators"]["fast_share"]["shrunk"] > 0.9

    def test_it_sorts_the_output_by_reviewer_id(self):
        data = room(careful=5, stamps=2, labels=20)
        shuffle = np.random.default_rng(1).permutation(len(data["reviewer"]))
        shuffled = {key: value[shuffle] if isinstance(value, np.ndarray) else value for key, value in data.items()}
        ids = [row["reviewer"] for row in reviewer_indicators(**shuffled)]
        assert ids == [0, 1, 2, 3, 4, 100, 101]
        assert all(type(reviewer) is int for reviewer in ids)

    # --- the minimum number of labels

    def test_a_reviewer_is_not_flagged_on_one_label_and_is_at_the_minimum(self):
        # Issue 15's case: in a room of rubber stamps (10 stamps, 2 careful), a newcomer with a
        # single label (agreed with a planted error, fast, no evidence) crossed three shrunken
        # indicators, pulled toward the stamps, and was flagged on that one label.
        def with_newcomer(labels: int) -> dict:
            data = room(careful=2, stamps=10, labels=100)
            newcomer = {
                "reviewer": np.full(labels, 900),
                "agree": np.ones(labels, dtype=np.int8),
                "ai_right": np.zeros(labels, dtype=np.int8),
                "is_probe": np.ones(labels, dtype=bool),
                "seconds": np.full(labels, 1.0),
                "floor_seconds": np.full(labels, 30.0),
                "evidence_opened": np.zeros(labels, dtype=bool),
                "label_code": np.zeros(labels, dtype=np.int64),
                "order": np.arange(labels, dtype=float),
            }
            return {key: np.concatenate([data[key], newcomer[key]]) for key in newcomer} | {"n_categories": 3}

        row = by_reviewer(reviewer_indicators(**with_newcomer(1)))[900]
        assert {"probe_agree", "fast_share", "evidence_opened"} <= set(row["crossed"])
        assert row["flagged"] is False and row["too_few_labels"] is True
        assert row["min_labels"] == MIN_LABELS_TO_FLAG == 20
        row = by_reviewer(reviewer_indicators(**with_newcomer(MIN_LABELS_TO_FLAG - 1)))[900]
        assert row["flagged"] is False
        # Positive control: the same behaviour on the minimum number of labels is flagged.
        row = by_reviewer(reviewer_indicators(**with_newcomer(MIN_LABELS_TO_FLAG)))[900]
        assert row["flagged"] is True and row["too_few_labels"] is False

    # --- thresholds

    def test_it_takes_the_studys_thresholds_over_the_defaults(self):
        row = reviewer_indicators(**hand_case(), thresholds={"fast_share_max": 0.5, "unknown_max": 1}, min_labels=1)[0]
        assert row["indicators"]["fast_share"]["threshold"] == 0.5
        assert row["indicators"]["fast_share"]["crossed"] is False  # 0.444 <= 0.5
        assert row["indicators"]["drift"]["threshold"] == DEFAULT_THRESHOLDS["drift_max"]
        assert row["crossed"] == ["probe_agree", "drift"] and row["flagged"] is True
        row = reviewer_indicators(**hand_case(), thresholds={"fast_share_max": 0.5, "drift_max": 0.5}, min_labels=1)[0]
        assert row["crossed"] == ["probe_agree"] and row["flagged"] is False

    def test_every_indicator_has_a_default_threshold_the_study_form_offers(self):
        from reviewapp.studies.forms import StudyForm

        assert {key for key, _direction in INDICATORS.values()} == set(DEFAULT_THRESHOLDS)
        assert StudyForm().initial["flag_thresholds"] == DEFAULT_THRESHOLDS

    # --- the control arm

    def test_control_arm_reviewers_get_no_ai_indicators_and_no_flag_from_them(self):
        data = room()
        control = data["reviewer"] == 100  # a rubber stamp who never saw the AI
        data["agree"] = np.where(control, -1, data["agree"]).astype(np.int8)
        rows = by_reviewer(reviewer_indicators(**data))
        row = rows[100]
        for name in AI_INDICATORS:
            indicator = row["indicators"][name]
            assert indicator["raw"] is None and indicator["shrunk"] is None
            assert indicator["n"] == 0 and indicator["crossed"] is False
        # Still flagged, but only on AI-free indicators: fast and no evidence opened.
        assert row["crossed"] == ["fast_share", "evidence_opened"] and row["flagged"] is True
        # A control reviewer who only reads fast is not flagged.
        data["agree"] = np.where(data["reviewer"] == 5, -1, data["agree"]).astype(np.int8)
        data["seconds"] = np.where(data["reviewer"] == 5, data["floor_seconds"] * 0.5, data["seconds"])
        row = by_reviewer(reviewer_indicators(**data))[5]
        assert row["crossed"] == ["fast_share"] and row["flagged"] is False

    # --- inputs

    def test_it_rejects_arrays_of_different_lengths_and_returns_nothing_for_no_labels(self):
        case = hand_case()
        case["seconds"] = case["seconds"][:9]
        with pytest.raises(ValueError, match="seconds"):
            reviewer_indicators(**case)
        empty = {key: value[:0] if isinstance(value, np.ndarray) else value for key, value in hand_case().items()}
        assert reviewer_indicators(**empty) == []

    def test_it_calls_entropy_undefined_without_labels_and_rejects_codes_out_of_range(self):
        case = hand_case()
        case["label_code"] = np.full(10, -1)
        entropy = reviewer_indicators(**case)[0]["indicators"]["entropy"]
        assert entropy["raw"] is None and entropy["n"] == 0 and entropy["crossed"] is False
        case["label_code"] = np.full(10, 3)
        with pytest.raises(ValueError, match="label_code"):
            reviewer_indicators(**case)
