"""Reliance on AI advice: agreement, over- and under-reliance, switching, RAIR/RSR, accuracy.

Arrays in, ``Estimate`` dicts out. Each array holds one row per label and integer decision
codes; ``-1`` means missing or unknown (truth is unknown for items without gold, the
initial decision exists only in reveal mode). A row with a missing code in an array a
metric needs is left out of that metric only, so one unknown gold label does not remove
the row from the agreement fraction, which does not need gold.

Every proportion carries a Wilson interval (``intervals.proportion``). These intervals
treat labels as independent; labels cluster by reviewer, so differences between arms also
need the cluster bootstrap in ``clustered.py`` (docs/design.md, "Intervals").
"""

from __future__ import annotations

import math

import numpy as np

from .intervals import Estimate, finite_or_none, proportion

MISSING = -1

# Every key is always present, so a report can lay out the same table for every study;
# a metric whose inputs were not given (no gold, no initial decision) is an empty Estimate.
METRICS = (
    "agreement",
    "overreliance",
    "underreliance",
    "accuracy",
    "switch_fraction",
    "rair",
    "rsr",
    "accuracy_initial",
    "accuracy_ai",
)


def _codes(values: np.ndarray | None, length: int, name: str) -> np.ndarray | None:
    """``values`` as a code array of one row per label, or ValueError naming ``name``: codes are
    whole numbers (-1 or NaN for missing); a fractional float code (2.5) or a None inside the
    array would otherwise compare unequal to everything and silently change a rate."""
    if values is None:
        return None
    array = np.asarray(values)
    if array.ndim != 1 or array.shape[0] != length:
        raise ValueError(f"`{name}` must be one-dimensional with one row per label ({length}), got {array.shape}")
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise ValueError(f"`{name}` must hold numeric codes (-1 for missing), got dtype {array.dtype}")
    if np.issubdtype(array.dtype, np.floating):
        present = array[~np.isnan(array)]
        if np.any(present != np.round(present)) or np.any(np.isinf(present)):
            raise ValueError(f"`{name}` holds fractional or infinite codes; codes are whole numbers")
    return array


def _known(*arrays: np.ndarray) -> np.ndarray:
    """Rows where every given array holds a code (not -1; a float array's NaN counts as missing too)."""
    mask = np.ones(arrays[0].shape[0], dtype=bool)
    for array in arrays:
        mask &= array != MISSING
        if np.issubdtype(array.dtype, np.floating):
            mask &= ~np.isnan(array)
    return mask


def _share(event: np.ndarray, base: np.ndarray, confidence: float) -> dict:
    """Share of the rows in `base` where `event` holds, with its Wilson interval."""
    return proportion(int(np.count_nonzero(event & base)), int(np.count_nonzero(base)), confidence).as_dict()


def reliance_metrics(
    final: np.ndarray,
    ai: np.ndarray,
    truth: np.ndarray | None = None,
    initial: np.ndarray | None = None,
    *,
    confidence: float = 0.95,
) -> dict[str, dict]:
    """Reliance metrics of one set of labels (typically one arm, or one arm split by item type).

    Returns ``Estimate.as_dict()`` for each name in ``METRICS``:

    - ``agreement``: P(final = AI), the "agreement fraction" of Yin, Wortman Vaughan &
      Wallach (CHI 2019). In a control arm, where the AI recommendation is hidden, this is
      the baseline agreement against which the deference effect is measured (docs/design.md,
      "Reliance and deference").
    - ``overreliance``: P(final = AI | AI != truth), agreeing with a wrong AI;
      ``underreliance``: P(final != AI | AI = truth), rejecting a right AI (Buçinca,
      Malaya & Gajos, CSCW 2021; Vasconcelos et al., CSCW 2023).
    - ``accuracy``: P(final = truth); ``accuracy_ai``: P(AI = truth).
    - Reveal mode (``initial`` given), after Yin et al. (2019): ``switch_fraction``
      P(final = AI | initial != AI), how often a reviewer who disagreed at first switched
      to the AI; ``accuracy_initial`` P(initial = truth).
    - ``rair`` and ``rsr`` (Schemmer et al., IUI 2023, "Appropriate reliance on AI
      advice"): relative AI reliance, the share of cases with the initial decision wrong
      and the AI right in which the final decision follows the AI; relative self-reliance,
      the share of cases with the initial decision right and the AI wrong in which the
      final decision stays with the initial one.

    A metric whose inputs are absent, or whose conditioning set is empty, is undefined:
    value None and n 0, never 0.
    """
    empty = Estimate.empty("wilson").as_dict()
    result = {name: dict(empty) for name in METRICS}
    for name, (event, base) in reliance_events(final, ai, truth, initial).items():
        result[name] = _share(event, base, confidence)
    return result


