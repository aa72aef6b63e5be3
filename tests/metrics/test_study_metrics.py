"""The whole study computation on arrays (no database): a seeded synthetic study with every
arm role, reveal mode, probes, missing gold and an interval field, through ``study_metrics``."""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from reviewapp.metrics.compute import ArmSpec, FieldSpec, LabelData, StudySpec, study_metrics
from reviewapp.metrics.stats.clustered import deference_effect, narrative_increment
from reviewapp.metrics.stats.intervals import difference
from reviewapp.metrics.stats.rubber_stamp import DEFAULT_THRESHOLDS

ARMS = (
    ArmSpec(11, "control", False, False, False, False),
    ArmSpec(12, "recommendation", True, False, False, False),
    ArmSpec(13, "rationale", True, True, False, False),
    ArmSpec(14, "reveal", True, False, False, True),
)
# Logit of agreeing with the AI, per arm: the rationale arm defers most.
MEAN_LOGIT = {11: 0.0, 12: 0.8, 13: 1.6, 14: 0.6}
FIELDS = (
    FieldSpec("decision", "nominal", ("approve", "reject", "escalate"), is_decision=True),
    FieldSpec("severity", "ordinal", ("low", "medium", "high", "critical")),
    FieldSpec("score", "interval"),
)


def synthetic_study(seed: int = 3, reviewers_per_arm: int = 8, n_items: int = 40) -> LabelData:
    """Reviewers (between subjects, one also in a second arm) each answer a random share of
    the items; each reviewer agrees with the AI at their own rate (a random intercept on the
    logit scale), so labels cluster by reviewer as in a real study."""
    rng = np.random.default_rng(seed)
    # Uptake from its own stream, so the other columns are what they were before it was recorded.
    uptake_rng = np.random.default_rng(seed + 1)
    item_ai = rng.choice(3, size=n_items, p=[0.6, 0.3, 0.1])
    item_ai[rng.random(n_items) < 0.05] = -1  # no recommendation
    item_gold = np.where(rng.random(n_items) < 0.8, item_ai, (item_ai + 1) % 3)
    item_gold[rng.random(n_items) < 0.2] = -1  # no gold
    item_probe = rng.random(n_items) < 0.1
    item_words = rng.integers(40, 600, size=n_items)
    columns: dict[str, list] = {name: [] for name in LabelData.__dataclass_fields__ if name != "fields"}
    fields: dict[str, list] = {spec.name: [] for spec in FIELDS}
    reviewer_arms = [(100 * arm.id + r, arm) for arm in ARMS for r in range(reviewers_per_arm)]
    reviewer_arms.append((100 * ARMS[1].id, ARMS[2]))  # a within-subjects reviewer: "several"
    for reviewer, arm in reviewer_arms:
        items = np.flatnonzero(rng.random(n_items) < 0.7)
        n = len(items)
        p_agree = expit(MEAN_LOGIT[arm.id] + 0.9 * rng.standard_normal())
        agree = rng.random(n) < p_agree
        ai = item_ai[items]
        other = (np.maximum(ai, 0) + rng.integers(1, 3, size=n)) % 3
        decision = np.where(agree & (ai >= 0), ai, other)
        decision[rng.random(n) < 0.03] = -1
        initial = np.where(rng.random(n) < 0.5, decision, rng.integers(0, 3, size=n)) if arm.reveal else np.full(n, -1)
        seconds = item_words[items] / 238 * 60 * rng.lognormal(0.2, 0.6, size=n)
        seconds[rng.random(n) < 0.05] = np.nan
        columns["label_id"].append(np.arange(n) + 1000 * reviewer)
        columns["reviewer"].append(np.full(n, reviewer))
        columns["item"].append(items + 5000)
        columns["arm"].append(np.full(n, arm.id))
        columns["submitted"].append(1.7e9 + np.sort(rng.random(n)) * 7200)
        columns["seconds"].append(seconds)
        columns["decision"].append(decision)
        columns["initial"].append(initial)
        columns["ai"].append(ai)
        columns["gold"].append(item_gold[items])
        columns["is_probe"].append(item_probe[items])
        columns["word_count"].append(item_words[items])
        columns["evidence_opened"].append(rng.random(n) < 0.5)
        # Seen (1), not seen (0) or unknown (-1: stored before uptake was recorded).
        columns["rationale_seen"].append(uptake_rng.choice([-1, 0, 1], size=n, p=[0.1, 0.4, 0.5]).astype(np.int32))
        columns["recommendation_seen"].append(uptake_rng.choice([-1, 0, 1], size=n, p=[0.1, 0.2, 0.7]).astype(np.int32))
        fields["decision"].append(decision)
        severity = rng.integers(0, 4, size=n)
        severity[rng.random(n) < 0.05] = -1
        fields["severity"].append(severity)
        score = np.round(rng.normal(60, 15, size=n), 1)  # more than 50 values: binned
        score[rng.random(n) < 0.1] = np.nan
        fields["score"].append(score)
    return LabelData(
        **{name: np.concatenate(values) for name, values in columns.items()},
        fields={name: np.concatenate(values) for name, values in fields.items()},
    )


