"""A study's metrics from its labels: the stats core applied arm by arm (no Django).

Input is ``LabelData`` (numpy arrays, one row per label) and a ``StudySpec`` (arms,
schema fields, thresholds, seed); output is one JSON-ready dict. Definitions and
sources: docs/design.md, "Metric definitions", and the docstrings of reviewapp/metrics/stats/.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from .effects import study_effects
from .stats.agreement import agreement_summary, value_counts
from .stats.agreement_family import agreement_family
from .stats.cluster_robust import DEFAULT_MIN_REVIEWERS, check_min_reviewers, cluster_rate
from .stats.cluster_robust import design_effect as cluster_design_effect
from .stats.clustered import HitsTrials, deference_effect, narrative_increment
from .stats.decision_quality import block_rates, confusion, seconds_per_decision
from .stats.intervals import Estimate, check_confidence, difference, finite_or_none, proportion
from .stats.randomization_inference import N_RERANDOMIZATIONS, AllocationRecord
from .stats.reliance import UNKNOWN, reliance_events, reliance_metrics, uptake_split
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
    # Treatment uptake: 1 seen, 0 shown but not seen, -1 unknown (no record); None: all unknown.
    rationale_seen: np.ndarray | None = None
    recommendation_seen: np.ndarray | None = None

    def seen(self, what: str) -> np.ndarray:
        """The uptake column of ``what`` ("rationale" or "recommendation"), -1 where unknown."""
        column = getattr(self, f"{what}_seen")
        return np.full(len(self), UNKNOWN, dtype=np.int32) if column is None else column

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
    rationale_display: str = "expanded"  # or "collapsed": behind a "Why?" click

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
    # The decision answer that blocks the agent's action ("block_value" in the schema), or None.
    block_value: str | None = None


@dataclass(frozen=True)
class StudySpec:
    arms: tuple[ArmSpec, ...]
    fields: tuple[FieldSpec, ...]
    thresholds: dict
    reading_wpm: int = 238
    seed: int = 0
    n_resamples: int = 1000
    confidence: float = 0.95
    # Randomization inference (effects.py): the app's allocation record (None: not available)
    # and how many times to re-run it.
    allocation: AllocationRecord | None = None
    n_rerandomizations: int = N_RERANDOMIZATIONS
    # The few-cluster guard (stats/cluster_robust.py): below this many reviewers in an arm, no
    # reviewer-cluster interval, only the reason.
    min_reviewers: int = DEFAULT_MIN_REVIEWERS

    def __post_init__(self) -> None:
        # Refused here, not as NaN intervals deep in a run (issue 15: a confidence of 1.0).
        check_confidence(self.confidence, "confidence")
        check_min_reviewers(self.min_reviewers, "min_reviewers")

    @property
    def decision(self) -> FieldSpec:
        return next(f for f in self.fields if f.is_decision)

    @property
    def control(self) -> ArmSpec | None:
        return next((arm for arm in self.arms if arm.is_control), None)

    @property
    def bootstrap(self) -> dict:
        """The options of every cluster bootstrap (stats/clustered.py): the same seed, the same intervals."""
        return {"n_resamples": self.n_resamples, "confidence": self.confidence, "seed": self.seed}

    def parameters(self) -> dict:
        return {
            "n_resamples": self.n_resamples,
            "confidence": self.confidence,
            "min_reviewers": self.min_reviewers,
            "seed": self.seed,
            "reading_wpm": self.reading_wpm,
            "thresholds": self.thresholds,
        }


Progress = Callable[[int, str], None]
# A contrast of two arms' per-reviewer (hits, trials) with its cluster interval (stats/clustered.py).
Contrast = Callable[..., Estimate]


def study_metrics(data: LabelData, spec: StudySpec, progress: Progress | None = None) -> dict:
    """Every metric of docs/design.md, "Metric definitions", for one study, with its interval, n
    and method: the phases below in turn (reliance and deference per arm, the narrative
    increment, inter-rater agreement per arm, the rubber-stamp indicators per reviewer), timed."""
    report = progress or (lambda percent, message: None)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    basis = label_basis(data, spec)
    arms_out = []
    for position, arm in enumerate(spec.arms):
        report(5 + 50 * position // max(1, len(spec.arms)), f"Reliance and deference: arm {arm.name}")
        arms_out.append(arm_reliance(data, spec, basis, arm))
    timings["reliance_seconds"] = time.perf_counter() - started

    increment = narrative_increment_by_split(spec, basis)

    step = time.perf_counter()
    item_ai = np.full(len(basis.items), -1, dtype=np.int64)
    item_ai[basis.item_index] = data.ai  # the same for every label of an item
    for position, (arm, arm_out) in enumerate(zip(spec.arms, arms_out, strict=True)):
        report(55 + 30 * position // max(1, len(spec.arms)), f"Inter-rater agreement: arm {arm.name}")
        arm_out["agreement"] = inter_rater_agreement(data, spec, basis.arm_masks[arm.id], basis.item_index, item_ai)
    timings["agreement_seconds"] = time.perf_counter() - step

    step = time.perf_counter()
    for arm, arm_out in zip(spec.arms, arms_out, strict=True):
        arm_out["decision_quality"] = arm_decision_quality(data, spec, basis, arm)
    timings["decision_quality_seconds"] = time.perf_counter() - step

    report(88, "Rubber-stamp indicators")
    step = time.perf_counter()
    reviewer_rows = reviewer_indicator_rows(data, spec, basis)
    timings["rubber_stamp_seconds"] = time.perf_counter() - step
    sensitivity = sensitivity_without_flagged(spec, basis, reviewer_rows, arms_out, increment)
    report(94, "Effect model and randomization inference")
    step = time.perf_counter()
    effects = study_effects(data, spec, basis)
    timings["effects_seconds"] = time.perf_counter() - step
    timings["compute_seconds"] = time.perf_counter() - started

    return {
        "n_labels": len(data),
        "n_reviewers": len(basis.reviewers),
        "n_items": len(basis.items),
        "n_items_ai_right": len(np.unique(basis.item_index[basis.splits["ai_right"]])),
        "n_items_ai_wrong": len(np.unique(basis.item_index[basis.splits["ai_wrong"]])),
        "decision_field": spec.decision.name,
        "block_value": spec.decision.block_value,
        "arms": arms_out,
        "narrative_increment": increment,
        "reviewers": reviewer_rows,
        "flagged_reviewers": sum(1 for row in reviewer_rows if row["flagged"]),
        # Effect model and randomization p-values per contrast and split (effects.py).
        "effects": effects,
        "sensitivity": sensitivity,
        "parameters": spec.parameters(),
        "timings": {name: round(seconds, 3) for name, seconds in timings.items()},
    }


# --- What every phase reads -------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class LabelBasis:
    """Reviewers and items indexed, the item splits, agreement with the AI per label, and per
    (arm id, split) each reviewer's (hits, trials): the clusters the bootstrap resamples."""

    reviewers: np.ndarray
    reviewer_index: np.ndarray
    items: np.ndarray
    item_index: np.ndarray
    known: np.ndarray  # the AI's recommendation and the gold label are both known
    splits: dict[str, np.ndarray]
    answered: np.ndarray
    agrees: np.ndarray
    arm_masks: dict[int, np.ndarray]
    sums: dict[tuple[int, str], HitsTrials]


