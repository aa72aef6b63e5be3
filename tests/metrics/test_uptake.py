"""Treatment uptake: the share of labels on which the rationale (or recommendation) was seen, and
agreement with the AI split by seen / not seen, against values computed by hand; unknown labels
(no record) are never counted as not seen."""

from __future__ import annotations

import math

import numpy as np
import pytest

from reviewapp.metrics.compute import ArmSpec, FieldSpec, LabelData, StudySpec, label_basis, study_metrics
from reviewapp.metrics.loading import labels_load
from reviewapp.metrics.stats.reliance import uptake_split
from reviewapp.queue.services import claim_next, label_submit
from tests.builders import enrol, make_items

Z95 = 1.959963984540054  # the 97.5% normal quantile


def wilson(count: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson's score interval in closed form (Wilson 1927), apart from the scipy route the code takes."""
    p = count / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def assert_estimate(estimate: dict, count: int, n: int) -> None:
    low, high = wilson(count, n)
    assert estimate["n"] == n and estimate["method"] == "wilson"
    assert estimate["value"] == pytest.approx(count / n)
    assert (estimate["low"], estimate["high"]) == (pytest.approx(low), pytest.approx(high))


# Eight labels: seen on 0-2, not seen on 3-5, no record on 6-7. The AI says 0 everywhere but on 7.
SEEN = np.array([1, 1, 1, 0, 0, 0, -1, -1])
FINAL = np.array([0, 0, 1, 0, 1, 1, 0, 1])
AI = np.array([0, 0, 0, 0, 0, 0, 0, -1])


def tiny_study() -> tuple[LabelData, StudySpec]:
    """Three arms, four labels each, on items 1-4; the AI recommends 0 and is wrong on items 3-4."""
    arms = (
        ArmSpec(1, "control", False, False, False, False),
        ArmSpec(2, "rationale", True, True, False, False, rationale_display="collapsed"),
        ArmSpec(3, "recommendation", True, False, False, False),
    )
    n = 12
    data = LabelData(
        label_id=np.arange(n),
        reviewer=np.repeat([10, 20, 30], 4),
        item=np.tile([1, 2, 3, 4], 3),
        arm=np.repeat([1, 2, 3], 4),
        submitted=np.arange(n, dtype=float),
        seconds=np.full(n, 30.0),
        decision=np.array([0, 1, 1, 1, 0, 0, 0, 1, 0, 1, 0, 0], dtype=np.int32),
        initial=np.full(n, -1, dtype=np.int32),
        ai=np.zeros(n, dtype=np.int32),
        gold=np.tile([0, 0, 1, 1], 3).astype(np.int32),
        is_probe=np.zeros(n, bool),
        word_count=np.full(n, 100, dtype=np.int32),
        evidence_opened=np.zeros(n, bool),
        fields={"decision": np.array([0, 1, 1, 1, 0, 0, 0, 1, 0, 1, 0, 0], dtype=np.int32)},
        # Control: no record (it shows nothing). Rationale arm: seen on items 1 and 3, not on 2,
        # unknown on 4. Recommendation: seen everywhere in both AI arms but one unknown.
        rationale_seen=np.array([-1, -1, -1, -1, 1, 0, 1, -1, -1, -1, -1, -1], dtype=np.int32),
        recommendation_seen=np.array([-1, -1, -1, -1, 1, 1, 1, 1, 1, 0, 0, -1], dtype=np.int32),
    )
    spec = StudySpec(
        arms=arms,
        fields=(FieldSpec("decision", "nominal", ("approve", "reject"), True),),
        thresholds={},
        n_resamples=50,
    )
    return data, spec


class TestUptake:
    def test_the_split_matches_the_hand_count(self):
        out = uptake_split(SEEN, FINAL, AI)
        assert_estimate(out["seen"], 3, 6)  # three seen of the six with a record
        assert out["unknown"] == 2 and out["n_labels"] == 8
        assert_estimate(out["unknown_share"], 2, 8)
        assert_estimate(out["agreement_seen"], 2, 3)  # labels 0, 1 agree; 2 does not
        assert_estimate(out["agreement_not_seen"], 1, 3)  # label 3 agrees; 4, 5 do not

    def test_unknown_labels_are_not_counted_as_not_seen(self):
        """Label 6 agrees with the AI and has no record: counted as not seen, it would move the split."""
        as_not_seen = uptake_split(np.where(SEEN == -1, 0, SEEN), FINAL, AI)
        assert as_not_seen["agreement_not_seen"]["value"] == pytest.approx(2 / 4)  # the check would notice
        assert uptake_split(SEEN, FINAL, AI)["agreement_not_seen"]["value"] == pytest.approx(1 / 3)

    def test_a_part_never_seen_or_never_recorded_is_undefined_not_zero(self):
        out = uptake_split(np.array([-1, -1]), np.array([0, 1]), np.array([0, 0]))
        assert out["seen"]["value"] is None and out["seen"]["n"] == 0
        assert out["agreement_seen"]["value"] is None and out["agreement_not_seen"]["value"] is None
        assert out["unknown"] == 2

    def test_each_arm_reports_the_parts_it_shows_per_split(self):
        data, spec = tiny_study()
        result = study_metrics(data, spec)
        control, rationale, recommendation = result["arms"]
        assert control["uptake"] == {}
        assert set(rationale["uptake"]) == {"rationale", "recommendation"}
        assert set(recommendation["uptake"]) == {"recommendation"}
        assert rationale["uptake"]["rationale"]["display"] == "collapsed"
        # Rationale arm, decisions 0 0 0 1 on items 1-4 (AI says 0): rationale seen on 1 and 3,
        # not on 2, unknown on 4.
        every = rationale["uptake"]["rationale"]["all"]
        assert_estimate(every["seen"], 2, 3)
        assert every["unknown"] == 1
        assert_estimate(every["agreement_seen"], 2, 2)
        assert_estimate(every["agreement_not_seen"], 1, 1)
        wrong = rationale["uptake"]["rationale"]["ai_wrong"]  # items 3 and 4
        assert_estimate(wrong["seen"], 1, 1)
        assert wrong["unknown"] == 1
        assert wrong["agreement_not_seen"]["value"] is None
        # Recommendation arm, decisions 0 1 0 0: seen on 1, not on 2 and 3, unknown on 4.
        rec = recommendation["uptake"]["recommendation"]["all"]
        assert_estimate(rec["seen"], 1, 3)
        assert_estimate(rec["agreement_seen"], 1, 1)
        assert_estimate(rec["agreement_not_seen"], 1, 2)

    def test_without_uptake_columns_every_label_is_unknown(self):
        data, spec = tiny_study()
        data.rationale_seen = data.recommendation_seen = None
        result = study_metrics(data, spec)
        rationale = result["arms"][1]["uptake"]["rationale"]["all"]
        assert rationale["unknown"] == 4 and rationale["seen"]["n"] == 0
        assert label_basis(data, spec).answered.sum() == 12

    @pytest.mark.django_db
    def test_it_loads_seen_not_seen_and_unknown_from_the_stored_labels(self, study):
        make_items(study, 3)
        reviewer = enrol(study, "loader", "rationale")
        recorded = [
            {"rationale_seen": 1, "recommendation_seen": 0, "rationale_visible_ms": 1500},
            {"rationale_seen": 0, "recommendation_seen": 1},
            {"rationale_opened": 1},  # stored before uptake was recorded
        ]
        for interactions in recorded:
            assignment = claim_next(study=study, reviewer=reviewer)
            label_submit(
                study=study,
                reviewer=reviewer,
                assignment_id=assignment.pk,
                values={"decision": "approve"},
                interactions=interactions,
            )
        data = labels_load(study)
        assert data.rationale_seen.tolist() == [1, 0, -1]
        assert data.recommendation_seen.tolist() == [0, 1, -1]
