"""Metric runs against real PostgreSQL: labels given through the queue, numbers checked by hand."""

from __future__ import annotations

import pytest

from reviewapp.metrics import services
from reviewapp.metrics.models import MetricRun
from reviewapp.metrics.tasks import compute_metrics, refresh_running_studies
from tests.labelled_study import label_in_order
from tests.queue.test_services import reviewers_by_arm


def computed(study) -> MetricRun:
    run, created = services.metric_run_request(study=study)
    assert created
    return services.metric_run_execute(run_id=run.pk)


def arm(result: dict, name: str) -> dict:
    return next(a for a in result["arms"] if a["name"] == name)


class TestMetricRuns:
    def test_it_computes_deference_by_arm_split_by_whether_the_ai_was_right(self, labelled):
        run = computed(labelled)

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
        first = computed(labelled)

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
        run = computed(labelled)
        compute_metrics.apply(args=[run.pk])
        services.metric_run_execute(run_id=run.pk)

        again = MetricRun.objects.get(pk=run.pk)
        assert (again.result, again.attempts, again.finished_at) == (run.result, 1, run.finished_at)
        assert MetricRun.objects.filter(study=labelled).count() == 1

    def test_a_failure_is_kept_with_its_message_and_retried_then_given_up(self, labelled, monkeypatch):
        errors_seen = []

        def broken(study):
            # What the run showed while this attempt started: the previous attempt's error.
            errors_seen.append(MetricRun.objects.get(study=study).error)
            raise RuntimeError("the label table is on fire")

        monkeypatch.setattr(services, "labels_load", broken)
        run, _ = services.metric_run_request(study=labelled)

        # Run eagerly, Celery executes each retry at once (the backoff applies on a worker).
        compute_metrics.apply(args=[run.pk])

        assert errors_seen == ["", *["RuntimeError: the label table is on fire"] * 3]
        run.refresh_from_db()
        assert run.status == "failed" and run.finished_at is not None and run.result is None
        assert run.error == "Gave up after 4 attempts: RuntimeError: the label table is on fire"
        # A failed run does not block the next request.
        assert services.metric_run_request(study=labelled)[1] is True

    def test_the_beat_task_queues_only_studies_that_changed(self, labelled):
        assert refresh_running_studies() == 1
        services.metric_run_execute(run_id=MetricRun.objects.get().pk)
        assert refresh_running_studies() == 0
        assert MetricRun.objects.get().trigger == "schedule"

    def test_a_study_without_labels_has_nothing_to_compute(self, study):
        assert services.metric_run_request(study=study) == (None, False)
