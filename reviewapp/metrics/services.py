"""Metric runs: request one (skipped when nothing changed), and its work.

A run is a job of the kind "metrics" (reviewapp/jobs.py runs, retries and recovers it); the
result is stored on it in the same UPDATE that marks it succeeded, so a redelivered or
repeated task cannot store results twice. At most one run per study is queued or running
(a partial unique index); a second request finds it.
"""

from __future__ import annotations

import time

from django.db import IntegrityError, transaction

from reviewapp.jobs import JobProgress, job_enqueue_on_commit, job_finish
from reviewapp.studies.models import AuditEvent, Study

from .allocation import allocation_record
from .compute import ArmSpec, FieldSpec, StudySpec, study_metrics
from .loading import data_watermark, exclusion_counts, labels_load
from .models import MetricRun
from .stats.rubber_stamp import DEFAULT_THRESHOLDS

N_RESAMPLES = 1000
CONFIDENCE = 0.95


def study_spec(study: Study) -> StudySpec:
    arms = tuple(
        ArmSpec(
            id=arm.pk,
            name=arm.name,
            shows_recommendation=arm.shows_ai_recommendation,
            shows_rationale=arm.shows_ai_rationale,
            shows_confidence=arm.shows_ai_confidence,
            reveal=arm.reveal,
            rationale_display=arm.rationale_display,
        )
        for arm in study.arms.order_by("position", "id")
    )
    fields = tuple(
        FieldSpec(
            name=f["name"],
            level=f["type"],
            choices=tuple(f.get("choices", ())),
            is_decision=bool(f.get("decision")),
            block_value=f.get("block_value") if f.get("decision") else None,
        )
        for f in study.label_schema["fields"]
    )
    return StudySpec(
        arms=arms,
        fields=fields,
        thresholds={**DEFAULT_THRESHOLDS, **(study.flag_thresholds or {})},
        reading_wpm=study.reading_wpm,
        # Bootstrap resamples drawn from the study's seed: the same data gives the same intervals.
        seed=study.seed % 2**32,
        n_resamples=N_RESAMPLES,
        # Randomization inference re-runs the study's own allocation (metrics/effects.py).
        allocation=allocation_record(study),
        # The study's own analysis settings (issue 15); CONFIDENCE is the default they start from.
        confidence=study.confidence_level,
        min_reviewers=study.min_reviewers_for_interval,
    )


def latest_run(study: Study) -> MetricRun | None:
    """The newest run that has numbers to show."""
    return study.metric_runs.filter(status=MetricRun.Status.SUCCEEDED).order_by("-finished_at", "-id").first()


def active_run(study: Study) -> MetricRun | None:
    return study.metric_runs.filter(status__in=MetricRun.ACTIVE).first()


def metric_run_request(
    *, study: Study, trigger: str = MetricRun.Trigger.MANUAL, actor=None
) -> tuple[MetricRun | None, bool]:
    """Queue a run unless one is active or the data has not changed since the last one.

    Returns (run, created): the new run; or the active run; or the latest successful run
    when nothing changed (created False); or (None, False) for a study without labels
    and no run yet, where there is nothing to compute.
    """
    if (run := active_run(study)) is not None:
        return run, False
    watermark = data_watermark(study)
    last = latest_run(study)
    if last is not None and last.watermark == watermark:
        return last, False
    if last is None and watermark["label_count"] == 0:
        return None, False
    try:
        with transaction.atomic():
            run = MetricRun.objects.create(
                study=study,
                trigger=trigger,
                requested_by=actor,
                watermark=watermark,
                parameters=study_spec(study).parameters(),
            )
            if actor is not None:
                AuditEvent.objects.create(study=study, actor=actor, action="metrics.requested", detail={"run": run.pk})
            job_enqueue_on_commit(run)
    except IntegrityError:
        # Another request queued one between our check and our insert.
        return active_run(study), False
    return run, True


def metric_run_work(run: MetricRun, progress: JobProgress) -> None:
    """The work of a metric run (run by reviewapp/jobs.py, which claims and retries it): load
    the labels, compute, and store the result in the same UPDATE that finishes the run."""
    progress.update(progress=1, note="Loading labels", force=True)
    study = Study.objects.get(pk=run.study_id)
    started = time.perf_counter()
    # The watermark is taken again with the data: labels that arrived since the request
    # are included, and the stored watermark says so.
    watermark = data_watermark(study)
    data = labels_load(study)
    load_seconds = time.perf_counter() - started
    progress.update(progress=3, note=f"Loaded {len(data):,} labels", force=True)
    result = study_metrics(
        data, study_spec(study), lambda percent, message: progress.update(progress=percent, note=message[:200])
    )
    result["exclusions"] = exclusion_counts(study)
    timings = {
        "load_seconds": round(load_seconds, 3),
        **result.pop("timings"),
        "total_seconds": round(time.perf_counter() - started, 3),
    }
    job_finish(run, result=result, watermark=watermark, timings=timings, progress=100)
