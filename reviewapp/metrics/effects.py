"""The effect model and randomization inference applied to one study's labels (no Django).

``study_effects`` is the ``effects`` key of a metrics run (compute.study_metrics): for each
deference effect (every arm that shows the AI against control) and the narrative increment
(rationale against recommendation), per split, the model's odds ratio, risk difference,
risk ratio and Cohen's h with intervals (stats/effects.py) and the randomization p-value
from re-running the study's own allocation (stats/randomization_inference.py), with a note
where the two p-values disagree. Definitions and sources: docs/design.md, "Effect model"
and "Randomization inference".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .stats.effects import SPLIT_CODES, effect_model
from .stats.randomization_inference import (
    METHOD as RANDOMIZATION_METHOD,
)
from .stats.randomization_inference import (
    pairwise_draws,
    randomization_test,
    reallocate,
    rerandomization_seeds,
)

if TYPE_CHECKING:
    from .compute import LabelBasis, LabelData, StudySpec

SPLITS = ("all", "ai_right", "ai_wrong")


def effect_contrasts(spec: StudySpec) -> list[tuple[str, int, int]]:
    """(kind, first, second) as positions in ``spec.arms``: every arm that is not the control
    against the control (a deference effect), then the narrative increment, the first
    rationale arm against the first recommendation arm (as compute.narrative_increment_by_split)."""
    positions = {arm.id: i for i, arm in enumerate(spec.arms)}
    out = []
    control = spec.control
    if control is not None:
        out += [("deference", positions[a.id], positions[control.id]) for a in spec.arms if a.id != control.id]
    by_role: dict[str, int] = {}
    for i, arm in enumerate(spec.arms):
        by_role.setdefault(arm.role, i)
    if {"rationale", "recommendation"} <= by_role.keys():
        out.append(("narrative", by_role["rationale"], by_role["recommendation"]))
    return out


def study_effects(data: LabelData, spec: StudySpec, basis: LabelBasis) -> dict:
    contrasts = effect_contrasts(spec)
    if not contrasts:
        return {"reason": "no control arm and no rationale/recommendation pair: nothing to contrast", "rows": []}
    arm_position = np.full(int(data.arm.max()) + 1 if len(data) else 1, -1, dtype=np.int64)
    for i, arm in enumerate(spec.arms):
        if arm.id < len(arm_position):
            arm_position[arm.id] = i
    rows = basis.answered & (data.arm >= 0) & (data.arm < len(arm_position))
    rows &= arm_position[np.clip(data.arm, 0, len(arm_position) - 1)] >= 0
    split = np.full(len(data), SPLIT_CODES["unknown"], dtype=np.int64)
    split[basis.splits["ai_right"]] = SPLIT_CODES["ai_right"]
    split[basis.splits["ai_wrong"]] = SPLIT_CODES["ai_wrong"]
    model = effect_model(
        basis.agrees[rows].astype(np.int8),
        arm_position[data.arm[rows]],
        split[rows],
        basis.reviewer_index[rows],
        basis.item_index[rows],
        [arm.name for arm in spec.arms],
        contrasts,
        confidence=spec.confidence,
        splits=SPLITS,
        min_reviewers=getattr(spec, "min_reviewers", 2),
    )
    table = model.pop("contrasts")
    randomization = study_randomization(data, spec, basis, contrasts)
    alpha = 1 - spec.confidence
    for index, row in enumerate(table):
        contrast_index, split_index = divmod(index, len(SPLITS))
        tests = randomization.get("tests")
        row["randomization"] = tests[contrast_index][split_index] if tests else None
        row["note"] = p_value_note(row.get("p_model"), (row["randomization"] or {}).get("p"), alpha)
    randomization.pop("tests", None)
    return {"model": model, "randomization": randomization, "rows": table}


def p_value_note(p_model: float | None, p_random: float | None, alpha: float) -> str:
    """A plain sentence where the model-based and the randomization p-values disagree about
    significance at ``alpha`` (empty when they agree or one is missing)."""
    if p_model is None or p_random is None or (p_model < alpha) == (p_random < alpha):
        return ""
    return (
        f"The model-based p ({p_model:.3g}) and the randomization p ({p_random:.3g}) fall on opposite sides of "
        f"{alpha:g}: the model's standard errors rest on many clusters and a logistic form, the randomization "
        "test only on how the arms were allocated; with few reviewers, trust the randomization p."
    )


def study_randomization(data: LabelData, spec: StudySpec, basis: LabelBasis, contrasts) -> dict:
    """The randomization tests of ``contrasts`` (their rate differences) per split, or a reason."""
    record = spec.allocation
    out: dict = {"method": RANDOMIZATION_METHOD, "n_rerandomizations": spec.n_rerandomizations}
    if record is None:
        return {**out, "reason": "The study's allocation record is not available."}
    if record.design != "between":
        return {
            **out,
            "reason": "Not available for a within-subjects study: its arms are allocated per assignment, "
            "and the label data does not record each assignment's position in its item's sequence.",
        }
    allocated = np.asarray(record.arm) >= 0
    reviewers = np.asarray(record.reviewer)[allocated]
    found = np.isin(basis.reviewers, reviewers)
    if not found.all():
        return {**out, "reason": f"{int((~found).sum())} reviewer(s) with labels have no allocation record."}
    order = np.argsort(reviewers)
    record_index = order[np.searchsorted(reviewers[order], basis.reviewers)]  # per labelled reviewer, its row
    arm_to_record = {arm_id: i for i, arm_id in enumerate(record.arm_ids)}
    spec_to_record = [arm_to_record.get(arm.id, -1) for arm in spec.arms]
    pairs = [(spec_to_record[first], spec_to_record[second]) for _, first, second in contrasts]
    if any(a < 0 or b < 0 for a, b in pairs):
        return {**out, "reason": "The study's arms changed since the allocation."}
    observed = np.array([arm_to_record.get(int(a), -1) for a in np.asarray(record.arm)[allocated]], dtype=np.int64)
    # Agreement per allocated reviewer and split: fixed under the sharp null. Enrolled
    # reviewers without labels keep their block places, with no labels.
    label_reviewer = record_index[basis.reviewer_index]
    hits = np.zeros((len(reviewers), len(SPLITS)))
    trials = np.zeros((len(reviewers), len(SPLITS)))
    for s, name in enumerate(SPLITS):
        mask = basis.answered & basis.splits[name]
        hits[:, s] = np.bincount(label_reviewer[mask], weights=basis.agrees[mask], minlength=len(reviewers))
        trials[:, s] = np.bincount(label_reviewer[mask], minlength=len(reviewers))
    sub = _subset(record, allocated)
    reproduced = reallocate(sub, [record.seed])[0]
    draws = reallocate(sub, rerandomization_seeds(spec.seed, spec.n_rerandomizations))
    everything = randomization_test(hits, trials, observed, draws, pairs)
    out["tests"] = []
    for (first, second), global_rows in zip(pairs, everything, strict=True):
        pairwise = pairwise_draws(sub, observed, first, second, spec.n_rerandomizations, spec.seed)
        rows = randomization_test(hits, trials, observed, pairwise, [(first, second)])[0]
        for row, whole in zip(rows, global_rows, strict=True):
            row["p_all_arms"], row["mc_se_all_arms"] = whole["p"], whole["mc_se"]
        out["tests"].append(rows)
    out["seed"] = int(spec.seed)
    out["n_reviewers"] = len(reviewers)
    out["reproduced"] = int((reproduced == observed).sum())
    if out["reproduced"] < len(reviewers):
        out["warning"] = (
            f"The recorded arms of {len(reviewers) - out['reproduced']} of {len(reviewers)} reviewers are not the "
            "ones the allocation gives for the study's seed (arms set by hand, or weights changed after start); "
            "the test still re-runs the allocation, but it is no longer the one that was used."
        )
    return out


def _subset(record, mask: np.ndarray):
    from dataclasses import replace

    return replace(
        record,
        reviewer=np.asarray(record.reviewer)[mask],
        arm=np.asarray(record.arm)[mask],
        stratum=tuple(s for s, keep in zip(record.stratum, mask, strict=True) if keep),
        sequence=np.asarray(record.sequence)[mask],
    )
