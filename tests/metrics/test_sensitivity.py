"""The sensitivity view: every headline effect beside the same effect without the flagged
reviewers (compute.sensitivity_without_flagged), through ``study_metrics``. No database."""

from __future__ import annotations

import numpy as np

from reviewapp.metrics.compute import ArmSpec, FieldSpec, LabelData, StudySpec, study_metrics
from reviewapp.metrics.presenters import sensitivity_view
from reviewapp.metrics.stats.clustered import deference_effect
from reviewapp.metrics.stats.rubber_stamp import DEFAULT_THRESHOLDS

CONTROL, RECOMMENDATION, RATIONALE = 1, 2, 3
ARMS = (
    ArmSpec(CONTROL, "control", False, False, False, False),
    ArmSpec(RECOMMENDATION, "recommendation", True, False, False, False),
    ArmSpec(RATIONALE, "rationale", True, True, False, False),
)
AGREE_RATE = {CONTROL: 0.5, RECOMMENDATION: 0.6, RATIONALE: 0.65}
STAMPS = (9001, 9002)  # rubber stamps in the rationale arm: agree with everything, fast, no evidence
OPTIONS = {"n_resamples": 200, "confidence": 0.95, "seed": 5}


def study(with_stamps: bool = True, reviewers_per_arm: int = 8, n_items: int = 40) -> LabelData:
    rng = np.random.default_rng(11)
    item_ai = rng.integers(0, 2, size=n_items)
    item_gold = np.where(rng.random(n_items) < 0.7, item_ai, 1 - item_ai)
    people = [(100 * arm + r, arm, False) for arm in AGREE_RATE for r in range(reviewers_per_arm)]
    if with_stamps:
        people += [(stamp, RATIONALE, True) for stamp in STAMPS]
    rows: dict[str, list] = {name: [] for name in LabelData.__dataclass_fields__ if name != "fields"}
    for reviewer, arm, stamp in people:
        items = np.arange(n_items)
        agree = np.ones(n_items, bool) if stamp else rng.random(n_items) < AGREE_RATE[arm]
        decision = np.where(agree, item_ai, 1 - item_ai)
        words = np.full(n_items, 238)  # a minute to read
        values = {
            "label_id": reviewer * 1000 + items,
            "reviewer": np.full(n_items, reviewer),
            "item": items,
            "arm": np.full(n_items, arm),
            "submitted": 1.7e9 + np.arange(n_items) * 90.0,
            "seconds": np.full(n_items, 5.0) if stamp else rng.uniform(70, 200, size=n_items),
            "decision": decision,
            "initial": np.full(n_items, -1),
            "ai": item_ai,
            "gold": item_gold,
            "is_probe": np.zeros(n_items, bool),
            "word_count": words,
            "evidence_opened": np.zeros(n_items, bool) if stamp else rng.random(n_items) < 0.7,
            "rationale_seen": np.full(n_items, -1, dtype=np.int32),
            "recommendation_seen": np.full(n_items, -1, dtype=np.int32),
        }
        for name, value in values.items():
            rows[name].append(value)
    columns = {name: np.concatenate(value) for name, value in rows.items()}
    return LabelData(**columns, fields={"decision": columns["decision"]})


def spec() -> StudySpec:
    return StudySpec(
        arms=ARMS,
        fields=(FieldSpec("decision", "nominal", ("approve", "reject"), is_decision=True),),
        thresholds=dict(DEFAULT_THRESHOLDS),
        **OPTIONS,
    )


def sums(data: LabelData, arm: int, leave_out: tuple = ()) -> tuple[np.ndarray, np.ndarray]:
    rows = (data.arm == arm) & ~np.isin(data.reviewer, leave_out)
    reviewers, index = np.unique(data.reviewer[rows], return_inverse=True)
    agrees = data.decision[rows] == data.ai[rows]
    return np.bincount(index, weights=agrees, minlength=len(reviewers)), np.bincount(index, minlength=len(reviewers))


def effects(result: dict) -> dict:
    return {(row["effect"], row["arm"], row["split"]): row for row in result["sensitivity"]["effects"]}


class TestSensitivity:
    def test_it_recomputes_every_headline_effect_without_the_flagged_reviewers(self):
        data = study()
        result = study_metrics(data, spec())
        sensitivity = result["sensitivity"]

        assert sensitivity["excluded_reviewers"] == list(STAMPS) and sensitivity["n_excluded"] == 2
        assert sensitivity["n_labels_excluded"] == 80
        rows = effects(result)
        # Two deference effects and the narrative increment, on each of the three splits.
        assert len(rows) == 9
        increment = ("narrative_increment", "rationale vs recommendation", "all")
        rationale = ("deference_effect", "rationale", "all")
        recommendation = ("deference_effect", "recommendation", "all")
        # The full-sample column is the headline number itself.
        assert rows[rationale]["full"] == result["arms"][2]["deference_effect"]["all"]
        assert rows[increment]["full"] == result["narrative_increment"]["all"]
        # Without the stamps, by the same estimator, options and seed.
        expected = deference_effect(sums(data, RATIONALE, STAMPS), sums(data, CONTROL), **OPTIONS).as_dict()
        assert rows[rationale]["without_flagged"]["cluster"] == expected
        # The stamps agree with everything: leaving them out lowers the rationale arm's effect
        # and the increment, and leaves the recommendation arm (no flagged reviewer) as it was.
        assert rows[rationale]["without_flagged"]["cluster"]["value"] < rows[rationale]["full"]["cluster"]["value"]
        assert rows[increment]["without_flagged"]["cluster"]["value"] < rows[increment]["full"]["cluster"]["value"]
        assert rows[recommendation]["without_flagged"] == rows[recommendation]["full"]

    def test_without_flagged_reviewers_both_columns_are_the_same(self):
        result = study_metrics(study(with_stamps=False), spec())
        assert result["flagged_reviewers"] == 0
        assert result["sensitivity"]["n_excluded"] == 0 and result["sensitivity"]["n_labels_excluded"] == 0
        assert all(row["without_flagged"] == row["full"] for row in result["sensitivity"]["effects"])
        assert len(result["sensitivity"]["effects"]) == 9

    def test_the_view_shows_both_columns_and_marks_a_change_of_conclusion(self):
        result = study_metrics(study(), spec())
        view = sensitivity_view(result)
        assert (view["n_excluded"], view["n_labels_excluded"], len(view["rows"])) == (2, 80, 9)
        row = next(
            r
            for r in view["rows"]
            if (r["effect"], r["arm"], r["split"]) == ("Deference effect", "rationale", "all items")
        )
        assert row["full"].endswith("]") and row["without"].endswith("]") and row["shift"].endswith(" pp")
        assert row["shift"].startswith("-")
        # The rows' own verdicts before the made-up change (they depend on the interval method).
        before = [r["changes"] for r in view["rows"][1:]]
        # A made-up change: the full interval on one side of zero, the one without across it.
        effect = result["sensitivity"]["effects"][0]
        effect["full"]["cluster"] |= {"value": 0.2, "low": 0.1, "high": 0.3}
        effect["without_flagged"]["cluster"] |= {"value": 0.05, "low": -0.05, "high": 0.15}
        view = sensitivity_view(result)
        assert view["rows"][0]["changes"] is True and view["any_change"] is True
        assert [r["changes"] for r in view["rows"][1:]] == before  # positive control: the rest unchanged
        # A run computed before the view existed: nothing to show, no error.
        assert sensitivity_view({k: v for k, v in result.items() if k != "sensitivity"}) is None