def label_basis(data: LabelData, spec: StudySpec) -> LabelBasis:
    """Split the items by whether the AI's recommendation matches the gold label (items without
    either are in "all" only), and count agreement with the recommendation (in the control arm
    the hidden one) per reviewer, arm and split."""
    reviewers, reviewer_index = np.unique(data.reviewer, return_inverse=True)
    items, item_index = np.unique(data.item, return_inverse=True)
    known = (data.ai >= 0) & (data.gold >= 0)
    splits = {"all": np.ones(len(data), bool), "ai_right": known & (data.ai == data.gold)}
    splits["ai_wrong"] = known & (data.ai != data.gold)
    answered = (data.decision >= 0) & (data.ai >= 0)
    agrees = answered & (data.decision == data.ai)
    arm_masks = {arm.id: data.arm == arm.id for arm in spec.arms}
    sums = {
        (arm.id, split): _reviewer_sums(
            reviewer_index, len(reviewers), agrees, arm_masks[arm.id] & splits[split] & answered
        )
        for arm in spec.arms
        for split in SPLITS
    }
    return LabelBasis(reviewers, reviewer_index, items, item_index, known, splits, answered, agrees, arm_masks, sums)


def _reviewer_sums(reviewer_index: np.ndarray, n_reviewers: int, agrees: np.ndarray, mask: np.ndarray) -> HitsTrials:
    """Per-reviewer hits and trials of the rows in ``mask``, reviewers without trials left out."""
    hits = np.bincount(reviewer_index[mask], weights=agrees[mask], minlength=n_reviewers)
    trials = np.bincount(reviewer_index[mask], minlength=n_reviewers)
    keep = trials > 0
    return hits[keep], trials[keep]


