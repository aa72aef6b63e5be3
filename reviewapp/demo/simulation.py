"""A demo study already reviewed by simulated reviewers, so the metrics have something to show.

The simulated reviewers go through the real queue (claim, submit), one at a time in turn,
as people would. Each has a skill (how often their own judgement matches gold) and a
tendency to take the AI's answer that grows with what their arm shows; two of them are
rubber stamps (take the AI's answer almost always, faster than anyone can read, open no
evidence). Nothing here is used outside ``manage.py load_demo``.
"""

from __future__ import annotations

import random

import orjson
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection

from reviewapp.ingest.parsing import parse_jsonl
from reviewapp.ingest.services import items_ingest
from reviewapp.jobs import job_run
from reviewapp.metrics import services as metrics
from reviewapp.metrics.models import MetricRun
from reviewapp.queue.models import Label
from reviewapp.queue.services import claim_next, label_submit
from reviewapp.studies.models import Arm, Enrolment, Study
from reviewapp.studies.services import arms_apply_preset, enrolment_create

SIMULATED_SLUG = "agent-actions-simulated"
SIMULATED_REVIEWERS = 24
SIMULATED_QUOTA = 60
COPIES = 4  # each demo transcript four times, so every arm has enough items
# Probability of taking the AI's answer outright, by what the arm shows (before a
# reviewer's own variation): roughly the ordering the HBS field experiment reports.
DEFER_BY_ROLE = {"control": 0.0, "recommendation": 0.35, "rationale": 0.5}
READING_WPM = 238


def simulated_study(admin, log) -> Study | None:
    """Create and review the simulated study once; later calls find it and return it."""
    study = Study.objects.filter(slug=SIMULATED_SLUG).first()
    if study is not None:
        return study
    study = Study.objects.create(
        slug=SIMULATED_SLUG,
        title="Agent actions: simulated reviewers (demo metrics)",
        instructions="Reviewed by simulated reviewers so the metrics and reports have data to show.",
        status=Study.Status.RUNNING,
        overlap_k=3,
        seed=20261130,
        # Shuffled per-reviewer order (the default), and a quota each reviewer reaches:
        # 8 reviewers per arm x 60 = 480 of the arm's 576 slots.
        reviewer_quota=SIMULATED_QUOTA,
    )
    study.researchers.add(admin)
    arms_apply_preset(study=study, actor=admin)
    # The rationale behind a "Why?" click, so the uptake report has something to show:
    # the simulated reviewers open it on about half of their items.
    study.arms.filter(shows_ai_rationale=True).update(rationale_display=Arm.RationaleDisplay.COLLAPSED)
    _load_items(study)
    reviewers = _enrol(study, admin)
    rng = random.Random(study.seed)
    count = _review(study, reviewers, rng)
    study.status = Study.Status.PAUSED
    study.save(update_fields=["status"])
    run, _ = metrics.metric_run_request(study=study, actor=admin)
    if run is not None:
        job_run(MetricRun, run.pk)
    log(f"Simulated study '{SIMULATED_SLUG}': {count} labels by {len(reviewers)} simulated reviewers.")
    return study


def _load_items(study: Study) -> None:
    path = settings.BASE_DIR / "fixtures" / "demo" / "transcripts.jsonl"
    records = [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
    lines = []
    for copy in range(1, COPIES + 1):
        for record in records:
            lines.append(orjson.dumps({**record, "external_id": f"{record['external_id']}-copy{copy}"}))
    outcome = items_ingest(study=study, results=parse_jsonl(lines), skip_invalid=True)
    assert outcome.committed, outcome.summary()


def _enrol(study: Study, admin) -> list[dict]:
    User = get_user_model()
    reviewers = []
    for n in range(1, SIMULATED_REVIEWERS + 1):
        user, created = User.objects.get_or_create(username=f"sim-reviewer-{n:02d}")
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        enrolment, _ = enrolment_create(study=study, reviewer=user, source=Enrolment.Source.ADMIN, actor=admin)
        reviewers.append({"user": user, "role": _role(enrolment.arm)})
    return reviewers


def _role(arm) -> str:
    if arm.shows_ai_rationale:
        return "rationale"
    return "recommendation" if arm.shows_ai_recommendation else "control"


def _interactions(role: str, careful: bool, rng: random.Random) -> dict:
    """What the page would record: evidence opened, and whether what the arm shows was seen
    (the rationale sits behind a click in this study; the recommendation is in view)."""
    opened = int(role == "rationale" and careful and rng.random() < 0.5)
    recorded = {"tool_calls_expanded": int(careful and rng.random() < 0.7), "rationale_opened": opened}
    if role != "control":
        recorded["recommendation_seen"] = int(rng.random() < 0.95)
    if role == "rationale":
        recorded["rationale_seen"] = opened
        recorded["rationale_visible_ms"] = rng.randint(1500, 20000) if opened else 0
    return recorded


def _review(study: Study, reviewers: list[dict], rng: random.Random) -> int:
    choices = next(f for f in study.label_schema["fields"] if f.get("decision"))["choices"]
    stamps_left = 2
    for reviewer in reviewers:
        reviewer["skill"] = rng.uniform(0.65, 0.92)
        reviewer["defer"] = min(0.95, max(0.0, DEFER_BY_ROLE[reviewer["role"]] + rng.gauss(0, 0.1)))
        reviewer["stamp"] = reviewer["role"] == "rationale" and stamps_left > 0
        stamps_left -= reviewer["stamp"]
        if reviewer["stamp"]:
            reviewer["defer"] = 0.97
    timings: list[tuple[int, float]] = []
    active = list(reviewers)
    while active:
        for reviewer in list(active):
            assignment = claim_next(study=study, reviewer=reviewer["user"])
            if assignment is None:
                active.remove(reviewer)
                continue
            item = assignment.item
            truth = item.gold_label if item.gold_label is not None else item.ai_recommendation
            own = truth if rng.random() < reviewer["skill"] else rng.choice([c for c in choices if c != truth])
            shows_ai = reviewer["role"] != "control" and item.ai_recommendation is not None
            answer = item.ai_recommendation if shows_ai and rng.random() < reviewer["defer"] else own
            careful = not reviewer["stamp"]
            floor = item.word_count / READING_WPM * 60
            seconds = floor * (rng.uniform(0.9, 2.2) if careful else rng.uniform(0.05, 0.3))
            label, _ = label_submit(
                study=study,
                reviewer=reviewer["user"],
                assignment_id=assignment.pk,
                values={"decision": answer},
                interactions=_interactions(reviewer["role"], careful, rng),
            )
            timings.append((label.pk, seconds))
    # The queue stamps real clock times (milliseconds apart here); give each label the
    # reading time the simulated reviewer took.
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {Label._meta.db_table} SET shown_at = submitted_at - make_interval(secs => %s) WHERE id = %s",  # noqa: S608
            [(seconds, label_id) for label_id, seconds in timings],
        )
    return len(timings)
