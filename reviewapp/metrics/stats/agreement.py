"""Inter-rater agreement: Krippendorff's alpha, percent agreement and Gwet's AC1, each with a
unit-bootstrap interval (docs/design.md, "Inter-rater agreement").

Everything works on a count matrix: one row per unit (an item of a decision field), one
column per category, cell = how many coders gave that category to that unit. Who gave which
value does not matter to any of the three coefficients, only how many of each a unit got
(Krippendorff 2011, section C: "values by units" matrix; Gwet 2014, ch. 4: r_ik).

Alpha beside percent agreement and AC1 on purpose: with a skewed prevalence (a room of
approve-everything reviewers) alpha is near 0 at 96% raw agreement, the "prevalence paradox"
(Feinstein & Cicchetti 1990, J Clin Epidemiol 43:543; Gwet 2008), and only the three side by
side show it.

``None`` means undefined, never NaN (see ``intervals.finite_or_none``).
"""

from __future__ import annotations

from collections.abc import Sequence

import krippendorff
import numpy as np

from .intervals import Estimate, finite_or_none

LEVELS = ("nominal", "ordinal", "interval", "ratio")

# Column order of the statistics matrix the bootstrap computes per resample.
_ALPHA, _PERCENT, _AC1 = 0, 1, 2


def value_counts(units: np.ndarray, codes: np.ndarray, n_units: int, n_categories: int) -> np.ndarray:
    """(n_units, n_categories) count matrix from long format (one entry per label).

    ``units[i]`` is the unit index (0..n_units-1) and ``codes[i]`` the category code
    (0..n_categories-1) of label i; a negative code is a missing label and is ignored.
    One ``np.bincount`` over the flattened cell index, so a million labels take milliseconds.
    """
    units = np.asarray(units, dtype=np.int64).ravel()
    codes = np.asarray(codes, dtype=np.int64).ravel()
    if units.shape != codes.shape:
        raise ValueError("units and codes must have the same length.")
    present = codes >= 0
    units, codes = units[present], codes[present]
    if units.size and (units.min() < 0 or units.max() >= n_units):
        raise ValueError(f"unit index out of range 0..{n_units - 1}.")
    if codes.size and codes.max() >= n_categories:
        raise ValueError(f"category code out of range 0..{n_categories - 1}.")
    cells = np.bincount(units * n_categories + codes, minlength=n_units * n_categories)
    return cells.reshape(n_units, n_categories)


def _as_counts(counts: np.ndarray) -> np.ndarray:
    counts = np.asarray(counts)
    if counts.ndim != 2:
        raise ValueError("counts must be a (units, categories) matrix.")
    if counts.size and counts.min() < 0:
        raise ValueError("counts must not be negative.")
    return counts.astype(np.int64, copy=False)


def _check_level(level: str, value_domain: Sequence[float], n_categories: int) -> np.ndarray:
    # The package defaults to "interval" when no level is given (krippendorff.alpha signature),
    # which silently treats category codes as numbers: refuse anything but an explicit level.
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}.")
    domain = np.asarray(value_domain, dtype=np.float64)
    if domain.shape != (n_categories,):
        raise ValueError("value_domain needs one numeric value per column of counts.")
    return domain


def _pairable(counts: np.ndarray) -> np.ndarray:
    # A unit with one value has no pair to compare it with: it adds nothing to alpha's
    # coincidences (Krippendorff 2011, section C, "m_u - 1" denominators; units with m_u < 2
    # are dropped) nor to Gwet's p_a (Gwet 2014, ch. 4, eq. for p_a over n' units with r_i >= 2).
    return counts[counts.sum(axis=1) >= 2]


def _is_degenerate(pairable: np.ndarray) -> bool:
    """All pairable values are the same category: expected disagreement D_e is 0."""
    return int(pairable.sum()) >= 2 and int(np.count_nonzero(pairable.sum(axis=0))) == 1


