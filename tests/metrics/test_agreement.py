"""Alpha, percent agreement and AC1 against the published values in the reference file, and the
vectorized bootstrap statistics against the krippendorff package."""

from __future__ import annotations

import time

import krippendorff
import numpy as np
import pytest

from reviewapp.metrics.stats.agreement import (
    LEVELS,
    _statistics,
    agreement_summary,
    alpha_estimate,
    gwet_ac1,
    krippendorff_alpha,
    percent_agreement,
    value_counts,
)

from .reference import reference

RELIABILITY_DATA = [
    "krippendorff2011_A_binary_2obs",
    "krippendorff2011_B_nominal_2obs",
    "krippendorff2011_C_4obs_missing",
    "wikipedia_krippendorff_example_3x15",
]


def counts_from_raters(name: str) -> tuple[np.ndarray, list]:
    """Reference layout raters x units (null = missing) -> long format (unit, code) -> counts.

    Codes index the sorted distinct values, so strings (data B) work too; the domain returned
    is those values, the numbers alpha's interval and ratio metrics need.
    """
    rows = reference(name)["data"]["reliability_data"]
    domain = sorted({value for row in rows for value in row if value is not None})
    code = {value: index for index, value in enumerate(domain)}
    units, codes = [], []
    for row in rows:
        for unit, value in enumerate(row):
            units.append(unit)
            codes.append(-1 if value is None else code[value])
    return value_counts(np.array(units), np.array(codes), len(rows[0]), len(domain)), domain


def counts_from_table(table: list[list[int]]) -> np.ndarray:
    """A two-rater contingency table (rater 1 rows, rater 2 columns) -> one unit per rated pair."""
    units, codes = [], []
    unit = 0
    for first, row in enumerate(table):
        for second, cell in enumerate(row):
            for _ in range(cell):
                units += [unit, unit]
                codes += [first, second]
                unit += 1
    return value_counts(np.array(units), np.array(codes), unit, len(table))


def numeric_domain(domain: list, level: str) -> list[float]:
    # Interval and ratio need the values themselves; strings only have their rank.
    if level in ("interval", "ratio") and all(isinstance(value, int | float) for value in domain):
        return [float(value) for value in domain]
    return list(range(len(domain)))


def vectorized_alpha(counts: np.ndarray, level: str, domain: list[float], weights=None) -> float:
    weights = np.ones((1, len(counts))) if weights is None else np.atleast_2d(weights)
    return float(_statistics(counts, weights, level, np.asarray(domain, dtype=float))[0, 0])


def random_counts(rng: np.random.Generator, n_units: int, n_categories: int, coders: int, missing: float) -> np.ndarray:
    """Coders label units with a skewed prevalence; each label is missing with some probability."""
    prevalence = rng.dirichlet(np.ones(n_categories))
    codes = rng.choice(n_categories, size=(n_units, coders), p=prevalence)
    codes[rng.random((n_units, coders)) < missing] = -1
    units = np.repeat(np.arange(n_units), coders)
    return value_counts(units, codes.ravel(), n_units, n_categories)


def paradox_counts() -> np.ndarray:
    """A room of approve-everything reviewers (docs/design.md, "Inter-rater agreement"): two
    reviewers, 100 items, both approve 96, they split on 4, never both reject. Column 0 approve,
    1 reject."""
    return np.array([[2, 0]] * 96 + [[1, 1]] * 4)