def synthetic_spec(confidence: float = 0.95, n_resamples: int = 300, seed: int = 7) -> StudySpec:
    return StudySpec(
        arms=ARMS,
        fields=FIELDS,
        thresholds=dict(DEFAULT_THRESHOLDS),
        seed=seed,
        n_resamples=n_resamples,
        confidence=confidence,
    )


def arm_sums(data: LabelData, arm_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Per reviewer of the arm: labels agreeing with the AI, and labels with an answer and a recommendation."""
    answered = (data.arm == arm_id) & (data.decision >= 0) & (data.ai >= 0)
    reviewers, index = np.unique(data.reviewer[answered], return_inverse=True)
    agrees = data.decision[answered] == data.ai[answered]
    return np.bincount(index, weights=agrees, minlength=len(reviewers)), np.bincount(index, minlength=len(reviewers))


class TestStudyMetrics:
    def test_it_gives_the_narrative_increment_at_the_studys_confidence(self):
        data = synthetic_study()
        at_90 = study_metrics(data, synthetic_spec(confidence=0.90))["narrative_increment"]["all"]
        at_95 = study_metrics(data, synthetic_spec(confidence=0.95))["narrative_increment"]["all"]
        rationale, recommendation = arm_sums(data, 13), arm_sums(data, 12)
        pooled = (int(rationale[0].sum()), int(rationale[1].sum()), int(recommendation[0].sum()))
        newcombe_90 = difference(*pooled, int(recommendation[1].sum()), confidence=0.90)
        cluster_90 = narrative_increment(rationale, recommendation, n_resamples=300, confidence=0.90, seed=7)
        assert at_90["newcombe"] == newcombe_90.as_dict()
        assert at_90["cluster"] == cluster_90.as_dict()
        # The 90% intervals are narrower than the 95% ones around the same estimate.
        for method in ("newcombe", "cluster"):
            assert at_90[method]["value"] == at_95[method]["value"] > 0
            assert at_95[method]["low"] < at_90[method]["low"] < at_90[method]["high"] < at_95[method]["high"]

    def test_it_gives_each_arm_but_the_control_its_deference_effect_against_the_control(self):
        data = synthetic_study()
        arms = {arm["name"]: arm for arm in study_metrics(data, synthetic_spec(confidence=0.90))["arms"]}
        assert arms["control"]["deference_effect"] is None
        control = arm_sums(data, 11)
        for arm_id, name in ((12, "recommendation"), (13, "rationale"), (14, "reveal")):
            effect = arms[name]["deference_effect"]["all"]
            hits, trials = arm_sums(data, arm_id)
            pooled = (int(hits.sum()), int(trials.sum()), int(control[0].sum()), int(control[1].sum()))
            assert effect["newcombe"] == difference(*pooled, confidence=0.90).as_dict()
            cluster = deference_effect((hits, trials), control, n_resamples=300, confidence=0.90, seed=7)
            assert effect["cluster"] == cluster.as_dict()
        # The rationale arm defers most in the simulation, so its effect is the largest.
        values = {
            name: arms[name]["deference_effect"]["all"]["cluster"]["value"] for name in ("recommendation", "rationale")
        }
        assert 0 < values["recommendation"] < values["rationale"]
