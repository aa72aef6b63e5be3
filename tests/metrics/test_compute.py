"""Small pure pieces of the study computation."""

from __future__ import annotations

import numpy as np

from reviewapp.metrics.compute import _median_by_group


class TestMedianByGroup:
    def test_it_takes_each_groups_median_of_its_finite_values(self):
        group = np.array([0, 1, 0, 1, 0, 1, 1, 2])
        seconds = np.array([5.0, 2.0, 1.0, 8.0, 3.0, np.nan, 4.0, np.nan])
        # Group 0: 1, 3, 5 -> 3; group 1: 2, 4, 8 (the NaN left out) -> 4; group 2: nothing; group 3: absent.
        medians = _median_by_group(group, seconds, 4)
        assert medians[:2].tolist() == [3.0, 4.0] and np.isnan(medians[2]) and np.isnan(medians[3])

    def test_an_even_count_averages_the_middle_two(self):
        assert _median_by_group(np.array([0, 0, 0, 0]), np.array([4.0, 1.0, 3.0, 2.0]), 1).tolist() == [2.5]
