"""Effect model: agreement with the AI per label, with reviewers and items as crossed clusters.

The model is a logistic regression of agreement with the AI (0/1 per answered label) on
arm x split, where the split is whether the AI was right, wrong, or not known to be
either (no gold label): one parameter per (arm, split) cell, logit P(agree) = beta_cell.
A reviewer's labels are correlated (their own habit of deferring), and so are an item's
labels across reviewers and arms (some items make everybody defer), and these two sources
of variation are crossed, not nested: every item is seen in every arm. The covariance of
the parameters is therefore the two-way cluster-robust sandwich of Cameron, Gelbach &
Miller (2011, "Robust inference with multiway clustering", JBES 29(2):238-249):

    V = V_reviewer + V_item - V_reviewer∩item

each term a one-way CRV1 sandwich H^-1 (sum_g u_g u_g') H^-1 with the small-sample factor
G/(G-1) * (N-1)/(N-K) (the intersection of reviewer and item is usually the label itself, so
the last term is the heteroskedasticity-robust one). statsmodels computes it
(``sandwich_covariance.cov_cluster_2groups``, which is what ``GLM.fit(cov_type="cluster",
cov_kwds={"groups": two columns})`` calls); tests/metrics/test_effects.py checks that the
numbers here equal that full statsmodels fit.

Fitting on sufficient statistics. The model is saturated in its cells, so the maximum
likelihood estimate is exact in closed form: each cell's logit is the logit of its
observed proportion (the score equations sum_i (y_i - p_cell) = 0 per cell), and the
Hessian is diagonal, n_c p_c (1 - p_c). Only the per-label scores (y_i - p_c) in the
label's cell are left for the sandwich. This gives the same numbers as statsmodels' IRLS
fit in a fraction of the time (7.5 s for a million labels through ``GLM.fit``; the IRLS
alone was 4.5 s).

Rates, contrasts and effect sizes come from the cell probabilities by the delta method
(Agresti 2013, "Categorical Data Analysis", 3rd ed., sec. 16.1): an arm's rate over several
splits is the label-weighted mean of its cells (the pooled rate the rest of the app
reports), and for two rates a (an arm) and b (the comparison arm):

- odds ratio  OR = [a/(1-a)] / [b/(1-b)], interval exp(log OR ± t·se);
- risk difference  RD = a - b (the deference effect / narrative increment of
  docs/design.md), interval RD ± t·se;
- risk ratio  RR = a / b, interval exp(log RR ± t·se);
- Cohen's h = 2·asin(√a) - 2·asin(√b) (Cohen 1988, "Statistical Power Analysis for the
  Behavioral Sciences", 2nd ed., ch. 6; 0.2 small, 0.5 medium, 0.8 large), interval h ± t·se.

t is Student's t with min(G_reviewers, G_items) - 1 degrees of freedom: with few clusters
the normal quantile makes cluster-robust intervals too narrow, and CGM (2011, sec. 2.3)
and Cameron & Miller (2015, "A practitioner's guide to cluster-robust inference", JHR
50(2), sec. VI) recommend T(G - 1) with G the smaller dimension. The p-value is the Wald
test of log OR = 0 against the same t.

Refusals. Where the model cannot give an honest number the answer is a reason string:
- a cell without labels (an empty arm, or no item on which the AI was wrong);
- separation: every label of a cell agrees, or none does, so its logit is infinite
  (Albert & Anderson 1984) and its variance estimate is zero;
- one cluster: a cell whose labels all come from one reviewer (or one item), where the
  cluster score sums to exactly zero and the sandwich would claim certainty.
The two-way matrix can fail to be positive semi-definite; it is then made so by zeroing its
negative eigenvalues (CGM 2011, sec. 2.3), and the result says so.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats
from statsmodels.stats.sandwich_covariance import cov_cluster

METHOD = (
    "Logistic model of agreement with the AI on arm x (AI right / wrong / unknown), one parameter per cell "
    "(exact maximum likelihood); two-way cluster-robust (reviewer, item) covariance, CRV1 "
    "(Cameron, Gelbach & Miller 2011, via statsmodels); delta-method intervals with t(min(G) - 1)"
)
SPLIT_CODES = {"ai_right": 0, "ai_wrong": 1, "unknown": 2}
SPLIT_LABELS = {"all": "all items", "ai_right": "AI right", "ai_wrong": "AI wrong", "unknown": "AI right/wrong unknown"}
# Below this many reviewers in either arm of a contrast, cluster-robust standard errors are
# biased downwards and even t(G-1) intervals under-cover (Cameron & Miller 2015, sec. VI:
# "few" is somewhere between 20 and 50 clusters; Bertrand, Duflo & Mullainathan 2004, with
# 10 of 50 states, over-reject noticeably). A contrast below it carries the caveat flag.
FEW_CLUSTERS = 20
CAVEAT = (
    "Cluster-robust standard errors rely on many clusters; with few reviewers per arm (under about "
    f"{FEW_CLUSTERS}) or few items they are biased downwards and the intervals are too narrow even with the "
    "t(G-1) correction (Cameron & Miller 2015). The randomization p-value does not rely on the number of clusters."
)


def _check_confidence(confidence: float) -> float:
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float, np.floating, np.integer)):
        raise ValueError(f"`confidence` must be a number strictly between 0 and 1, got {confidence!r}")
    if not 0.0 < float(confidence) < 1.0:
        raise ValueError(f"`confidence` must be strictly between 0 and 1, got {confidence!r}")
    return float(confidence)


def _checked_codes(values, name: str, n: int) -> np.ndarray:
    array = np.asarray(values)
    if array.shape != (n,):
        raise ValueError(f"`{name}` must have one entry per label ({n}), got shape {array.shape}")
    if array.dtype.kind not in "iub":
        raise ValueError(f"`{name}` must hold whole-number codes, got dtype {array.dtype}")
    return array.astype(np.int64)


class CellFit:
    """The saturated model's fit: per cell (index ``arm * 3 + split``) its labels, agreeing
    labels, reviewers and items, the logit covariance over the fitted cells, two-way and
    one-way (reviewers only, items only)."""

    def __init__(self, agree, arm, split, reviewer, item, n_arms: int):
        n = len(agree)
        self.n_cells = n_arms * len(SPLIT_CODES)
        cell = arm * len(SPLIT_CODES) + split
        self.n = np.bincount(cell, minlength=self.n_cells).astype(float)
        self.hits = np.bincount(cell, weights=agree, minlength=self.n_cells)
        with np.errstate(invalid="ignore", divide="ignore"):
            self.p = self.hits / self.n
        reviewer_codes, self.n_reviewers = dense_codes(reviewer)
        item_codes, self.n_items = dense_codes(item)
        self.n_labels = n
        self.cell_reviewers = _distinct_per_cell(cell, reviewer_codes, self.n_cells)
        self.cell_items = _distinct_per_cell(cell, item_codes, self.n_cells)
        # Cells that can be fitted: labels, both outcomes, more than one reviewer and item.
        self.fitted = (
            (self.n > 0) & (self.hits > 0) & (self.hits < self.n) & (self.cell_reviewers > 1) & (self.cell_items > 1)
        )
        columns = np.flatnonzero(self.fitted)
        self.column = np.full(self.n_cells, -1)
        self.column[columns] = np.arange(len(columns))
        keep = self.fitted[cell]
        k = len(columns)
        self.cov = self.cov_unadjusted = self.cov_reviewer = self.cov_item = np.zeros((k, k))
        self.psd_adjusted = False
        if k == 0 or keep.sum() <= k or min(self.n_reviewers, self.n_items) < 2:
            return
        rows = np.flatnonzero(keep)
        # Score of a label: (y - p) in its cell's column (canonical link, scale 1).
        scores = np.zeros((len(rows), k))
        scores[np.arange(len(rows)), self.column[cell[rows]]] = agree[rows] - self.p[cell[rows]]
        p = self.p[columns]
        bread = np.diag(1.0 / (self.n[columns] * p * (1 - p)))
        # cov_cluster_2groups(..) is exactly these three calls, but finds the intersection
        # clusters with a row-wise np.unique that took 1.7 s of a million labels' 4.8 s.
        pair = reviewer_codes[rows] * self.n_items + item_codes[rows]
        _, both_codes = np.unique(pair, return_inverse=True)
        self.cov_reviewer = cov_cluster((scores, bread), reviewer_codes[rows])
        self.cov_item = cov_cluster((scores, bread), item_codes[rows])
        both = self.cov_reviewer + self.cov_item - cov_cluster((scores, bread), both_codes)
        self.cov_unadjusted = both
        values, vectors = np.linalg.eigh(both)
        if values.min() < 0:
            self.psd_adjusted = True
            both = (vectors * np.clip(values, 0, None)) @ vectors.T
        self.cov = both

    def refusal(self, cells: list[int], describe) -> str | None:
        """Why a rate over ``cells`` cannot be estimated, or None."""
        for c in cells:
            if self.n[c] == 0:
                return f"no answered labels in {describe(c)}"
            if self.hits[c] in (0, self.n[c]):
                word = "all" if self.hits[c] else "none"
                return (
                    f"separation: {word} of the {int(self.n[c])} labels in {describe(c)} agree with the AI, "
                    "so the model's log odds there are infinite"
                )
            if self.cell_reviewers[c] < 2:
                return f"one reviewer in {describe(c)}: a cluster-robust standard error needs at least two"
            if self.cell_items[c] < 2:
                return f"one item in {describe(c)}: a cluster-robust standard error needs at least two"
        return None


def dense_codes(values: np.ndarray) -> tuple[np.ndarray, int]:
    """(codes 0..k-1, k) of integer ids. Ids that are already small non-negative numbers (the
    metrics run passes its reviewer and item indices) are counted rather than sorted: a
    million labels' np.unique is a sort, a tenth of a second each time."""
    if len(values) and values.min() >= 0 and values.max() < 4 * len(values) + 1024:
        present = np.bincount(values) > 0
        lookup = np.cumsum(present) - 1
        return lookup[values], int(present.sum())
    _, codes = np.unique(values, return_inverse=True)
    return codes, int(codes.max()) + 1 if len(codes) else 0


