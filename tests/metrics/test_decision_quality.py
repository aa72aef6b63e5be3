"""Decision quality (stats/decision_quality.py, compute.arm_decision_quality): the block value in
the label schema, catch rate, block precision and false-block rate with reviewer-cluster
intervals, the confusion matrix and the seconds per decision, on cases computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from reviewapp.metrics.compute import FieldSpec, StudySpec, study_metrics
from reviewapp.metrics.stats.cluster_robust import cluster_rate
from reviewapp.metrics.stats.decision_quality import block_rates, confusion, seconds_per_decision
from reviewapp.studies.schema import DEFAULT_LABEL_SCHEMA, block_value, schema_errors

from .test_study_metrics import ARMS, FIELDS, synthetic_spec, synthetic_study

APPROVE, REJECT = 0, 1


def schema(**decision) -> dict:
    field = {"name": "decision", "type": "nominal", "choices": ["approve", "reject"], "decision": True}
    return {"fields": [{**field, **decision}, {"name": "severity", "type": "ordinal", "choices": ["low", "high"]}]}


class TestDecisionQuality:
    def test_it_counts_the_confusion_matrix_and_its_block_cells(self):
        # gold:     reject reject reject approve approve approve approve (no gold) reject
        # decision: reject approve reject reject approve approve (none)  reject    reject
        truth = np.array([1, 1, 1, 0, 0, 0, 0, -1, 1])
        decision = np.array([1, 0, 1, 1, 0, 0, -1, 1, 1])
        result = confusion(decision, truth, REJECT, 2)
        assert result["matrix"] == [[2, 1], [1, 3]]  # rows gold approve/reject, columns decision
        assert (result["blocks_caught"], result["blocks_missed"]) == (3, 1)
        assert (result["false_blocks"], result["allows_correct"]) == (1, 2)
        assert result["n"] == 7

    def test_it_gives_each_rate_the_reviewer_cluster_interval(self):
        rng = np.random.default_rng(4)
        reviewer = np.repeat(np.arange(8), 30)
        truth = rng.integers(0, 2, len(reviewer))
        skill = np.repeat(rng.uniform(0.6, 0.95, 8), 30)
        decision = np.where(rng.random(len(reviewer)) < skill, truth, 1 - truth)
        rates = block_rates(decision, truth, reviewer, REJECT, confidence=0.9)
        # By hand: per reviewer, blocks among the should-block labels, and so on.
        should, blocked = truth == REJECT, decision == REJECT
        for name, events, base in (
            ("catch_rate", blocked, should),
            ("block_precision", should, blocked),
            ("false_block_rate", blocked, ~should),
        ):
            hits = np.bincount(reviewer[base], weights=events[base], minlength=8)
            trials = np.bincount(reviewer[base], minlength=8)
            assert rates[name] == cluster_rate(hits, trials, confidence=0.9).as_dict()
            assert rates[name]["value"] == pytest.approx(events[base].mean())
            assert rates[name]["low"] < rates[name]["value"] < rates[name]["high"]
        # The catch rate and the false-block rate describe different labels.
        assert rates["catch_rate"]["n"] + rates["false_block_rate"]["n"] == len(reviewer)

    def test_it_says_why_there_is_no_interval_with_too_few_reviewers(self):
        reviewer = np.repeat(np.arange(3), 4)
        truth = np.tile([1, 1, 0, 0], 3)
        decision = np.tile([1, 0, 0, 0], 3)
        rates = block_rates(decision, truth, reviewer, REJECT)
        assert rates["catch_rate"]["value"] == 0.5
        assert rates["catch_rate"]["low"] is None and "too few reviewers (3)" in rates["catch_rate"]["note"]
        # Positive control: the same labels from five reviewers get an interval.
        more = block_rates(np.tile(decision, 2)[:20], np.tile(truth, 2)[:20], np.repeat(np.arange(5), 4), REJECT)
        assert more["catch_rate"]["low"] is not None and more["catch_rate"]["note"] is None

    def test_it_takes_the_median_seconds_of_answered_decisions(self):
        seconds = np.array([4.0, 10.0, np.nan, 7.0, 100.0, 1.0])
        answered = np.array([True, True, True, True, True, False])
        assert seconds_per_decision(seconds, answered) == {"median": 8.5, "n": 4}
        assert seconds_per_decision(np.array([np.nan]), np.array([True])) == {"median": None, "n": 0}

    def test_it_refuses_bad_codes(self):
        with pytest.raises(ValueError):
            block_rates(np.array([0.5, 1.0]), np.array([0, 1]), np.array([0, 1]), REJECT)
        with pytest.raises(ValueError):
            confusion(np.array([0, 1]), np.array([0]), REJECT, 2)
        with pytest.raises(ValueError):
            confusion(np.array([0, 1]), np.array([0, 1]), 2, 2)

    def test_it_validates_the_block_value_in_the_schema(self):
        assert schema_errors(schema(block_value="reject")) == []
        assert block_value(schema(block_value="reject")) == "reject"
        assert block_value(schema()) is None and schema_errors(schema()) == []
        assert schema_errors(schema(block_value="deny")) == [
            "fields[0].block_value 'deny' is not one of the field's choices ('approve', 'reject')."
        ]
        assert schema_errors(schema(block_value=1)) == [
            "fields[0].block_value 1 is not one of the field's choices ('approve', 'reject')."
        ]
        other = schema()
        other["fields"][1]["block_value"] = "high"
        assert schema_errors(other) == [
            'fields[1].block_value: only the decision field (the one with "decision": true) can mark a block value.'
        ]
        interval = {"fields": [{"name": "risk", "type": "interval", "min": 0, "max": 10, "decision": True}]}
        interval["fields"][0]["block_value"] = "10"
        needs = "fields[0].block_value needs a nominal or ordinal decision field with choices."
        assert schema_errors(interval) == [needs]
        # New studies start with "reject" as the block value.
        assert block_value(DEFAULT_LABEL_SCHEMA) == "reject" and schema_errors(DEFAULT_LABEL_SCHEMA) == []

    def test_it_computes_each_arms_decision_quality_in_a_study(self):
        data = synthetic_study()
        decision = FieldSpec("decision", "nominal", ("approve", "reject", "escalate"), True, block_value="reject")
        spec = StudySpec(**{**synthetic_spec().__dict__, "fields": (decision, *FIELDS[1:])})
        result = study_metrics(data, spec)
        assert result["block_value"] == "reject"
        for arm_spec, arm in zip(ARMS, result["arms"], strict=True):
            quality = arm["decision_quality"]
            mask = (data.arm == arm_spec.id) & (data.gold >= 0) & (data.decision >= 0)
            should, blocked = data.gold[mask] == 1, data.decision[mask] == 1
            assert quality["n_labels"] == mask.sum()
            assert quality["catch_rate"]["all"]["value"] == pytest.approx(blocked[should].mean())
            assert quality["block_precision"]["all"]["value"] == pytest.approx(should[blocked].mean())
            assert quality["false_block_rate"]["all"]["value"] == pytest.approx(blocked[~should].mean())
            assert np.array(quality["confusion"]["matrix"]).sum() == mask.sum()
            assert quality["values"] == ["approve", "reject", "escalate"]
            assert set(quality["catch_rate"]) == {"all", "ai_right", "ai_wrong"}
            timed = (data.arm == arm_spec.id) & (data.decision >= 0) & np.isfinite(data.seconds)
            median = float(np.median(data.seconds[timed]))
            assert quality["seconds_per_decision"] == {"median": median, "n": timed.sum()}

    def test_it_gives_only_the_seconds_without_a_block_value(self):
        result = study_metrics(synthetic_study(), synthetic_spec())
        assert result["block_value"] is None
        for arm in result["arms"]:
            assert set(arm["decision_quality"]) == {"block_value", "seconds_per_decision"}
            assert arm["decision_quality"]["seconds_per_decision"]["median"] > 0
