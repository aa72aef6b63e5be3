"""Point estimates with confidence intervals for proportions and their differences.

Every estimate is an ``Estimate``: the value, its interval, the n behind it and the
method, so a report can always say how a number was obtained. ``None`` stands for
"undefined" (no data), never NaN, so results store as JSON as they are.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

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


def wilson_interval(count: int, n: int, confidence: float = 0.95) -> tuple[float, float] | None:
    """Wilson score interval for count/n (Wilson 1927; recommended by Brown, Cai & DasGupta 2001).

    Computed by scipy's BinomTestResult.proportion_ci(method="wilson"), which matches
    R binom::binom.confint (reference vectors binom_ci_18_of_20, binom_ci_4_of_20).
    """
    if n <= 0:
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
    interval = wilson_interval(count, n, confidence)
    if interval is None:
        return Estimate.empty("wilson")
    return Estimate(count / n, interval[0], interval[1], int(n), "wilson")


def difference(count1: int, n1: int, count2: int, n2: int, confidence: float = 0.95) -> Estimate:
    """p1 - p2 with Newcombe's interval; n is the total number of observations."""
    interval = newcombe_interval(count1, n1, count2, n2, confidence)
    if interval is None:
        return Estimate.empty("newcombe", int(n1 + n2))
    return Estimate(count1 / n1 - count2 / n2, interval[0], interval[1], int(n1 + n2), "newcombe")
