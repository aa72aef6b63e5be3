"""The database itself enforces the contracts, whatever code path writes."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from reviewapp.studies.models import Arm, Study
from reviewapp.studies.schema import DEFAULT_LABEL_SCHEMA, schema_errors
from tests.builders import make_item


@pytest.mark.django_db
class TestConstraints:
    def test_it_allows_one_external_id_per_study(self, study, other_study):
        make_item(study)
        make_item(other_study)  # the same id in another study is fine
        with pytest.raises(IntegrityError), transaction.atomic():
            make_item(study)

    def test_it_refuses_a_probe_that_agrees_with_gold(self, study):
        with pytest.raises(IntegrityError), transaction.atomic():
            make_item(study, is_probe=True, ai_recommendation="approve", gold_label="approve")
        make_item(study, is_probe=True, ai_recommendation="approve", gold_label="reject")

    def test_it_refuses_confidence_outside_0_1(self, study):
        with pytest.raises(IntegrityError), transaction.atomic():
            make_item(study, ai_confidence=1.2)

    def test_it_refuses_overlap_below_one(self, db):
        with pytest.raises(IntegrityError), transaction.atomic():
            Study.objects.create(slug="s", title="S", overlap_k=0)

    def test_it_refuses_a_reveal_arm_that_hides_the_recommendation(self, study):
        with pytest.raises(IntegrityError), transaction.atomic():
            Arm.objects.create(study=study, name="reveal", reveal=True)

    def test_it_keeps_arm_names_unique_within_a_study(self, study):
        with pytest.raises(IntegrityError), transaction.atomic():
            Arm.objects.create(study=study, name="control")


class TestSchema:
    def test_it_accepts_the_default_schema(self):
        assert schema_errors(DEFAULT_LABEL_SCHEMA) == []

    def test_it_wants_exactly_one_decision_field(self):
        schema = {"fields": [{"name": "a", "type": "nominal", "choices": ["x", "y"]}]}
        assert schema_errors(schema) == ['Exactly one field must have "decision": true; found 0.']

    def test_it_names_bad_choices_and_ranges(self):
        schema = {
            "fields": [
                {"name": "a", "type": "nominal", "choices": ["x"], "decision": True},
                {"name": "b", "type": "interval", "min": 5, "max": 1},
            ]
        }
        assert schema_errors(schema) == [
            "fields[0].choices must list at least two choices.",
            "fields[1]: 'min' must be below 'max'.",
        ]
