"""Rubber-stamp indicators per reviewer, shrunk toward the room, flagged on two or more.

docs/design.md, "Rubber-stamp indicators": per reviewer, the probe pass rate, the
discrimination gap, the share of decisions faster than the reading floor, the longest agree
streak against what the reviewer's own rate predicts, label entropy, evidence opened, and drift
over the session. "Flag a reviewer only when two or more shrunken indicators cross the study's
thresholds, and show the numbers behind the flag."

Arrays in (one row per label), one dict per reviewer out. Each indicator is
``{"raw", "shrunk", "n", "threshold", "crossed"}``; ``None`` means undefined (no data),
never NaN, so the result stores as JSON as it is.

AI-based and AI-free indicators. A row with ``agree == -1`` is a decision made without the
AI recommendation on screen (the control arm). Agreement with the hidden recommendation is
a meaningful baseline for the arm comparisons, but nobody can rubber-stamp advice they never
saw, so such rows are left out of the AI-based indicators (probe_agree,
discrimination_gap, streak_ratio, drift). A control-arm reviewer therefore has ``None`` for
those four and can be flagged only by crossing two of the AI-free ones (fast_share,
entropy, evidence_opened).

Shrinkage (docs/design.md, "Rubber-stamp indicators"). Reviewers with few labels have noisy
indicators; flagging on raw values would flag them for noise. Every indicator is shrunk
toward the room by empirical Bayes: a prior is estimated from all reviewers by the method of
moments and each reviewer's posterior mean is reported (Efron & Morris 1975, "Data analysis
using Stein's estimator and its generalizations", JASA 70:311-319; Morris 1983, "Parametric
empirical Bayes inference", JASA 78:47-55).
  * Proportions (probe_agree, fast_share, evidence_opened): a Beta(a, b) prior fitted by
    maximum likelihood of the beta-binomial (Griffiths 1973), so each reviewer weighs by their
    labels and one with a single label cannot move the prior (Kleinman 1973, "Proportions with
    extraneous variance", JASA 68:46-54, on why the unweighted moments do not hold with unequal
    n); the posterior mean is (x + a) / (n + a + b).
  * Other indicators (discrimination_gap, streak_ratio, entropy, drift): normal-normal
    shrinkage m + w (raw - m) with w = tau^2 / (tau^2 + v_i), v_i the reviewer's sampling
    variance, m and tau^2 the precision-weighted moment estimates of DerSimonian & Laird (1986)
    (with equal v_i, Var(raw) - v), so a reviewer with few labels weighs little.
    Written as w = n / (n + n0) this is n0 = n v_i / tau^2; where v_i = sigma^2 / n (gap,
    entropy, drift) n0 = sigma^2 / tau^2 is one number for the room.
  * Both families are held to a prior worth between PRIOR_STRENGTH_MIN and PRIOR_STRENGTH_MAX
    labels (a + b, or n0). The minimum keeps a reviewer with three labels from being judged on
    three labels however spread out the room is; the maximum keeps a reviewer's own data in
    play when the room shows no spread beyond noise (the moment estimate is then infinite and
    would erase every reviewer into the room's mean, a real outlier included).
Flags use the shrunken value; the raw value and n are reported beside it. No reviewer with
fewer than MIN_LABELS_TO_FLAG labels is flagged (see there).

Pure numpy/scipy, no Django: services and tests call it with plain arrays.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

import numpy as np
from scipy import optimize, special, stats

from reviewapp.studies.schema import DEFAULT_FLAG_THRESHOLDS

from .intervals import finite_or_none

# The study's default thresholds, defined with the study's settings (a pure module, no Django).
DEFAULT_THRESHOLDS: dict[str, float] = DEFAULT_FLAG_THRESHOLDS

# name -> (threshold key, direction). "max": high is bad, crossed when shrunk > threshold;
# "min": low is bad, crossed when shrunk < threshold. A value exactly at the threshold does
# not cross. The order here is the order of the output dicts and of "crossed".
INDICATORS: dict[str, tuple[str, str]] = {
    "probe_agree": ("probe_agree_max", "max"),
    "discrimination_gap": ("discrimination_gap_min", "min"),
    "fast_share": ("fast_share_max", "max"),
    "streak_ratio": ("streak_ratio_max", "max"),
    "entropy": ("entropy_min", "min"),
    "evidence_opened": ("evidence_opened_min", "min"),
    "drift": ("drift_max", "max"),
}
AI_INDICATORS = ("probe_agree", "discrimination_gap", "streak_ratio", "drift")

# docs/design.md, "Rubber-stamp indicators": flag only when two or more shrunken indicators cross.
MIN_CROSSED_TO_FLAG = 2

# Bounds on the prior's weight, in labels (a + b for the beta prior, n0 for the normal one).
# 4 is the pseudo-count of Agresti & Coull's (1998) "add two successes and two failures";
# 50 lets a reviewer with a few hundred labels keep most of their own signal (w >= 0.8 at
# n = 200) when the room looks homogeneous. Both are choices, not estimates.
PRIOR_STRENGTH_MIN = 4.0
PRIOR_STRENGTH_MAX = 50.0
# The beta prior's likelihood fit: the start of a + b from this many log-spaced points over
# [PRIOR_STRENGTH_MIN, PRIOR_STRENGTH_MAX], the mean's logit held within +-_LOGIT_BOUND.
_STRENGTH_GRID = 25
_LOGIT_BOUND = 30.0

# No reviewer is flagged on fewer labels than this, whatever their indicators say. At 20 labels
# a reviewer's own proportion has a 95% interval about +-0.2 wide at worst (Wilson 1927;
# 1.96 * sqrt(0.25 / 20) = 0.22), the distance between a typical careful value and its default
# threshold (evidence opened 0.6 against 0.2, planted errors agreed 0.2 against 0.5); below it
# a flag would say more about chance than about the reviewer (issue 15: a reviewer flagged on
# one label). Shrinkage alone does not prevent that, as a prior fitted to a room of stamps pulls
# a newcomer toward the stamps. The indicators are still computed and shown for such a
# reviewer; the row says the minimum was not reached. A choice, not an estimate: callers may
# pass their own ``min_labels``.
MIN_LABELS_TO_FLAG = 20

# Expected longest run: exact recursion up to this length; beyond it Schilling's formula
# when at least this many disagreements are expected, else the spacings mixture (see
# expected_longest_run for the error of each).
EXACT_RUN_MAX_N = 200
SCHILLING_MIN_FAILURES = 10.0
_EXACT_CHUNK = 32  # reviewers per vectorized exact recursion (memory: 201 x 200 x 32 floats)


# --- Expected longest run -------------------------------------------------------------


def schilling_expected_longest_run(p: float | np.ndarray, n: float | np.ndarray) -> np.ndarray:
    """E[R_n] ~ log_{1/p}(n q) + gamma / ln(1/p) - 1/2 for the longest run of successes in n
    Bernoulli(p) trials (Schilling 1990, "The longest run of heads", College Math J
    21:196-207; q = 1 - p, gamma Euler's constant). Asymptotic in n q: within 0.1 of the
    exact value once n q >= 10, useless (even negative) when n q is near 1."""
    p = np.asarray(p, dtype=float)
    n = np.asarray(n, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_inv_p = np.log(1.0 / p)
        return np.log(n * (1.0 - p)) / log_inv_p + np.euler_gamma / log_inv_p - 0.5


def schilling_longest_run_variance(p: float | np.ndarray) -> np.ndarray:
    """Var[R_n] ~ pi^2 / (6 ln^2(1/p)) + 1/12, nearly free of n (Schilling 1990, after
    Gordon, Schilling & Waterman 1986). It overstates the variance for short sequences,
    which only means more shrinkage where there is little data."""
    p = np.asarray(p, dtype=float)
    return math.pi**2 / (6.0 * np.log(1.0 / p) ** 2) + 1.0 / 12.0


def _exact_expected_longest_run(p: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Exact E[L] = sum_k P(L >= k), with u_m(k) = P(no run of k in m trials) from the
    renewal recursion u_m = u_{m-1} - q p^k u_{m-k-1} (m > k), u_k = 1 - p^k, u_m = 1 for
    m < k (Feller 1968, An Introduction to Probability Theory, vol. 1, ch. XIII.7).
    All k at once, a chunk of reviewers at once; O(max(n)^2) per chunk."""
    out = np.empty(len(p))
    for start in range(0, len(p), _EXACT_CHUNK):
        pc = p[start : start + _EXACT_CHUNK]
        nc = n[start : start + _EXACT_CHUNK].astype(np.int64)
        top = int(nc.max())
        k = np.arange(1, top + 1)
        pk = pc[None, :] ** k[:, None]  # (k, reviewer)
        qpk = (1.0 - pc)[None, :] * pk
        u = np.ones((top + 1, top, len(pc)))  # u[m, k - 1, reviewer]
        for m in range(1, top + 1):
            u[m] = u[m - 1]
            if m > 1:
                ks = np.arange(1, m)  # k < m: the lag m - k - 1 runs from m - 2 down to 0
                u[m, : m - 1] -= qpk[: m - 1] * u[m - 1 - ks, ks - 1]
            u[m, m - 1] -= pk[m - 1]  # k == m: u_k = 1 - p^k
        out[start : start + len(pc)] = (1.0 - u[nc, :, np.arange(len(pc))]).sum(axis=1)
    return out


def _spacings_expected_longest_run(p: float, n: int) -> float:
    """E[L] for long sequences with few failures. Given f failures, the n - f successes fall
    into f + 1 gaps as a uniform random composition; the largest of f + 1 uniform spacings
    of an interval has mean H_{f+1} / (f + 1) of its length (Whitworth 1897; Pyke 1965,
    "Spacings", JRSS B 27:395-449). Mixed over f ~ Binomial(n, q): within one run (under
    1%) of the exact value for n q < 10, where Schilling's formula fails."""
    f = np.arange(n + 1)
    weights = stats.binom.pmf(f, n, 1.0 - p)
    harmonic = np.cumsum(1.0 / np.arange(1, n + 2))  # harmonic[f] = H_{f+1}
    return float(np.sum(weights * (n - f) * harmonic / (f + 1)))


def expected_longest_run(p: float | np.ndarray, n: int | np.ndarray) -> np.ndarray:
    """Expected longest run of successes in n Bernoulli(p) trials, for arrays of (p, n).

    p = 1 gives n and p = 0 gives 0 (no randomness). Otherwise: the exact recursion for
    n <= EXACT_RUN_MAX_N, where Schilling's asymptotic formula is off for tiny n (n = 3,
    p = 0.5: 0.92 against the exact 1.375); Schilling's formula when n q >= 10 (error
    < 0.1); the spacings mixture when n q < 10 (error < 1 run, < 1%). n = 0 gives NaN.
    """
    p = np.atleast_1d(np.asarray(p, dtype=float))
    n = np.atleast_1d(np.asarray(n, dtype=float))
    p, n = np.broadcast_arrays(p, n)
    out = np.full(p.shape, np.nan)
    defined = (n > 0) & np.isfinite(p)
    out[defined & (p >= 1.0)] = n[defined & (p >= 1.0)]
    out[defined & (p <= 0.0)] = 0.0
    random = defined & (p > 0.0) & (p < 1.0)
    exact = random & (n <= EXACT_RUN_MAX_N)
    if exact.any():
        out[exact] = _exact_expected_longest_run(p[exact], n[exact])
    schilling = random & ~exact & (n * (1.0 - p) >= SCHILLING_MIN_FAILURES)
    out[schilling] = schilling_expected_longest_run(p[schilling], n[schilling])
    for index in np.flatnonzero(random & ~exact & ~schilling):
        out[index] = _spacings_expected_longest_run(float(p[index]), int(n[index]))
    return out


# --- Shrinkage ------------------------------------------------------------------------


def _beta_binomial_nll(params: np.ndarray, x: np.ndarray, n: np.ndarray) -> float:
    """Minus the beta-binomial log-likelihood at (logit mu, log(a + b)), without the binomial
    coefficients (they do not depend on the prior): sum log B(x + a, n - x + b) - log B(a, b)."""
    mu, strength = special.expit(params[0]), math.exp(params[1])
    a, b = mu * strength, (1.0 - mu) * strength
    return -float(np.sum(special.betaln(x + a, n - x + b) - special.betaln(a, b)))


def beta_binomial_prior(x: np.ndarray, n: np.ndarray) -> tuple[float, float]:
    """Beta(a, b) prior across reviewers by maximum likelihood of the beta-binomial (Griffiths
    1973, "Maximum likelihood estimation for the beta-binomial distribution", Biometrics
    29:637-648; Williams 1975, Biometrics 31:949-952), reviewer i contributing
    log B(x_i + a, n_i - x_i + b) - log B(a, b).

    Why not the unweighted method of moments of Kleinman (1973) any more: there every reviewer's
    rate counted once, so one reviewer with a single label (a rate of 0 or 1) looked like huge
    spread and dragged a + b from 50 to about 4 for the whole room (issue 15). In the likelihood a
    reviewer weighs by what their labels say: with n_i = 1 the term is log(mu) or log(1 - mu),
    free of a + b, so such a reviewer cannot move the prior's strength at all, and a reviewer
    with a few labels moves it a little (the likelihood's implicit weights are Kleinman's
    n_i / (1 + (n_i - 1) rho)).

    a + b is fitted within [PRIOR_STRENGTH_MIN, PRIOR_STRENGTH_MAX] (the likelihood is maximized
    over that range, after a grid search for the start, since it is flat toward infinite a + b
    when the room shows no spread beyond binomial noise). The maximum is returned, with the
    pooled rate as the mean, when the strength is not identified: a single reviewer with labels,
    no reviewer with two or more labels, or every label a success (or every one a failure).
    """
    x = np.asarray(x, dtype=float)
    n = np.asarray(n, dtype=float)
    has = n > 0
    if not has.any():
        return math.nan, math.nan
    x, n = x[has], n[has]
    pooled = float(x.sum() / n.sum())
    if x.size < 2 or not (n >= 2).any() or pooled in (0.0, 1.0):
        return pooled * PRIOR_STRENGTH_MAX, (1.0 - pooled) * PRIOR_STRENGTH_MAX
    bounds = [(-_LOGIT_BOUND, _LOGIT_BOUND), (math.log(PRIOR_STRENGTH_MIN), math.log(PRIOR_STRENGTH_MAX))]
    start_mu = float(special.logit(pooled))
    grid = np.linspace(bounds[1][0], bounds[1][1], _STRENGTH_GRID)
    start = grid[int(np.argmin([_beta_binomial_nll(np.array([start_mu, g]), x, n) for g in grid]))]
    fit = optimize.minimize(
        _beta_binomial_nll, np.array([start_mu, start]), args=(x, n), method="L-BFGS-B", bounds=bounds
    )
    mu = float(special.expit(fit.x[0]))
    strength = min(max(math.exp(fit.x[1]), PRIOR_STRENGTH_MIN), PRIOR_STRENGTH_MAX)
    return mu * strength, (1.0 - mu) * strength


def shrink_proportions(x: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Posterior means (x + a) / (n + a + b) under the fitted beta prior; NaN where n = 0."""
    x = np.asarray(x, dtype=float)
    n = np.asarray(n, dtype=float)
    a, b = beta_binomial_prior(x, n)
    out = np.full(n.shape, np.nan)
    has = n > 0
    out[has] = (x[has] + a) / (n[has] + a + b)
    return out


def _between_variance(values: np.ndarray, v: np.ndarray) -> tuple[float, float] | None:
    """(mean, tau^2) by DerSimonian & Laird's precision-weighted method of moments (1986,
    "Meta-analysis in clinical trials", Controlled Clinical Trials 7:177-188): with w_i = 1 / v_i,
    Q = sum w_i (x_i - m_w)^2 and tau^2 = max(0, (Q - (k - 1)) / (sum w - sum w^2 / sum w)); the
    mean is then weighted by 1 / (v_i + tau^2). A reviewer with few labels has a large v_i and
    so a small weight in both: one label cannot move the room (issue 15). With equal v_i it is
    the unweighted moment estimate, Var(x) - v. None without two reviewers of finite, positive v."""
    usable = np.isfinite(v) & (v > 0)
    if usable.sum() < 2:
        return None
    x, w = values[usable], 1.0 / v[usable]
    fixed = float(np.sum(w * x) / w.sum())
    q = float(np.sum(w * (x - fixed) ** 2))
    scale = float(w.sum() - np.sum(w**2) / w.sum())
    tau2 = max(0.0, (q - (x.size - 1)) / scale) if scale > 0 else 0.0
    if tau2 == 0.0:
        return fixed, 0.0
    w_random = 1.0 / (v[usable] + tau2)
    return float(np.sum(w_random * x) / w_random.sum()), tau2


def shrink_toward_mean(raw: np.ndarray, variance: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Normal-normal shrinkage m + w (raw - m), w = n / (n + n0_i), n0_i = n v_i / tau^2.

    m and the between-reviewer variance tau^2 by the precision-weighted method of moments
    (``_between_variance``; DerSimonian & Laird 1986), so reviewers weigh by how much their
    labels say (Efron & Morris 1975; Morris 1983); without two reviewers of usable variance, the
    unweighted mean and Var(raw) - mean(v). n0_i is held to [PRIOR_STRENGTH_MIN,
    PRIOR_STRENGTH_MAX]; tau^2 <= 0 gives the maximum. NaN stays NaN (undefined indicator).
    """
    raw = np.asarray(raw, dtype=float)
    variance = np.nan_to_num(np.asarray(variance, dtype=float), nan=np.inf)
    n = np.asarray(n, dtype=float)
    out = np.full(raw.shape, np.nan)
    has = np.isfinite(raw) & (n > 0)
    if not has.any():
        return out
    values, v, counts = raw[has], variance[has], n[has]
    weighted = _between_variance(values, v)
    if weighted is not None:
        mean, tau2 = weighted
    else:
        mean = float(values.mean())
        finite_v = v[np.isfinite(v)]
        spread = float(values.var(ddof=1)) if values.size >= 2 else 0.0
        tau2 = spread - float(finite_v.mean() if finite_v.size else 0.0) if values.size >= 2 else 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        n0 = counts * v / tau2 if tau2 > 0 else np.full(counts.shape, np.inf)
    n0 = np.clip(np.nan_to_num(n0, nan=PRIOR_STRENGTH_MAX), PRIOR_STRENGTH_MIN, PRIOR_STRENGTH_MAX)
    out[has] = mean + counts / (counts + n0) * (values - mean)
    return out


# --- Labels ---------------------------------------------------------------------------


class Indicator(NamedTuple):
    """One indicator for every reviewer, in the order of ``Labels.ids``: the raw value, the value
    shrunk toward the room (NaN where undefined) and the number of labels behind it."""

    raw: np.ndarray
    shrunk: np.ndarray
    n: np.ndarray


@dataclass(frozen=True, eq=False)
class Labels:
    """The columns of ``reviewer_indicators``, checked and typed; ``rev`` is each row's reviewer
    as an index into ``ids`` (the sorted reviewer ids)."""

    ids: np.ndarray
    rev: np.ndarray
    agree: np.ndarray
    ai_right: np.ndarray
    is_probe: np.ndarray
    seconds: np.ndarray
    floor_seconds: np.ndarray
    evidence_opened: np.ndarray
    label_code: np.ndarray
    order: np.ndarray
    n_categories: int

    @property
    def n_reviewers(self) -> int:
        return len(self.ids)

    @property
    def shown(self) -> np.ndarray:
        """The AI recommendation was on screen (not the control arm)."""
        return self.agree >= 0

    @property
    def agreed(self) -> np.ndarray:
        return self.agree == 1

    def count(self, mask: np.ndarray) -> np.ndarray:
        """Rows where ``mask`` holds, per reviewer (floats, for the ratios and the shrinkage)."""
        return np.bincount(self.rev[mask], minlength=self.n_reviewers).astype(float)

    @cached_property
    def session(self) -> Session:
        return Session.of(self)


@dataclass(frozen=True, eq=False)
class Session:
    """Each reviewer's AI-shown decisions in submit order, for the order-dependent indicators
    (streak_ratio, drift): rows sorted by reviewer, then ``order``."""

    rev: np.ndarray  # reviewer index of each decision
    agreed: np.ndarray
    n: np.ndarray  # decisions per reviewer
    x: np.ndarray  # of which agreed

    @classmethod
    def of(cls, labels: Labels) -> Session:
        rows = np.flatnonzero(labels.shown)
        rows = rows[np.lexsort((labels.order[rows], labels.rev[rows]))]
        rev, agreed = labels.rev[rows], labels.agreed[rows]
        n = np.bincount(rev, minlength=labels.n_reviewers).astype(float)
        x = np.bincount(rev[agreed], minlength=labels.n_reviewers).astype(float)
        return cls(rev, agreed, n, x)

    @property
    def pooled_agree(self) -> float:
        """The room's agree rate, at which the sampling variances are taken."""
        return self.x.sum() / max(self.n.sum(), 1.0)


def _ratio(x: np.ndarray, n: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n > 0, x / np.maximum(n, 1), np.nan)


def _proportion(x: np.ndarray, n: np.ndarray) -> Indicator:
    """x / n per reviewer, shrunk under the room's beta prior (Kleinman 1973)."""
    return Indicator(_ratio(x, n), shrink_proportions(x, n), n)


def _longest_agree_runs(reviewer: np.ndarray, agreed: np.ndarray, n_reviewers: int) -> np.ndarray:
    """Longest run of True per reviewer; rows sorted by reviewer, then submit order. Runs
    break at reviewer boundaries. Vectorized: run starts, run ids by cumsum, lengths by
    bincount, the maximum per reviewer by np.maximum.at."""
    longest = np.zeros(n_reviewers, dtype=np.int64)
    if not agreed.any():
        return longest
    continues = np.zeros(agreed.shape, dtype=bool)
    continues[1:] = agreed[1:] & agreed[:-1] & (reviewer[1:] == reviewer[:-1])
    starts = agreed & ~continues
    run_id = np.cumsum(starts) - 1
    lengths = np.bincount(run_id[agreed])
    np.maximum.at(longest, reviewer[starts], lengths)
    return longest


# --- Indicators -----------------------------------------------------------------------


def probe_agree(labels: Labels) -> Indicator:
    """Share of planted wrong recommendations the reviewer agreed with: deliberately wrong AI
    advice as a measure of over-reliance (Buçinca, Malaya & Gajos 2021, CSCW, "To trust or to
    think"). Beta-binomial shrinkage."""
    probe = labels.shown & labels.is_probe
    return _proportion(labels.count(probe & labels.agreed), labels.count(probe))


def discrimination_gap(labels: Labels) -> Indicator:
    """P(agree | AI right) - P(agree | AI wrong); near zero means the reviewer agrees whether or
    not the AI is right (docs/design.md, "Rubber-stamp indicators"; over- and under-reliance as in
    Buçinca et al. 2021). A probe
    counts as AI-wrong. Sampling variance at the room's pooled rates (a reviewer's own rate of 0
    or 1 would claim no noise at all): v = P_r Q_r / n_r + P_w Q_w / n_w; normal shrinkage."""
    right = labels.shown & (labels.ai_right == 1) & ~labels.is_probe
    wrong = labels.shown & ((labels.ai_right == 0) | labels.is_probe)
    x_r, n_r = labels.count(right & labels.agreed), labels.count(right)
    x_w, n_w = labels.count(wrong & labels.agreed), labels.count(wrong)
    both = (n_r > 0) & (n_w > 0)
    gap = np.where(both, _ratio(x_r, n_r) - _ratio(x_w, n_w), np.nan)
    pooled_r = x_r.sum() / max(n_r.sum(), 1.0)
    pooled_w = x_w.sum() / max(n_w.sum(), 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        variance = pooled_r * (1 - pooled_r) / n_r + pooled_w * (1 - pooled_w) / n_w
    n = np.where(both, n_r + n_w, 0.0)
    return Indicator(gap, shrink_toward_mean(gap, variance, n), n)


def fast_share(labels: Labels) -> Indicator:
    """Share of decisions made faster than the time needed just to read the item at 238 words
    per minute (Brysbaert 2019, J Mem Lang 109:104047). Rows with an unknown time or floor are
    left out. Beta-binomial shrinkage."""
    timed = np.isfinite(labels.seconds) & np.isfinite(labels.floor_seconds) & (labels.floor_seconds > 0)
    fast = timed & (labels.seconds < labels.floor_seconds)
    return _proportion(labels.count(fast), labels.count(timed))


def streak_ratio(labels: Labels) -> Indicator:
    """Longest agree run over its expectation at the reviewer's own rate p = x/n (Schilling 1990,
    "The longest run of heads"). p in {0, 1} gives exactly 1 (the run is what the rate forces).
    Variance of the ratio: Var[R] / E[R]^2, Var[R] from Schilling 1990 at a rate kept off 0 and
    1, (x + 1/2) / (n + 1), as Var[R] is infinite at p = 1; normal shrinkage."""
    session = labels.session
    longest = _longest_agree_runs(session.rev, session.agreed, labels.n_reviewers).astype(float)
    own_rate = _ratio(session.x, session.n)
    expected = expected_longest_run(own_rate, session.n)
    with np.errstate(divide="ignore", invalid="ignore"):
        streak = np.where(session.n > 0, np.where(expected > 0, longest / expected, 1.0), np.nan)
        streak = np.where((own_rate == 0) | (own_rate == 1), 1.0, streak)
        streak = np.where(session.n > 0, streak, np.nan)
        smoothed = (session.x + 0.5) / (session.n + 1.0)
        variance = schilling_longest_run_variance(smoothed) / np.maximum(expected, 1.0) ** 2
    return Indicator(streak, shrink_toward_mean(streak, variance, session.n), session.n)


def entropy(labels: Labels) -> Indicator:
    """H / ln K of the reviewer's decision labels (Shannon 1948): 0 = always the same label,
    1 = uniform. Plug-in estimate (biased low for small n, Miller 1955; shrinkage covers that).
    Variance by the delta method at the room's pooled distribution P: (sum P ln^2 P - H(P)^2) / n
    (Basharin 1959), over ln^2 K; normal shrinkage. Undefined for K < 2."""
    k = labels.n_categories
    labelled = labels.label_code >= 0
    table = np.bincount(
        labels.rev[labelled] * k + labels.label_code[labelled], minlength=labels.n_reviewers * max(k, 1)
    ).reshape(labels.n_reviewers, max(k, 1))
    n = table.sum(axis=1).astype(float)
    if k < 2:
        return Indicator(np.full(labels.n_reviewers, np.nan), np.full(labels.n_reviewers, np.nan), n)
    with np.errstate(divide="ignore", invalid="ignore"):
        shares = table / n[:, None]
        h = -np.sum(np.where(table > 0, shares * np.log(np.where(table > 0, shares, 1.0)), 0.0), axis=1)
        value = np.where(n > 0, h / math.log(k), np.nan)
        pooled = table.sum(axis=0) / max(table.sum(), 1)
        logs = np.log(np.where(pooled > 0, pooled, 1.0))
        unit = (np.sum(pooled * logs**2) - np.sum(pooled * logs) ** 2) / math.log(k) ** 2
        variance = unit / n
    return Indicator(value, shrink_toward_mean(value, variance, n), n)


def evidence_opened(labels: Labels) -> Indicator:
    """Share of items on which a tool call was expanded or the rationale opened or seen
    (docs/design.md, "Rubber-stamp indicators": evidence opened; metrics/loading.py's
    EVIDENCE_KEYS). Beta-binomial shrinkage."""
    return _proportion(labels.count(labels.evidence_opened), labels.count(np.ones(len(labels.rev), dtype=bool)))


def drift(labels: Labels) -> Indicator:
    """Agree rate in the second half of the session minus the first, by submit order
    (docs/design.md, "Rubber-stamp indicators": drift over the session): high = agreeing more as
    the session wears on. With an odd count the middle decision is in neither half. Variance at
    the pooled agree rate, P Q (1/h + 1/h); normal shrinkage."""
    session = labels.session
    first_row = np.concatenate(([0], np.cumsum(session.n)[:-1])).astype(np.int64)
    position = np.arange(len(session.rev)) - first_row[session.rev]
    half = (session.n // 2).astype(np.int64)
    first = position < half[session.rev]
    second = position >= (session.n.astype(np.int64) - half)[session.rev]
    x_first = np.bincount(session.rev[first & session.agreed], minlength=labels.n_reviewers)
    x_second = np.bincount(session.rev[second & session.agreed], minlength=labels.n_reviewers)
    pooled = session.pooled_agree
    with np.errstate(divide="ignore", invalid="ignore"):
        value = np.where(half > 0, (x_second - x_first) / np.maximum(half, 1), np.nan)
        variance = pooled * (1 - pooled) * 2.0 / half
    n = 2.0 * half
    return Indicator(value, shrink_toward_mean(value, variance, n), n)


# The function behind each name of INDICATORS. To add an indicator: a function here, its
# direction in INDICATORS (and in AI_INDICATORS if it needs the recommendation on screen), its
# default threshold in studies/schema.py's DEFAULT_FLAG_THRESHOLDS, what it measures in
# reports/dashboard.py's INDICATOR_HELP and reports/exports.py's INDICATOR_DESCRIPTIONS
# (CONTRIBUTING.md, "Adding a rubber-stamp indicator").
MEASURES: dict[str, Callable[[Labels], Indicator]] = {
    "probe_agree": probe_agree,
    "discrimination_gap": discrimination_gap,
    "fast_share": fast_share,
    "streak_ratio": streak_ratio,
    "entropy": entropy,
    "evidence_opened": evidence_opened,
    "drift": drift,
}


# --- Per reviewer ---------------------------------------------------------------------


def _thresholds(overrides: Mapping[str, float] | None) -> dict[str, float]:
    """The defaults with the study's values on top; names this module does not use are ignored
    (a study may store thresholds for indicators added later)."""
    merged = dict(DEFAULT_THRESHOLDS)
    for key, value in (overrides or {}).items():
        if key in merged and value is not None:
            merged[key] = float(value)
    return merged


def _labels(reviewer: np.ndarray, n_categories: int, columns: dict[str, np.ndarray]) -> Labels:
    """The columns typed, the label codes checked against the categories, reviewers indexed."""
    label_code = np.asarray(columns["label_code"]).astype(np.int64, copy=False)
    if label_code.max() >= n_categories:
        raise ValueError(f"`label_code` holds {label_code.max()}, outside [0, n_categories={n_categories})")
    ids, rev = np.unique(reviewer, return_inverse=True)
    return Labels(
        ids=ids,
        rev=rev.reshape(-1),
        agree=np.asarray(columns["agree"]).astype(np.int8, copy=False),
        ai_right=np.asarray(columns["ai_right"]).astype(np.int8, copy=False),
        is_probe=np.asarray(columns["is_probe"], dtype=bool),
        seconds=np.asarray(columns["seconds"], dtype=float),
        floor_seconds=np.asarray(columns["floor_seconds"], dtype=float),
        evidence_opened=np.asarray(columns["evidence_opened"], dtype=bool),
        label_code=label_code,
        order=np.asarray(columns["order"]),
        n_categories=n_categories,
    )


def _judged(raw: float, shrunk: float, n: int, threshold: float, direction: str) -> dict:
    """One indicator of one reviewer against its threshold: "max" crosses above, "min" below;
    a value exactly at the threshold, or undefined, does not cross."""
    value = finite_or_none(shrunk)
    crossed = value is not None and (value > threshold if direction == "max" else value < threshold)
    return {"raw": finite_or_none(raw), "shrunk": value, "n": n, "threshold": threshold, "crossed": crossed}


def _rows(labels: Labels, measured: dict[str, Indicator], limits: dict[str, float], min_labels: int) -> list[dict]:
    """One dict per reviewer with the numbers behind the flag; flagged when MIN_CROSSED_TO_FLAG
    or more shrunken indicators cross (docs/design.md, "Rubber-stamp indicators") and the
    reviewer has at least ``min_labels`` labels ("too_few_labels" says when not)."""
    # Plain lists first, so the loop over reviewers touches no numpy scalars.
    raw = {name: measured[name].raw.tolist() for name in INDICATORS}
    shrunk = {name: measured[name].shrunk.tolist() for name in INDICATORS}
    counts = {name: measured[name].n.astype(np.int64).tolist() for name in INDICATORS}
    label_counts = labels.count(np.ones(len(labels.rev), dtype=bool)).astype(np.int64).tolist()
    out = []
    for index, reviewer_id in enumerate(labels.ids.tolist()):
        indicators = {
            name: _judged(raw[name][index], shrunk[name][index], counts[name][index], limits[key], direction)
            for name, (key, direction) in INDICATORS.items()
        }
        crossed = [name for name, indicator in indicators.items() if indicator["crossed"]]
        too_few = label_counts[index] < min_labels
        out.append(
            {
                "reviewer": reviewer_id,
                "n": label_counts[index],
                "indicators": indicators,
                "crossed": crossed,
                "flagged": len(crossed) >= MIN_CROSSED_TO_FLAG and not too_few,
                "too_few_labels": too_few,
                "min_labels": min_labels,
            }
        )
    return out


def reviewer_indicators(
    *,
    reviewer: np.ndarray,
    agree: np.ndarray,
    ai_right: np.ndarray,
    is_probe: np.ndarray,
    seconds: np.ndarray,
    floor_seconds: np.ndarray,
    evidence_opened: np.ndarray,
    label_code: np.ndarray,
    order: np.ndarray,
    n_categories: int,
    thresholds: Mapping[str, float] | None = None,
    min_labels: int = MIN_LABELS_TO_FLAG,
) -> list[dict]:
    """Rubber-stamp indicators per reviewer, sorted by reviewer id (module docstring).

    One row per label:
      reviewer        reviewer id (any sortable scalar; ints in practice)
      agree           int: 1 final decision == AI recommendation, 0 not, -1 AI not shown
      ai_right        int: 1 AI recommendation right, 0 wrong, -1 unknown (no gold)
      is_probe        bool: a planted wrong recommendation; counts as AI-wrong whatever ai_right says
      seconds         float: item shown to submit; NaN unknown
      floor_seconds   float: reading floor, words / reading_wpm * 60 (Brysbaert 2019: 238 wpm
                      average silent reading of non-fiction); NaN or <= 0 unknown
      evidence_opened bool: a tool call expanded or the rationale opened or seen
      label_code      int decision code in [0, n_categories); -1 missing
      order           sortable submit time (float seconds, int64 ns), for streaks and drift

    Returns ``[{"reviewer", "n", "indicators": {name: {"raw", "shrunk", "n", "threshold",
    "crossed"}}, "crossed": [names], "flagged": bool, "too_few_labels": bool, "min_labels"}]``;
    "n" is the reviewer's label count. A reviewer with fewer than ``min_labels`` labels keeps
    their indicators and "crossed" but is never flagged.
    """
    reviewer = np.asarray(reviewer)
    length = reviewer.shape[0] if reviewer.ndim == 1 else -1
    columns = {
        "agree": agree,
        "ai_right": ai_right,
        "is_probe": is_probe,
        "seconds": seconds,
        "floor_seconds": floor_seconds,
        "evidence_opened": evidence_opened,
        "label_code": label_code,
        "order": order,
    }
    for name, values in columns.items():
        shape = np.shape(values)
        if len(shape) != 1 or shape[0] != length:
            raise ValueError(f"`{name}` must be one-dimensional with one row per label ({length}), got {shape}")
    if length == 0:
        return []
    labels = _labels(reviewer, int(n_categories), columns)
    measured = {name: measure(labels) for name, measure in MEASURES.items()}
    return _rows(labels, measured, _thresholds(thresholds), int(min_labels))
