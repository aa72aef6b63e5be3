"""The kappa family in a study's metrics (compute.inter_rater_agreement): every schema field of
every arm, weighted on ordered fields, Cohen's kappa only where an arm has exactly two reviewers."""

from __future__ import annotations

import numpy as np

from reviewapp.metrics.compute import study_metrics
from reviewapp.metrics.stats.agreement import value_counts
from reviewapp.metrics.stats.agreement_family import multi_rater, two_rater, weight_matrix

from .test_study_metrics import synthetic_spec, synthetic_study


def arm_counts(data, arm_id: int, field: str, n_categories: int):
    mask = (data.arm == arm_id) & (data.fields[field] >= 0)
    items, units = np.unique(data.item, return_inverse=True)
    return value_counts(units[mask], data.fields[field][mask], len(items), n_categories)


class TestAgreementFamilyInAStudy:
    def test_it_gives_every_field_of_every_arm_its_family(self):
        data = synthetic_study()
        result = study_metrics(data, synthetic_spec())
        for arm in result["arms"]:
            assert set(arm["agreement"]) == {"decision", "severity", "score"}
            decision = arm["agreement"]["decision"]["family"]
            # Nominal: unweighted only.
            assert list(decision["weightings"]) == ["identity"]
            # Ordinal and interval: also linear and quadratic, with a standard error and interval.
            for field in ("severity", "score"):
                family = arm["agreement"][field]["family"]
                assert list(family["weightings"]) == ["identity", "linear", "quadratic"]
                quadratic = family["weightings"]["quadratic"]
                for name in ("percent_agreement", "gwet_ac", "fleiss_kappa", "brennan_prediger"):
                    estimate = quadratic[name]
                    assert estimate["se"] > 0 and estimate["low"] < estimate["value"] <= estimate["high"] <= 1
                # Eight or nine reviewers per arm: no two-coder coefficients.
                assert family["n_coders"] > 2 and quadratic["cohen_kappa"] is None

    def test_it_computes_the_arms_family_from_the_arms_labels(self):
        data = synthetic_study()
        result = study_metrics(data, synthetic_spec())
        arm = next(arm for arm in result["arms"] if arm["id"] == 12)
        counts = arm_counts(data, 12, "severity", 4)
        expected = multi_rater(counts, weight_matrix([0, 1, 2, 3], "linear"), weighting="linear")
        assert arm["agreement"]["severity"]["family"]["weightings"]["linear"]["gwet_ac"] == expected["gwet_ac"]
        # Positive control: another arm's counts give another value.
        other = multi_rater(arm_counts(data, 13, "severity", 4), weight_matrix([0, 1, 2, 3], "linear"))
        assert other["gwet_ac"]["value"] != expected["gwet_ac"]["value"]

    def test_it_gives_cohens_kappa_in_an_arm_of_two_reviewers(self):
        data = synthetic_study(reviewers_per_arm=2)
        result = study_metrics(data, synthetic_spec())
        control = next(arm for arm in result["arms"] if arm["id"] == 11)
        family = control["agreement"]["severity"]["family"]
        assert family["two_coders"] and family["n_coders"] == 2
        # The table of the two control reviewers on the items both labelled, by hand.
        mask = (data.arm == 11) & (data.fields["severity"] >= 0)
        first, second = sorted(set(data.reviewer[mask]))
        rows = list(zip(data.item[mask], data.fields["severity"][mask], data.reviewer[mask], strict=True))
        a = {item: code for item, code, reviewer in rows if reviewer == first}
        b = {item: code for item, code, reviewer in rows if reviewer == second}
        table = np.zeros((4, 4), dtype=int)
        for item in a.keys() & b.keys():
            table[a[item], b[item]] += 1
        expected = two_rater(table, weight_matrix([0, 1, 2, 3], "quadratic"), weighting="quadratic")
        assert family["weightings"]["quadratic"]["cohen_kappa"] == expected["cohen_kappa"]
        assert family["n_units_both"] == table.sum() > 0
        # Positive control: the within-subjects reviewer makes the rationale arm three reviewers.
        rationale = next(arm for arm in result["arms"] if arm["id"] == 13)
        family = rationale["agreement"]["severity"]["family"]
        assert family["n_coders"] == 3 and family["weightings"]["linear"]["cohen_kappa"] is None

    def test_it_uses_the_studys_confidence(self):
        data = synthetic_study()
        at_90 = study_metrics(data, synthetic_spec(confidence=0.90))["arms"][1]["agreement"]["severity"]["family"]
        at_95 = study_metrics(data, synthetic_spec(confidence=0.95))["arms"][1]["agreement"]["severity"]["family"]
        narrow, wide = at_90["weightings"]["linear"]["fleiss_kappa"], at_95["weightings"]["linear"]["fleiss_kappa"]
        assert narrow["value"] == wide["value"] and narrow["se"] == wide["se"]
        assert wide["low"] < narrow["low"] < narrow["value"] < narrow["high"] < wide["high"]
