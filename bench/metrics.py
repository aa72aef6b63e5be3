"""One full metrics run of a big study, through the real service path.

    python -m bench.metrics [--reuse-db] [--labels 1000000] [--items 10000] [--reviewers 200] [--runs 3] [--profile]

Seeds a database of its own (``reviewapp_bench_metrics``, on DATABASE_URL's server, else the
embedded one) with
one running between-subjects study, by set-based SQL (no ORM loops): the classic three
arms (control: nothing shown; recommendation; recommendation + rationale), the default
approve/reject schema, ``--items`` small items (half with gold, 5% planted-error probes),
``--reviewers`` reviewers enrolled a third per arm, and ``--labels`` submitted
assignments with one label each. Labels follow a simple generative model, so the
metrics have something to find:

- every item has a hidden truth (70% approve); the AI is right on 85% of the
  non-probe items and wrong on every probe;
- a reviewer decides on their own with their own accuracy (about 0.68), except that in
  the AI arms they first copy the AI with their own deference probability (about 0.37
  with the recommendation, 0.49 with the rationale too, reviewer to reviewer random).
  Agreement with the AI then comes out near 0.6 / 0.75 / 0.8 by arm, and the deference
  effects are positive; accuracy depends on whether the AI is right;
- a few reviewers in the AI arms rubber-stamp: they copy the AI 97% of the time, answer
  in a third of the reading time and almost never open the evidence;
- time on an item is lognormal around the reading floor (word_count / 238 wpm), so some
  decisions are faster than the floor; submissions spread over a few days.

Then it times ``metric_run_request`` + ``jobs.job_run`` in this process (what the
Celery task does, without a worker; the broker is ``memory://`` so nothing reaches a real
one), ``--runs`` times, deleting the previous MetricRun between runs so the request is
not skipped as unchanged. It checks the result, records the phase timings the run
stores and the peak RSS, and writes the ``metrics`` section of BENCHMARKS.md.

Without --reuse-db the database is dropped and seeded anew. With it, the seeded study is
kept when it has the requested numbers of labels, items and reviewers.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import random
import resource
import secrets
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import django
import environ
import orjson
import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = "reviewapp_bench_metrics"
STUDY_SLUG = "bench-metrics"
# A fixed study seed: the bootstrap draws from it, so every run resamples the same way.
STUDY_SEED = 20261201
TARGET_SECONDS = 15.0
SEED_TABLE = "bench_metrics_seed"
CHOICES = ("approve", "reject")  # the default schema's decision field; codes 0 and 1

# Generative model of the seed (module docstring). Deference is P(copy the AI) before the
# reviewer's own judgement; the control arm cannot copy what it does not see.
ARMS = (
    # name, shows recommendation, shows rationale, mean deference
    ("control", False, False, 0.0),
    ("recommendation", True, False, 0.37),
    ("rationale", True, True, 0.49),
)
DEFERENCE_SD = 0.12
ACCURACY_MEAN, ACCURACY_SD = 0.68, 0.06
TRUTH_APPROVE = 0.70
AI_ACCURACY = 0.85
PROBE_SHARE = 0.05
GOLD_SHARE = 0.50
RUBBER_STAMPS_PER_AI_ARM = 3
SECONDS_BETWEEN_LABELS = 60  # a reviewer's 5,000 labels span about 3.5 days


# --- database and settings ----------------------------------------------------------


def configure_environment() -> str:
    """Point this process at the benchmark database; return the server's original URL.

    DEBUG is off as on a worker (no query log kept in memory), which needs a SECRET_KEY.
    The broker is memory://: .env names a Redis that a development worker may consume,
    and a run id from this database must never reach it; the script executes runs itself.
    """
    from bench.report import server_url

    environ.Env.read_env(ROOT / ".env", overwrite=False)
    base_url = server_url()
    if not base_url.startswith(("postgres://", "postgresql://")):
        sys.exit("bench.metrics needs a PostgreSQL DATABASE_URL (postgres://...): it creates its own database there.")
    os.environ.update(
        {
            "DATABASE_URL": urlsplit(base_url)._replace(path="/" + BENCH_DB).geturl(),
            "DEBUG": "false",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "CELERY_BROKER_URL": "memory://localhost/",
            "LOG_LEVEL": "WARNING",
        }
    )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reviewapp.settings")
    return base_url


def database_ensure(base_url: str, *, fresh: bool) -> None:
    with psycopg.connect(base_url, autocommit=True) as conn:
        if fresh:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(BENCH_DB)))
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [BENCH_DB]).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(BENCH_DB)))


def tables() -> dict[str, str]:
    """Table names from the models, so the SQL follows a rename."""
    from django.contrib.auth import get_user_model

    from reviewapp.ingest.models import Item
    from reviewapp.queue.models import Assignment, Label
    from reviewapp.studies.models import Enrolment

    models = {"item": Item, "assignment": Assignment, "label": Label, "enrolment": Enrolment, "user": get_user_model()}
    return {"seed": SEED_TABLE, **{name: model._meta.db_table for name, model in models.items()}}


def execute(statement: str, params: dict | list | None = None) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement.format(**tables()), params)
        return cursor.rowcount


def rows(statement: str, params: dict | list | None = None) -> list[tuple]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement.format(**tables()), params)
        return cursor.fetchall()


def scalar(statement: str, params: dict | list | None = None):
    return rows(statement, params)[0][0]


# --- seeding -------------------------------------------------------------------------

# Hidden truth, AI output, gold and size per item, drawn once into a temporary table that
# the item, assignment and label inserts all join. Probes: the AI is wrong on purpose and
# gold says so (the CHECK constraint item_probe_contradicts_gold); the other items get
# gold with the probability that makes gold cover GOLD_SHARE of all items.
ITEM_PLAN_SQL = """
CREATE TEMP TABLE bench_item ON COMMIT DROP AS
SELECT i, NULL::bigint AS id, truth, ai, CASE WHEN probe OR u_gold < %(gold_rest)s THEN truth ELSE -1 END AS gold,
       probe, words