def krippendorff_alpha(counts: np.ndarray, level: str, value_domain: Sequence[float]) -> float | None:
    """Krippendorff's alpha, computed by the ``krippendorff`` package (Castro 2017, fast-krippendorff).

    ``value_domain`` gives the numeric value of each column (ranks 0..C-1 for nominal and
    ordinal). Returns None when alpha is undefined:

    * fewer than 2 pairable values (no unit coded twice): nothing to compare;
    * all pairable values identical: alpha = 1 - D_o / D_e (Krippendorff 2011) with
      D_o = D_e = 0, i.e. 0/0. Alpha measures agreement beyond what the values' distribution
      would give by chance; with one value there is no distribution to beat, so it is
      undefined rather than 1 (the data cannot show that coders discriminate). Percent
      agreement is then 1.0 and AC1 1.0 (see ``gwet_ac1``). The package would warn and return
      NaN here (and raise for a one-column domain), so the case is caught before calling it.
    """
    counts = _as_counts(counts)
    domain = _check_level(level, value_domain, counts.shape[1])
    pairable = _pairable(counts)
    if int(pairable.sum()) < 2 or _is_degenerate(pairable):
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        # Only pairable units: the others contribute exactly 0 to the coincidences.
        value = krippendorff.alpha(value_counts=pairable, value_domain=domain, level_of_measurement=level)
    return finite_or_none(value)


def percent_agreement(counts: np.ndarray) -> float | None:
    """Observed agreement p_a of Gwet (2014, Handbook of Inter-Rater Reliability 4th ed., ch. 4,
    multiple raters with missing ratings; Fleiss' 1971 per-subject agreement with unit-specific r_i):

        p_a = (1 / n') * sum_{i: r_i >= 2} sum_k r_ik (r_ik - 1) / (r_i (r_i - 1))

    the share of agreeing ordered pairs within each pairable unit, averaged over the n'
    pairable units (each unit weighs the same, however many coders it had). Gives 0.818 on
    Krippendorff's (2011) section C data (irrCAC raw_4raters). None without pairable units.
    """
    pairable = _pairable(_as_counts(counts)).astype(np.float64)
    if not len(pairable):
        return None
    r = pairable.sum(axis=1)
    per_unit = (pairable * (pairable - 1)).sum(axis=1) / (r * (r - 1))
    return float(per_unit.mean())


def _chance_agreement_ac1(counts: np.ndarray) -> float | None:
    """Gwet's chance agreement p_e = sum_k pi_k (1 - pi_k) / (q - 1) with
    pi_k = (1/n) sum_i r_ik / r_i over the n units with at least one rating (Gwet 2008,
    Br J Math Stat Psychol 61:29-48; Gwet 2014 ch. 4; irrCAC gwet.ac1.raw, which drops
    units without ratings but keeps single-rated ones in pi_k). q is the number of columns,
    i.e. the categories of the scale, used or not (Gwet 2014 advises listing every category)."""
    counts = counts.astype(np.float64)
    q = counts.shape[1]
    r = counts.sum(axis=1)
    rated = counts[r >= 1] / r[r >= 1, None]
    if q < 2 or not len(rated):
        return None
    pi = rated.mean(axis=0)
    return float((pi * (1 - pi)).sum() / (q - 1))


def gwet_ac1(counts: np.ndarray) -> float | None:
    """Gwet's AC1 for any number of raters with missing ratings,
    AC1 = (p_a - p_e) / (1 - p_e) (Gwet 2008, Br J Math Stat Psychol 61:29-48; Handbook of
    Inter-Rater Reliability 4th ed. 2014, ch. 4). 0.775 on Krippendorff's (2011) section C data
    (irrCAC: p_a 0.818, p_e 0.190).

    Defined when everybody gives the same category: then pi is one-hot, p_e = 0 and AC1 = 1.0
    (Gwet's chance agreement is low when raters are unanimous, which is the point of AC1 and
    why it stays high in the prevalence paradox where alpha does not). p_e <= 1/q < 1 always,
    so the ratio is defined whenever p_a is. None without pairable units or with a
    one-category scale (q = 1: no choice, no chance agreement to correct for).
    """
    counts = _as_counts(counts)
    pa = percent_agreement(counts)
    pe = _chance_agreement_ac1(counts)
    if pa is None or pe is None:
        return None
    return (pa - pe) / (1 - pe)