# --- Reliance and deference ---------------------------------------------------------------


def arm_reliance(data: LabelData, spec: StudySpec, basis: LabelBasis, arm: ArmSpec) -> dict:
    """One arm's reliance and deference numbers (docs/design.md, "Reliance and deference"):
    agreement with the AI and the deference effect per split, the design effect of the agreement
    rate (Kish 1965), and the reliance metrics of stats/reliance.py (Buçinca et al. 2021; Schemmer
    et al. 2023)."""
    mask = basis.arm_masks[arm.id]
    reliance = reliance_metrics(
        data.decision[mask],
        data.ai[mask],
        np.where(basis.known, data.gold, -1)[mask],
        data.initial[mask] if arm.reveal else None,
        confidence=spec.confidence,
    )
    hits, trials = basis.sums[(arm.id, "all")]
    deff, deff_note = cluster_design_effect(hits, trials, min_reviewers=spec.min_reviewers)
    return {
        "id": arm.id,
        "name": arm.name,
        "role": arm.role,
        "reveal": arm.reveal,
        "n_labels": int(mask.sum()),
        "n_reviewers": len(np.unique(basis.reviewer_index[mask])),
        "n_items": len(np.unique(data.item[mask])),
        "agreement_with_ai": agreement_with_ai_by_split(spec, basis, arm),
        "deference_effect": deference_effect_by_split(spec, basis, arm),
        # Never below 1 as a real value; None with the reason when not estimable.
        "design_effect": finite_or_none(deff),
        "design_effect_note": deff_note,
        "agreement_with_ai_cluster": agreement_with_ai_cluster(spec, basis, arm),
        "reliance": reliance,
        "reliance_cluster": reliance_cluster(data, spec, basis, arm),
        "uptake": arm_uptake(data, spec, basis, arm),
    }


def arm_uptake(data: LabelData, spec: StudySpec, basis: LabelBasis, arm: ArmSpec) -> dict:
    """Treatment uptake of what the arm shows (docs/design.md, "Treatment uptake"): per shown
    part (rationale, recommendation) and split, the share of labels on which it was seen and
    agreement with the AI when seen and when not (``reliance.uptake_split``). Empty for an arm
    that shows neither (the control arm)."""
    mask = basis.arm_masks[arm.id]
    out: dict = {}
    for what, shown in (("rationale", arm.shows_rationale), ("recommendation", arm.shows_recommendation)):
        if not shown:
            continue
        seen = data.seen(what)
        entry: dict = {"display": arm.rationale_display} if what == "rationale" else {}
        for split in SPLITS:
            rows = mask & basis.splits[split]
            entry[split] = uptake_split(seen[rows], data.decision[rows], data.ai[rows], confidence=spec.confidence)
        out[what] = entry
    return out