FROM (SELECT i, (random() >= %(truth_approve)s)::int AS truth, random() AS u_ai, random() AS u_gold,
             random() < %(probe)s AS probe, 300 + floor(random() * 601)::int AS words
      FROM generate_series(0, %(items)s - 1) AS i) AS s
CROSS JOIN LATERAL (SELECT CASE WHEN probe OR u_ai >= %(ai_accuracy)s THEN 1 - truth ELSE truth END AS ai) AS a
"""

# A tiny payload: the metrics never read it, but the row should look like an item.
ITEMS_SQL = """
WITH inserted AS (
    INSERT INTO {item} (study_id, external_id, source_format, payload, source_metadata, content_hash, word_count,
                        ai_recommendation, ai_rationale, ai_confidence, gold_label, is_probe, priority)
    SELECT %(study)s, 'm-' || lpad(b.i::text, 7, '0'), 'native',
           jsonb_build_object('title', 'Request ' || b.i, 'messages', jsonb_build_array(
               jsonb_build_object('role', 'user', 'content', 'Please refund order A-' || b.i || '.'),
               jsonb_build_object('role', 'assistant', 'content', 'Refund issued for order A-' || b.i || '.'))),
           '{{}}'::jsonb, encode(sha256(convert_to('m-' || b.i, 'UTF8')), 'hex'), b.words,
           to_jsonb(%(choices)s::text[])->b.ai, 'The policy ' || CASE WHEN b.ai = 0 THEN 'allows' ELSE 'forbids' END
               || ' this refund.', round((0.5 + random() * 0.49)::numeric, 2),
           CASE WHEN b.gold >= 0 THEN to_jsonb(%(choices)s::text[])->b.gold END, b.probe, 0
    FROM bench_item b
    ORDER BY b.i
    RETURNING id, external_id
)
UPDATE bench_item b SET id = inserted.id FROM inserted WHERE inserted.external_id = 'm-' || lpad(b.i::text, 7, '0')
"""

USERS_SQL = """
INSERT INTO {user} (password, is_superuser, username, first_name, last_name, email, is_staff, is_active, date_joined)
SELECT '!', false, 'bench-metrics-' || lpad(j::text, 4, '0'), '', '', '', false, true, now()
FROM generate_series(0, %(reviewers)s - 1) AS j
"""

# Reviewer traits come from Python's seeded RNG (one row each); unnest turns the lists
# into the temporary table the assignment and label inserts join.
REVIEWER_PLAN_SQL = """
CREATE TEMP TABLE bench_reviewer ON COMMIT DROP AS
SELECT * FROM unnest(%(j)s::int[], %(user_id)s::bigint[], %(arm_id)s::bigint[], %(deference)s::float8[],
                     %(accuracy)s::float8[], %(log_speed)s::float8[], %(evidence)s::float8[],
                     %(rationale)s::float8[], %(rubber)s::bool[])
    AS r(j, user_id, arm_id, deference, accuracy, log_speed, evidence, rationale, rubber)
