"""Point estimates with confidence intervals for proportions and their differences.

Every estimate is an ``Estimate``: the value, its interval, the n behind it and the
method, so a report can always say how a number was obtained. ``None`` stands for
"undefined" (no data), never NaN, so results store as JSON as they are.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Estimate:
    value: float | None
    low: float | None
    high: float | None
    n: int
    method: str

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def empty(cls, method: str, n: int = 0) -> Estimate:
        return cls(None, None, None, n, method)


def finite_or_none(value: float | None) -> float | None:
    """NaN and infinities become None: JSON has no NaN, and an undefined number must look undefined."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def check_confidence(confidence: float, name: str = "confidence") -> float:
    """The confidence level as a float strictly between 0 and 1, or ValueError naming ``name``.

    1.0 asks for an interval of infinite width (the normal quantile of 1 is infinite) and
    came out as NaN; 0 and negatives have no meaning; a bool or a string is a mistake.
    """
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float, np.floating, np.integer)):
        raise ValueError(f"`{name}` must be a number strictly between 0 and 1, got {confidence!r}")
    value = float(confidence)
    if not (0.0 < value < 1.0):  # also refuses NaN
        raise ValueError(f"`{name}` must be strictly between 0 and 1 (e.g. 0.95), got {confidence!r}")
    return value


def check_count(value, name: str) -> int:
    """A whole non-negative number of labels as an int, or ValueError naming ``name``.

    None, NaN, bools and fractional floats (a float code such as 2.5) are refused rather
    than truncated by ``int()`` into a silently different count.
    """
    if value is None or isinstance(value, bool):
        raise ValueError(f"`{name}` must be a whole number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must be a whole number, got {value!r}") from None
    if not math.isfinite(number) or number != int(number) or number < 0:
        raise ValueError(f"`{name}` must be a whole number >= 0, got {value!r}")
    return int(number)


def _checked_pair(count, n, count_name: str, n_name: str) -> tuple[int, int]:
    count, n = check_count(count, count_name), check_count(n, n_name)
    if count > n:
        raise ValueError(f"`{count_name}` ({count}) cannot exceed `{n_name}` ({n})")
    return count, n


def wilson_interval(count: int, n: int, confidence: float = 0.95) -> tuple[float, float] | None:
    """Wilson score interval for count/n (Wilson 1927; recommended by Brown, Cai & DasGupta 2001).

    Computed by scipy's BinomTestResult.proportion_ci(method="wilson"), which matches
    R binom::binom.confint (reference vectors binom_ci_18_of_20, binom_ci_4_of_20).
    None when n is 0; ValueError for a count that is not a whole number in 0..n or a
    confidence outside (0, 1).
    """
    confidence = check_confidence(confidence)
    count, n = _checked_pair(count, n, "count", "n")
    if n == 0:
        return None
    result = stats.binomtest(int(count), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return float(result.low), float(result.high)


def newcombe_interval(
    count1: int, n1: int, count2: int, n2: int, confidence: float = 0.95
) -> tuple[float, float] | None:
    """Interval for p1 - p2 by Newcombe's hybrid score method (Newcombe 1998, method 10).

    Built from the two Wilson intervals; Fagerland, Lydersen & Laake (2015) recommend it
    for independent proportions (reference vector fagerland2015_diff_7of34_vs_1of34).
    """
    count1, n1 = _checked_pair(count1, n1, "count1", "n1")
    count2, n2 = _checked_pair(count2, n2, "count2", "n2")
    first = wilson_interval(count1, n1, confidence)
    second = wilson_interval(count2, n2, confidence)
    if first is None or second is None:
        return None
    p1, p2 = count1 / n1, count2 / n2
    (low1, high1), (low2, high2) = first, second
    difference = p1 - p2
    low = difference - math.sqrt((p1 - low1) ** 2 + (high2 - p2) ** 2)
    high = difference + math.sqrt((high1 - p1) ** 2 + (p2 - low2) ** 2)
    return low, high


def proportion(count: int, n: int, confidence: float = 0.95) -> Estimate:
    count, n = _checked_pair(count, n, "count", "n")
    interval = wilson_interval(count, n, confidence)
    if interval is None:
        return Estimate.empty("wilson")
    return Estimate(count / n, interval[0], interval[1], int(n), "wilson")


def difference(count1: int, n1: int, count2: int, n2: int, confidence: float = 0.95) -> Estimate:
    """p1 - p2 with Newcombe's interval; n is the total number of observations."""
    count1, n1 = _checked_pair(count1, n1, "count1", "n1")
    count2, n2 = _checked_pair(count2, n2, "count2", "n2")
    interval = newcombe_interval(count1, n1, count2, n2, confidence)
    if interval is None:
        return Estimate.empty("newcombe", int(n1 + n2))
    return Estimate(count1 / n1 - count2 / n2, interval[0], interval[1], int(n1 + n2), "newcombe")