def agreement_with_ai_by_split(spec: StudySpec, basis: LabelBasis, arm: ArmSpec) -> dict:
    """P(final = AI) per split with its Wilson interval: the agreement fraction of Yin, Wortman
    Vaughan & Wallach (CHI 2019); in the control arm, agreement with the hidden recommendation."""
    out = {}
    for split in SPLITS:
        hits, trials = basis.sums[(arm.id, split)]
        out[split] = proportion(int(hits.sum()), int(trials.sum()), spec.confidence).as_dict()
    return out


def agreement_with_ai_cluster(spec: StudySpec, basis: LabelBasis, arm: ArmSpec) -> dict:
    """P(final = AI) per split with the reviewer-cluster interval (``cluster_robust.cluster_rate``),
    beside the label-level Wilson one of ``agreement_with_ai_by_split``: the same pooled value,
    an interval that allows for reviewers differing; below the study's minimum number of
    reviewers, no interval and ``note`` says why."""
    return {
        split: cluster_rate(
            *basis.sums[(arm.id, split)], confidence=spec.confidence, min_reviewers=spec.min_reviewers
        ).as_dict()
        for split in SPLITS
    }


def reliance_cluster(data: LabelData, spec: StudySpec, basis: LabelBasis, arm: ArmSpec) -> dict:
    """Every reliance metric of the arm (``reliance.reliance_events``: over- and under-reliance,
    accuracy, switch fraction, RAIR, RSR, ...) with the reviewer-cluster interval: the event and
    base rows counted per reviewer, then ``cluster_rate``. Metrics whose inputs the arm lacks
    (no gold, not a reveal arm) are absent."""
    mask = basis.arm_masks[arm.id]
    events = reliance_events(
        data.decision[mask],
        data.ai[mask],
        np.where(basis.known, data.gold, -1)[mask],
        data.initial[mask] if arm.reveal else None,
    )
    reviewer_index, n_reviewers = basis.reviewer_index[mask], len(basis.reviewers)
    out = {}
    for name, (event, base) in events.items():
        hits, trials = _reviewer_sums(reviewer_index, n_reviewers, event, base)
        out[name] = cluster_rate(hits, trials, confidence=spec.confidence, min_reviewers=spec.min_reviewers).as_dict()
    return out


def deference_effect_by_split(spec: StudySpec, basis: LabelBasis, arm: ArmSpec) -> dict | None:
    """Deference effect P(final = AI | arm) - P(label = AI | control) per split (docs/design.md,
    "Reliance and deference"; Yin et al. 2019; ``clustered.deference_effect``). None for the
    control arm, and in a study without one."""
    control = spec.control
    if control is None or arm.id == control.id:
        return None
    return {
        split: _contrast(spec, basis.sums[(arm.id, split)], basis.sums[(control.id, split)], deference_effect)
        for split in SPLITS
    }


def narrative_increment_by_split(spec: StudySpec, basis: LabelBasis) -> dict | None:
    """Narrative increment Δ_rationale - Δ_recommendation per split (docs/design.md,
    "Reliance and deference"; the HBS three-arm design; ``clustered.narrative_increment``: the
    control rate cancels). Needs one arm of each role, else None; with several, the first by
    position is used."""
    by_role: dict[str, ArmSpec] = {}
    for arm in spec.arms:
        by_role.setdefault(arm.role, arm)
    if not {"rationale", "recommendation"} <= by_role.keys():
        return None
    rationale, recommendation = by_role["rationale"], by_role["recommendation"]
    out: dict = {"rationale_arm": rationale.name, "recommendation_arm": recommendation.name}
    for split in SPLITS:
        out[split] = _contrast(
            spec, basis.sums[(rationale.id, split)], basis.sums[(recommendation.id, split)], narrative_increment
        )
    return out