def _distinct_per_cell(cell: np.ndarray, codes: np.ndarray, n_cells: int) -> np.ndarray:
    """How many distinct codes (reviewers, items) each cell has, from dense ``codes``."""
    width = int(codes.max()) + 1 if len(codes) else 1
    seen = np.bincount(cell * width + codes, minlength=n_cells * width) > 0
    return seen.reshape(n_cells, width).sum(axis=1)


def _rate(fit: CellFit, cells: list[int]) -> tuple[float, np.ndarray]:
    """Pooled rate over ``cells`` and its gradient with respect to the fitted logits."""
    n = fit.n[cells]
    rate = float(fit.hits[cells].sum() / n.sum())
    gradient = np.zeros(fit.cov.shape[0])
    for c, weight in zip(cells, n / n.sum(), strict=True):
        gradient[fit.column[c]] += weight * fit.p[c] * (1 - fit.p[c])
    return rate, gradient


def _se(gradient: np.ndarray, cov: np.ndarray) -> float:
    return math.sqrt(max(0.0, float(gradient @ cov @ gradient)))


def _interval(value: float, se: float, quantile: float, transform=None) -> dict:
    low, high = value - quantile * se, value + quantile * se
    if transform is not None:
        value, low, high = transform(value), transform(low), transform(high)
    return {"value": value, "low": low, "high": high}


