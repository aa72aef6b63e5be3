"""The chance-corrected agreement family beside Krippendorff's alpha: Fleiss' kappa,
Brennan-Prediger, Gwet's AC1/AC2 and weighted percent agreement for any number of coders with
missing ratings, and Cohen's kappa and Scott's pi for exactly two coders, each with its
standard error (docs/design.md, "Inter-rater agreement").

All of them are one formula, kappa = (p_a - p_e) / (1 - p_e), with a weighted observed
agreement p_a and a coefficient-specific chance agreement p_e, in the notation of Gwet (2014,
Handbook of Inter-Rater Reliability, 4th ed., Advanced Analytics: ch. 2 for two coders, ch. 5
for many coders with missing ratings). Weights w_kl in [0, 1] give partial credit to near
misses on ordered scales (Cohen 1968, Psychol Bull 70:213; Gwet 2014 ch. 3, Table 3.6):

* identity: w_kl = 1 if k = l else 0 (nominal fields);
* linear: w_kl = 1 - |x_k - x_l| / (x_max - x_min);
* quadratic: w_kl = 1 - (x_k - x_l)^2 / (x_max - x_min)^2 (Fleiss & Cohen 1973, Educ Psychol
  Meas 33:613: quadratic-weighted kappa approximates the intraclass correlation).

x_k is the category's rank for ordinal fields and its value for interval fields.

Variances are Gwet's linearisation (2014, ch. 5, eq. 5.6-5.10 for many coders; ch. 2 for two,
which for Cohen's kappa is the large-sample variance of Fleiss, Cohen & Everitt 1969, Psychol
Bull 72:323), intervals kappa +/- t_{n-1} SE with the upper bound capped at 1, as Gwet's irrCAC
package reports them. Checked against the published values of Gwet's examples (irrCAC), SAS
PROC FREQ and Fleiss (1971) in tests/metrics/test_agreement_family.py.

Why not statsmodels.stats.inter_rater: its ``fleiss_kappa`` needs the same number of coders on
every unit and gives no standard error, and its ``cohens_kappa`` covers two coders only; a
review arm has a different set of reviewers on each item. The formulas below work on the same
(units x categories) count matrix as stats/agreement.py, vectorised, so a million labels cost
milliseconds.

``None`` means undefined (never NaN).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats

from .agreement import _patterns
from .intervals import finite_or_none

WEIGHTINGS = ("identity", "linear", "quadratic")
# Many-coder coefficients (Gwet 2014 ch. 5) and two-coder ones (ch. 2), in display order.
MULTI = ("percent_agreement", "gwet_ac", "fleiss_kappa", "brennan_prediger")
TWO = ("cohen_kappa", "scott_pi")
NAMES = {
    "percent_agreement": "weighted percent agreement",
    "gwet_ac": "gwet ac2",
    "fleiss_kappa": "fleiss kappa",
    "brennan_prediger": "brennan-prediger",
    "cohen_kappa": "cohen kappa",
    "scott_pi": "scott pi",
}


def weight_matrix(values: Sequence[float], kind: str) -> np.ndarray:
    """The (q, q) agreement weights of Gwet (2014, ch. 3) for categories with numeric ``values``
    (ranks for an ordinal scale). With a single category every weighting is the identity."""
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or not len(x) or not np.all(np.isfinite(x)):
        raise ValueError("values must be a non-empty sequence of finite numbers.")
    if kind not in WEIGHTINGS:
        raise ValueError(f"kind must be one of {WEIGHTINGS}, got {kind!r}.")
    span = float(x.max() - x.min())
    if kind == "identity" or span == 0:
        return np.eye(len(x))
    distance = np.abs(x[:, None] - x[None, :]) / span
    return 1 - distance if kind == "linear" else 1 - distance**2


def _interval(value: float | None, se: float | None, df: int, confidence: float) -> tuple[float | None, float | None]:
    """value +/- t_df SE (Gwet 2014, ch. 5; irrCAC: df = rated units - 1), the upper bound capped
    at 1: no agreement coefficient exceeds 1. None without a standard error or degrees of freedom."""
    if value is None or se is None or df < 1:
        return None, None
    half = float(stats.t.ppf(0.5 + confidence / 2, df)) * se
    return finite_or_none(value - half), finite_or_none(min(1.0, value + half))


def _estimate(value, se, n: int, method: str, confidence: float, df: int | None = None) -> dict:
    """The coefficient as an ``Estimate`` dict plus its standard error ``se`` and, when there is
    no interval although there is a value, the reason in ``note``. A standard error of 0 (one
    reviewer gave the same answer throughout, so the linearised variance vanishes) gives no
    interval: a zero-width interval would claim a certainty four items cannot give."""
    value, se = finite_or_none(value), finite_or_none(se)
    note = None
    if value is None:
        se = None
    elif se is not None and se <= 1e-12:
        se, note = None, "no variance to estimate: interval not estimable"
    low, high = _interval(value, se, n - 1 if df is None else df, confidence)
    if value is not None and low is None and note is None:
        note = "too few items for an interval"
    return {"value": value, "low": low, "high": high, "n": int(n), "method": method, "se": se, "note": note}


def _method(name: str, weighting: str) -> str:
    weights = "unweighted" if weighting == "identity" else f"{weighting} weights"
    return f"{name} ({weights}), gwet 2014 variance, t interval"


def _check(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise ValueError("confidence must be between 0 and 1.")


def _weights(weights: np.ndarray, q: int) -> np.ndarray:
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != (q, q):
        raise ValueError(f"weights must be a ({q}, {q}) matrix.")
    return weights


def multi_rater(counts: np.ndarray, weights: np.ndarray, *, weighting: str = "identity", confidence: float = 0.95):
    """Weighted percent agreement, Gwet's AC1/AC2, Fleiss' kappa and Brennan-Prediger for any
    number of coders with missing ratings (Gwet 2014, ch. 5; irrCAC pa.coeff.raw, gwet.ac1.raw,
    fleiss.kappa.raw, bp.coeff.raw), each with Gwet's standard error.

    ``counts`` is (units, q): r_ik, how many coders put unit i in category k. Units nobody
    rated are dropped; single-rated units count in the chance terms pi_k, not in p_a:

        r*_ik = sum_l w_kl r_il,  p_a = mean over units with r_i >= 2 of sum_k r_ik (r*_ik - 1) / (r_i (r_i - 1))
        pi_k  = (1/n) sum_i r_ik / r_i
        p_e   = 0 (percent agreement) | T_w sum_k pi_k (1 - pi_k) / (q (q - 1)) (AC2; T_w = sum of
                the weights; AC1 with identity weights, Gwet 2008) | sum_kl w_kl pi_k pi_l
                (Fleiss 1971, the many-coder Scott's pi) | T_w / q^2 (Brennan & Prediger 1981)

    Variance (Gwet 2014, eq. 5.7-5.10): v = sum_i (kappa*_i - kappa)^2 / (n (n - 1)) with
    kappa_i = (n / n_2) (p_a|i - p_e [r_i >= 2]) / (1 - p_e) and kappa*_i = kappa_i - 2 (1 -
    kappa) (p_e|i - p_e) / (1 - p_e), p_e|i the unit's share of the chance term (none for
    percent agreement and Brennan-Prediger, whose p_e is fixed). ``n`` of each estimate is the
    number of pairable units; the t interval has n_rated - 1 degrees of freedom, as in irrCAC.
    A coefficient whose p_e is 1 (every rating the same category, for Fleiss) is None.
    """
    _check(confidence)
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 2 or (counts.size and counts.min() < 0) or not np.all(np.isfinite(counts)):
        raise ValueError("counts must be a (units, categories) matrix of non-negative counts.")
    q = counts.shape[1]
    w = _weights(weights, q)
    # Every term below depends on a unit only through its count row: work on the distinct rows
    # weighted by how many units have each (a review field has a few dozen), not on every unit.
    rated, frequency = _patterns(counts.astype(np.int64))
    rated, frequency = rated.astype(np.float64), frequency.astype(np.float64)
    r = rated.sum(axis=1)
    n = int(frequency.sum())
    pairable = r >= 2
    n2 = int(frequency[pairable].sum())
    out = {}
    if n2 == 0 or q < 1:
        for name in MULTI:
            out[name] = _estimate(None, None, 0, _method(NAMES[name], weighting), confidence)
        return out
    weighted = rated @ w.T  # r*_ik
    denominator = np.where(pairable, r * (r - 1), 1.0)
    pa_i = np.where(pairable, (rated * (weighted - 1)).sum(axis=1) / denominator, 0.0)
    pa = float((frequency * pa_i).sum() / n2)
    shares = rated / r[:, None]
    pi = frequency @ shares / n
    total_weight = float(w.sum())

    def coefficient(pe: float, pe_i: np.ndarray | None) -> tuple[float | None, float | None]:
        if 1 - pe <= 1e-12:
            return None, None
        value = (pa - pe) / (1 - pe)
        if n < 2:
            return value, None
        kappa_i = (n / n2) * (pa_i - pe * pairable) / (1 - pe)
        if pe_i is not None:
            kappa_i = kappa_i - 2 * (1 - value) * (pe_i - pe) / (1 - pe)
        variance = float((frequency * (kappa_i - value) ** 2).sum() / (n * (n - 1)))
        return value, float(np.sqrt(variance))

    chance = {"percent_agreement": (0.0, None), "brennan_prediger": (total_weight / q**2, None)}
    if q >= 2:
        scale = total_weight / (q * (q - 1))
        chance["gwet_ac"] = (scale * float((pi * (1 - pi)).sum()), scale * (shares @ (1 - pi)))
    pi_w = (w @ pi + w.T @ pi) / 2
    chance["fleiss_kappa"] = (float(pi @ w @ pi), shares @ pi_w)
    for name in MULTI:
        method = _method(NAMES[name], weighting)
        if name not in chance:  # AC1/AC2 on a one-category scale: no chance agreement to correct for
            out[name] = _estimate(None, None, n2, method, confidence)
            continue
        value, se = coefficient(*chance[name])
        out[name] = _estimate(value, se, n2, method, confidence, df=n - 1)
    return out


def two_rater(table: np.ndarray, weights: np.ndarray, *, weighting: str = "identity", confidence: float = 0.95):
    """Cohen's kappa (Cohen 1960; weighted, Cohen 1968) and Scott's pi (Scott 1955, Public Opin
    Q 19:321) of two coders from their (q, q) contingency table (rows the first coder, columns
    the second, units both rated), with Gwet's (2014, ch. 2) standard errors.

        p_a = sum_kl w_kl p_kl;  Cohen: p_e = sum_kl w_kl p_k. p_.l;  Scott: p_e = sum_kl w_kl pi_k pi_l,
        pi_k = (p_k. + p_.k) / 2
        v = (sum_kl p_kl (w_kl - (1 - kappa)(a_k + b_l))^2 - (p_a - 2 (1 - kappa) p_e)^2) / (n (1 - p_e)^2)

    with a_k = sum_j w_jk p_.j, b_l = sum_j w_jl p_j. for Cohen's kappa (the large-sample
    variance of Fleiss, Cohen & Everitt 1969) and a_k = b_k = sum_j w_jk pi_j for Scott's pi.
    ``n`` is the number of units both coders rated.
    """
    _check(confidence)
    table = np.asarray(table, dtype=np.float64)
    if table.ndim != 2 or table.shape[0] != table.shape[1] or (table.size and table.min() < 0):
        raise ValueError("table must be a square matrix of non-negative counts.")
    w = _weights(weights, table.shape[0])
    n = int(table.sum())
    if n == 0:
        return {name: _estimate(None, None, 0, _method(NAMES[name], weighting), confidence) for name in TWO}
    p = table / n
    pa = float((w * p).sum())
    rows, cols = p.sum(axis=1), p.sum(axis=0)
    pi = (rows + cols) / 2
    out = {}
    for name, pe, a, b in (
        ("cohen_kappa", float(rows @ w @ cols), w.T @ cols, w.T @ rows),
        ("scott_pi", float(pi @ w @ pi), w.T @ pi, w.T @ pi),
    ):
        method = _method(NAMES[name], weighting)
        if 1 - pe <= 1e-12:
            out[name] = _estimate(None, None, n, method, confidence)
            continue
        value = (pa - pe) / (1 - pe)
        spread = (p * (w - (1 - value) * (a[:, None] + b[None, :])) ** 2).sum()
        variance = (spread - (pa - 2 * (1 - value) * pe) ** 2) / (n * (1 - pe) ** 2)
        out[name] = _estimate(value, float(np.sqrt(max(variance, 0.0))), n, method, confidence)
    return out


def two_coder_table(
    units: np.ndarray, codes: np.ndarray, coders: np.ndarray, n_units: int, n_categories: int
) -> tuple[np.ndarray | None, int]:
    """(contingency table, number of coders) of the labels on pairable units (units with at
    least two labels). The table exists only when exactly two coders labelled those units:
    Cohen's kappa and Scott's pi are two-coder coefficients, and with more coders a pair-by-pair
    table would throw away most of the data (Fleiss' kappa is their many-coder form). Rows are
    the coder with the lower id. A negative code is a missing label."""
    units = np.asarray(units, dtype=np.int64).ravel()
    codes = np.asarray(codes, dtype=np.int64).ravel()
    coders = np.asarray(coders).ravel()
    if not (units.shape == codes.shape == coders.shape):
        raise ValueError("units, codes and coders must have the same length.")
    present = codes >= 0
    units, codes, coders = units[present], codes[present], coders[present]
    per_unit = np.bincount(units, minlength=n_units)
    on_pairable = per_unit[units] >= 2
    who = np.unique(coders[on_pairable])
    if len(who) != 2:
        return None, len(who)
    first = np.full(n_units, -1, dtype=np.int64)
    second = np.full(n_units, -1, dtype=np.int64)
    first[units[coders == who[0]]] = codes[coders == who[0]]
    second[units[coders == who[1]]] = codes[coders == who[1]]
    both = (first >= 0) & (second >= 0)
    cells = np.bincount(first[both] * n_categories + second[both], minlength=n_categories * n_categories)
    return cells.reshape(n_categories, n_categories), 2


def agreement_family(
    counts: np.ndarray,
    level: str,
    value_domain: Sequence[float],
    *,
    units: np.ndarray,
    codes: np.ndarray,
    coders: np.ndarray,
    confidence: float = 0.95,
) -> dict:
    """Every coefficient of the family for one field, per weighting: identity only for a
    nominal field; identity, linear and quadratic for ordinal (x = ranks) and interval
    (x = values) fields. Unweighted percent agreement and AC1 are left out here: they are
    reported with unit-bootstrap intervals by stats/agreement.py. Cohen's kappa and Scott's pi
    are None unless exactly two coders labelled the pairable units (``n_coders`` says how many
    did)."""
    counts = np.asarray(counts)
    q = counts.shape[1]
    domain = list(value_domain)[:q] if level != "nominal" else list(range(q))
    if len(domain) != q:
        raise ValueError("value_domain needs one value per column of counts.")
    table, n_coders = two_coder_table(units, codes, coders, counts.shape[0], q)
    kinds = ("identity",) if level == "nominal" else WEIGHTINGS
    out: dict = {"n_coders": n_coders, "two_coders": table is not None, "weightings": {}}
    out["n_units_both"] = int(table.sum()) if table is not None else 0
    for kind in kinds:
        w = weight_matrix(domain, kind) if q else np.zeros((0, 0))
        entry = multi_rater(counts, w, weighting=kind, confidence=confidence)
        if kind == "identity":
            del entry["percent_agreement"], entry["gwet_ac"]
        if table is not None:
            entry.update(two_rater(table, w, weighting=kind, confidence=confidence))
        else:
            for name in TWO:
                entry[name] = None
        out["weightings"][kind] = entry
    return out
