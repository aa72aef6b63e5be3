"""Randomization inference (stats/randomization_inference.py, metrics/effects.py): the app's own
allocation re-run, p-values counted as Phipson & Smyth (2010) say, valid under the null and
small under a real effect, and wired into a study's metrics run."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit

from reviewapp.metrics.compute import ArmSpec, FieldSpec, LabelData, StudySpec, study_metrics
from reviewapp.metrics.effects import p_value_note
from reviewapp.metrics.stats.randomization_inference import (
    AllocationRecord,
    pairwise_draws,
    randomization_test,
    reallocate,
    rerandomization_seeds,
)
from reviewapp.metrics.stats.rubber_stamp import DEFAULT_THRESHOLDS
from reviewapp.studies.randomization import allocate_reviewer
from tests.builders import compute_metrics

ARM_IDS = (21, 22, 23)
SPEC_ARMS = (
    ArmSpec(21, "control", False, False, False, False),
    ArmSpec(22, "recommendation", True, False, False, False),
    ArmSpec(23, "rationale", True, True, False, False),
)


def record(n: int, seed: int = 77, strata=("",), weights=(1, 1, 1), design="between") -> AllocationRecord:
    """``n`` reviewers enrolled in turn across ``strata``, allocated as the app does."""
    stratum = tuple(strata[j % len(strata)] for j in range(n))
    counts: dict[str, int] = {}
    sequence = []
    for s in stratum:
        sequence.append(counts.get(s, 0))
        counts[s] = counts.get(s, 0) + 1
    allocations = [allocate_reviewer(list(weights), seed, s, q) for s, q in zip(stratum, sequence, strict=True)]
    arms = [ARM_IDS[allocation.arm_index] for allocation in allocations]
    return AllocationRecord(
        design=design,
        seed=seed,
        arm_ids=ARM_IDS,
        weights=tuple(weights),
        reviewer=np.arange(n, dtype=np.int64) + 500,
        arm=np.array(arms, dtype=np.int64),
        stratum=stratum,
        sequence=np.array(sequence, dtype=np.int64),
    )


class TestReallocation:
    def test_the_study_seed_gives_back_the_app_s_own_allocation(self):
        rec = record(47, strata=("nurse", "doctor", "nurse"), weights=(2, 1, 1))
        again = reallocate(rec, [rec.seed])[0]
        assert [ARM_IDS[i] for i in again] == list(rec.arm)
        # Positive control: another seed gives another allocation.
        assert (reallocate(rec, [rec.seed + 1])[0] != again).any()

    def test_every_re_allocation_keeps_the_blocks_balanced(self):
        rec = record(60, strata=("a", "b"))  # 30 per stratum: five full blocks of six
        for draw in reallocate(rec, rerandomization_seeds(1, 50)):
            for s in ("a", "b"):
                in_stratum = np.array([x == s for x in rec.stratum])
                blocks = rec.sequence[in_stratum] // 6
                for b in np.unique(blocks):
                    arms = draw[in_stratum][blocks == b]
                    assert sorted(np.bincount(arms, minlength=3)) == [2, 2, 2]

    def test_the_seeds_are_reproducible(self):
        assert (rerandomization_seeds(5, 10) == rerandomization_seeds(5, 10)).all()
        assert (rerandomization_seeds(5, 10) != rerandomization_seeds(6, 10)).any()


class TestPairwiseDraws:
    def test_they_shuffle_the_two_arms_within_each_block_and_hold_the_third(self):
        rec = record(50, strata=("a", "b"), weights=(2, 1, 1))  # blocks of eight, a partial one last
        observed = np.array([ARM_IDS.index(a) for a in rec.arm])
        draws = pairwise_draws(rec, observed, 1, 0, 200, seed=4)
        assert (draws[:, observed == 2] == 2).all()  # the other arm's reviewers stay put
        blocks = [(s, q // 8) for s, q in zip(rec.stratum, rec.sequence, strict=True)]
        for key in set(blocks):
            members = np.array([b == key for b in blocks])
            expected = np.bincount(observed[members], minlength=3)
            for draw in draws:
                assert (np.bincount(draw[members], minlength=3) == expected).all()
        # Positive control: the draws do move reviewers between the two arms, and differ.
        moved = (draws != observed).any(axis=1)
        assert moved.mean() > 0.9 and len({tuple(d) for d in draws}) > 150

    def test_under_the_pairwise_null_p_is_uniform_where_the_global_test_is_conservative(self):
        # Arms 1 and 2 agree alike; the control (arm 0) much less. The pairwise test of 2 vs 1
        # holds its level; re-running the whole allocation mixes control reviewers into both
        # arms and rarely rejects.
        rng = np.random.default_rng(8)
        rec = record(60)
        observed = np.array([ARM_IDS.index(a) for a in rec.arm])
        everything = reallocate(rec, rerandomization_seeds(3, 199))
        pairwise, whole = [], []
        for k in range(300):
            rates = expit(rng.normal(0.0, 0.5, size=60) + 1.5 * (observed > 0))
            hits = rng.binomial(30, rates).astype(float)[:, None]
            trials = np.full((60, 1), 30.0)
            draws = pairwise_draws(rec, observed, 2, 1, 199, seed=k)
            pairwise.append(randomization_test(hits, trials, observed, draws, [(2, 1)])[0][0]["p"])
            whole.append(randomization_test(hits, trials, observed, everything, [(2, 1)])[0][0]["p"])
        assert 0.02 <= np.mean(np.array(pairwise) <= 0.05) <= 0.09
        assert np.mean(np.array(whole) <= 0.05) < 0.02


class TestPValues:
    def test_p_counts_draws_at_least_as_extreme_plus_one(self):
        # Four reviewers, each with 10 labels, agreeing 9, 1, 5, 5 times; arms 0 and 1.
        hits = np.array([[9.0], [1.0], [5.0], [5.0]])
        trials = np.full((4, 1), 10.0)
        observed = np.array([1, 0, 0, 1])  # rate 1: 14/20, rate 0: 6/20 -> 0.4
        draws = np.array(
            [
                [1, 0, 0, 1],  # 0.4 (as extreme)
                [0, 1, 1, 0],  # -0.4 (as extreme, two-sided)
                [1, 1, 0, 0],  # 0.0
                [0, 0, 1, 1],  # 0.0
            ]
        )
        (result,) = randomization_test(hits, trials, observed, draws, [(1, 0)])[0]
        assert result["observed"] == pytest.approx(0.4)
        assert result["p"] == pytest.approx((1 + 2) / (1 + 4))
        assert result["mc_se"] == pytest.approx(np.sqrt(0.6 * 0.4 / 4))

    def test_a_draw_without_labels_in_an_arm_is_not_counted(self):
        hits, trials = np.array([[1.0], [0.0]]), np.array([[2.0], [2.0]])
        draws = np.array([[0, 0], [1, 0]])  # the first leaves arm 1 empty
        (result,) = randomization_test(hits, trials, np.array([1, 0]), draws, [(1, 0)])[0]
        assert result["n"] == 1 and result["p"] == pytest.approx(1.0)

    def test_under_the_null_p_is_uniform_and_under_an_effect_small(self):
        rng = np.random.default_rng(3)
        rec = record(30)
        draws = reallocate(rec, rerandomization_seeds(9, 199))
        observed = np.array([ARM_IDS.index(a) for a in rec.arm])
        null_p, effect_p = [], []
        for _ in range(300):
            trials = rng.integers(5, 40, size=30).astype(float)
            rate = expit(rng.normal(0.3, 0.8, size=30))  # reviewers differ, arms do not
            hits = rng.binomial(trials.astype(int), rate).astype(float)
            null_p.append(randomization_test(hits[:, None], trials[:, None], observed, draws, [(1, 0)])[0][0]["p"])
        rates = expit(rng.normal(0.0, 0.3, size=30) + 1.5 * (observed == 1))
        trials = np.full(30, 30.0)
        hits = rng.binomial(30, rates).astype(float)
        effect_p.append(randomization_test(hits[:, None], trials[:, None], observed, draws, [(1, 0)])[0][0]["p"])
        rejections = np.mean(np.array(null_p) <= 0.05)
        assert 0.02 <= rejections <= 0.09  # nominal 5%; 300 studies give a binomial sd of 1.3 points
        assert effect_p[0] <= 0.01


def labels_for(rec: AllocationRecord, effect: float, seed: int = 0, n_items: int = 40) -> LabelData:
    """Every reviewer of ``rec`` answers every item; agreement with the AI grows by ``effect``
    on the logit scale in each arm that shows it."""
    rng = np.random.default_rng(seed)
    item_ai = rng.integers(0, 2, size=n_items)
    item_gold = np.where(rng.random(n_items) < 0.8, item_ai, 1 - item_ai)
    columns: dict[str, list] = {name: [] for name in LabelData.__dataclass_fields__ if name != "fields"}
    for reviewer, arm in zip(rec.reviewer, rec.arm, strict=True):
        shown = ARM_IDS.index(int(arm))
        agree = rng.random(n_items) < expit(0.2 + effect * shown + 0.4 * rng.standard_normal())
        decision = np.where(agree, item_ai, 1 - item_ai)
        values = {
            "label_id": reviewer * 1000 + np.arange(n_items),
            "reviewer": np.full(n_items, reviewer),
            "item": np.arange(n_items) + 1,
            "arm": np.full(n_items, arm),
            "submitted": np.arange(n_items, dtype=float),
            "seconds": np.full(n_items, 60.0),
            "decision": decision,
            "initial": np.full(n_items, -1),
            "ai": item_ai,
            "gold": item_gold,
            "is_probe": np.zeros(n_items, bool),
            "word_count": np.full(n_items, 200),
            "evidence_opened": np.ones(n_items, bool),
        }
        for name, value in values.items():
            columns[name].append(value)
    data = {name: np.concatenate(parts) for name, parts in columns.items() if parts and parts[0] is not None}
    return LabelData(**data, fields={"decision": data["decision"]})


def spec_for(rec: AllocationRecord | None, n: int = 200) -> StudySpec:
    return StudySpec(
        arms=SPEC_ARMS,
        fields=(FieldSpec("decision", "nominal", ("approve", "reject"), is_decision=True),),
        thresholds=DEFAULT_THRESHOLDS,
        n_resamples=50,
        allocation=rec,
        n_rerandomizations=n,
    )


class TestInTheStudyMetrics:
    def test_each_deference_effect_and_the_increment_gets_both_p_values(self):
        rec = record(24)
        result = study_metrics(labels_for(rec, effect=0.8), spec_for(rec))
        effects = result["effects"]
        assert effects["randomization"]["reproduced"] == 24 and "warning" not in effects["randomization"]
        rows = {(r["kind"], r["first"], r["split"]): r for r in effects["rows"]}
        assert len(rows) == 9  # (two deference effects + the increment) x three splits
        deference = rows[("deference", "rationale", "all")]
        # The randomization statistic is the headline deference effect itself.
        headline = next(a for a in result["arms"] if a["name"] == "rationale")["deference_effect"]["all"]
        assert deference["randomization"]["observed"] == pytest.approx(headline["newcombe"]["value"])
        assert deference["risk_difference"]["value"] == pytest.approx(headline["newcombe"]["value"])
        assert deference["randomization"]["p"] < 0.05 and deference["p_model"] < 0.05
        assert deference["randomization"]["n"] == 200
        assert 0 < deference["randomization"]["p_all_arms"] <= 1 and deference["randomization"]["mc_se_all_arms"]
        assert rows[("narrative", "rationale", "all")]["randomization"]["p"] is not None

    def test_without_an_effect_the_p_values_are_not_small(self):
        rec = record(24)
        rows = study_metrics(labels_for(rec, effect=0.0, seed=4), spec_for(rec))["effects"]["rows"]
        assert min(r["randomization"]["p"] for r in rows if r["split"] == "all") > 0.05

    def test_a_within_subjects_study_says_it_is_not_available(self):
        rec = record(24)
        within = AllocationRecord(**{**rec.__dict__, "design": "within"})
        effects = study_metrics(labels_for(rec, effect=0.8), spec_for(within))["effects"]
        assert "within-subjects" in effects["randomization"]["reason"]
        assert all(r["randomization"] is None for r in effects["rows"])
        assert all("odds_ratio" in r for r in effects["rows"])  # the model does not need it

    def test_a_missing_record_or_reviewer_is_a_reason(self):
        rec = record(24)
        data = labels_for(rec, effect=0.8)
        assert "not available" in study_metrics(data, spec_for(None))["effects"]["randomization"]["reason"]
        short = AllocationRecord(
            **{
                **rec.__dict__,
                "reviewer": rec.reviewer[1:],
                "arm": rec.arm[1:],
                "stratum": rec.stratum[1:],
                "sequence": rec.sequence[1:],
            }
        )
        reason = study_metrics(data, spec_for(short))["effects"]["randomization"]["reason"]
        assert reason == "1 reviewer(s) with labels have no allocation record."

    def test_arms_set_by_hand_are_flagged(self):
        rec = record(24)
        swapped = rec.arm.copy()
        for j in (0, 1):  # two reviewers moved to the next arm by hand
            swapped[j] = ARM_IDS[(ARM_IDS.index(int(swapped[j])) + 1) % 3]
        moved = AllocationRecord(**{**rec.__dict__, "arm": swapped})
        randomization = study_metrics(labels_for(moved, effect=0.8), spec_for(moved))["effects"]["randomization"]
        assert randomization["reproduced"] == 22 and "2 of 24" in randomization["warning"]

    def test_a_note_where_the_two_p_values_disagree(self):
        assert p_value_note(0.01, 0.2, 0.05).startswith("The model-based p (0.01) and the randomization p (0.2)")
        assert p_value_note(0.01, 0.02, 0.05) == "" and p_value_note(None, 0.2, 0.05) == ""


class TestThroughTheService:
    def test_a_run_of_a_real_study_re_runs_its_allocation(self, labelled):
        effects = compute_metrics(labelled).result["effects"]
        randomization = effects["randomization"]
        enrolled = labelled.enrolments.count()
        assert randomization["n_reviewers"] == enrolled and randomization["reproduced"] == enrolled
        assert randomization["n_rerandomizations"] == 1000
        rows = {(r["kind"], r["first"], r["split"]): r for r in effects["rows"]}
        assert 0 < rows[("deference", "rationale", "all")]["randomization"]["p"] <= 1
        # Nobody labelled in the recommendation arm: the model refuses, with the reason.
        assert "no answered labels in arm recommendation" in rows[("deference", "recommendation", "all")]["reason"]