def _arcsine(rate: float) -> float:
    # Cohen's (1988) phi = 2 asin(sqrt(p)): the variance-stabilizing transform of a proportion.
    return 2 * math.asin(math.sqrt(rate))


def contrast(fit: CellFit, first: list[int], second: list[int], confidence: float, df: int) -> dict:
    """OR, RD, RR and Cohen's h of rate(first) against rate(second), with intervals at
    ``confidence`` from t(df), the Wald p of log OR = 0, and the standard error of log OR
    under each clustering (two-way, reviewers only, items only)."""
    a, grad_a = _rate(fit, first)
    b, grad_b = _rate(fit, second)
    quantile = float(stats.t.ppf((1 + confidence) / 2, df))
    log_or_grad = grad_a / (a * (1 - a)) - grad_b / (b * (1 - b))
    se_log_or = _se(log_or_grad, fit.cov)
    log_or = math.log(a / (1 - a)) - math.log(b / (1 - b))
    h_grad = grad_a / math.sqrt(a * (1 - a)) - grad_b / math.sqrt(b * (1 - b))
    p_value = float(2 * stats.t.sf(abs(log_or) / se_log_or, df)) if se_log_or > 0 else None
    return {
        "rate_first": a,
        "rate_second": b,
        "n_first": int(fit.n[first].sum()),
        "n_second": int(fit.n[second].sum()),
        "odds_ratio": _interval(log_or, se_log_or, quantile, math.exp),
        "risk_difference": _interval(a - b, _se(grad_a - grad_b, fit.cov), quantile),
        "risk_ratio": _interval(math.log(a / b), _se(grad_a / a - grad_b / b, fit.cov), quantile, math.exp),
        "cohens_h": _interval(_arcsine(a) - _arcsine(b), _se(h_grad, fit.cov), quantile),
        "p_model": p_value,
        "se_log_or": {
            "two_way": se_log_or,
            "reviewer": _se(log_or_grad, fit.cov_reviewer),
            "item": _se(log_or_grad, fit.cov_item),
        },
    }


