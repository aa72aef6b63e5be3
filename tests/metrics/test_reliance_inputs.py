"""Bad inputs to the reliance metrics raise ValueError naming the argument (issue 15), where they
used to give a silently different rate."""

from __future__ import annotations

import numpy as np
import pytest

from reviewapp.metrics.stats.reliance import reliance_metrics, uptake_split

FINAL = np.array([0, 1, 1, 2])
AI = np.array([0, 1, 0, 2])
TRUTH = np.array([0, 1, 1, -1])


class TestRelianceInputs:
    def test_it_accepts_integer_float_and_nan_missing_codes(self):
        # Positive control for the refusals: whole-number floats and NaN (missing) give the same numbers.
        ints = reliance_metrics(FINAL, AI, TRUTH)
        floats = reliance_metrics(FINAL.astype(float), AI.astype(float), np.array([0.0, 1.0, 1.0, np.nan]))
        assert ints == floats and ints["agreement"]["value"] == 0.75

    @pytest.mark.parametrize(
        ("arguments", "name"),
        [
            ((np.array([0, 1, 1.5, 2]), AI), "final"),
            ((FINAL, np.array([0, 1, 0, 2.5])), "ai"),
            ((FINAL, AI, np.array([0, 1, 0.5, -1])), "truth"),
            ((FINAL, AI, TRUTH, np.array([0, 1, np.inf, 1])), "initial"),
            ((FINAL, np.array([0, None, 0, 2], dtype=object)), "ai"),
            ((FINAL, np.array(["0", "1", "0", "2"])), "ai"),
            ((FINAL, AI[:3]), "ai"),
        ],
    )
    def test_it_refuses_codes_that_are_not_whole_numbers_or_do_not_line_up(self, arguments, name):
        with pytest.raises(ValueError, match=f"`{name}`"):
            reliance_metrics(*arguments)

    def test_it_refuses_a_missing_recommendation_and_a_confidence_of_one(self):
        with pytest.raises(ValueError, match="`final` and `ai` are required"):
            reliance_metrics(FINAL, None)
        with pytest.raises(ValueError, match="`confidence`"):
            reliance_metrics(FINAL, AI, confidence=1.0)
        with pytest.raises(ValueError, match="`confidence`"):
            uptake_split(np.array([1, 0, 1, -1]), FINAL, AI, confidence=1.0)
        assert uptake_split(np.array([1, 0, 1, -1]), FINAL, AI)["seen"]["value"] == pytest.approx(2 / 3)
