"""Intervals for contrasts of rates whose labels cluster by reviewer: the deference effect and
the narrative increment (a small-sample interval over reviewers, ``cluster_robust``), and a
cluster bootstrap over reviewers for general weighted contrasts.

Since issue 15 the two named contrasts use ``cluster_robust.cluster_difference``: the percentile
bootstrap below covered a true difference in only 88-91% of simulated studies with 5 to 20
reviewers an arm (ICC 0.1), where the small-sample interval holds 95% (tests/metrics/
test_coverage.py). The bootstrap stays for contrasts of several arms with weights, behind the
same few-cluster guard. What follows is its rationale.

A reviewer's labels are not independent: one reviewer approves nearly everything, another
reads every rationale. Treating 150 labels of one reviewer as 150 independent observations
makes the Wilson and Newcombe intervals too narrow by the square root of the design effect
(Kish 1965), and design effects of about 5 are normal in these studies (docs/design.md,
"Intervals"). The unit of resampling is therefore the reviewer, the cluster (Davison &
Hinkley 1997, on hierarchical data; Field & Welsh 2007): reviewers are drawn with
replacement, each with all of their labels, independently within each arm, because arms
are independent groups of reviewers (between-subjects assignment).

The input is per-reviewer sufficient statistics, (hits, trials) per reviewer and arm, so a
resample costs one gather and one sum over reviewers however many labels there are: a
million labels from 200 reviewers resample as fast as 200 numbers.

A rate is pooled, sum(hits) / sum(trials) over the arm's reviewers: the share of all labels,
which is what the label-level Wilson interval estimates too, so the two intervals are
intervals for the same number and their widths compare directly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats

from .cluster_robust import (
    DEFAULT_MIN_REVIEWERS,
    ClusterEstimate,
    check_min_reviewers,
    cluster_difference,
    reviewer_counts,
    too_few_note,
)
from .intervals import check_confidence, finite_or_none

HitsTrials = tuple[np.ndarray, np.ndarray]

# The percentile interval (Efron & Tibshirani 1993, ch. 13), not BCa (Efron 1987). BCa
# would be cheap here (its jackknife over reviewers adds about 10% to the run time), but it
# bought nothing in the simulation of tests/metrics/test_clustered.py, where both covered
# the true deference effect in 95% of 3000 studies at 60 reviewers per arm, 94% at 20 and
# 92% at 10. And where every reviewer has the same rate (a probe set on which everyone
# agrees with the AI) BCa's acceleration is 0/0 and scipy returns NaN, where the
# percentile interval is a point, an honest answer for data without spread.
INTERVAL = "percentile"


def _method(n_resamples: int) -> str:
    return f"cluster bootstrap over reviewers, {INTERVAL}, {n_resamples} resamples"


def _reviewers(hits: np.ndarray, trials: np.ndarray, name: str = "hits") -> tuple[np.ndarray, np.ndarray]:
    """Per-reviewer (hits, trials) as floats, without reviewers who contributed no trials.

    A reviewer with no trials in this arm has no rate; keeping them would only add empty
    draws that change the number of reviewers a resample really holds. ValueError (naming
    the argument) for None, NaN, fractional or impossible counts (``reviewer_counts``).
    """
    return reviewer_counts(hits, trials, name)


def _bootstrap(
    arms: Sequence[HitsTrials],
    weights: Sequence[float],
    n_resamples: int,
    confidence: float,
    seed: int,
    resample: bool = True,
) -> tuple[float | None, object | None, int]:
    """(point estimate, scipy's BootstrapResult or None, total trials) of sum_g w_g * rate_g."""
    if len(arms) != len(weights):
        raise ValueError(f"{len(arms)} groups but {len(weights)} weights")
    confidence = check_confidence(confidence)
    cleaned = [_reviewers(hits, trials, f"groups[{g}] hits") for g, (hits, trials) in enumerate(arms)]
    total = int(sum(trials.sum() for _, trials in cleaned))
    if any(trials.size == 0 for _, trials in cleaned):
        return None, None, total
    weights = [float(weight) for weight in weights]
    value = sum(w * hits.sum() / trials.sum() for w, (hits, trials) in zip(weights, cleaned, strict=True))
    if not resample or any(trials.size < 2 for _, trials in cleaned):
        # One reviewer: the spread between reviewers cannot be estimated, so the point
        # estimate stands without an interval (scipy needs two observations per sample).
        return float(value), None, total

    def contrast(*indices: np.ndarray, axis: int = -1) -> np.ndarray:
        # scipy resamples each arm's reviewer indices independently (paired=False) and
        # passes them batched along the leading axes; gathering the reviewers' sufficient
        # statistics and summing them is the pooled rate of every resample at once.
        return sum(
            w * hits[index].sum(axis=axis) / trials[index].sum(axis=axis)
            for w, (hits, trials), index in zip(weights, cleaned, indices, strict=True)
        )

    result = stats.bootstrap(
        [np.arange(trials.size) for _, trials in cleaned],
        contrast,
        n_resamples=n_resamples,
        vectorized=True,
        paired=False,
        axis=-1,
        confidence_level=confidence,
        method=INTERVAL,
        rng=np.random.default_rng(seed),
    )
    return float(value), result, total


def cluster_bootstrap_contrast(
    groups: Sequence[HitsTrials],
    weights: Sequence[float],
    *,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    min_reviewers: int = DEFAULT_MIN_REVIEWERS,
) -> ClusterEstimate:
    """sum_g weights[g] * rate_g with a cluster-bootstrap interval over reviewers.

    ``groups[g]`` is (hits per reviewer, trials per reviewer) of arm g; rate_g is the pooled
    sum(hits) / sum(trials). Reviewers with no trials are dropped. Undefined when an arm has
    no trials (``Estimate.empty``). ``n`` is the number of labels (trials) behind the
    estimate, as in ``intervals.difference``; ``n_reviewers`` the fewest reviewers of any arm.
    The same seed gives the same interval.

    No interval, the value standing alone with the reason in ``note``, when an arm has fewer
    than ``min_reviewers`` reviewers (the few-cluster guard, ``cluster_robust``: with 2
    reviewers the bootstrap interval came out narrower than the naive one), or when the
    resamples do not vary (every reviewer of every arm at the same rate: a zero-width
    interval would claim a certainty the data do not have).
    """
    min_reviewers = check_min_reviewers(min_reviewers)
    method = _method(n_resamples)
    counts = [reviewer_counts(hits, trials, f"groups[{g}] hits")[1].size for g, (hits, trials) in enumerate(groups)]
    fewest = min(counts, default=0)
    if fewest and fewest < min_reviewers:
        value, _, total = _bootstrap(groups, weights, n_resamples, confidence, seed, resample=False)
        return ClusterEstimate(finite_or_none(value), None, None, total, method, fewest, too_few_note(fewest))
    value, result, total = _bootstrap(groups, weights, n_resamples, confidence, seed)
    if value is None:
        return ClusterEstimate(None, None, None, total, method, fewest, "no labels in an arm")
    if result is None:
        return ClusterEstimate(finite_or_none(value), None, None, total, method, fewest, too_few_note(fewest))
    low, high = finite_or_none(result.confidence_interval.low), finite_or_none(result.confidence_interval.high)
    if low is None or high is None or not high > low:
        note = "no spread between reviewers: interval not estimable"
        return ClusterEstimate(finite_or_none(value), None, None, total, method, fewest, note)
    return ClusterEstimate(finite_or_none(value), low, high, total, method, fewest)


def _difference(first: HitsTrials, second: HitsTrials, options: dict) -> ClusterEstimate:
    # The bootstrap's options (n_resamples, seed) are accepted so that callers can pass one set
    # of options to every interval of a run; the difference's interval draws nothing.
    options.pop("n_resamples", None)
    options.pop("seed", None)
    return cluster_difference(first, second, **options)


def deference_effect(arm: HitsTrials, control: HitsTrials, **options) -> ClusterEstimate:
    """Deference effect: P(final = AI | arm) - P(label = AI | control) (docs/design.md,
    "Reliance and deference").

    The control arm's agreement with the hidden recommendation is the baseline: how often
    reviewers reach the AI's answer without seeing it (Yin, Wortman Vaughan & Wallach,
    CHI 2019, agreement fraction). The interval over reviewers is
    ``cluster_robust.cluster_difference`` (MOVER on each arm's small-sample cluster interval;
    it replaced this module's percentile bootstrap, which under-covered with few reviewers).
    Options: ``confidence``, ``min_reviewers``.
    """
    return _difference(arm, control, options)


def narrative_increment(
    rationale: HitsTrials, recommendation: HitsTrials, control: HitsTrials | None = None, **options
) -> ClusterEstimate:
    """Narrative increment: Δ_rationale - Δ_recommendation (docs/design.md, "Reliance and deference").

    (r_rationale - r_control) - (r_recommendation - r_control) = r_rationale - r_recommendation:
    the control rate cancels, in the estimate and in its uncertainty (the arms are independent
    groups of reviewers, so the control's sampling error enters both differences identically).
    ``control`` is accepted so that call sites read like the definition, and is not used. The
    interval is ``deference_effect``'s; options as there.
    """
    del control  # cancels exactly; see the docstring
    return _difference(rationale, recommendation, options)


def design_effect(
    hits: np.ndarray, trials: np.ndarray, *, n_resamples: int = 2000, confidence: float = 0.95, seed: int = 0
) -> float | None:
    """Design effect of one arm's pooled rate: cluster-bootstrap variance / binomial variance.

    Deff = Var_cluster(p) / (p(1 - p) / n) (Kish 1965): how many times larger the variance
    really is than the label-level formula assumes; the naive interval is too narrow by a
    factor sqrt(Deff). With m labels per reviewer and intraclass correlation rho,
    Deff ≈ 1 + (m - 1) rho (Kish 1965). The variance is the bootstrap's, over reviewers,
    the same one ``cluster_bootstrap_contrast`` builds its interval from. Reviewers with no
    trials are dropped. Undefined (None) when the arm has fewer than two reviewers with
    trials or a rate of 0 or 1 (no binomial variance). ``confidence`` is accepted so that
    the options of the contrasts can be passed as they are; a variance does not depend on it.

    This is the raw ratio, which with few reviewers can fall below 1 by chance (0.5 with two):
    what a study page shows is ``cluster_robust.design_effect``, guarded and clipped at 1.
    """
    value, result, total = _bootstrap(((hits, trials),), (1.0,), n_resamples, confidence, seed)
    if value is None or result is None or value in (0.0, 1.0):
        return None
    return finite_or_none(result.standard_error**2 / (value * (1 - value) / total))