def effect_model(
    agree,
    arm,
    split,
    reviewer,
    item,
    arm_names: list[str],
    contrasts: list[tuple[str, int, int]],
    *,
    confidence: float = 0.95,
    splits: tuple[str, ...] = ("all", "ai_right", "ai_wrong"),
    min_reviewers: int = 2,
) -> dict:
    """The effect model over answered labels and each requested contrast per split.

    ``agree`` 0/1 per label; ``arm`` the arm's index into ``arm_names``; ``split`` 0 AI right,
    1 AI wrong, 2 unknown (``SPLIT_CODES``); ``reviewer`` and ``item`` any integer ids.
    ``contrasts`` are (kind, first arm index, second arm index), e.g. ("deference", 1, 0).
    ``min_reviewers`` is the study's few-cluster guard (stats/cluster_robust.py): a contrast
    with fewer reviewers in either arm gets "too few reviewers (n) ..." instead of numbers.
    "all" pools every split of an arm; "ai_right" / "ai_wrong" are single cells.
    Returns the model's description and one row per (contrast, split): the numbers of
    ``contrast`` or, where the model cannot give them, a ``reason``.
    """
    confidence = _check_confidence(confidence)
    agree = np.asarray(agree)
    n = len(agree)
    if agree.shape != (n,) or not np.isin(agree, (0, 1)).all():
        raise ValueError("`agree` must be a 1-d array of 0/1 per label")
    arm = _checked_codes(arm, "arm", n)
    split = _checked_codes(split, "split", n)
    reviewer = _checked_codes(reviewer, "reviewer", n)
    item = _checked_codes(item, "item", n)
    if n and (arm.min() < 0 or arm.max() >= len(arm_names)):
        raise ValueError("`arm` codes must index `arm_names`")
    if n and (split.min() < 0 or split.max() >= len(SPLIT_CODES)):
        raise ValueError("`split` codes must be 0 (AI right), 1 (AI wrong) or 2 (unknown)")
    out: dict = {"method": METHOD, "confidence": confidence, "caveat": CAVEAT, "n_labels": n, "contrasts": []}
    reviewers, items = dense_codes(reviewer)[1], dense_codes(item)[1]
    out.update(n_reviewers=reviewers, n_items=items)
    if reviewers < 2 or items < 2:
        out["reason"] = (
            f"{reviewers} reviewer(s) and {items} item(s) answered: two-way clustering needs at least two of each"
        )
        return out
    fit = CellFit(agree.astype(float), arm, split, reviewer, item, len(arm_names))
    arm_reviewers = _distinct_per_cell(arm, dense_codes(reviewer)[0], len(arm_names))
    df = min(reviewers, items) - 1
    out.update(df=df, psd_adjusted=fit.psd_adjusted)
    names = {code: name for name, code in SPLIT_CODES.items()}

    def describe(c: int) -> str:
        arm_index, split_code = divmod(c, len(SPLIT_CODES))
        return f"arm {arm_names[arm_index]} ({SPLIT_LABELS[names[split_code]]})"

    for kind, first, second in contrasts:
        for split_name in splits:
            row = {"kind": kind, "split": split_name, "first": arm_names[first], "second": arm_names[second]}
            cells = [
                [a * len(SPLIT_CODES) + code for code in _split_codes(split_name) if fit.n[a * len(SPLIT_CODES) + code]]
                for a in (first, second)
            ]
            if not cells[0] or not cells[1]:
                empty = arm_names[first] if not cells[0] else arm_names[second]
                row["reason"] = f"no answered labels in arm {empty} ({SPLIT_LABELS[split_name]})"
            elif (fewest := min((arm_reviewers[first], first), (arm_reviewers[second], second)))[0] < min_reviewers:
                row["reason"] = (
                    f"too few reviewers ({fewest[0]}) in arm {arm_names[fewest[1]]} for an interval "
                    f"(the study's minimum is {min_reviewers})"
                )
            elif reason := fit.refusal(cells[0] + cells[1], describe):
                row["reason"] = reason
            else:
                row.update(contrast(fit, cells[0], cells[1], confidence, df))
                row["few_clusters"] = min(_reviewers(fit, cells[0]), _reviewers(fit, cells[1])) < FEW_CLUSTERS
            out["contrasts"].append(row)
    return out


def _split_codes(split_name: str) -> tuple[int, ...]:
    if split_name == "all":
        return tuple(SPLIT_CODES.values())
    return (SPLIT_CODES[split_name],)


def _reviewers(fit: CellFit, cells: list[int]) -> int:
    # A reviewer in several cells of one arm counts once at most per cell; the largest
    # cell is a lower bound on the arm's reviewers, which is what the caveat needs.
    return int(max(fit.cell_reviewers[c] for c in cells))