def _contrast(spec: StudySpec, first: HitsTrials, second: HitsTrials, cluster: Contrast) -> dict:
    """rate(first) - rate(second) with both intervals at the study's confidence: Newcombe's,
    which treats labels as independent (Newcombe 1998), and ``cluster``'s interval over
    reviewers (stats/clustered.py, ``cluster_robust.cluster_difference``), which does not and
    is withheld, with the reason, below the study's minimum number of reviewers."""
    (first_hits, first_trials), (second_hits, second_trials) = first, second
    naive = difference(
        int(first_hits.sum()),
        int(first_trials.sum()),
        int(second_hits.sum()),
        int(second_trials.sum()),
        spec.confidence,
    )
    estimate = cluster(first, second, **spec.bootstrap, min_reviewers=spec.min_reviewers)
    return {"newcombe": naive.as_dict(), "cluster": estimate.as_dict()}


# --- Decision quality ----------------------------------------------------------------------


def arm_decision_quality(data: LabelData, spec: StudySpec, basis: LabelBasis, arm: ArmSpec) -> dict:
    """Decision quality of one arm against gold labels and probes (docs/design.md, "Decision
    quality"; stats/decision_quality.py): catch rate, block precision and false-block rate per
    split with reviewer-cluster intervals, the gold x decision confusion matrix, and the median
    seconds per decision beside them. Without a block value in the schema only the seconds."""
    mask = basis.arm_masks[arm.id]
    decision = spec.decision
    out: dict = {
        "block_value": decision.block_value,
        "seconds_per_decision": seconds_per_decision(data.seconds[mask], data.decision[mask] >= 0),
    }
    if decision.block_value is None or decision.block_value not in decision.choices:
        return out
    block = decision.choices.index(decision.block_value)
    gold = data.gold.astype(np.int64)
    codes = data.decision.astype(np.int64)
    with_gold = mask & (gold >= 0) & (codes >= 0)
    out["values"] = list(decision.choices)
    out["n_labels"] = int(with_gold.sum())
    out["n_probe_labels"] = int((with_gold & data.is_probe.astype(bool)).sum())
    out["confusion"] = confusion(codes[mask], gold[mask], block, len(decision.choices))
    rates: dict = {name: {} for name in ("catch_rate", "block_precision", "false_block_rate")}
    for split in SPLITS:
        rows = mask & basis.splits[split]
        by_split = block_rates(
            codes[rows],
            gold[rows],
            basis.reviewer_index[rows],
            block,
            n_reviewers=len(basis.reviewers),
            confidence=spec.confidence,
            min_reviewers=spec.min_reviewers,
        )
        for name, estimate in by_split.items():
            rates[name][split] = estimate
    out.update(rates)
    return out


# --- Inter-rater agreement ----------------------------------------------------------------


def inter_rater_agreement(
    data: LabelData, spec: StudySpec, mask: np.ndarray, item_index: np.ndarray, item_ai: np.ndarray
) -> dict:
    """Krippendorff's alpha with a unit-bootstrap interval, percent agreement and Gwet's AC1 per
    schema field, among the labels in ``mask`` (stats/agreement.py; Krippendorff 2004, Zapf et
    al. 2016, Gwet 2008); for the decision field also alpha with the AI as one more coder. Under
    ``family`` the kappa family of stats/agreement_family.py (Fleiss, Brennan-Prediger, Gwet's
    AC2, weighted percent agreement; Cohen and Scott with exactly two reviewers), with linear and
    quadratic weights on ordinal and interval fields (Gwet 2014)."""
    out = {}
    for spec_field in spec.fields:
        codes, units, value_domain = _field_codes(spec_field, data.fields[spec_field.name][mask], item_index[mask])
        if spec_field.level == "interval" and not value_domain:  # nobody in the arm gave a value
            out[spec_field.name] = {"level": spec_field.level, "humans": None}
            continue
        counts = value_counts(units, codes, len(item_ai), max(1, len(value_domain)))
        entry = {"level": spec_field.level, "humans": _agreement_summary(counts, spec_field, value_domain, spec)}
        # The kappa family with Gwet's standard errors, weighted on ordered scales (stats/agreement_family.py).
        coders = _field_coders(spec_field, data.fields[spec_field.name][mask], data.reviewer[mask])
        entry["family"] = agreement_family(
            counts, spec_field.level, value_domain, units=units, codes=codes, coders=coders, confidence=spec.confidence
        )
        if spec_field.is_decision:
            # Only units some human in this arm labelled; the AI is then one more coder.
            labelled = counts.sum(axis=1) > 0
            with_ai = counts.copy()
            rows = np.flatnonzero(labelled & (item_ai >= 0))
            with_ai[rows, item_ai[rows]] += 1
            entry["with_ai"] = _agreement_summary(with_ai, spec_field, value_domain, spec)
        out[spec_field.name] = entry
    return out