"""

# The enrolment's allocation record as the app leaves it: the j-th reviewer's arm is the one
# its seeded permuted blocks give (reviewer_traits), so randomization inference re-runs the
# allocation that was used.
ENROLMENTS_SQL = """
INSERT INTO {enrolment} (study_id, reviewer_id, arm_id, stratum, seed, sequence, block_index, block_position,
                         block_size, source, allocated_at)
SELECT %(study)s, r.user_id, r.arm_id, '', %(seed)s, r.j, r.j / %(size)s, r.j %% %(size)s, %(size)s, 'admin', now()
FROM bench_reviewer r ORDER BY r.j
"""

# Reviewer j labels `per` consecutive items starting at its own offset (mod items), so no
# reviewer meets an item twice (per <= items) and items get an even share of reviewers
# from every arm. The t-th label is submitted SECONDS_BETWEEN_LABELS after the one before
# (plus jitter); time on the item is the reading floor times a lognormal factor (the sum
# of four uniforms stands in for a standard normal), from the reviewer's own log-speed.
# Slot (order among an item's assignments) stays 0: only the queue reads it.
ASSIGNMENTS_SQL = """
INSERT INTO {assignment} (study_id, item_id, reviewer_id, arm_id, slot, quota_arm_key, state, leased_at,
                          lease_expires_at, shown_at, submitted_at, skip_reason)
SELECT %(study)s, b.id, r.user_id, r.arm_id, 0, r.arm_id, 'submitted',
       shown, shown + interval '15 minutes', shown, submitted, ''
FROM bench_reviewer r
CROSS JOIN generate_series(0, %(per)s - 1) AS t
JOIN bench_item b ON b.i = (r.j * %(items)s / %(reviewers)s + t) %% %(items)s
CROSS JOIN LATERAL (SELECT %(start)s::timestamptz
                           + make_interval(secs => r.j * 7 + t * %(spacing)s + random() * %(spacing)s / 2)
                           AS submitted) AS s
CROSS JOIN LATERAL (SELECT submitted - make_interval(secs => b.words / 238.0 * 60.0
                           * exp(r.log_speed + 0.35 * (random() + random() + random() + random() - 2) * sqrt(3)))
                           AS shown) AS w
ORDER BY submitted
"""

# One label per assignment, in submission order (as the app appends them). Decision:
# copy the AI with the reviewer's deference, else the truth with their accuracy.
LABELS_SQL = """
INSERT INTO {label} (assignment_id, study_id, item_id, reviewer_id, arm_id, values, comment, client_timings,
                     interactions, shown_at, submitted_at)
SELECT a.id, a.study_id, a.item_id, a.reviewer_id, a.arm_id,
       jsonb_build_object('decision', (%(choices)s::text[])[d.code + 1]), '',
       jsonb_build_object('ms_on_page', round(extract(epoch FROM a.submitted_at - a.shown_at) * 1000)),
       jsonb_build_object('tool_calls_expanded', (random() < r.evidence)::int,
                          'rationale_opened', (random() < r.rationale)::int),
       a.shown_at, a.submitted_at
FROM {assignment} a
JOIN bench_item b ON b.id = a.item_id
JOIN bench_reviewer r ON r.user_id = a.reviewer_id
CROSS JOIN LATERAL (SELECT CASE WHEN random() < r.deference THEN b.ai
                                WHEN random() < r.accuracy THEN b.truth ELSE 1 - b.truth END AS code) AS d
