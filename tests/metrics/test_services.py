"""Metric runs against real PostgreSQL: labels given through the queue, numbers checked by hand."""

from __future__ import annotations

import pytest
from django.db import OperationalError

from reviewapp.jobs import job_run, run_job
from reviewapp.metrics import services
from reviewapp.metrics.models import MetricRun
from reviewapp.metrics.tasks import refresh_running_studies
from tests.builders import compute_metrics, label_in_order, reviewers_by_arm


def arm(result: dict, name: str) -> dict:
    return next(a for a in result["arms"] if a["name"] == name)


class TestMetricRuns:
    def test_it_computes_deference_by_arm_split_by_whether_the_ai_was_right(self, labelled):
        run = compute_metrics(labelled)

        assert run.status == "succeeded" and run.progress == 100 and run.error == ""
        result = run.result
        assert (result["n_labels"], result["n_reviewers"], result["n_items"]) == (16, 4, 4)
        assert (result["n_items_ai_right"], result["n_items_ai_wrong"]) == (2, 2)
        control, rationale = arm(result, "control"), arm(result, "rationale")
        # Control: c1 1/4 + c2 3/4 = 4/8; AI right (i1, i2): 1/2 + 2/2 = 3/4; AI wrong: 0/2 + 1/2 = 1/4.
        assert {s: e["value"] for s, e in control["agreement_with_ai"].items()} == {
            "all": 0.5,
            "ai_right": 0.75,
            "ai_wrong": 0.25,
        }
        # Rationale: r1 4/4 + r2 3/4 = 7/8; AI right 4/4; AI wrong 2/2 + 1/2 = 3/4.
        assert {s: e["value"] for s, e in rationale["agreement_with_ai"].items()} == {
            "all": 0.875,
            "ai_right": 1.0,
            "ai_wrong": 0.75,
        }
        # Deference effect = rationale - control: 0.875 - 0.5 overall, 0.75 - 0.25 when the AI is wrong.
        assert rationale["deference_effect"]["all"]["newcombe"]["value"] == pytest.approx(0.375)
        assert rationale["deference_effect"]["ai_wrong"]["cluster"]["value"] == pytest.approx(0.5)
        assert control["deference_effect"] is None
        # Over-reliance is agreement when the AI is wrong; accuracy: r1 2/4, r2 3/4 -> 5/8.
        assert rationale["reliance"]["overreliance"]["value"] == 0.75
        assert rationale["reliance"]["accuracy"]["value"] == 0.625
        # Every interval brackets its estimate and says how it was made.
        estimate = rationale["agreement_with_ai"]["all"]
        assert estimate["low"] < 0.875 < estimate["high"] and estimate["method"] == "wilson"
        # No labels in the recommendation arm: undefined, not zero.
        assert arm(result, "recommendation")["agreement_with_ai"]["all"]["value"] is None
        assert result["narrative_increment"]["all"]["newcombe"]["value"] is None
        assert run.watermark["label_count"] == 16 and run.timings["total_seconds"] > 0
        # Per reviewer, what the dashboard plots: c1 agreed once in four, r1 four times.
        dwell = {r["reviewer"]: (r["dwell"]["agree"], r["dwell"]["n"]) for r in result["reviewers"]}
        assert sorted(dwell.values()) == [(1, 4), (3, 4), (3, 4), (4, 4)]
        assert {r["reviewer"] for r in result["reviewers"]} == set(
            labelled.labels.values_list("reviewer_id", flat=True)
        )

    def test_it_skips_a_run_when_nothing_changed_since_the_last(self, labelled):
        first = compute_metrics(labelled)

        run, created = services.metric_run_request(study=labelled)
        assert (run, created) == (first, False)

        label_in_order(labelled, reviewers_by_arm(labelled, {"recommendation": 1})["recommendation"][0], "r")
        run, created = services.metric_run_request(study=labelled)
        assert created and run.pk != first.pk

    def test_a_second_request_during_a_run_finds_that_run(self, labelled):
        run, created = services.metric_run_request(study=labelled)
        again, created_again = services.metric_run_request(study=labelled)
        assert created and not created_again and again.pk == run.pk
        assert MetricRun.objects.filter(study=labelled).count() == 1

    def test_a_redelivered_task_leaves_the_stored_result_alone(self, labelled):
        run = compute_metrics(labelled)
        run_job.apply(args=["metrics", run.pk])
        job_run(MetricRun, run.pk)

        again = MetricRun.objects.get(pk=run.pk)
        assert (again.result, again.attempts, again.finished_at) == (run.result, 1, run.finished_at)
        assert MetricRun.objects.filter(study=labelled).count() == 1

    def test_a_database_outage_is_retried_then_given_up_with_its_message(self, labelled, monkeypatch):
        errors_seen = []

        def unreachable(study):
            # What the run showed while this attempt started: the previous attempt's error.
            errors_seen.append(MetricRun.objects.get(study=study).error)
            raise OperationalError("server closed the connection unexpectedly")

        monkeypatch.setattr(services, "labels_load", unreachable)
        run, _ = services.metric_run_request(study=labelled)

        # Run eagerly, Celery executes each retry at once (the backoff applies on a worker).
        run_job.apply(args=["metrics", run.pk])

        assert errors_seen == ["", *["OperationalError: server closed the connection unexpectedly"] * 4]
        run.refresh_from_db()
        assert run.status == "failed" and run.finished_at is not None and run.result is None
        assert run.error == "Gave up after 5 attempts: OperationalError: server closed the connection unexpectedly"
        # A failed run does not block the next request.
        assert services.metric_run_request(study=labelled)[1] is True

    def test_a_bug_fails_the_run_at_once_with_its_message(self, labelled, monkeypatch):
        attempts = []

        def broken(study):
            attempts.append(1)
            raise KeyError("arm_id")

        monkeypatch.setattr(services, "labels_load", broken)
        run, _ = services.metric_run_request(study=labelled)
        run_job.apply(args=["metrics", run.pk])

        run.refresh_from_db()
        assert (len(attempts), run.status, run.attempts) == (1, "failed", 1)
        assert run.error == "Metrics failed: KeyError: 'arm_id'"

    def test_the_beat_task_queues_only_studies_that_changed(self, labelled):
        assert refresh_running_studies() == 1
        job_run(MetricRun, MetricRun.objects.get().pk)
        assert refresh_running_studies() == 0
        assert MetricRun.objects.get().trigger == "schedule"

    def test_a_study_without_labels_has_nothing_to_compute(self, study):
        assert services.metric_run_request(study=study) == (None, False)