def _field_codes(
    spec_field: FieldSpec, values: np.ndarray, units: np.ndarray
) -> tuple[np.ndarray, np.ndarray, list[float] | list[int]]:
    """(codes, units, value domain) of one field: a choice field's codes as they are; an
    interval field's values without the missing ones, binned when there are too many, coded
    by their sorted distinct values (an empty domain when nobody gave one)."""
    if spec_field.level != "interval":
        return values, units, list(range(len(spec_field.choices)))
    present = ~np.isnan(values)
    values, units = values[present], units[present]
    if len(np.unique(values)) > MAX_INTERVAL_VALUES:
        values = _binned(values)
    domain, codes = np.unique(values, return_inverse=True)
    return codes, units, [float(v) for v in domain]


def _field_coders(spec_field: FieldSpec, values: np.ndarray, reviewers: np.ndarray) -> np.ndarray:
    """The reviewer of each entry ``_field_codes`` keeps: an interval field drops its missing values."""
    return reviewers if spec_field.level != "interval" else reviewers[~np.isnan(values)]


def _agreement_summary(counts: np.ndarray, spec_field: FieldSpec, value_domain: list, spec: StudySpec) -> dict:
    return agreement_summary(
        counts,
        spec_field.level,
        value_domain,
        n_resamples=spec.n_resamples,
        confidence=spec.confidence,
        seed=spec.seed,
    )


# --- Rubber-stamp indicators ----------------------------------------------------------------


def reviewer_indicator_rows(data: LabelData, spec: StudySpec, basis: LabelBasis) -> list[dict]:
    """The rubber-stamp indicators of each reviewer (stats/rubber_stamp.py; docs/design.md,
    "Rubber-stamp indicators"), with the reviewer's arm and what the dashboard plots: median
    time to decide against agreement with the AI (the hidden recommendation in the control arm)."""
    shows_ai = np.zeros(len(data), bool)
    for arm in spec.arms:
        if not arm.is_control:
            shows_ai |= basis.arm_masks[arm.id]
    rows = reviewer_indicators(
        reviewer=data.reviewer,
        agree=np.where(shows_ai & basis.answered, basis.agrees, -1).astype(np.int8),
        ai_right=np.where(basis.known, (data.ai == data.gold).astype(np.int8), -1).astype(np.int8),
        is_probe=data.is_probe,
        seconds=data.seconds,
        floor_seconds=data.word_count / spec.reading_wpm * 60.0,
        evidence_opened=data.evidence_opened,
        label_code=data.decision,
        order=data.submitted,
        n_categories=max(1, len(spec.decision.choices)),
        thresholds=spec.thresholds,
    )
    arms = reviewer_arms(data, spec, basis)
    medians = _median_by_group(basis.reviewer_index, data.seconds, len(basis.reviewers))
    n_reviewers = len(basis.reviewers)
    answered = np.bincount(basis.reviewer_index, weights=basis.answered, minlength=n_reviewers)
    agree = np.bincount(basis.reviewer_index, weights=basis.agrees, minlength=n_reviewers)
    position = {int(reviewer): i for i, reviewer in enumerate(basis.reviewers)}
    for row in rows:
        i = position[row["reviewer"]]
        row["arm"] = arms[i]
        row["dwell"] = {"median_seconds": finite_or_none(medians[i]), "n": int(answered[i]), "agree": int(agree[i])}
    return rows