class TestAgreement:
    @pytest.mark.parametrize(
        ("name", "level", "places"),
        [
            ("krippendorff2011_A_binary_2obs", "nominal", 3),
            ("krippendorff2011_B_nominal_2obs", "nominal", 3),
            ("krippendorff2011_C_4obs_missing", "nominal", 3),
            ("krippendorff2011_C_4obs_missing", "ordinal", 3),
            ("krippendorff2011_C_4obs_missing", "interval", 3),
            ("krippendorff2011_C_4obs_missing", "ratio", 3),
            ("wikipedia_krippendorff_example_3x15", "nominal", 6),
            ("wikipedia_krippendorff_example_3x15", "interval", 6),
        ],
    )
    def test_it_reproduces_the_published_alpha(self, name, level, places):
        counts, domain = counts_from_raters(name)
        value = krippendorff_alpha(counts, level, numeric_domain(domain, level))
        # Printed to `places` decimals in the source.
        assert round(value, places) == reference(name)["expected"][f"alpha_{level}"]

    def test_it_reproduces_gwets_percent_agreement_and_ac1_of_irrcac(self):
        name = "krippendorff2011_C_4obs_missing"
        expected = reference(name)["expected"]
        counts, _ = counts_from_raters(name)
        pa, ac1 = percent_agreement(counts), gwet_ac1(counts)
        assert round(pa, 3) == expected["irrCAC_ac1_pa"]
        assert round(ac1, 3) == expected["irrCAC_gwet_ac1"]
        # AC1 = (pa - pe) / (1 - pe), so the chance agreement behind it is:
        assert round((pa - ac1) / (1 - ac1), 2) == expected["irrCAC_ac1_pe"]

    def test_it_reproduces_gwets_ac1_of_a_two_rater_contingency_table(self):
        case = reference("irrCAC_table_cont3x3abstractors")
        counts = counts_from_table(case["data"]["table"])
        assert counts.shape == (100, 3) and (counts.sum(axis=1) == 2).all()
        assert round(gwet_ac1(counts), 3) == case["expected"]["gwet_ac1"]

    @pytest.mark.parametrize("name", RELIABILITY_DATA)
    @pytest.mark.parametrize("level", LEVELS)
    def test_it_computes_the_bootstrap_alpha_as_the_package_does_on_the_reference_data(self, name, level):
        counts, domain = counts_from_raters(name)
        domain = numeric_domain(domain, level)
        pairable = counts[counts.sum(axis=1) >= 2]
        expected = krippendorff.alpha(value_counts=pairable, value_domain=domain, level_of_measurement=level)
        assert vectorized_alpha(counts, level, domain) == pytest.approx(expected, abs=1e-10)

    @pytest.mark.parametrize("level", LEVELS)
    def test_it_computes_the_bootstrap_alpha_as_the_package_does_on_random_resamples(self, level):
        rng = np.random.default_rng(7)
        for n_categories, coders, missing in [(2, 3, 0.0), (3, 4, 0.3), (5, 6, 0.5), (7, 2, 0.1)]:
            counts = random_counts(rng, 60, n_categories, coders, missing)
            domain = np.sort(rng.uniform(0.5, 10, n_categories)).tolist()
            # A resample is a weighting of the units: compare with the package on the
            # resample spelled out unit by unit.
            weights = rng.multinomial(len(counts), np.full(len(counts), 1 / len(counts)))
            resample = np.repeat(counts, weights, axis=0)
            resample = resample[resample.sum(axis=1) >= 2]
            expected = krippendorff.alpha(value_counts=resample, value_domain=domain, level_of_measurement=level)
            assert vectorized_alpha(counts, level, domain, weights) == pytest.approx(expected, abs=1e-10)

    def test_it_computes_the_bootstrap_agreement_and_ac1_as_the_point_estimates(self):
        rng = np.random.default_rng(3)
        counts = random_counts(rng, 80, 4, 3, 0.4)
        _, pa, ac1 = _statistics(counts, np.ones((1, len(counts))), "nominal", np.arange(4.0))[0]
        assert pa == pytest.approx(percent_agreement(counts), abs=1e-12)
        assert ac1 == pytest.approx(gwet_ac1(counts), abs=1e-12)

    def test_it_calls_alpha_undefined_when_all_values_are_the_same(self):
        counts = np.array([[3, 0], [2, 0], [2, 0], [2, 0], [1, 0], [0, 0]])
        assert krippendorff_alpha(counts, "nominal", [0, 1]) is None
        # Percent agreement is perfect; Gwet's chance agreement sum pi(1 - pi) is 0 when
        # everybody uses one category, so AC1 = (1 - 0) / (1 - 0) = 1.
        assert percent_agreement(counts) == 1.0
        assert gwet_ac1(counts) == 1.0
        summary = agreement_summary(counts, "nominal", [0, 1], n_resamples=200)
        assert summary["degenerate"] is True
        assert summary["alpha"]["value"] is None and summary["alpha"]["low"] is None
        assert summary["alpha"]["n"] == 4 and summary["n_values"] == 9
        assert summary["percent_agreement"]["value"] == 1.0 and summary["ac1"]["value"] == 1.0
        assert summary["ac1"]["low"] == summary["ac1"]["high"] == 1.0

    def test_it_calls_everything_undefined_without_a_unit_coded_twice(self):
        counts = np.array([[1, 0], [0, 1], [0, 0]])
        assert krippendorff_alpha(counts, "nominal", [0, 1]) is None
        assert percent_agreement(counts) is None and gwet_ac1(counts) is None
        summary = agreement_summary(counts, "nominal", [0, 1])
        assert summary["n_units"] == 0 and summary["n_values"] == 0 and summary["degenerate"] is False
        assert all(summary[key]["value"] is None for key in ("alpha", "percent_agreement", "ac1"))

    def test_it_shows_the_prevalence_paradox(self):
        counts = paradox_counts()
        # Krippendorff (2011): n = 200 values, 196 approve, 4 reject; the 4 split units put
        # o_01 = o_10 = 4, so alpha = 1 - (n - 1) (o_01 + o_10) / (2 n_0 n_1) = 1 - 199 * 8 / 1568.
        alpha = krippendorff_alpha(counts, "nominal", [0, 1])
        assert alpha == pytest.approx(1 - 199 * 8 / 1568)
        assert abs(alpha) < 0.02
        assert percent_agreement(counts) == pytest.approx(0.96)
        # Gwet: pi_reject = 4 * (1/2) / 100 = 0.02, pe = 2 * 0.02 * 0.98 / (2 - 1) = 0.0392.
        assert gwet_ac1(counts) == pytest.approx((0.96 - 0.0392) / (1 - 0.0392))
        assert gwet_ac1(counts) > 0.95

    def test_it_gives_a_bootstrap_interval_around_each_point_estimate(self):
        counts = random_counts(np.random.default_rng(11), 500, 3, 3, 0.2)
        summary = agreement_summary(counts, "ordinal", [0, 1, 2])
        for key in ("alpha", "percent_agreement", "ac1"):
            estimate = summary[key]
            assert estimate["low"] <= estimate["value"] <= estimate["high"]
            assert estimate["n"] == summary["n_units"]
        assert summary["alpha"]["method"] == "krippendorff alpha (ordinal), unit bootstrap percentile, 1000 resamples"
        counts, domain = counts_from_raters("krippendorff2011_C_4obs_missing")
        alpha = alpha_estimate(counts, "nominal", list(range(len(domain))))
        assert alpha.low <= alpha.value <= alpha.high and alpha.n == 11

    def test_the_interval_narrows_with_more_units(self):
        rng = np.random.default_rng(5)
        prevalence, widths = [0.7, 0.3], []
        for n_units in (100, 1000, 10000):
            # Two coders who agree on 80% of units, otherwise independent draws.
            first = rng.choice(2, n_units, p=prevalence)
            second = np.where(rng.random(n_units) < 0.8, first, rng.choice(2, n_units, p=prevalence))
            units = np.repeat(np.arange(n_units), 2)
            counts = value_counts(units, np.column_stack([first, second]).ravel(), n_units, 2)
            estimate = alpha_estimate(counts, "nominal", [0, 1])
            widths.append(estimate.high - estimate.low)
        assert widths[0] > widths[1] > widths[2]

    def test_the_bootstrap_is_reproducible_with_the_same_seed(self):
        counts = random_counts(np.random.default_rng(2), 200, 2, 3, 0.1)
        first = agreement_summary(counts, "nominal", [0, 1], seed=4)
        assert agreement_summary(counts, "nominal", [0, 1], seed=4) == first
        assert agreement_summary(counts, "nominal", [0, 1], seed=5)["alpha"] != first["alpha"]
        # alpha_estimate draws the same resamples as the summary.
        assert alpha_estimate(counts, "nominal", [0, 1], seed=4).as_dict() == first["alpha"]

    def test_it_drops_undefined_resamples_and_gives_no_interval_when_too_many(self):
        # One split unit among 20 unanimous ones: about (20/21)^21 = 36% of resamples miss it
        # and have no variation, far more than the 5% tail of a 95% interval.
        counts = np.array([[2, 0]] * 20 + [[1, 1]])
        summary = agreement_summary(counts, "nominal", [0, 1])
        assert summary["alpha"]["value"] is not None
        assert summary["alpha"]["low"] is None and summary["alpha"]["high"] is None
        assert "undefined resamples dropped" in summary["alpha"]["method"]
        assert summary["percent_agreement"]["low"] is not None and summary["ac1"]["low"] is not None

    def test_value_counts_ignores_missing_codes(self):
        units = np.array([0, 0, 0, 1, 1, 2, 3])
        codes = np.array([1, 1, -1, 0, 2, -1, -5])
        counts = value_counts(units, codes, 5, 3)
        assert counts.tolist() == [[0, 2, 0], [1, 0, 1], [0, 0, 0], [0, 0, 0], [0, 0, 0]]
        with pytest.raises(ValueError, match="category code"):
            value_counts(np.array([0]), np.array([3]), 1, 3)

    def test_it_insists_on_an_explicit_level_and_a_value_per_column(self):
        counts = paradox_counts()
        with pytest.raises(ValueError, match="level"):
            krippendorff_alpha(counts, "quadratic", [0, 1])
        with pytest.raises(ValueError, match="value_domain"):
            agreement_summary(counts, "nominal", [0, 1, 2])

    def test_the_summary_of_ten_thousand_units_stays_fast(self):
        # The metrics run calls this ~6 times within its budget; 1 s is the target, the bound
        # here is loose so a busy machine does not fail it (a per-resample loop takes ~5 s).
        counts = random_counts(np.random.default_rng(0), 10_000, 2, 3, 0.0)
        start = time.perf_counter()
        agreement_summary(counts, "nominal", [0, 1], n_resamples=1000)
        assert time.perf_counter() - start < 2.0