def reliance_events(
    final: np.ndarray, ai: np.ndarray, truth: np.ndarray | None = None, initial: np.ndarray | None = None
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per metric of ``reliance_metrics`` whose inputs are given: (event, base), two boolean
    arrays over the labels, the metric being the share of the ``base`` rows where ``event``
    holds. The definitions live here once, so the same rows can be counted per reviewer for
    a reviewer-cluster interval (reviewapp/metrics/compute.py).
    """
    if final is None or ai is None:
        raise ValueError("`final` and `ai` are required (one code per label)")
    final = np.asarray(final)
    if final.ndim != 1:
        raise ValueError(f"`final` must be one-dimensional, got shape {final.shape}")
    length = final.shape[0]
    final = _codes(final, length, "final")
    ai = _codes(ai, length, "ai")
    truth = _codes(truth, length, "truth")
    initial = _codes(initial, length, "initial")

    events = {"agreement": (final == ai, _known(final, ai))}
    if truth is not None:
        rows = _known(final, ai, truth)
        ai_right = ai == truth
        events["overreliance"] = (final == ai, rows & ~ai_right)
        events["underreliance"] = (final != ai, rows & ai_right)
        events["accuracy"] = (final == truth, _known(final, truth))
        events["accuracy_ai"] = (ai_right, _known(ai, truth))
    if initial is not None:
        rows = _known(final, ai, initial)
        events["switch_fraction"] = (final == ai, rows & (initial != ai))
    if initial is not None and truth is not None:
        rows = _known(final, ai, initial, truth)
        initial_right, ai_right = initial == truth, ai == truth
        events["rair"] = (final == ai, rows & ~initial_right & ai_right)
        events["rsr"] = (final == initial, rows & initial_right & ~ai_right)
        events["accuracy_initial"] = (initial_right, _known(initial, truth))
    return events


SEEN, NOT_SEEN, UNKNOWN = 1, 0, -1


def uptake_split(seen: np.ndarray, final: np.ndarray, ai: np.ndarray, *, confidence: float = 0.95) -> dict:
    """Treatment uptake of one thing an arm shows (its rationale, or its recommendation), and
    agreement with the AI split by it, for one set of labels (one arm, one item split).

    ``seen`` holds, per label, 1 (the reviewer saw it), 0 (shown, not seen) or -1 (unknown: the
    label carries no record, e.g. it was stored before uptake was recorded). Returns:

    - ``seen``: P(seen | recorded) with its Wilson interval: the share of labels on which the
      assigned treatment was actually received, the "compliance" of randomized trials
      (Angrist, Imbens & Rubin, JASA 1996). Unknown labels are left out, never counted as
      not seen.
    - ``unknown``: how many labels have no record, ``unknown_share`` their share of all the
      labels (Wilson); ``n_labels``: how many there are in all.
    - ``agreement_seen`` and ``agreement_not_seen``: P(final = AI) among the labels where it was
      seen and where it was not, each with its Wilson interval (the agreement fraction of
      Yin, Wortman Vaughan & Wallach, CHI 2019).

    Seeing is not randomized (reviewers choose what to open and read), so the two agreement
    rates compare self-selected groups: an "as-treated" contrast, descriptive, not the effect of
    seeing it (Angrist, Imbens & Rubin 1996). Like ``reliance_metrics`` these intervals treat
    labels as independent.
    """
    seen = np.asarray(seen)
    final = np.asarray(final)
    length = seen.shape[0]
    ai = _codes(ai, length, "ai")
    final = _codes(final, length, "final")
    recorded = seen != UNKNOWN
    answered = _known(final, ai)
    agrees = final == ai
    return {
        "seen": _share(seen == SEEN, recorded, confidence),
        "unknown": int(np.count_nonzero(~recorded)),
        "unknown_share": _share(~recorded, np.ones(length, dtype=bool), confidence),
        "n_labels": int(length),
        "agreement_seen": _share(agrees, answered & (seen == SEEN), confidence),
        "agreement_not_seen": _share(agrees, answered & (seen == NOT_SEEN), confidence),
    }


def weight_of_advice(initial: float, advice: float, final: float) -> float | None:
    """Weight of advice, (final - initial) / (advice - initial), for a numeric field.

    0 keeps the initial estimate, 1 adopts the advice (Harvey & Fischer 1997; Yaniv 2004).
    Not truncated to [0, 1]: moving past the advice or away from it is information, and
    a report that wants the truncated form many studies use can clip it.
    Undefined (None) when the advice equals the initial estimate, where no shift can be
    attributed to the advice, or when any input is missing or not finite.
    """
    if initial is None or advice is None or final is None:
        return None
    initial, advice, final = float(initial), float(advice), float(final)
    if not all(math.isfinite(value) for value in (initial, advice, final)) or advice == initial:
        return None
    return finite_or_none((final - initial) / (advice - initial))