# --- bootstrap ---------------------------------------------------------------------------------


def _patterns(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct count rows of the units with at least one value, and how many units have each.

    Every statistic here depends on a unit only through its count row, so units with the
    same row are interchangeable. A review field has few distinct rows (2 categories and 3
    coders: 10), which is what makes the bootstrap below cheap.
    """
    rated = counts[counts.sum(axis=1) >= 1]
    if not len(rated):
        return rated, np.zeros(0, dtype=np.int64)
    base = int(rated.max()) + 1
    n_categories = rated.shape[1]
    if n_categories * np.log2(base) < 62:
        # One int64 key per row (mixed radix): np.unique on a vector is ~15x faster than
        # np.unique(axis=0), which sorts rows as structured records.
        keys = rated @ (base ** np.arange(n_categories, dtype=np.int64))
        _, first, frequency = np.unique(keys, return_index=True, return_counts=True)
        return rated[first], frequency
    patterns, frequency = np.unique(rated, axis=0, return_counts=True)
    return patterns, frequency


def _distances(level: str, domain: np.ndarray, n_v: np.ndarray) -> np.ndarray:
    """Metric differences delta^2(c, k) of Krippendorff (2011), the same ones the package uses
    (the ordinal one as fixed in fast-krippendorff issue #4; it gives 0.815 on data C).
    For ordinal the distance depends on the marginal value counts n_v of the (re)sample, so
    it is (B, C, C); otherwise (C, C), shared by all resamples.
    """
    if level == "nominal":
        return (domain[:, None] != domain[None, :]).astype(np.float64)
    if level == "interval":
        return (domain[:, None] - domain[None, :]) ** 2
    if level == "ratio":
        total = domain[:, None] + domain[None, :]
        difference = domain[:, None] - domain[None, :]
        ratio = np.divide(difference, total, out=np.zeros_like(difference), where=total != 0)
        return ratio**2
    # ordinal: (sum_{g=c..k} n_g - (n_c + n_k) / 2)^2, ranks by column order.
    index = np.arange(len(domain))
    low, high = np.minimum.outer(index, index), np.maximum.outer(index, index)
    cumulative = np.concatenate([np.zeros((len(n_v), 1)), np.cumsum(n_v, axis=1)], axis=1)
    between = cumulative[:, high + 1] - cumulative[:, low]
    return (between - (n_v[:, index[:, None]] + n_v[:, index[None, :]]) / 2) ** 2


def _statistics(patterns: np.ndarray, weights: np.ndarray, level: str, domain: np.ndarray) -> np.ndarray:
    """(B, 3) matrix of alpha, percent agreement and AC1, one row per weighting of the units.

    ``weights[b, k]`` is how often unit (pattern) k is in resample b. Each statistic is a
    function of weighted sums of per-unit terms, so B resamples cost a few (B x K) @ (K x ...)
    products instead of B calls of the package:

    * alpha (Krippendorff 2011, section C, coincidences with missing data): unit u adds
      (n_u n_u^T - diag n_u) / (m_u - 1) to the coincidence matrix o; n_c = column sums of o, n = sum n_c;
      alpha = 1 - (n - 1) sum o_ck d_ck / sum n_c n_k d_ck (d the metric difference; the
      diagonal of d is 0). Undefined (NaN) when the denominator is 0: no variation.
    * p_a and AC1 (Gwet 2014 ch. 4): p_a = sum_u w_u a_u / sum_u w_u [m_u >= 2] with
      a_u = sum_k r_uk (r_uk - 1) / (m_u (m_u - 1)); pi_k = sum_u w_u r_uk / m_u / sum_u w_u.
    """
    patterns = patterns.astype(np.float64)
    weights = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    n_categories = patterns.shape[1]
    m = patterns.sum(axis=1)
    pairable = m >= 2
    denominator = np.where(pairable, m - 1, 1.0)

    counted = patterns * pairable[:, None]
    # Column sums of a unit's coincidences are its own counts, sum_c (n_uc n_uk - [c=k] n_uk)
    # / (m_u - 1) = n_uk, so the marginals n_k need no coincidence matrix.
    n_v = weights @ counted
    n = n_v.sum(axis=1)
    d = _distances(level, domain, n_v)
    if level == "ordinal":
        # d differs per resample, so the (B, C, C) coincidence matrices are needed; ordinal
        # scales come from a schema's choices, so C is small.
        outer = counted[:, :, None] * counted[:, None, :]
        contribution = (outer - counted[:, :, None] * np.eye(n_categories)) / denominator[:, None, None]
        o = (weights @ contribution.reshape(len(patterns), -1)).reshape(-1, n_categories, n_categories)
        observed = (o * d).sum(axis=(1, 2))
        expected = ((n_v[:, :, None] * n_v[:, None, :]) * d).sum(axis=(1, 2))
    else:
        # A fixed d makes a unit's share of sum o_ck d_ck one number, (n_u^T d n_u - n_u . diag d)
        # / (m_u - 1): no (units, C, C) array even for an interval field with many values.
        per_unit = (((counted @ d) * counted).sum(axis=1) - counted @ np.diag(d)) / denominator
        observed = weights @ per_unit
        expected = ((n_v @ d) * n_v).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = np.where((expected > 0) & (n >= 2), 1 - (n - 1) * observed / expected, np.nan)

        agree = np.where(pairable, (patterns * (patterns - 1)).sum(axis=1) / (m * np.maximum(m - 1, 1)), 0.0)
        pairable_units = weights @ pairable.astype(np.float64)
        pa = (weights @ agree) / pairable_units
        pa = np.where(pairable_units > 0, pa, np.nan)

        shares = patterns / np.maximum(m, 1)[:, None]
        rated_units = weights @ (m >= 1).astype(np.float64)
        pi = (weights @ shares) / rated_units[:, None]
        if n_categories >= 2:
            pe = (pi * (1 - pi)).sum(axis=1) / (n_categories - 1)
            ac1 = (pa - pe) / (1 - pe)
        else:
            ac1 = np.full(len(weights), np.nan)
    return np.column_stack([alpha, pa, ac1])


def _bootstrap(counts: np.ndarray, level: str, domain: np.ndarray, n_resamples: int, seed: int) -> np.ndarray:
    """(n_resamples, 3) statistics over unit-bootstrap resamples (Zapf et al. 2016, BMC Med Res
    Methodol 16:93: resample units with replacement; Hayes & Krippendorff 2007, Commun Methods
    Meas 1:77-89, bootstrap alpha too, but by resampling pairs of values, which ignores that
    values cluster in units).

    The resampled units are those with at least one value (units nobody coded carry no data);
    single-coded units are kept because they enter AC1's pi_k, and the number of pairable
    units then varies across resamples as it would in a new sample.

    Why not ``scipy.stats.bootstrap``: it draws B x N unit indices (10 million for 10,000
    units, 330 million for a million labels) and calls the statistic on each resample. Here a
    resample is drawn as how often each distinct unit pattern comes up: drawing N units
    uniformly with replacement puts Multinomial(N, f_k / N) of them into pattern k (f_k its
    frequency), so ``Generator.multinomial`` draws exactly the unit bootstrap's distribution
    at O(B x patterns) cost. One draw serves all three statistics, so alpha, p_a and AC1 get
    their intervals from the same resamples.
    """
    patterns, frequency = _patterns(counts)
    total = int(frequency.sum())
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(total, frequency / total, size=n_resamples)
    return _statistics(patterns, weights, level, domain)


def _percentile_interval(
    draws: np.ndarray, confidence: float, n_resamples: int
) -> tuple[float | None, float | None, int]:
    """Percentile interval (Efron & Tibshirani 1993, ch. 13) over the defined resamples.

    Percentile, not BCa (Efron & Tibshirani 1993, ch. 14): BCa's acceleration needs a
    jackknife, one statistic per left-out unit (10,000 alphas for 10,000 units, ten times the
    bootstrap itself), which breaks the time budget of the metrics run.

    A degenerate resample (every value in it the same category) has no alpha, and one that
    drew no pairable unit has no statistic at all; such resamples are left out (NaN), i.e.
    the interval is conditional on the statistic being defined. If more resamples than the
    interval's tail mass (1 - confidence) are undefined, the data are too close to degenerate
    for that conditioning to be harmless, and the interval is None.
    """
    defined = draws[np.isfinite(draws)]
    undefined = n_resamples - len(defined)
    if not len(defined) or undefined > (1 - confidence) * n_resamples:
        return None, None, undefined
    tail = (1 - confidence) / 2
    low, high = np.quantile(defined, [tail, 1 - tail])
    return finite_or_none(low), finite_or_none(high), undefined


def _method(name: str, n_resamples: int, undefined: int) -> str:
    method = f"{name}, unit bootstrap percentile, {n_resamples} resamples"
    if undefined:
        method += f" ({undefined} undefined resamples dropped)"
    return method


def _summarise(
    counts: np.ndarray, level: str, value_domain: Sequence[float], n_resamples: int, confidence: float, seed: int
) -> dict:
    counts = _as_counts(counts)
    domain = _check_level(level, value_domain, counts.shape[1])
    if n_resamples < 1:
        raise ValueError("n_resamples must be at least 1.")
    if not 0 < confidence < 1:
        raise ValueError("confidence must be between 0 and 1.")
    pairable = _pairable(counts)
    n_units, n_values = len(pairable), int(pairable.sum())
    point = (krippendorff_alpha(counts, level, domain), percent_agreement(counts), gwet_ac1(counts))
    names = (f"krippendorff alpha ({level})", "percent agreement (gwet p_a)", "gwet ac1")
    draws = _bootstrap(counts, level, domain, n_resamples, seed) if n_units else None
    estimates = []
    for column, (value, name) in enumerate(zip(point, names, strict=True)):
        if value is None or draws is None:
            estimates.append(Estimate.empty(_method(name, n_resamples, 0), n_units))
            continue
        low, high, undefined = _percentile_interval(draws[:, column], confidence, n_resamples)
        estimates.append(Estimate(value, low, high, n_units, _method(name, n_resamples, undefined)))
    return {
        "alpha": estimates[_ALPHA],
        "percent_agreement": estimates[_PERCENT],
        "ac1": estimates[_AC1],
        "n_units": n_units,
        "n_values": n_values,
        "degenerate": _is_degenerate(pairable),
    }


def alpha_estimate(
    counts: np.ndarray,
    level: str,
    value_domain: Sequence[float],
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """Alpha (point estimate from the package) with a unit-bootstrap percentile interval; n is
    the number of pairable units. Same resamples, hence same interval, as ``agreement_summary``
    with the same seed. Undefined alpha gives ``Estimate.empty``."""
    return _summarise(counts, level, value_domain, n_resamples, confidence, seed)["alpha"]


def agreement_summary(
    counts: np.ndarray,
    level: str,
    value_domain: Sequence[float],
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict:
    """Alpha, percent agreement and AC1 with intervals from one unit-bootstrap pass.

    ``degenerate`` is True when all pairable values are the same category: alpha is then
    None while percent agreement and AC1 are 1.0.
    """
    summary = _summarise(counts, level, value_domain, n_resamples, confidence, seed)
    for key in ("alpha", "percent_agreement", "ac1"):
        summary[key] = summary[key].as_dict()
    return summary
