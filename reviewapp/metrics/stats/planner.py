"""The planner: power of a study before it starts, by simulation through the app's own estimators.

Given the deference rates a researcher expects (agreement with the AI in the control,
recommendation and rationale arms), the intraclass correlation of reviewers (ICC), the number of
reviewers per arm and of items each reviewer labels, how likely is the study to detect each
deference effect and the narrative increment (docs/design.md, "Reliance and deference"), and how
many reviewers per arm would give 80%?

Simulation. Each simulated study draws every reviewer's own agreement rate from a beta
distribution with the arm's mean and a + b = 1 / ICC - 1, so that the reviewers' binary answers
have exactly that intraclass correlation (the beta-binomial, whose ICC is 1 / (a + b + 1):
Kleinman 1973; Williams 1975), then each reviewer's hits ~ Binomial(items, rate). The study is
analysed by the estimators the metrics run uses, ``clustered.deference_effect`` and
``clustered.narrative_increment``, with their reviewer-cluster intervals; an effect counts as
detected when the interval at the study's confidence excludes zero (a two-sided test at
alpha = 1 - confidence). Power is the share of simulated studies that detect it; its Monte
Carlo standard error is sqrt(p (1 - p) / S) (Morris, White & Crowther 2019, "Using simulation
studies to evaluate statistical methods", Stat Med 38:2074-2102). Whatever the estimators do
with few reviewers (no interval below the minimum number of reviewers per arm) counts as not
detected, as it would in the real study.

Cross-check. ``design_effect_power`` is the textbook normal approximation: each arm's labels
count as n m / (1 + (m - 1) ICC) independent ones (the design effect, Kish 1965, Survey
Sampling, section 5.4) and power = Phi(|d| / SE - z) + Phi(-|d| / SE - z) with
SE^2 = p1 q1 / n_eff + p2 q2 / n_eff (Chow, Shao & Wang 2008, Sample Size Calculations in
Clinical Research, 4.2). The simulation is what the app will actually report; the formula is
what a reader can check by hand.

Seeded: the same inputs give the same powers. The search for the reviewers needed reuses the
seed at every n (common random numbers), so the simulated power is close to monotone in n and
the search by bisection is stable.

Pure numpy/scipy, no Django.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial

import numpy as np
from scipy import stats

from .clustered import deference_effect, narrative_increment

# Simulated studies per power. 400 gives a Monte Carlo standard error of at most 2.5 points
# (sqrt(0.25 / 400)), 2.0 at 80% power: enough to plan with, and a whole plan (three contrasts,
# each with its search over n) stays within a few seconds.
DEFAULT_SIMULATIONS = 400
# The search for the reviewers needed evaluates the power at about eight n; at half the
# simulations each (standard error 2.8 points at 80%) a whole plan takes about two seconds.
SEARCH_SIMULATIONS = 200
TARGET_POWER = 0.8
# The search for the reviewers needed stops here: a study needing more is reported as "more than".
MAX_REVIEWERS = 500
# Bounds the form accepts, so a request cannot ask for a study of millions of labels.
MAX_ITEMS_PER_REVIEWER = 2000
MAX_SIMULATIONS = 2000

Contrast = Callable[..., object]


@dataclass(frozen=True)
class PlanInput:
    """What the researcher expects. Rates are P(final answer = the AI's recommendation) in each
    arm (in the control arm, with the hidden recommendation)."""

    p_control: float
    p_recommendation: float
    p_rationale: float
    icc: float
    reviewers_per_arm: int
    items_per_reviewer: int
    confidence: float = 0.95
    n_simulations: int = DEFAULT_SIMULATIONS
    seed: int = 0
    # The study's minimum reviewers per arm for an interval (the estimators' few-cluster guard);
    # None: the estimators' own default.
    min_reviewers: int | None = None

    def __post_init__(self) -> None:
        for name in ("p_control", "p_recommendation", "p_rationale"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0.0 < value < 1.0:
                raise ValueError(f"`{name}` must be a rate strictly between 0 and 1, got {value!r}")
        if not isinstance(self.icc, (int, float)) or not 0.0 <= self.icc < 1.0:
            raise ValueError(f"`icc` must be in [0, 1), got {self.icc!r}")
        if not isinstance(self.confidence, float) or not 0.5 <= self.confidence < 1.0:
            raise ValueError(f"`confidence` must be in [0.5, 1), got {self.confidence!r}")
        for name, top in (
            ("reviewers_per_arm", MAX_REVIEWERS),
            ("items_per_reviewer", MAX_ITEMS_PER_REVIEWER),
            ("n_simulations", MAX_SIMULATIONS),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
                raise ValueError(f"`{name}` must be a whole number from 1 to {top}, got {value!r}")
        if self.min_reviewers is not None and (
            isinstance(self.min_reviewers, bool) or not isinstance(self.min_reviewers, int) or self.min_reviewers < 1
        ):
            raise ValueError(f"`min_reviewers` must be a whole number of at least 1, got {self.min_reviewers!r}")


def simulate_arm(rng: np.random.Generator, rate: float, icc: float, reviewers: int, items: int):
    """(hits, trials) per reviewer of one simulated arm: each reviewer's rate from
    Beta(rate s, (1 - rate) s) with s = 1 / icc - 1 (ICC 0: every reviewer at ``rate``)."""
    if icc > 0:
        strength = 1.0 / icc - 1.0
        rates = rng.beta(rate * strength, (1.0 - rate) * strength, size=reviewers)
    else:
        rates = np.full(reviewers, rate)
    return rng.binomial(items, rates).astype(float), np.full(reviewers, float(items))


@dataclass(frozen=True)
class Power:
    power: float
    mc_se: float  # Monte Carlo standard error of ``power``
    n_simulations: int


def simulated_power(
    p_first: float,
    p_second: float,
    *,
    icc: float,
    reviewers: int,
    items: int,
    contrast: Contrast = deference_effect,
    confidence: float = 0.95,
    n_simulations: int = DEFAULT_SIMULATIONS,
    seed: int = 0,
) -> Power:
    """Share of simulated studies in which ``contrast(first arm, second arm)`` has an interval at
    ``confidence`` that excludes zero (module docstring)."""
    rng = np.random.default_rng(seed)
    detected = 0
    for _ in range(n_simulations):
        first = simulate_arm(rng, p_first, icc, reviewers, items)
        second = simulate_arm(rng, p_second, icc, reviewers, items)
        estimate = contrast(first, second, confidence=confidence)
        if estimate.low is not None and estimate.high is not None and (estimate.low > 0 or estimate.high < 0):
            detected += 1
    power = detected / n_simulations
    return Power(power, math.sqrt(power * (1.0 - power) / n_simulations), n_simulations)


def design_effect_power(
    p_first: float, p_second: float, *, icc: float, reviewers: int, items: int, confidence: float = 0.95
) -> float:
    """Normal-approximation power of the two-sided test of p_first = p_second with each arm's
    reviewers x items labels shrunk by the design effect 1 + (items - 1) ICC (Kish 1965)."""
    n_eff = reviewers * items / (1.0 + (items - 1) * icc)
    se = math.sqrt((p_first * (1 - p_first) + p_second * (1 - p_second)) / n_eff)
    z = stats.norm.ppf(1 - (1 - confidence) / 2)
    shift = abs(p_first - p_second) / se
    return float(stats.norm.cdf(shift - z) + stats.norm.cdf(-shift - z))


def reviewers_needed(
    p_first: float,
    p_second: float,
    *,
    icc: float,
    items: int,
    contrast: Contrast = deference_effect,
    confidence: float = 0.95,
    n_simulations: int = DEFAULT_SIMULATIONS,
    seed: int = 0,
    target: float = TARGET_POWER,
    max_reviewers: int = MAX_REVIEWERS,
) -> int | None:
    """The fewest reviewers per arm whose simulated power reaches ``target``, by bisection over
    n in [2, max_reviewers] (the power is close to monotone in n with the seed reused); None when
    even ``max_reviewers`` falls short (or the arms' rates are equal)."""
    if p_first == p_second:
        return None

    known: dict[int, bool] = {}

    def enough(n: int) -> bool:
        if n not in known:
            options = {"icc": icc, "reviewers": n, "items": items, "contrast": contrast, "confidence": confidence}
            power = simulated_power(p_first, p_second, **options, n_simulations=n_simulations, seed=seed).power
            known[n] = power >= target
        return known[n]

    if not enough(max_reviewers):
        return None
    # Bracket the answer around the design-effect formula's, usually within a few reviewers of
    # it, then bisect. One reviewer never detects anything (no interval), so low = 1 is safe.
    guess = _design_effect_reviewers(p_first, p_second, icc, items, confidence, target, max_reviewers)
    guess = guess or max_reviewers
    if enough(guess):
        low, high = max(1, guess // 2), guess
        while low > 1 and enough(low):
            low, high = max(1, low // 2), low
    else:
        low, high = guess, min(max_reviewers, 2 * guess)
        while not enough(high):
            low, high = high, min(max_reviewers, 2 * high)
    while high - low > 1:
        middle = (low + high) // 2
        if enough(middle):
            high = middle
        else:
            low = middle
    return high


def _design_effect_reviewers(
    p_first: float, p_second: float, icc: float, items: int, confidence: float, target: float, top: int
) -> int | None:
    """The fewest reviewers per arm reaching ``target`` by ``design_effect_power``; None above ``top``."""
    for n in range(2, top + 1):
        if design_effect_power(p_first, p_second, icc=icc, reviewers=n, items=items, confidence=confidence) >= target:
            return n
    return None


def plan(spec: PlanInput) -> dict:
    """Power for each deference effect (recommendation and rationale arm against control) and for
    the narrative increment (rationale against recommendation), simulated and by the design-effect
    formula, and the reviewers per arm needed for 80% power each way. JSON-ready."""
    contrasts = (
        ("deference_recommendation", "Deference effect, recommendation arm", spec.p_recommendation, spec.p_control),
        ("deference_rationale", "Deference effect, rationale arm", spec.p_rationale, spec.p_control),
        ("narrative_increment", "Narrative increment", spec.p_rationale, spec.p_recommendation),
    )
    rows = []
    search = min(spec.n_simulations, SEARCH_SIMULATIONS)
    for key, name, p_first, p_second in contrasts:
        contrast = narrative_increment if key == "narrative_increment" else deference_effect
        if spec.min_reviewers is not None:
            contrast = partial(contrast, min_reviewers=spec.min_reviewers)
        common = {"icc": spec.icc, "items": spec.items_per_reviewer, "confidence": spec.confidence}
        simulated = simulated_power(
            p_first,
            p_second,
            reviewers=spec.reviewers_per_arm,
            contrast=contrast,
            n_simulations=spec.n_simulations,
            seed=spec.seed,
            **common,
        )
        rows.append(
            {
                "key": key,
                "name": name,
                "effect": p_first - p_second,
                "power": simulated.power,
                "power_mc_se": simulated.mc_se,
                "power_design_effect": design_effect_power(
                    p_first, p_second, reviewers=spec.reviewers_per_arm, **common
                ),
                "reviewers_needed": reviewers_needed(
                    p_first, p_second, contrast=contrast, n_simulations=search, seed=spec.seed, **common
                ),
                "reviewers_needed_design_effect": _design_effect_reviewers(
                    p_first, p_second, spec.icc, spec.items_per_reviewer, spec.confidence, TARGET_POWER, MAX_REVIEWERS
                ),
            }
        )
    return {
        "input": asdict(spec),
        "design_effect": 1.0 + (spec.items_per_reviewer - 1) * spec.icc,
        "target_power": TARGET_POWER,
        "search_simulations": search,
        "max_reviewers": MAX_REVIEWERS,
        "contrasts": rows,
    }