def reviewer_arms(data: LabelData, spec: StudySpec, basis: LabelBasis) -> list[str]:
    """Each reviewer's arm name: the same on every label between subjects; "several" within."""
    names = {arm.id: arm.name for arm in spec.arms}
    lowest = np.full(len(basis.reviewers), np.iinfo(np.int64).max)
    highest = np.full(len(basis.reviewers), np.iinfo(np.int64).min)
    np.minimum.at(lowest, basis.reviewer_index, data.arm)
    np.maximum.at(highest, basis.reviewer_index, data.arm)
    return [names.get(int(low), "") if low == high else "several" for low, high in zip(lowest, highest, strict=True)]


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


# --- Sensitivity: the headline effects without the flagged reviewers ------------------------


def sensitivity_without_flagged(
    spec: StudySpec, basis: LabelBasis, reviewer_rows: list[dict], arms_out: list[dict], increment: dict | None
) -> dict:
    """Every headline effect (each arm's deference effect and the narrative increment, per split)
    beside the same effect recomputed without the reviewers flagged as possible rubber stamps
    (issue 15, "a sensitivity view"): if a conclusion holds only with them, the reader should
    see it. The same estimators, options and seed as the full sample (``deference_effect_by_split``,
    ``narrative_increment_by_split``), on the reviewer sums with the flagged reviewers' labels left
    out. A sensitivity analysis, not a correction: flags are not randomized, so leaving reviewers
    out can itself unbalance the arms. Without flagged reviewers both columns are the same."""
    flagged = [row["reviewer"] for row in reviewer_rows if row["flagged"]]
    keep = ~np.isin(basis.reviewers[basis.reviewer_index], flagged)
    reduced = _basis_keeping(basis, keep) if flagged else basis
    effects = []
    for arm, arm_out in zip(spec.arms, arms_out, strict=True):
        full = arm_out.get("deference_effect")
        if not full:
            continue
        without = deference_effect_by_split(spec, reduced, arm) if flagged else full
        effects += [
            _sensitivity_row("deference_effect", arm.name, split, full[split], without[split]) for split in SPLITS
        ]
    if increment:
        without = narrative_increment_by_split(spec, reduced) if flagged else increment
        arms = f"{increment['rationale_arm']} vs {increment['recommendation_arm']}"
        effects += [
            _sensitivity_row("narrative_increment", arms, split, increment[split], without[split]) for split in SPLITS
        ]
    return {
        "excluded_reviewers": flagged,
        "n_excluded": len(flagged),
        "n_labels_excluded": int((~keep).sum()),
        "effects": effects,
    }


def _sensitivity_row(effect: str, arms: str, split: str, full: dict, without: dict) -> dict:
    return {"effect": effect, "arm": arms, "split": split, "full": full, "without_flagged": without}


def _basis_keeping(basis: LabelBasis, keep: np.ndarray) -> LabelBasis:
    """``basis`` with the (hits, trials) per reviewer recounted on the labels in ``keep`` only
    (answered labels, as in ``label_basis``)."""
    keep = keep & basis.answered
    n_reviewers = len(basis.reviewers)
    sums = {
        (arm_id, split): _reviewer_sums(
            basis.reviewer_index, n_reviewers, basis.agrees, basis.arm_masks[arm_id] & basis.splits[split] & keep
        )
        for arm_id, split in basis.sums
    }
    return replace(basis, sums=sums)
