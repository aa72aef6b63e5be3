"""The kappa family (stats/agreement_family.py) against published values: Gwet's worked examples
(irrCAC, Gwet's own package, on Krippendorff's data C = irrCAC raw_4raters and the 3x3
abstractors table), SAS PROC FREQ's Cohen's kappa example and Fleiss' (1971) table as
Wikipedia reproduces it; the reference file where it holds them, the rest cited here. Then
cases computed by hand: the two-coder table, the weights, and what is undefined."""

from __future__ import annotations

import numpy as np
import pytest

from reviewapp.metrics.stats.agreement import value_counts
from reviewapp.metrics.stats.agreement_family import (
    agreement_family,
    multi_rater,
    two_coder_table,
    two_rater,
    weight_matrix,
)

from .reference import reference

# Gwet's irrCAC on raw_4raters (Krippendorff 2011 data C), categories 1-5, to irrCAC's printed
# 3 decimals: afergadis/irrCAC test/unit/irrCAC/raw/test_gwet.py, test_fleiss.py, test_bp.py
# (the same figures as R irrCAC's gwet.ac1.raw, fleiss.kappa.raw, bp.coeff.raw). (value, se, ci low).
RAW_4RATERS = {
    "identity": {
        "gwet_ac": (0.775, 0.143, 0.461),
        "fleiss_kappa": (0.761, 0.153, 0.424),
        "brennan_prediger": (0.773, 0.145, 0.454),
    },
    "linear": {
        "gwet_ac": (0.859, 0.117, 0.600),
        "fleiss_kappa": (0.818, 0.149, 0.491),
        "brennan_prediger": (0.848, 0.123, 0.577),
    },
    "quadratic": {
        "gwet_ac": (0.914, 0.104, 0.685),
        "fleiss_kappa": (0.865, 0.146, 0.544),
        "brennan_prediger": (0.902, 0.111, 0.657),
    },
}
# Weighted percent agreement p_a of the same runs (irrCAC's "pa").
RAW_4RATERS_PA = {"identity": 0.818, "linear": 0.939, "quadratic": 0.975}
# irrCAC table functions on cont3x3abstractors (afergadis/irrCAC test/unit/irrCAC/table/
# test_cohen.py, test_scott.py): (value, ci low, ci high); Scott's SE too.
ABSTRACTORS = {
    "identity": {"cohen_kappa": (0.796, 0.68, 0.913), "scott_pi": (0.796, 0.679, 0.913)},
    "linear": {"cohen_kappa": (0.843, 0.748, 0.938), "scott_pi": (0.843, 0.748, 0.938)},
    "quadratic": {"cohen_kappa": (0.892, 0.822, 0.962), "scott_pi": (0.892, 0.822, 0.962)},
}
ABSTRACTORS_SCOTT_SE = {"identity": 0.059, "linear": 0.048, "quadratic": 0.035}


def data_c() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Krippendorff's data C in long format: (counts, units, codes, coders)."""
    rows = reference("krippendorff2011_C_4obs_missing")["data"]["reliability_data"]
    matrix = np.array([[np.nan if v is None else v for v in row] for row in rows], dtype=float)
    coders, units = np.nonzero(~np.isnan(matrix))
    codes = matrix[coders, units].astype(int) - 1
    return value_counts(units, codes, matrix.shape[1], 5), units, codes, coders


