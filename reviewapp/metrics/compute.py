"""A study's metrics from its labels: the stats core applied arm by arm (no Django).

Input is ``LabelData`` (numpy arrays, one row per label) and a ``StudySpec`` (arms,
schema fields, thresholds, seed); output is one JSON-ready dict. Definitions and
sources: DESIGN.md "Metrics" and the docstrings of reviewapp/metrics/stats/.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .stats.agreement import agreement_summary, value_counts
from .stats.clustered import cluster_bootstrap_contrast, design_effect
from .stats.intervals import difference, finite_or_none, proportion
from .stats.reliance import reliance_metrics
from .stats.rubber_stamp import reviewer_indicators

SPLITS = ("all", "ai_right", "ai_wrong")
# krippendorff.alpha builds a units x values x values array: a free-number field (a 0-100
# slider) is binned to this many equal-width bins first, so memory stays bounded.
MAX_INTERVAL_VALUES = 50


@dataclass
class LabelData:
    """One row per current label (corrections replace what they supersede)."""

    label_id: np.ndarray
    reviewer: np.ndarray
    item: np.ndarray
    arm: np.ndarray
    submitted: np.ndarray  # epoch seconds
    seconds: np.ndarray  # item shown -> answer submitted (server clock), NaN when unknown
    decision: np.ndarray  # code of the decision field's value, -1 when missing
    initial: np.ndarray  # reveal mode: code of the blind answer, -1 when none
    ai: np.ndarray  # code of the AI's recommendation, -1 when none
    gold: np.ndarray  # code of the gold label, -1 when none
    is_probe: np.ndarray
    word_count: np.ndarray
    evidence_opened: np.ndarray
    # Every schema field: codes for nominal/ordinal, values (NaN when missing) for interval.
    fields: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.label_id)


@dataclass(frozen=True)
class ArmSpec:
    id: int
    name: str
    shows_recommendation: bool
    shows_rationale: bool
    shows_confidence: bool
    reveal: bool

    @property
    def is_control(self) -> bool:
        return not (self.shows_recommendation or self.shows_rationale or self.shows_confidence or self.reveal)

    @property
    def role(self) -> str:
        if self.is_control:
            return "control"
        return "rationale" if self.shows_rationale else "recommendation"


@dataclass(frozen=True)
class FieldSpec:
    name: str
    level: str  # nominal | ordinal | interval: Krippendorff's level of measurement, always explicit
    choices: tuple[str, ...] = ()
    is_decision: bool = False


@dataclass(frozen=True)
class StudySpec:
    arms: tuple[ArmSpec, ...]
    fields: tuple[FieldSpec, ...]
    thresholds: dict
    reading_wpm: int = 238
    seed: int = 0
    n_resamples: int = 1000
    confidence: float = 0.95

    @property
    def decision(self) -> FieldSpec:
        return next(f for f in self.fields if f.is_decision)

    def parameters(self) -> dict:
        return {
            "n_resamples": self.n_resamples,
            "confidence": self.confidence,
            "seed": self.seed,
            "reading_wpm": self.reading_wpm,
            "thresholds": self.thresholds,
        }


Progress = Callable[[int, str], None]


def study_metrics(data: LabelData, spec: StudySpec, progress: Progress | None = None) -> dict:
    """Every metric of DESIGN.md for one study, with its interval, n and method."""
    report = progress or (lambda percent, message: None)
    timings: dict[str, float] = {}
    started = time.perf_counter()

    reviewers, reviewer_index = np.unique(data.reviewer, return_inverse=True)
    items, item_index = np.unique(data.item, return_inverse=True)
    known = (data.ai >= 0) & (data.gold >= 0)
    splits = {"all": np.ones(len(data), bool), "ai_right": known & (data.ai == data.gold)}
    splits["ai_wrong"] = known & (data.ai != data.gold)
    # Agreement with the AI's recommendation; in the control arm with the hidden one.
    answered = (data.decision >= 0) & (data.ai >= 0)
    agrees = answered & (data.decision == data.ai)

    def reviewer_sums(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-reviewer hits and trials: the clusters of the cluster bootstrap."""
        hits = np.bincount(reviewer_index[mask], weights=agrees[mask], minlength=len(reviewers))
        trials = np.bincount(reviewer_index[mask], minlength=len(reviewers))
        keep = trials > 0
        return hits[keep], trials[keep]

    arm_masks = {arm.id: data.arm == arm.id for arm in spec.arms}
    sums = {
        (arm.id, split): reviewer_sums(arm_masks[arm.id] & splits[split] & answered)
        for arm in spec.arms
        for split in SPLITS
    }
    control = next((arm for arm in spec.arms if arm.is_control), None)
    bootstrap = {"n_resamples": spec.n_resamples, "confidence": spec.confidence, "seed": spec.seed}

    arms_out = []
    for position, arm in enumerate(spec.arms):
        report(5 + 50 * position // max(1, len(spec.arms)), f"Reliance and deference: arm {arm.name}")
        mask = arm_masks[arm.id]
        truth = np.where(known, data.gold, -1)[mask]
        reliance = reliance_metrics(
            data.decision[mask],
            data.ai[mask],
            truth,
            data.initial[mask] if arm.reveal else None,
            confidence=spec.confidence,
        )
        agreement_by_split = {}
        effect_by_split = {}
        for split in SPLITS:
            hits, trials = sums[(arm.id, split)]
            agreement_by_split[split] = proportion(int(hits.sum()), int(trials.sum()), spec.confidence).as_dict()
            if control is None or arm.id == control.id:
                continue
            control_hits, control_trials = sums[(control.id, split)]
            naive = difference(
                int(hits.sum()),
                int(trials.sum()),
                int(control_hits.sum()),
                int(control_trials.sum()),
                spec.confidence,
            )
            clustered = cluster_bootstrap_contrast(
                [(hits, trials), (control_hits, control_trials)], [1.0, -1.0], **bootstrap
            )
            effect_by_split[split] = {"newcombe": naive.as_dict(), "cluster": clustered.as_dict()}
        hits, trials = sums[(arm.id, "all")]
        arms_out.append(
            {
                "id": arm.id,
                "name": arm.name,
                "role": arm.role,
                "reveal": arm.reveal,
                "n_labels": int(mask.sum()),
                "n_reviewers": len(np.unique(reviewer_index[mask])),
                "agreement_with_ai": agreement_by_split,
                "deference_effect": effect_by_split or None,
                "design_effect": finite_or_none(design_effect(hits, trials, **bootstrap)),
                "reliance": reliance,
            }
        )
    timings["reliance_seconds"] = time.perf_counter() - started

    increment = _narrative_increment(spec, sums, bootstrap)

    step = time.perf_counter()
    item_ai = np.full(len(items), -1, dtype=np.int64)
    item_ai[item_index] = data.ai  # the same for every label of an item
    for position, (arm, arm_out) in enumerate(zip(spec.arms, arms_out, strict=True)):
        report(55 + 30 * position // max(1, len(spec.arms)), f"Inter-rater agreement: arm {arm.name}")
        arm_out["agreement"] = _agreement(data, spec, arm_masks[arm.id], item_index, len(items), item_ai)
    timings["agreement_seconds"] = time.perf_counter() - step

    report(88, "Rubber-stamp indicators")
    step = time.perf_counter()
    shows_ai = np.zeros(len(data), bool)
    for arm in spec.arms:
        if not arm.is_control:
            shows_ai |= arm_masks[arm.id]
    reviewer_rows = reviewer_indicators(
        reviewer=data.reviewer,
        agree=np.where(shows_ai & answered, agrees, -1).astype(np.int8),
        ai_right=np.where(known, (data.ai == data.gold).astype(np.int8), -1).astype(np.int8),
        is_probe=data.is_probe,
        seconds=data.seconds,
        floor_seconds=data.word_count / spec.reading_wpm * 60.0,
        evidence_opened=data.evidence_opened,
        label_code=data.decision,
        order=data.submitted,
        n_categories=max(1, len(spec.decision.choices)),
        thresholds=spec.thresholds,
    )
    arm_names = {arm.id: arm.name for arm in spec.arms}
    # A reviewer's arm: the same on every label between subjects; "several" within.
    lowest = np.full(len(reviewers), np.iinfo(np.int64).max)
    highest = np.full(len(reviewers), np.iinfo(np.int64).min)
    np.minimum.at(lowest, reviewer_index, data.arm)
    np.maximum.at(highest, reviewer_index, data.arm)
    position = {int(reviewer): i for i, reviewer in enumerate(reviewers)}
    medians = _median_by_group(reviewer_index, data.seconds, len(reviewers))
    answered_n = np.bincount(reviewer_index, weights=answered, minlength=len(reviewers))
    agree_n = np.bincount(reviewer_index, weights=agrees, minlength=len(reviewers))
    for row in reviewer_rows:
        i = position[row["reviewer"]]
        row["arm"] = arm_names.get(int(lowest[i]), "") if lowest[i] == highest[i] else "several"
        # What the dashboard plots: median time to decide against agreement with the AI
        # (the hidden recommendation in the control arm).
        row["dwell"] = {
            "median_seconds": finite_or_none(medians[i]),
            "n": int(answered_n[i]),
            "agree": int(agree_n[i]),
        }
    timings["rubber_stamp_seconds"] = time.perf_counter() - step
    timings["compute_seconds"] = time.perf_counter() - started

    return {
        "n_labels": len(data),
        "n_reviewers": len(reviewers),
        "n_items": len(items),
        "n_items_ai_right": len(np.unique(item_index[splits["ai_right"]])),
        "n_items_ai_wrong": len(np.unique(item_index[splits["ai_wrong"]])),
        "decision_field": spec.decision.name,
        "arms": arms_out,
        "narrative_increment": increment,
        "reviewers": reviewer_rows,
        "flagged_reviewers": sum(1 for row in reviewer_rows if row["flagged"]),
        "parameters": spec.parameters(),
        "timings": {name: round(seconds, 3) for name, seconds in timings.items()},
    }


def _narrative_increment(spec: StudySpec, sums: dict, bootstrap: dict) -> dict | None:
    """D_rationale - D_recommendation = P(agree | rationale) - P(agree | recommendation):
    the control rate cancels (DESIGN.md; the HBS three-arm design). Needs one arm of each
    role; with several, the first by position is used."""
    by_role: dict[str, ArmSpec] = {}
    for arm in spec.arms:
        by_role.setdefault(arm.role, arm)
    if not {"rationale", "recommendation"} <= by_role.keys():
        return None
    rationale, recommendation = by_role["rationale"], by_role["recommendation"]
    out = {"rationale_arm": rationale.name, "recommendation_arm": recommendation.name}
    for split in SPLITS:
        r_hits, r_trials = sums[(rationale.id, split)]
        c_hits, c_trials = sums[(recommendation.id, split)]
        naive = difference(int(r_hits.sum()), int(r_trials.sum()), int(c_hits.sum()), int(c_trials.sum()))
        clustered = cluster_bootstrap_contrast([(r_hits, r_trials), (c_hits, c_trials)], [1.0, -1.0], **bootstrap)
        out[split] = {"newcombe": naive.as_dict(), "cluster": clustered.as_dict()}
    return out


def _agreement(
    data: LabelData, spec: StudySpec, mask: np.ndarray, item_index: np.ndarray, n_items: int, item_ai: np.ndarray
) -> dict:
    """Krippendorff's alpha, percent agreement and AC1 per schema field; for the decision
    field also alpha with the AI as one more coder (DESIGN.md)."""
    out = {}
    for spec_field in spec.fields:
        values = data.fields[spec_field.name][mask]
        units = item_index[mask]
        if spec_field.level == "interval":
            present = ~np.isnan(values)
            values, units = values[present], units[present]
            if len(np.unique(values)) > MAX_INTERVAL_VALUES:
                values = _binned(values)
            domain, codes = np.unique(values, return_inverse=True)
            value_domain = [float(v) for v in domain]
            if not value_domain:
                out[spec_field.name] = {"level": spec_field.level, "humans": None}
                continue
        else:
            codes, value_domain = values, list(range(len(spec_field.choices)))
        n_categories = max(1, len(value_domain))
        counts = value_counts(units, codes, n_items, n_categories)
        summary = agreement_summary(
            counts,
            spec_field.level,
            value_domain,
            n_resamples=spec.n_resamples,
            confidence=spec.confidence,
            seed=spec.seed,
        )
        entry = {"level": spec_field.level, "humans": summary}
        if spec_field.is_decision:
            # Only units some human in this arm labelled; the AI is then one more coder.
            labelled = counts.sum(axis=1) > 0
            with_ai = counts.copy()
            rows = np.flatnonzero(labelled & (item_ai >= 0))
            with_ai[rows, item_ai[rows]] += 1
            entry["with_ai"] = agreement_summary(
                with_ai,
                spec_field.level,
                value_domain,
                n_resamples=spec.n_resamples,
                confidence=spec.confidence,
                seed=spec.seed,
            )
        out[spec_field.name] = entry
    return out


def _binned(values: np.ndarray) -> np.ndarray:
    """Midpoints of MAX_INTERVAL_VALUES equal-width bins over the observed range."""
    low, high = float(values.min()), float(values.max())
    width = (high - low) / MAX_INTERVAL_VALUES
    bins = np.minimum(((values - low) / width).astype(np.int64), MAX_INTERVAL_VALUES - 1)
    return low + (bins + 0.5) * width


def _median_by_group(group: np.ndarray, values: np.ndarray, n_groups: int) -> np.ndarray:
    """Median of the finite values of each group (NaN for a group without any), in one sort."""
    keep = np.isfinite(values)
    group, values = group[keep], values[keep]
    order = np.lexsort((values, group))
    group, values = group[order], values[order]
    counts = np.bincount(group, minlength=n_groups)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    medians = np.full(n_groups, np.nan)
    has = counts > 0
    low = starts[has] + (counts[has] - 1) // 2
    high = starts[has] + counts[has] // 2
    medians[has] = (values[low] + values[high]) / 2
    return medians
