"""Decision quality as a safety team reads it: of the actions that should have been blocked,
how many reviewers blocked (catch rate), how many of their blocks were right (precision), how
often they blocked what should have gone ahead (false-block rate), the confusion matrix behind
the three, and what a decision cost in seconds (docs/design.md, "Decision quality").

The truth is the item's gold label (probes carry one, the answer their planted recommendation
contradicts); "block" is the decision value the label schema marks with ``block_value``. With
B = the decision is the block value and S = the gold label is:

* catch rate = P(B | S), the recall or sensitivity of blocking;
* block precision = P(S | B), the positive predictive value;
* false-block rate = P(B | not S), 1 - specificity

(the standard 2x2 measures of a screening decision: Altman & Bland 1994, BMJ 308:1552 and
309:102; Fawcett 2006, Pattern Recogn Lett 27:861). Each is a pooled share of labels
(sum over reviewers of events / sum of trials), so each gets the reviewer-cluster interval of
``cluster_robust.cluster_rate``: labels cluster by reviewer, and a careless reviewer's many
labels must not narrow the interval as if each were independent evidence.

The cost of review beside them is the median seconds per decision (item shown to answer
submitted), over the decisions with a time: a median, because decision times are right-skewed.
"""

from __future__ import annotations

import numpy as np

from .cluster_robust import DEFAULT_MIN_REVIEWERS, cluster_rate

RATES = ("catch_rate", "block_precision", "false_block_rate")
# The four cells of the block / allow matrix, for the export and the tables.
CELLS = ("blocks_caught", "blocks_missed", "false_blocks", "allows_correct")


def _per_reviewer(reviewer_index: np.ndarray, n_reviewers: int, events: np.ndarray, base: np.ndarray):
    hits = np.bincount(reviewer_index[base], weights=events[base], minlength=n_reviewers)
    trials = np.bincount(reviewer_index[base], minlength=n_reviewers)
    return hits, trials


def _codes(name: str, values, length: int | None = None) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"`{name}` must be a one-dimensional array of integer codes, got {array.dtype}.")
    if length is not None and len(array) != length:
        raise ValueError(f"`{name}` has {len(array)} entries, expected {length}.")
    return array


def block_rates(
    decision,
    truth,
    reviewer_index,
    block: int,
    *,
    n_reviewers: int | None = None,
    confidence: float = 0.95,
    min_reviewers: int = DEFAULT_MIN_REVIEWERS,
) -> dict:
    """Catch rate, block precision and false-block rate with reviewer-cluster intervals.

    ``decision`` and ``truth`` are codes per label (-1: no answer / no gold; such labels are
    left out), ``reviewer_index`` the label's reviewer as 0..n_reviewers-1, ``block`` the code
    of the block value. Each rate is a ``cluster_rate`` estimate as a dict (``n`` its labels,
    ``n_reviewers``, ``note`` when there is no interval).
    """
    decision = _codes("decision", decision)
    truth = _codes("truth", truth, len(decision))
    reviewer_index = _codes("reviewer_index", reviewer_index, len(decision))
    if reviewer_index.size and reviewer_index.min() < 0:
        raise ValueError("`reviewer_index` must not be negative.")
    n_reviewers = int(reviewer_index.max()) + 1 if n_reviewers is None and reviewer_index.size else n_reviewers or 0
    known = (decision >= 0) & (truth >= 0)
    blocked, should = decision == block, truth == block
    bases = {
        "catch_rate": (blocked, known & should),
        "block_precision": (should, known & blocked),
        "false_block_rate": (blocked, known & ~should),
    }
    out = {}
    for name, (events, base) in bases.items():
        hits, trials = _per_reviewer(reviewer_index, n_reviewers, events.astype(np.int64), base)
        estimate = cluster_rate(hits, trials, confidence=confidence, min_reviewers=min_reviewers)
        out[name] = estimate.as_dict()
    return out


def confusion(decision, truth, block: int, n_categories: int) -> dict:
    """The (gold x decision) matrix of counts over labels with both, and its block / allow cells:
    ``blocks_caught`` (gold block, decided block), ``blocks_missed``, ``false_blocks`` (decided
    block, gold not) and ``allows_correct``."""
    decision = _codes("decision", decision)
    truth = _codes("truth", truth, len(decision))
    if not 0 <= block < n_categories:
        raise ValueError(f"block code {block} is not one of 0..{n_categories - 1}.")
    known = (decision >= 0) & (truth >= 0)
    if known.any() and max(decision[known].max(), truth[known].max()) >= n_categories:
        raise ValueError(f"a code is out of range 0..{n_categories - 1}.")
    cells = np.bincount(truth[known] * n_categories + decision[known], minlength=n_categories * n_categories)
    matrix = cells.reshape(n_categories, n_categories)
    should, blocked = np.arange(n_categories) == block, np.arange(n_categories) == block
    return {
        "matrix": matrix.tolist(),
        "n": int(known.sum()),
        "blocks_caught": int(matrix[np.ix_(should, blocked)].sum()),
        "blocks_missed": int(matrix[np.ix_(should, ~blocked)].sum()),
        "false_blocks": int(matrix[np.ix_(~should, blocked)].sum()),
        "allows_correct": int(matrix[np.ix_(~should, ~blocked)].sum()),
    }


def seconds_per_decision(seconds, answered) -> dict:
    """Median seconds per decision over the answered labels with a time (NaN: unknown), and how
    many that is; the median is None without any."""
    seconds = np.asarray(seconds, dtype=np.float64)
    answered = np.asarray(answered, dtype=bool)
    if seconds.shape != answered.shape:
        raise ValueError("`seconds` and `answered` must be alike.")
    timed = seconds[answered & np.isfinite(seconds)]
    median = float(np.median(timed)) if timed.size else None
    return {"median": median, "n": int(timed.size)}