class TestAgreementFamily:
    @pytest.mark.parametrize("kind", ["identity", "linear", "quadratic"])
    def test_it_reproduces_gwets_many_coder_examples(self, kind):
        counts, *_ = data_c()
        result = multi_rater(counts, weight_matrix([1, 2, 3, 4, 5], kind), weighting=kind)
        for name, (value, se, low) in RAW_4RATERS[kind].items():
            estimate = result[name]
            assert round(estimate["value"], 3) == value, name
            assert round(estimate["se"], 3) == se, name
            assert round(estimate["low"], 3) == low, name
            assert estimate["high"] == 1.0, name  # capped at 1, as Gwet reports it
            assert estimate["n"] == 11  # the pairable units (unit 12 has one value)
        assert round(result["percent_agreement"]["value"], 3) == RAW_4RATERS_PA[kind]

    def test_it_matches_the_reference_files_irrcac_figures(self):
        expected = reference("krippendorff2011_C_4obs_missing")["expected"]
        counts, *_ = data_c()
        result = multi_rater(counts, np.eye(5))
        assert round(result["gwet_ac"]["value"], 3) == expected["irrCAC_gwet_ac1"]
        assert round(result["gwet_ac"]["se"], 3) == expected["irrCAC_ac1_se"]
        assert [round(result["gwet_ac"]["low"], 3), result["gwet_ac"]["high"]] == expected["irrCAC_ac1_ci95"]
        assert round(result["fleiss_kappa"]["value"], 3) == expected["irrCAC_fleiss"]
        assert round(result["brennan_prediger"]["value"], 3) == expected["irrCAC_bp"]

    def test_it_reproduces_fleiss_1971s_table(self):
        counts = np.array(reference("wikipedia_fleiss_kappa_10x14")["data"]["counts"])
        result = multi_rater(counts, np.eye(5))
        assert (
            round(result["fleiss_kappa"]["value"], 3)
            == reference("wikipedia_fleiss_kappa_10x14")["expected"]["fleiss_kappa"]
        )
        # Every subject has 14 raters: Brennan-Prediger's chance agreement is 1/q.
        pa = result["percent_agreement"]["value"]
        assert result["brennan_prediger"]["value"] == pytest.approx((pa - 0.2) / 0.8)

    def test_it_reproduces_sas_cohens_kappa_and_its_ase(self):
        case = reference("sas_cohens_kappa_3x3")
        table, expected = np.array(case["data"]["table"]), case["expected"]
        plain = two_rater(table, np.eye(3))["cohen_kappa"]
        assert round(plain["value"], 4) == expected["kappa"]
        assert round(plain["se"], 3) == expected["ase"]
        # SAS's interval is kappa +/- z ASE; ours uses t with n - 1 df (Gwet), so it is a little wider.
        z = 1.959963984540054
        assert [round(plain["value"] - z * plain["se"], 4), round(plain["value"] + z * plain["se"], 4)] == expected[
            "ci95"
        ]
        assert plain["low"] < expected["ci95"][0] and plain["high"] > expected["ci95"][1]
        # SAS's Cicchetti-Allison weights are the linear weights.
        linear = two_rater(table, weight_matrix([1, 2, 3], "linear"), weighting="linear")["cohen_kappa"]
        assert round(linear["value"], 4) == expected["weighted_kappa_linear"]
        assert round(linear["se"], 4) == expected["weighted_ase"]

    @pytest.mark.parametrize("kind", ["identity", "linear", "quadratic"])
    def test_it_reproduces_gwets_two_coder_examples(self, kind):
        table = np.array(reference("irrCAC_table_cont3x3abstractors")["data"]["table"])
        result = two_rater(table, weight_matrix([1, 2, 3], kind), weighting=kind)
        for name, (value, low, high) in ABSTRACTORS[kind].items():
            estimate = result[name]
            assert [round(estimate[key], 3) for key in ("value", "low", "high")] == [value, low, high], name
            assert estimate["n"] == 100
        assert round(result["scott_pi"]["se"], 3) == ABSTRACTORS_SCOTT_SE[kind]

    def test_it_matches_the_reference_files_cohen_figures(self):
        case = reference("irrCAC_table_cont3x3abstractors")
        table, expected = np.array(case["data"]["table"]), case["expected"]
        plain = two_rater(table, np.eye(3))["cohen_kappa"]
        assert [round(plain[key], 3) for key in ("value", "low", "high")] == [
            expected["cohen"],
            *expected["cohen_ci95"],
        ]
        quadratic = two_rater(table, weight_matrix([1, 2, 3], "quadratic"))["cohen_kappa"]
        assert round(quadratic["value"], 3) == expected["cohen_quadratic"]

    def test_it_computes_a_two_coder_case_by_hand(self):
        # 10 units, coders agree on 8: 4 both "a", 4 both "b", one a/b, one b/a.
        # p_a = 0.8; marginals 0.5/0.5 each, so p_e = 0.5 for Cohen and Scott: kappa = pi = 0.6.
        table = np.array([[4, 1], [1, 4]])
        result = two_rater(table, np.eye(2))
        assert result["cohen_kappa"]["value"] == pytest.approx(0.6)
        assert result["scott_pi"]["value"] == pytest.approx(0.6)
        # Positive control: lopsided marginals separate Cohen (own marginals) from Scott (pooled).
        lopsided = two_rater(np.array([[5, 3], [0, 2]]), np.eye(2))
        # p_a 0.7; Cohen p_e = 0.8*0.5 + 0.2*0.5 = 0.5 -> 0.4; Scott pi = (0.65, 0.35), p_e 0.545 -> 0.3407
        assert lopsided["cohen_kappa"]["value"] == pytest.approx(0.4)
        assert lopsided["scott_pi"]["value"] == pytest.approx((0.7 - 0.545) / 0.455)

    def test_it_builds_the_two_coder_table_only_for_exactly_two_coders(self):
        units = np.array([0, 0, 1, 1, 2, 2, 3])
        codes = np.array([0, 0, 1, 0, 1, 1, 0])
        coders = np.array([7, 9, 9, 7, 7, 9, 7])
        table, n_coders = two_coder_table(units, codes, coders, 4, 2)
        assert n_coders == 2
        # Rows coder 7: unit 0 (0,0), unit 1 (0,1), unit 2 (1,1); unit 3 has one label.
        assert table.tolist() == [[1, 1], [0, 1]]
        # Positive control: a third coder on a pairable unit means no table.
        table, n_coders = two_coder_table(np.append(units, 3), np.append(codes, 1), np.append(coders, 11), 4, 2)
        assert table is None and n_coders == 3

    def test_it_gives_linear_and_quadratic_weights(self):
        assert weight_matrix([0, 1, 2], "linear").tolist() == [[1, 0.5, 0], [0.5, 1, 0.5], [0, 0.5, 1]]
        assert weight_matrix([0, 1, 2], "quadratic").tolist() == [[1, 0.75, 0], [0.75, 1, 0.75], [0, 0.75, 1]]
        # Interval values, not ranks: 1 and 2 are near, 7 is far.
        assert weight_matrix([1, 2, 7], "linear")[0].tolist() == pytest.approx([1, 5 / 6, 0])
        assert weight_matrix([3], "quadratic").tolist() == [[1.0]]
        with pytest.raises(ValueError):
            weight_matrix([0, 1], "cubic")

    def test_it_leaves_undefined_what_is_undefined(self):
        # Everyone gives "a": Fleiss' chance agreement is 1, kappa 0/0; Brennan-Prediger is 1.
        counts = np.array([[3, 0], [2, 0], [3, 0]])
        result = multi_rater(counts, np.eye(2))
        assert result["fleiss_kappa"]["value"] is None and result["fleiss_kappa"]["low"] is None
        assert result["brennan_prediger"]["value"] == 1.0
        assert result["gwet_ac"]["value"] == 1.0
        # No pairable unit: nothing at all, never NaN.
        single = multi_rater(np.array([[1, 0], [0, 1]]), np.eye(2))
        assert all(estimate["value"] is None for estimate in single.values())
        # Positive control: one disagreement makes Fleiss' kappa defined.
        mixed = multi_rater(np.array([[3, 0], [1, 1], [0, 2]]), np.eye(2))
        assert mixed["fleiss_kappa"]["value"] is not None

    def test_it_never_gives_a_zero_width_interval(self):
        # The first coder says "a" on every unit: Cohen's kappa is 0 and its linearised variance
        # vanishes; an interval [0, 0] would claim certainty from four items.
        constant = two_rater(np.array([[3, 1], [0, 0]]), np.eye(2))["cohen_kappa"]
        assert constant["value"] == 0.0 and constant["low"] is None and constant["high"] is None
        assert constant["se"] is None and "not estimable" in constant["note"]
        # Positive control: both coders varying give a standard error and an interval.
        varying = two_rater(np.array([[2, 1], [0, 1]]), np.eye(2))["cohen_kappa"]
        assert varying["se"] > 0 and varying["low"] < varying["value"] < varying["high"] and varying["note"] is None

    def test_it_refuses_bad_input(self):
        with pytest.raises(ValueError):
            multi_rater(np.array([[1, -1]]), np.eye(2))
        with pytest.raises(ValueError):
            multi_rater(np.array([[1, 1]]), np.eye(3))
        with pytest.raises(ValueError):
            two_rater(np.array([[1, 1]]), np.eye(2))
        with pytest.raises(ValueError):
            multi_rater(np.array([[1, 1]]), np.eye(2), confidence=1.0)

    def test_it_reports_weightings_by_level(self):
        counts, units, codes, coders = data_c()
        nominal = agreement_family(counts, "nominal", [0, 1, 2, 3, 4], units=units, codes=codes, coders=coders)
        assert list(nominal["weightings"]) == ["identity"]
        # Unweighted p_a and AC1 have their bootstrap intervals in stats/agreement.py already.
        assert set(nominal["weightings"]["identity"]) == {"fleiss_kappa", "brennan_prediger", "cohen_kappa", "scott_pi"}
        assert nominal["n_coders"] == 4 and nominal["weightings"]["identity"]["cohen_kappa"] is None
        ordinal = agreement_family(counts, "ordinal", [0, 1, 2, 3, 4], units=units, codes=codes, coders=coders)
        assert list(ordinal["weightings"]) == ["identity", "linear", "quadratic"]
        assert round(ordinal["weightings"]["quadratic"]["gwet_ac"]["value"], 3) == 0.914
        # Two coders (Krippendorff's observers 2 and 4): Cohen's kappa appears.
        keep = np.isin(coders, [1, 3])
        two = value_counts(units[keep], codes[keep], 12, 5)
        family = agreement_family(
            two, "ordinal", [0, 1, 2, 3, 4], units=units[keep], codes=codes[keep], coders=coders[keep]
        )
        assert family["two_coders"] and family["n_units_both"] == 10  # units 1-10 by both
        assert family["weightings"]["linear"]["cohen_kappa"]["value"] is not None

    def test_it_is_fast_on_a_large_arm(self):
        import time

        rng = np.random.default_rng(1)
        units = np.repeat(np.arange(200_000), 5)
        codes = rng.integers(0, 5, len(units))
        counts = value_counts(units, codes, 200_000, 5)
        started = time.perf_counter()
        agreement_family(
            counts, "ordinal", [0, 1, 2, 3, 4], units=units, codes=codes, coders=rng.integers(0, 50, len(units))
        )
        assert time.perf_counter() - started < 2.0
