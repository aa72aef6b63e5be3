"""Reliance metrics against the constructed reference vector and hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from reviewapp.metrics.stats.intervals import proportion
from reviewapp.metrics.stats.reliance import METRICS, reliance_metrics, weight_of_advice

from .reference import vector

# Names in the reference file -> names in reliance_metrics.
REFERENCE_NAMES = {
    "RAIR": "rair",
    "RSR": "rsr",
    "overreliance": "overreliance",
    "underreliance": "underreliance",
    "agreement_fraction": "agreement",
    "switch_fraction": "switch_fraction",
    "acc_initial": "accuracy_initial",
    "acc_final": "accuracy",
    "acc_ai": "accuracy_ai",
}


def values(result: dict[str, dict]) -> dict[str, float | None]:
    return {name: estimate["value"] for name, estimate in result.items()}


def counts(result: dict[str, dict]) -> dict[str, int]:
    return {name: estimate["n"] for name, estimate in result.items()}


class TestReliance:
    def test_it_reproduces_the_constructed_reference_vector_exactly(self):
        case = vector("constructed_deference_metrics_vector")
        data = {key: np.array(column) for key, column in case["data"].items()}
        result = reliance_metrics(data["final"], data["ai"], data["truth"], data["initial"])
        for reference_name, name in REFERENCE_NAMES.items():
            assert result[name]["value"] == case["expected"][reference_name], name

    def test_it_gives_every_metric_its_wilson_interval_and_n(self):
        case = vector("constructed_deference_metrics_vector")
        data = {key: np.array(column) for key, column in case["data"].items()}
        result = reliance_metrics(data["final"], data["ai"], data["truth"], data["initial"])
        assert set(result) == set(METRICS)
        # Agreement: 6 of 10 labels; over-reliance: 2 of the 4 labels where the AI is wrong.
        assert result["agreement"] == proportion(6, 10).as_dict()
        assert result["overreliance"] == proportion(2, 4).as_dict()
        assert result["agreement"]["low"] < 0.6 < result["agreement"]["high"]

    def test_it_leaves_rows_with_a_missing_code_out_of_the_agreement_fraction(self):
        final = np.array([1, 0, 1, -1, 2])
        ai = np.array([1, 1, 1, 0, -1])
        # Rows 3 (no final) and 4 (no AI) are missing; of rows 0-2, rows 0 and 2 agree: 2/3.
        result = reliance_metrics(final, ai)
        assert result["agreement"]["value"] == 2 / 3
        assert result["agreement"]["n"] == 3

    def test_it_computes_over_and_under_reliance_and_accuracy_by_hand(self):
        final = np.array([1, 1, 0, 0, 1, 0])
        ai = np.array([1, 1, 1, 0, 0, 0])
        truth = np.array([0, 1, 0, 0, -1, 1])
        result = reliance_metrics(final, ai, truth)
        # Row 4 has no gold, so it counts for agreement only.
        # Agreement over all 6 rows: rows 0, 1, 3, 5 agree -> 4/6.
        # AI wrong (gold known): rows 0 (1 vs 0), 2 (1 vs 0), 5 (0 vs 1); final = AI in rows 0
        #   and 5 -> overreliance 2/3.
        # AI right: rows 1 and 3; final = AI in both -> underreliance 0/2 = 0.
        # Final = gold over rows 0, 1, 2, 3, 5: rows 1, 2, 3 -> 3/5.
        # AI = gold over the same rows: rows 1 and 3 -> 2/5.
        assert values(result) == {
            "agreement": 4 / 6,
            "overreliance": 2 / 3,
            "underreliance": 0.0,
            "accuracy": 3 / 5,
            "accuracy_ai": 2 / 5,
            "switch_fraction": None,
            "rair": None,
            "rsr": None,
            "accuracy_initial": None,
        }
        assert counts(result)["overreliance"] == 3 and counts(result)["underreliance"] == 2

    def test_it_excludes_a_missing_code_from_the_metrics_that_need_it_only(self):
        final = np.array([1, -1, 0])
        ai = np.array([1, 0, 0])
        truth = np.array([1, 0, 1])
        result = reliance_metrics(final, ai, truth)
        # Row 1 has no final decision: accuracy uses rows 0 and 2 (1 of 2 right), but the
        # AI's accuracy needs no final decision and uses all three rows (rows 0, 1 right).
        assert result["accuracy"]["value"] == 1 / 2 and result["accuracy"]["n"] == 2
        assert result["accuracy_ai"]["value"] == 2 / 3 and result["accuracy_ai"]["n"] == 3

    def test_it_computes_switching_rair_and_rsr_by_hand_with_three_codes(self):
        # (initial, ai, final, truth) per row:
        rows = [
            (0, 1, 1, 1),  # 0: initial wrong, AI right, follows the AI: RAIR yes; switched
            (0, 1, 0, 1),  # 1: initial wrong, AI right, stays: RAIR no; did not switch
            (2, 1, 2, 2),  # 2: initial right, AI wrong, stays: RSR yes; did not switch
            (2, 0, 1, 2),  # 3: initial right, AI wrong, moves elsewhere: RSR no; did not switch to AI
            (1, 1, 1, -1),  # 4: no gold; initial = AI, so not a switching opportunity
            (2, 0, 0, -1),  # 5: no gold; initial != AI and switched
            (-1, 0, 0, 0),  # 6: no initial: out of switching, RAIR, RSR and initial accuracy
            (0, 2, 2, 1),  # 7: initial and AI both wrong: neither RAIR nor RSR; switched
            (1, 0, 1, 1),  # 8: initial right, AI wrong, stays: RSR yes; did not switch
        ]
        initial, ai, final, truth = (np.array(column) for column in zip(*rows, strict=True))
        result = reliance_metrics(final, ai, truth, initial)
        # Switch fraction: initial != AI in rows 0, 1, 2, 3, 5, 7, 8 (7); final = AI in 0, 5, 7 -> 3/7.
        assert result["switch_fraction"]["value"] == 3 / 7 and result["switch_fraction"]["n"] == 7
        # RAIR: initial wrong & AI right in rows 0, 1; follows the AI in row 0 -> 1/2.
        assert result["rair"]["value"] == 1 / 2 and result["rair"]["n"] == 2
        # RSR: initial right & AI wrong in rows 2, 3, 8; keeps the initial in 2 and 8 -> 2/3.
        assert result["rsr"]["value"] == 2 / 3 and result["rsr"]["n"] == 3
        # Initial accuracy over rows with initial and gold (0, 1, 2, 3, 7, 8): 2, 3, 8 right -> 3/6.
        assert result["accuracy_initial"]["value"] == 1 / 2 and result["accuracy_initial"]["n"] == 6

    def test_it_calls_a_metric_without_data_undefined_not_zero(self):
        # The AI is right on every row: over-reliance has nothing to condition on.
        result = reliance_metrics(np.array([1, 0]), np.array([1, 0]), np.array([1, 0]), np.array([1, 0]))
        assert result["overreliance"] == {"value": None, "low": None, "high": None, "n": 0, "method": "wilson"}
        assert result["underreliance"]["value"] == 0.0
        # Nobody disagreed with the AI at first: no switching opportunity, no RAIR, no RSR.
        assert result["switch_fraction"]["value"] is None
        assert result["rair"]["value"] is None and result["rsr"]["value"] is None

    def test_it_leaves_metrics_without_their_inputs_undefined(self):
        result = reliance_metrics(np.array([1, 0, 1]), np.array([1, 1, 1]))
        assert result["agreement"]["value"] == 2 / 3
        assert all(result[name]["value"] is None for name in METRICS if name != "agreement")
        assert reliance_metrics(np.array([], dtype=int), np.array([], dtype=int))["agreement"]["value"] is None
        # Gold unknown everywhere is the same as no gold.
        assert reliance_metrics(np.array([1]), np.array([1]), np.array([-1]))["accuracy"]["n"] == 0

    def test_it_refuses_arrays_of_different_lengths(self):
        with pytest.raises(ValueError, match="one row per label"):
            reliance_metrics(np.array([1, 0]), np.array([1]))

    def test_it_reproduces_the_constructed_weight_of_advice(self):
        case = vector("constructed_weight_of_advice")
        data = case["data"]
        # (55 - 40) / (60 - 40) = 15 / 20
        assert weight_of_advice(data["initial"], data["advice"], data["final"]) == case["expected"]["WOA"]

    def test_it_gives_the_weight_of_advice_its_ends_and_no_truncation(self):
        assert weight_of_advice(40, 60, 40) == 0.0  # kept the initial estimate
        assert weight_of_advice(40, 60, 60) == 1.0  # adopted the advice
        assert weight_of_advice(40, 60, 70) == 1.5  # (70 - 40) / 20: went past the advice
        assert weight_of_advice(40, 60, 30) == -0.5  # (30 - 40) / 20: moved away from it

    def test_it_calls_the_weight_of_advice_undefined_when_the_advice_equals_the_estimate(self):
        assert weight_of_advice(50, 50, 55) is None
        assert weight_of_advice(50, math.nan, 55) is None
        assert weight_of_advice(None, 60, 55) is None
