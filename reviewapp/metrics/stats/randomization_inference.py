"""Randomization inference: p-values from re-running the study's own allocation.

The app allocated the arms itself (reviewapp/studies/randomization.py: permuted blocks
within strata, each block shuffled by a generator seeded from the study seed, the stratum
and the block index). So the distribution of any statistic under Fisher's sharp null,
"showing the AI changes no reviewer's answers", is known exactly: hold every reviewer's
labels fixed, re-run the same allocation (same strata, same enrolment order, same block
size and weights) with a new seed, and recompute the statistic. The p-value is the share
of re-allocations whose statistic is at least as far from zero as the observed one
(Fisher 1935, "The Design of Experiments", ch. II; Rosenbaum 2002, "Observational
Studies", 2nd ed., ch. 2; Imbens & Rubin 2015, "Causal Inference for Statistics, Social,
and Biomedical Sciences", ch. 5). It needs no model, no large-sample approximation and no
minimum number of clusters: the reviewer is the unit that was randomized, so clustering by
reviewer is built in. (It tests the sharp null of no effect for anyone, not a zero
average effect, and items are held fixed, so it says nothing about other items.)

With far more possible allocations than can be enumerated the p-value is a Monte Carlo
estimate from ``n`` draws, counted as (1 + #{|T*| >= |T|}) / (1 + n) so it is never 0 and
the test stays exact at its level (Davison & Hinkley 1997, eq. 4.11; Phipson & Smyth 2010,
"Permutation p-values should never be zero"), with Monte Carlo standard error
sqrt(p (1 - p) / n).

The statistic is the headline number itself: the difference of pooled agreement rates
between two arms (the deference effect against control, or the narrative increment
rationale - recommendation), per split (all items, AI right, AI wrong).

Two nulls, two tests. Re-running the whole allocation with new seeds (``reallocate``) tests
the global sharp null that *no* arm changes anything, and moves reviewers of every arm: a
comparison of the rationale and recommendation arms then also draws control reviewers into
both, whose agreement is far lower, so under a real deference effect the narrative
increment's test is conservative (in the 1M-label benchmark: p 0.05 where the model gave
0.001). The p reported per contrast is therefore the pairwise one (``pairwise_draws``): the
sharp null that the two arms compared give every reviewer the same answers, conditional on
which reviewers the allocation put in the other arms, drawn within the app's own blocks.
The global test's p is kept beside it (``p_all_arms``).

Between subjects only: a within-subjects study allocates per assignment (the j-th
assignment of an item), which the label data does not record, so it is not re-run here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from reviewapp.studies.randomization import BETWEEN_BLOCK_MULTIPLIER, permuted_block

N_RERANDOMIZATIONS = 1000
METHOD = (
    "Randomization test of Fisher's sharp null that the two arms compared give every reviewer the same answers: "
    "their arms re-shuffled within each of the study's permuted blocks (strata and enrolment order as allocated; "
    "the other arms' places held), each reviewer's labels fixed; two-sided Monte Carlo p = (1 + #|T*| >= |T|) / "
    "(1 + n). Beside it, p_all_arms: the whole allocation re-run with new seeds (no arm has any effect)"
)
# Statistics equal to the observed one up to rounding count as "at least as extreme".
TOLERANCE = 1e-12


@dataclass(frozen=True, eq=False)
class AllocationRecord:
    """What the app needs to re-run a study's allocation (from its Enrolment rows): the
    design, the study seed, the arms in allocation order with their weights, and per
    allocated reviewer the recorded arm (id, -1 when none), stratum and sequence."""

    design: str  # "between" or "within"
    seed: int
    arm_ids: tuple[int, ...]
    weights: tuple[int, ...]
    reviewer: np.ndarray
    arm: np.ndarray
    stratum: tuple[str, ...]
    sequence: np.ndarray


def reallocate(record: AllocationRecord, seeds) -> np.ndarray:
    """Arm index (into ``record.arm_ids``) of every reviewer of ``record`` under each seed in
    ``seeds``: shape (len(seeds), reviewers). The blocks are the app's own
    (``studies.randomization.permuted_block`` with the stream ``allocate_reviewer`` uses),
    each computed once per seed and shared by the reviewers in it."""
    weights = list(record.weights)
    size = sum(weights) * BETWEEN_BLOCK_MULTIPLIER
    sequence = np.asarray(record.sequence, dtype=np.int64)
    blocks_of = sequence // size
    positions = sequence % size
    keys = sorted({(stratum, int(block)) for stratum, block in zip(record.stratum, blocks_of, strict=True)})
    key_index = {key: i for i, key in enumerate(keys)}
    row = np.array([key_index[(s, int(b))] for s, b in zip(record.stratum, blocks_of, strict=True)], dtype=np.int64)
    out = np.empty((len(seeds), len(sequence)), dtype=np.int64)
    for k, seed in enumerate(seeds):
        table = np.array(
            [permuted_block(weights, int(seed), f"between:{s}", b, BETWEEN_BLOCK_MULTIPLIER) for s, b in keys],
            dtype=np.int64,
        ).reshape(len(keys), size)
        out[k] = table[row, positions]
    return out


def pairwise_draws(record: AllocationRecord, observed: np.ndarray, first: int, second: int, n: int, seed: int):
    """``n`` re-allocations for the sharp null of one contrast, "arm ``first`` and arm ``second``
    give every reviewer the same answers" (the other arms may differ): shape (n, reviewers).

    Under that null only the reviewers the allocation put in ``first`` or ``second`` have known
    outcomes under both, so the test conditions on who went elsewhere (a conditional
    randomization test: Zheng & Zelen 2008, "Multi-center clinical trials: randomization and
    ancillary statistics", Ann. Appl. Stat. 2(2)). A permuted block is a uniformly random
    arrangement of its arms, so given where the other arms fell, the ``first`` / ``second``
    labels are uniformly arranged over the block's remaining places: each draw shuffles them
    within every (stratum, block) of the app's own scheme, and the arm counts of every block
    stay as allocated."""
    size = sum(record.weights) * BETWEEN_BLOCK_MULTIPLIER
    sequence = np.asarray(record.sequence, dtype=np.int64)
    members = np.flatnonzero((observed == first) | (observed == second))
    draws = np.broadcast_to(observed, (n, len(observed))).copy()
    if len(members) == 0:
        return draws
    keys = [(record.stratum[m], int(sequence[m] // size)) for m in members]
    _, group = np.unique(np.array([f"{s}\x1f{b}" for s, b in keys]), return_inverse=True)
    order = np.argsort(group, kind="stable")
    members, group = members[order], group[order]
    labels = observed[members]
    # A random order within each group: the group number plus a uniform fraction, sorted.
    rng = np.random.default_rng([seed % 2**63, first, second, 0x7A1])
    shuffled = np.argsort(group[None, :] + rng.random((n, len(members))), axis=1)
    draws[np.arange(n)[:, None], members[shuffled]] = labels[None, :]
    return draws


def rerandomization_seeds(seed: int, n: int) -> np.ndarray:
    """``n`` new allocation seeds, reproducible from ``seed``."""
    return np.random.default_rng([seed % 2**63, 0x52A1]).integers(0, 2**63 - 1, size=n, dtype=np.int64)


def _rates(assign: np.ndarray, arm: int, hits: np.ndarray, trials: np.ndarray) -> np.ndarray:
    """Pooled rate of ``arm`` per draw and split: (draws, splits); NaN where it has no trials."""
    member = (assign == arm).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (member @ hits) / (member @ trials)


def randomization_test(
    hits: np.ndarray,
    trials: np.ndarray,
    observed: np.ndarray,
    draws: np.ndarray,
    contrasts: list[tuple[int, int]],
) -> list[list[dict]]:
    """Two-sided randomization p-values of rate(first) - rate(second) for each contrast.

    ``hits`` and ``trials`` are (reviewers, splits) agreement counts, fixed under the sharp
    null; ``observed`` the arm index each reviewer had; ``draws`` (n, reviewers) the arm
    indices under each re-allocation. Returns per contrast, per split: the observed
    difference, p, its Monte Carlo standard error and the number of usable draws (a draw
    that leaves an arm without labels in the split has no statistic and is not counted)."""
    hits, trials = np.asarray(hits, float), np.asarray(trials, float)
    out = []
    for first, second in contrasts:
        t_obs = _rates(observed[None, :], first, hits, trials)[0] - _rates(observed[None, :], second, hits, trials)[0]
        t_star = _rates(draws, first, hits, trials) - _rates(draws, second, hits, trials)
        rows = []
        for s in range(hits.shape[1]):
            column = t_star[:, s]
            usable = column[np.isfinite(column)]
            if not math.isfinite(t_obs[s]) or len(usable) == 0:
                rows.append({"observed": None, "p": None, "mc_se": None, "n": len(usable)})
                continue
            extreme = int((np.abs(usable) >= abs(t_obs[s]) - TOLERANCE).sum())
            p = (1 + extreme) / (1 + len(usable))
            rows.append(
                {
                    "observed": float(t_obs[s]),
                    "p": p,
                    "mc_se": math.sqrt(p * (1 - p) / len(usable)),
                    "n": len(usable),
                }
            )
        out.append(rows)
    return out
