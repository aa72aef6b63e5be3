"""Metric runs: request one (skipped when nothing changed), execute it, record failure.

A run is a row; the result is stored on it in the same UPDATE that marks it succeeded,
so a redelivered or repeated task cannot store results twice. At most one run per
study is queued or running (a partial unique index); a second request finds it.
"""

from __future__ import annotations

import logging
import time

from django.db import IntegrityError, transaction
from django.utils import timezone

from reviewapp.jobs import (
    advisory_lock_free,
    advisory_lock_release,
    advisory_lock_take,
    enqueue,
    enqueue_on_commit,
    requeue_cutoff,
)
from reviewapp.studies.models import AuditEvent, Study

from .compute import ArmSpec, FieldSpec, StudySpec, study_metrics
from .loading import data_watermark, labels_load
from .models import MetricRun
from .stats.rubber_stamp import DEFAULT_THRESHOLDS

logger = logging.getLogger(__name__)

N_RESAMPLES = 1000
CONFIDENCE = 0.95
# Namespace of the advisory lock held while a run computes, so a duplicate delivery of
# the same task waits out instead of computing in parallel.
RUN_LOCK = 7_341_002


def study_spec(study: Study) -> StudySpec:
    arms = tuple(
        ArmSpec(
            id=arm.pk,
            name=arm.name,
            shows_recommendation=arm.shows_ai_recommendation,
            shows_rationale=arm.shows_ai_rationale,
            shows_confidence=arm.shows_ai_confidence,
            reveal=arm.reveal,
        )
        for arm in study.arms.order_by("position", "id")
    )
    fields = tuple(
        FieldSpec(
            name=f["name"],
            level=f["type"],
            choices=tuple(f.get("choices", ())),
            is_decision=bool(f.get("decision")),
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
        confidence=CONFIDENCE,
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
    from .tasks import compute_metrics

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
            enqueue_on_commit(compute_metrics, run.pk)
    except IntegrityError:
        # Another request queued one between our check and our insert.
        return active_run(study), False
    return run, True


def metric_run_execute(*, run_id: int) -> MetricRun | None:
    """Compute a queued run and store its result; a no-op for a finished run.

    The advisory lock is taken before the run is touched and held until it is finished, so
    a duplicate delivery leaves a run in progress alone, and a run that says running while
    nobody holds its lock was left by a worker that died (see ``metric_runs_recover``).
    """
    if not advisory_lock_take(RUN_LOCK, run_id):
        logger.info("metric run %s is being computed by another worker", run_id)
        return MetricRun.objects.filter(pk=run_id).first()
    try:
        with transaction.atomic():
            run = MetricRun.objects.select_for_update().filter(pk=run_id).first()
            if run is None or not run.is_active:
                return run  # deleted, or finished by an earlier delivery of this task
            run.status = MetricRun.Status.RUNNING
            run.started_at = run.started_at or timezone.now()
            run.attempts += 1
            run.progress, run.progress_message = 1, "Loading labels"
            run.save(update_fields=["status", "started_at", "attempts", "progress", "progress_message"])
        return _compute(run)
    finally:
        advisory_lock_release(RUN_LOCK, run_id)


def metric_runs_recover(*, now=None) -> list[int]:
    """Enqueue again the active runs whose message was lost; returns their ids.

    A queued run older than JOBS_REQUEUE_AFTER_SECONDS was requested while the broker was
    down, or its message went with a dead worker; a running run whose advisory lock is
    free has no worker any more (PostgreSQL drops a dead session's locks). Sending a live
    run's message twice does no harm: ``metric_run_execute`` locks and checks first.
    """
    from .tasks import compute_metrics

    cutoff = requeue_cutoff(now)
    lost = []
    for run in MetricRun.objects.filter(status__in=MetricRun.ACTIVE).only("pk", "status", "created_at"):
        if run.status == MetricRun.Status.QUEUED:
            if run.created_at < cutoff:
                lost.append(run.pk)
        elif advisory_lock_free(RUN_LOCK, run.pk):
            lost.append(run.pk)
    for run_id in lost:
        logger.warning("metric run %s lost its message; enqueueing it again", run_id)
        enqueue(compute_metrics, run_id)
    return lost


def _compute(run: MetricRun) -> MetricRun:
    study = Study.objects.get(pk=run.study_id)
    started = time.perf_counter()
    # The watermark is taken again with the data: labels that arrived since the request
    # are included, and the stored watermark says so.
    watermark = data_watermark(study)
    data = labels_load(study)
    load_seconds = time.perf_counter() - started

    def progress(percent: int, message: str) -> None:
        MetricRun.objects.filter(pk=run.pk, status=MetricRun.Status.RUNNING).update(
            progress=percent, progress_message=message[:200]
        )

    progress(3, f"Loaded {len(data):,} labels")
    result = study_metrics(data, study_spec(study), progress)
    timings = {
        "load_seconds": round(load_seconds, 3),
        **result.pop("timings"),
        "total_seconds": round(time.perf_counter() - started, 3),
    }
    # Stored only if the run is still ours to finish: a duplicate delivery that got here
    # second updates nothing.
    updated = MetricRun.objects.filter(pk=run.pk, status=MetricRun.Status.RUNNING).update(
        status=MetricRun.Status.SUCCEEDED,
        result=result,
        watermark=watermark,
        timings=timings,
        progress=100,
        progress_message="Done",
        error="",
        finished_at=timezone.now(),
    )
    if updated != 1:
        logger.info("metric run %s was finished elsewhere; result discarded", run.pk)
    run.refresh_from_db()
    return run


def metric_run_retrying(*, run_id: int, message: str) -> None:
    """Record a failed attempt that will be retried: the run stays active, with the error."""
    MetricRun.objects.filter(pk=run_id, status__in=MetricRun.ACTIVE).update(
        status=MetricRun.Status.QUEUED, error=message[:5000], progress_message="Retrying after an error"
    )


def metric_run_fail(*, run_id: int, message: str) -> None:
    MetricRun.objects.filter(pk=run_id, status__in=MetricRun.ACTIVE).update(
        status=MetricRun.Status.FAILED, error=message[:5000], finished_at=timezone.now(), progress_message="Failed"
    )
