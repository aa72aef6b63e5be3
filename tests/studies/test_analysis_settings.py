"""The study's analysis settings (issue 15): the confidence level of every interval and the
minimum number of reviewers per arm for an interval, on the settings form and in the metrics spec."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from reviewapp.metrics.services import study_spec
from reviewapp.studies.forms import StudyForm
from reviewapp.studies.models import Study

pytestmark = pytest.mark.django_db


def settings_form(study: Study, **overrides) -> StudyForm:
    data = {
        "title": study.title,
        "slug": study.slug,
        "instructions": "",
        "label_schema": '{"fields": [{"name": "decision", "type": "nominal", "choices": ["approve", "reject"], '
        '"decision": true}]}',
        "design": study.design,
        "overlap_k": study.overlap_k,
        "lease_seconds": study.lease_seconds,
        "probe_rate": study.probe_rate,
        "reading_wpm": study.reading_wpm,
        "flag_thresholds": "{}",
        "seed": study.seed,
        **overrides,
    }
    return StudyForm(data, instance=study)


class TestAnalysisSettings:
    def test_it_starts_a_study_at_95_percent_and_five_reviewers(self, study):
        assert (study.confidence_level, study.min_reviewers_for_interval) == (0.95, 5)
        spec = study_spec(study)
        assert (spec.confidence, spec.min_reviewers) == (0.95, 5)

    def test_it_passes_the_studys_settings_to_the_metrics(self, study):
        form = settings_form(study, confidence_level="0.9", min_reviewers_for_interval="8")
        assert form.is_valid(), form.errors
        form.save()
        study.refresh_from_db()
        spec = study_spec(study)
        assert (spec.confidence, spec.min_reviewers) == (0.9, 8)
        assert spec.parameters()["min_reviewers"] == 8

    @pytest.mark.parametrize("confidence", ["1", "1.0", "0", "-0.5", "95", "nan"])
    def test_it_refuses_a_confidence_outside_zero_and_one_with_a_clear_error(self, study, confidence):
        assert settings_form(study, confidence_level="0.99").is_valid()  # positive control
        form = settings_form(study, confidence_level=confidence)
        assert not form.is_valid()
        assert "confidence_level" in form.errors
        message = " ".join(form.errors["confidence_level"])
        assert "between 0 and 1" in message or "finite" in message.lower() or "number" in message.lower()

    def test_it_refuses_a_minimum_below_two_reviewers(self, study):
        assert settings_form(study, min_reviewers_for_interval="2").is_valid()  # positive control
        form = settings_form(study, min_reviewers_for_interval="1")
        assert not form.is_valid() and "min_reviewers_for_interval" in form.errors

    def test_it_keeps_the_settings_when_the_form_leaves_them_out(self, study):
        Study.objects.filter(pk=study.pk).update(confidence_level=0.9, min_reviewers_for_interval=7)
        study.refresh_from_db()
        form = settings_form(study)
        assert form.is_valid(), form.errors
        assert (form.cleaned_data["confidence_level"], form.cleaned_data["min_reviewers_for_interval"]) == (0.9, 7)

    def test_the_database_refuses_a_confidence_of_one_and_a_minimum_of_one(self, study):
        with pytest.raises(IntegrityError), transaction.atomic():
            Study.objects.filter(pk=study.pk).update(confidence_level=1.0)
        with pytest.raises(IntegrityError), transaction.atomic():
            Study.objects.filter(pk=study.pk).update(min_reviewers_for_interval=1)
        Study.objects.filter(pk=study.pk).update(confidence_level=0.999, min_reviewers_for_interval=2)  # allowed


class TestSettingsPage:
    def test_it_shows_the_settings_and_refuses_a_confidence_of_one_in_words(self, client, study, researcher):
        client.force_login(researcher)
        page = client.get("/studies/refunds/settings/").content.decode()
        assert 'name="confidence_level"' in page and 'name="min_reviewers_for_interval"' in page
        data = {name: value for name, value in settings_form(study).data.items() if name != "slug"}
        response = client.post("/studies/refunds/settings/", {**data, "confidence_level": "1"})
        assert response.status_code == 200
        assert "strictly between 0 and 1" in response.content.decode()
        study.refresh_from_db()
        assert study.confidence_level == 0.95
        # Positive control: 0.9 and a minimum of 8 are saved (analysis settings: not locked by labels).
        response = client.post(
            "/studies/refunds/settings/", {**data, "confidence_level": "0.9", "min_reviewers_for_interval": "8"}
        )
        assert response.status_code == 302
        study.refresh_from_db()
        assert (study.confidence_level, study.min_reviewers_for_interval) == (0.9, 8)