WHERE a.study_id = %(study)s
ORDER BY a.submitted_at, a.id
"""


def reviewer_traits(count: int, arm_ids: list[int], rng: random.Random) -> dict[str, list]:
    from reviewapp.studies.randomization import allocate_reviewer

    """Per-reviewer random intercepts: deference, accuracy, speed, evidence habits."""
    # The app's own allocation (equal weights, one stratum), as enrolments_allocate gives it.
    positions = [allocate_reviewer([1] * len(ARMS), STUDY_SEED, "", j).arm_index for j in range(count)]
    rubber = set()
    for position in (1, 2):  # the AI arms: nobody can rubber-stamp advice they never see
        members = [j for j in range(count) if positions[j] == position]
        rubber.update(rng.sample(members, min(RUBBER_STAMPS_PER_AI_ARM, len(members))))
    traits: dict[str, list] = {k: [] for k in ("deference", "accuracy", "log_speed", "evidence", "rationale")}
    for j in range(count):
        _, _, shows_rationale, deference = ARMS[positions[j]]
        if j in rubber:
            traits["deference"].append(0.97)
            traits["log_speed"].append(-1.1)  # a third of the reading time
            traits["evidence"].append(0.02)
            traits["rationale"].append(0.02 if shows_rationale else 0.0)
        else:
            traits["deference"].append(min(0.95, max(0.0, rng.gauss(deference, DEFERENCE_SD))) if deference else 0.0)
            traits["log_speed"].append(rng.gauss(0.35, 0.15))
            traits["evidence"].append(min(0.95, max(0.05, rng.gauss(0.5, 0.15))))
            traits["rationale"].append(min(0.95, max(0.05, rng.gauss(0.5, 0.15))) if shows_rationale else 0.0)
        traits["accuracy"].append(min(0.95, max(0.5, rng.gauss(ACCURACY_MEAN, ACCURACY_SD))))
    return {
        "j": list(range(count)),
        "arm_id": [arm_ids[p] for p in positions],
        "rubber": [j in rubber for j in range(count)],
        **traits,
    }


def seed(args: argparse.Namespace, *, record: bool = True) -> dict:
    """Seed the study in one transaction; returns the seeding record (seconds per step),
    also stored in the seed table unless ``record`` is False (the fault tests seed with it)."""
    from django.db import transaction

    from reviewapp.studies.models import Arm, Study
    from reviewapp.studies.randomization import BETWEEN_BLOCK_MULTIPLIER

    per = args.labels // args.reviewers
    choices = list(CHOICES)
    detail: dict[str, float] = {}
    started = step = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal step
        now = time.perf_counter()
        detail[name] = round(now - step, 2)
        sys.stdout.write(f"  {name}: {now - step:.1f} s\n")
        sys.stdout.flush()
        step = now

    with transaction.atomic():
        # Foreign keys are checked by per-row triggers, five per label: replica mode skips
        # them for this transaction only (unique and CHECK constraints still apply). Every
        # id below comes from rows inserted here, and the counts are checked afterwards.
        execute("SET LOCAL session_replication_role = replica")
        execute("SET LOCAL synchronous_commit = off")
        # random() from a fixed seed: the same plan draws the same study every time.
        execute("SELECT setseed(%s)", [0.42])
        study = Study.objects.create(
            slug=STUDY_SLUG,
            title=f"Metrics benchmark ({args.labels:,} labels)",
            status=Study.Status.RUNNING,
            design=Study.Design.BETWEEN,
            seed=STUDY_SEED,
        )
        arms = [
            Arm.objects.create(
                study=study,
                name=name,
                position=position,
                shows_ai_recommendation=recommendation,
                shows_ai_rationale=rationale,
            )
            for position, (name, recommendation, rationale, _) in enumerate(ARMS)
        ]
        execute(USERS_SQL, {"reviewers": args.reviewers})
        found = rows("SELECT id FROM {user} WHERE username LIKE %s ORDER BY username", ["bench-metrics-%"])
        user_ids = [row[0] for row in found]
        plan = reviewer_traits(args.reviewers, [arm.pk for arm in arms], random.Random(STUDY_SEED))
        execute(REVIEWER_PLAN_SQL, {**plan, "user_id": user_ids})
        size = len(ARMS) * BETWEEN_BLOCK_MULTIPLIER
        execute(ENROLMENTS_SQL, {"study": study.pk, "seed": STUDY_SEED, "size": size})
        execute("ANALYZE bench_reviewer")
        lap("study, arms, reviewers, enrolments")

        execute(
            ITEM_PLAN_SQL,
            {
                "items": args.items,
                "truth_approve": TRUTH_APPROVE,
                "ai_accuracy": AI_ACCURACY,
                "probe": PROBE_SHARE,
                "gold_rest": (GOLD_SHARE - PROBE_SHARE) / (1 - PROBE_SHARE),
            },
        )
        execute(ITEMS_SQL, {"study": study.pk, "choices": choices})
        # Temporary tables are never analyzed by autovacuum; the planner needs their sizes.
        execute("ANALYZE bench_item")
        lap("items")

        execute(
            ASSIGNMENTS_SQL,
            {
                "study": study.pk,
                "per": per,
                "items": args.items,
                "reviewers": args.reviewers,
                "start": "2026-03-02T08:00:00Z",
                "spacing": SECONDS_BETWEEN_LABELS,
            },
        )
        lap("assignments")
        execute(LABELS_SQL, {"study": study.pk, "choices": choices})
        lap("labels")

    # Outside the transaction: VACUUM sets the visibility map and hint bits now, as
    # autovacuum would have long since on a real study, so the first timed run does not
    # pay for them; ANALYZE gives the planner the tables' real sizes.
    for table in ("item", "assignment", "label", "enrolment", "user"):
        execute(f"VACUUM (ANALYZE) {{{table}}}")
    lap("vacuum analyze")
    seconds = round(time.perf_counter() - started, 2)
    if record:
        execute(
            "INSERT INTO {seed} (slug, labels, items, reviewers, seconds, detail) VALUES (%s, %s, %s, %s, %s, %s)",
            [STUDY_SLUG, args.labels, args.items, args.reviewers, seconds, orjson.dumps(detail).decode()],
        )
    return {"seconds": seconds, "detail": detail, "reused": False}


def seeded(args: argparse.Namespace) -> dict | None:
    """The seeding record, if the study in the database has the requested shape."""
    from reviewapp.studies.models import Study

    execute(
        "CREATE TABLE IF NOT EXISTS {seed} (slug text PRIMARY KEY, labels bigint NOT NULL, "
        "items bigint NOT NULL, reviewers bigint NOT NULL, seconds double precision NOT NULL, "
        "detail jsonb NOT NULL, seeded_at timestamptz NOT NULL DEFAULT now())"
    )
    study = Study.objects.filter(slug=STUDY_SLUG).first()
    if study is None:
        return None
    shape = (
        scalar("SELECT count(*) FROM {label} WHERE study_id = %s", [study.pk]),
        scalar("SELECT count(*) FROM {item} WHERE study_id = %s", [study.pk]),
        scalar("SELECT count(*) FROM {enrolment} WHERE study_id = %s", [study.pk]),
    )
    if shape != (args.labels, args.items, args.reviewers):
        return None
    found = rows("SELECT seconds, detail FROM {seed} WHERE slug = %s", [STUDY_SLUG])
    if not found:
        return None
    row = found[0]
    detail = orjson.loads(row[1]) if isinstance(row[1], str | bytes) else row[1]
    return {"seconds": row[0], "detail": detail, "reused": True}


# --- measuring -----------------------------------------------------------------------


def peak_reset() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM, which getrusage's ru_maxrss reports), so
    each run's peak is its own and not the seeding's or an earlier run's. Linux >= 4.0."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def one_run(study) -> dict:
    """request + execute, as the view and the Celery task do them, timed end to end."""
    from reviewapp.jobs import job_run
    from reviewapp.metrics.models import MetricRun
    from reviewapp.metrics.services import metric_run_request

    # An unchanged study is skipped on purpose (same watermark): forget earlier runs.
    MetricRun.objects.filter(study=study).delete()
    baseline = rss_mb()
    reset = peak_reset()
    load = os.getloadavg()[0]
    start = time.perf_counter()
    run, created = metric_run_request(study=study)
    requested = time.perf_counter()
    assert created and run is not None, "metric_run_request did not queue a run"
    run = job_run(MetricRun, run.pk)
    finished = time.perf_counter()
    return {
        "run": run,
        "wall": finished - start,
        "request": requested - start,
        "execute": finished - requested,
        "baseline_mb": baseline,
        "peak_mb": peak_rss_mb(),
        "peak_is_per_run": reset,
        "load": load,
    }


def result_check(run, args: argparse.Namespace) -> list[str]:
    """What the seed guarantees, checked on the stored result; returns the problems."""
    if run.status != "succeeded":
        return [f"run {run.pk} ended {run.status}: {run.error[:500]}"]
    result = run.result
    problems = []
    if result["n_labels"] != args.labels:
        problems.append(f"n_labels {result['n_labels']:,}, expected {args.labels:,}")
    if result["n_items"] != args.items or result["n_reviewers"] != args.reviewers:
        problems.append(f"n_items {result['n_items']}, n_reviewers {result['n_reviewers']}")
    arms = {arm["role"]: arm for arm in result["arms"]}
    if len(result["arms"]) != len(ARMS) or set(arms) != {"control", "recommendation", "rationale"}:
        problems.append(f"arms {[arm['name'] for arm in result['arms']]}")
        return problems
    for role in ("recommendation", "rationale"):
        effect = (arms[role]["deference_effect"] or {}).get("all", {}).get("cluster", {})
        if not (effect.get("value") or 0) > 0 or not (effect.get("low") or 0) > 0:
            problems.append(f"deference effect of {role} not clearly positive: {effect}")
    if not result.get("flagged_reviewers"):
        problems.append("no reviewer flagged, though the seed has rubber stampers")
    effects = result.get("effects") or {}
    randomization = effects.get("randomization") or {}
    if randomization.get("reproduced") != args.reviewers:
        problems.append(f"the allocation was not re-run as recorded: {randomization}")
    for row in effects.get("rows", []):
        if row["kind"] == "deference" and row["split"] == "all":
            ri = row.get("randomization") or {}
            if "odds_ratio" not in row or not row["odds_ratio"]["low"] > 1 or not (ri.get("p") or 1) < 0.05:
                problems.append(f"effect model / randomization test of {row['first']} not clearly positive: {row}")
    return problems


def headline(run) -> dict:
    """A few numbers of the result for the report: agreement by arm, effects, flags."""
    result = run.result
    out = {"flagged": result.get("flagged_reviewers"), "arms": {}}
    for arm in result["arms"]:
        effect = (arm["deference_effect"] or {}).get("all", {}).get("cluster")
        alpha = arm.get("agreement", {}).get("decision", {}).get("humans", {}).get("alpha", {})
        out["arms"][arm["name"]] = {
            "agreement": arm["agreement_with_ai"]["all"]["value"],
            "effect": effect,
            "alpha": alpha.get("value"),
        }
    out["increment"] = (result.get("narrative_increment") or {}).get("all", {}).get("cluster")
    out["effects"] = [row for row in (result.get("effects") or {}).get("rows", []) if row["split"] == "all"]
    out["rerandomizations"] = ((result.get("effects") or {}).get("randomization") or {}).get("n_rerandomizations")
    return out


def profile_run(study, top: int = 15) -> str:
    """One more run under cProfile (not among the timed runs: the profiler slows Python)."""
    profiler = cProfile.Profile()
    profiler.enable()
    one_run(study)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(top)
    return out.getvalue()


# --- report --------------------------------------------------------------------------


def fmt_estimate(estimate: dict | None) -> str:
    if not estimate or estimate.get("value") is None:
        return "-"
    if estimate.get("low") is None:
        return f"{estimate['value']:+.3f}"
    return f"{estimate['value']:+.3f} [{estimate['low']:+.3f}, {estimate['high']:+.3f}]"


def fmt_effect(row: dict) -> str:
    name = f"{row['first']} vs {row['second']}"
    if "reason" in row:
        return f"{name}: {row['reason']}"
    odds = row["odds_ratio"]
    ri = row.get("randomization") or {}
    p = (
        f"randomization p {ri['p']:.4f} (MC se {ri['mc_se']:.4f}; whole allocation re-run {ri['p_all_arms']:.4f})"
        if ri.get("p") is not None
        else "no randomization p"
    )
    return f"{name} OR {odds['value']:.2f} [{odds['low']:.2f}, {odds['high']:.2f}], model p {row['p_model']:.2g}, {p}"


PHASES = (
    ("load_seconds", "load (watermark + binary COPY into numpy)"),
    ("reliance_seconds", "reliance and deference (incl. cluster bootstraps)"),
    ("agreement_seconds", "inter-rater agreement (alpha, p_a, AC1 with bootstraps)"),
    ("rubber_stamp_seconds", "rubber-stamp indicators"),
    ("effects_seconds", "effect model (two-way clusters) and randomization inference"),
    ("compute_seconds", "compute total (study_metrics)"),
    ("total_seconds", "total stored on the run"),
)


def listing(values: list[float], pattern: str) -> str:
    return ", ".join(pattern.format(value) for value in values)


def report(args: argparse.Namespace, seeding: dict, runs: list[dict], database: str, loads: tuple) -> str:
    walls = [r["wall"] for r in runs]
    requests = [r["request"] for r in runs]
    run_loads = [r["load"] for r in runs]
    median = statistics.median(walls)
    median_run = sorted(runs, key=lambda r: r["wall"])[len(runs) // 2]
    timings = median_run["run"].timings
    resamples = median_run["run"].parameters.get("n_resamples")
    met = median <= TARGET_SECONDS
    peak = max(r["peak_mb"] for r in runs)
    per_run_peak = all(r["peak_is_per_run"] for r in runs)
    numbers = headline(median_run["run"])
    total = timings.get("total_seconds") or median
    share = ", ".join(
        f"{name.split(' (')[0]} {timings[key] / total:.0%}" for key, name in PHASES[:-2] if key in timings
    )
    share += " of the stored total; the rest is the run's own bookkeeping (progress updates, storing the result)"
    seed_steps = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in seeding["detail"].items())
    lines = [
        f"## Metrics: one full run on {args.labels:,} labels, {database}",
        "",
        f"One running between-subjects study: {args.items:,} items (half with gold, 5% probes), "
        f"{args.reviewers} reviewers a third per arm, {len(ARMS)} arms (control, recommendation, "
        f"recommendation + rationale), the default approve/reject schema, {args.labels:,} submitted labels "
        f"({args.labels // args.reviewers:,} per reviewer). A run = `metric_run_request` then "
        "`jobs.job_run` in one process, as the view and the Celery task call them (no worker; "
        "the broker is `memory://`); the previous MetricRun is deleted before each run so it is not "
        "skipped as unchanged.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| labels / items / reviewers / arms | {args.labels:,} / {args.items:,} / {args.reviewers} / {len(ARMS)} |",
        f"| bootstrap resamples (`run.parameters['n_resamples']`) | {resamples:,} per interval |",
        f"| **wall time of one run, median of {len(runs)}** | **{median:.2f} s** |",
        f"| all runs (request + execute) | {listing(walls, '{:.2f} s')} |",
        f"| of which `metric_run_request` (watermark, insert) | {listing(requests, '{:.2f} s')} |",
    ]
    for key, name in PHASES:
        if key in timings:
            lines.append(f"| {name}, median run | {timings[key]:.2f} s |")
    lines += [
        f"| peak RSS of the process during a run | {peak:,.0f} MB"
        + (
            f" (peak reset before each run; {median_run['baseline_mb']:,.0f} MB before the run)"
            if per_run_peak
            else " (whole process: the peak could not be reset)"
        )
        + " |",
        f"| seeding (set-based SQL, one transaction) | {seeding['seconds']:.1f} s"
        + (" (earlier, reused with --reuse-db)" if seeding["reused"] else "")
        + f": {seed_steps} |",
        f"| load average (1 min) at the start of each run; before / after | "
        f"{listing(run_loads, '{:.2f}')}; {loads[0]:.2f} / {loads[1]:.2f} |",
        "",
        "| target | measured | verdict |",
        "|---|---|---|",
        f"| one full run on {args.labels:,} labels ≤ {TARGET_SECONDS:.0f} s on 2 cores, bootstrap included "
        f"({resamples:,} resamples) | median {median:.2f} s | {'**met**' if met else '**missed**'} |",
        "",
        "Sanity of the result (seeded: control agrees with the AI ~0.60, recommendation ~0.75, rationale ~0.80; "
        f"{RUBBER_STAMPS_PER_AI_ARM * 2} rubber stampers): "
        + "; ".join(
            f"{name} agreement {arm['agreement']:.3f}, deference effect {fmt_estimate(arm['effect'])}"
            if arm["effect"]
            else f"{name} agreement {arm['agreement']:.3f}"
            for name, arm in numbers["arms"].items()
        )
        + f"; narrative increment {fmt_estimate(numbers['increment'])}; {numbers['flagged']} reviewers flagged.",
        "",
        "Effect model, all items (logistic on arm x split, two-way reviewer x item cluster-robust errors, fitted "
        "on sufficient statistics: exact, every label, no subsampling) and randomization inference "
        f"({numbers['rerandomizations'] or 0:,} draws within the study's own permuted blocks per contrast, and as "
        "many re-runs of the whole allocation): " + "; ".join(fmt_effect(row) for row in numbers["effects"]) + ".",
        "",
        f"Where the time goes (median run): {share}.",
        "",
        "Caveats: the database server runs on the same two cores, and the machine was shared with other "
        "work (see the load averages). The phase timings are the ones the run stores in `MetricRun.timings`.",
        "",
        f"Reproduce: `python -m bench.metrics --labels {args.labels} --items {args.items} "
        f"--reviewers {args.reviewers}` (`make bench-metrics`); it seeds `{BENCH_DB}` on DATABASE_URL's "
        "server, and `--reuse-db` keeps the seeded study between runs.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reuse-db", action="store_true", help=f"keep {BENCH_DB} when it holds the same study")
    parser.add_argument("--labels", type=int, default=1_000_000)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--reviewers", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="profile one extra run; print the top 15 cumulative")
    args = parser.parse_args()
    if args.reviewers < len(ARMS) or args.labels % args.reviewers:
        parser.error(f"--labels must be a multiple of --reviewers (at least {len(ARMS)})")
    if args.labels // args.reviewers > args.items:
        parser.error("each reviewer labels an item at most once: --labels / --reviewers must be <= --items")

    base_url = configure_environment()
    sys.path.insert(0, str(ROOT))
    record = None
    if args.reuse_db:
        database_ensure(base_url, fresh=False)
        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        record = seeded(args)
        if record is None:
            from django.db import connection

            connection.close()
            sys.stdout.write("The benchmark database does not hold this study: seeding anew.\n")
    if record is None:
        database_ensure(base_url, fresh=True)
        if not args.reuse_db:
            django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        seeded(args)  # creates the seed table
        sys.stdout.write(f"Seeding {args.labels:,} labels ({args.items:,} items, {args.reviewers} reviewers)\n")
        record = seed(args)
        sys.stdout.write(f"  seeded in {record['seconds']:.1f} s\n")
    else:
        sys.stdout.write(f"Reusing the seeded study (seeded in {record['seconds']:.1f} s)\n")

    from django.db import connection

    from bench.report import write_section
    from reviewapp.studies.models import Study

    study = Study.objects.get(slug=STUDY_SLUG)
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        database = f"server PostgreSQL {cursor.fetchone()[0].split()[0]}"

    load_before = os.getloadavg()[0]
    runs = []
    for index in range(args.runs):
        outcome = one_run(study)
        run = outcome["run"]
        runs.append(outcome)
        phases = ", ".join(f"{k.removesuffix('_seconds')} {v:.2f}" for k, v in run.timings.items())
        sys.stdout.write(
            f"  run {index + 1}: {outcome['wall']:.2f} s (request {outcome['request']:.2f}, execute "
            f"{outcome['execute']:.2f}); {phases}; peak RSS {outcome['peak_mb']:,.0f} MB; load {outcome['load']:.2f}\n"
        )
        sys.stdout.flush()
        problems = result_check(run, args)
        if problems:
            sys.stdout.write("Result check failed:\n" + "".join(f"  - {p}\n" for p in problems))
            sys.exit(1)
    load_after = os.getloadavg()[0]

    body = report(args, record, runs, database, (load_before, load_after))
    write_section("metrics", body)
    sys.stdout.write(body + "\n")
    if args.profile:
        sys.stdout.write("\nProfile of one more run (cumulative, top 15):\n" + profile_run(study))


if __name__ == "__main__":
    main()
