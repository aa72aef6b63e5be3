"""The reviewer's queue through the real HTTP stack: gunicorn, Django, PostgreSQL.

    python -m bench.queue [--quick] [--reuse-db] [--workers 3]

Seeds a database of its own (``reviewapp_bench``, on DATABASE_URL's server, else on the
embedded PostgreSQL the app itself would start) with three
running three-arm studies (between subjects, overlap k=3, one approve/reject field),
by SQL rather than the ORM:

- ``10k``: 10,000 items;
- ``1M``: 1,000,000 items;
- ``10k-history``: 10,000 open items, and every simulated reviewer already has 10,000
  labels in the study (on earlier items, each with its k labels), cursor moved past them.

``10k`` and ``1M`` run as new studies do: per-reviewer shuffled order, and a reviewer
quota (set above what anyone reaches in the window, so every claim checks it and none
is refused by it). ``10k-history`` keeps the fixed order, so its history can be written
in serving order and the cursor placed past it.

Then it starts gunicorn (sync workers) on that database and simulates reviewers with
aiohttp, one session and cookie jar each. They log in through the login form, then loop:
GET the review page as htmx does (``HX-Request: true``, the view answers with the work
partial), and POST the answer form as rendered, whose htmx response is the next item.
There is no think time, so the server is as busy as the reviewers can make it. Each
concurrency level (1, 16, 64 reviewers) runs for a fixed window after a warm-up.
Afterwards the queue's invariants are checked in the database, and the ``queue-http``
section of BENCHMARKS.md is written.

Without --reuse-db the benchmark database is dropped and seeded anew. With it, seeded
studies are kept and only what earlier runs added (assignments, labels, leases) is
removed, so every run starts from the same queue.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import math
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import django
import environ
import orjson
import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
WORK_DIR = ROOT / "var" / "bench"
BENCH_DB = "reviewapp_bench"
K = 3
REVIEWERS = 64
LEVELS = (1, 16, 64)
HISTORY_LABELS = 10_000
# The simulated reviewers' password: throwaway accounts in the benchmark's own database.
PASSWORD = "bench-queue-password"  # noqa: S105
STUDY_SEED = 20261130
# Items are written in batches so a million rows report progress and no statement runs for minutes.
ITEM_BATCH = 200_000
LABEL_SCHEMA = {
    "fields": [
        {
            "name": "decision",
            "type": "nominal",
            "choices": ["approve", "reject"],
            "decision": True,
            "label": "Should the agent's proposed action go ahead?",
        }
    ],
    "confidence": False,
    "comment": False,
}
# The targets, quoted in the report next to the figures.
TARGET_NEXT_P95_MS = 60
TARGET_NEXT_AT = 16
TARGET_LABELS_PER_S = 300
TARGET_SCALE_RATIO = 1.5
HX = {"HX-Request": "true", "HX-Target": "work"}
# (warm-up, timed window) of each concurrency level, in seconds.
FULL_LEVEL = (5.0, 20.0)
QUICK_LEVEL = (2.0, 5.0)


@dataclass(frozen=True)
class Scenario:
    key: str
    slug: str
    title: str
    items: int  # open items in the queue
    history: int  # labels each simulated reviewer already has in the study
    item_order: str = "shuffled"
    quota: int | None = None  # items per reviewer


# On, and checked in every claim, but above what a reviewer labels in a window.
QUOTA_ON = 50_000
SCENARIOS = [
    Scenario("10k", "bench-queue-10k", "10,000 items", 10_000, 0, "shuffled", QUOTA_ON),
    Scenario("1M", "bench-queue-1m", "1,000,000 items", 1_000_000, 0, "shuffled", QUOTA_ON),
    Scenario(
        "10k-history", "bench-queue-history", "10,000 items, 10,000 labels of history", 10_000, HISTORY_LABELS, "fixed"
    ),
]


# --- database and settings ----------------------------------------------------------


def configure_environment() -> tuple[str, dict[str, str]]:
    """Point this process and the gunicorn child at the benchmark database; return (url, child env).

    DEBUG is off, as in production. The settings then require a real SECRET_KEY and, by
    default, HTTPS-only cookies and an HTTPS redirect: the benchmark speaks plain HTTP on
    the loopback, so those three are turned off, and static files are collected (the
    manifest storage refuses to render a page without its manifest).
    """
    from bench.report import server_url

    environ.Env.read_env(ROOT / ".env", overwrite=False)
    base_url = server_url()
    if not base_url.startswith(("postgres://", "postgresql://")):
        sys.exit("bench.queue needs a PostgreSQL DATABASE_URL (postgres://...): it creates its own database there.")
    bench_url = urlsplit(base_url)._replace(path="/" + BENCH_DB).geturl()
    overrides = {
        "DATABASE_URL": bench_url,
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "SECURE_SSL_REDIRECT": "false",
        "SESSION_COOKIE_SECURE": "false",
        "CSRF_COOKIE_SECURE": "false",
        "STATIC_ROOT": str(WORK_DIR / "static"),
        "LOG_LEVEL": "WARNING",
    }
    os.environ.update(overrides)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reviewapp.settings")
    return base_url, dict(os.environ)


def database_ensure(base_url: str, *, fresh: bool) -> None:
    with psycopg.connect(base_url, autocommit=True) as conn:
        if fresh:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(BENCH_DB)))
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [BENCH_DB]).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(BENCH_DB)))


# --- seeding -------------------------------------------------------------------------
# Table names come from the models, so the SQL follows a rename.


def tables() -> dict[str, str]:
    from django.contrib.auth import get_user_model

    from reviewapp.ingest.models import Item
    from reviewapp.queue.models import Assignment, ItemQuota, Label, LateSubmission, ReviewerCursor
    from reviewapp.studies.models import Enrolment, Study

    models = {
        "study": Study,
        "item": Item,
        "quota": ItemQuota,
        "assignment": Assignment,
        "label": Label,
        "late": LateSubmission,
        "cursor": ReviewerCursor,
        "enrolment": Enrolment,
        "user": get_user_model(),
    }
    return {name: model._meta.db_table for name, model in models.items()}


SEED_TABLE = "bench_queue_seed"

# A short support-agent transcript: system prompt, request, a tool call and its result,
# the final proposed action. The refund amount decides what is right (above $200 needs
# a team lead), so the AI recommendation, its rationale and gold labels are coherent.
PAYLOAD_SQL = """
jsonb_build_object(
  'title', 'Refund request for order A-' || i,
  'messages', jsonb_build_array(
    jsonb_build_object('role', 'system', 'content',
      'You are the support assistant for Larkspur Home Goods. You can look up orders and issue refunds. '
      'Refunds above $200.00 must be escalated to a team lead with escalate_ticket; never issue them yourself.'),
    jsonb_build_object('role', 'user', 'content',
      'Hi, order A-' || i || ' arrived yesterday and the table top is **cracked**. I paid $' || amount
      || ' and I would like a full refund, not a replacement. My email is customer' || (i %% 9973) || '@mailbox.test.'),
    jsonb_build_object('role', 'assistant', 'content', 'I am sorry to hear that. Let me pull up the order.',
      'tool_calls', jsonb_build_array(jsonb_build_object(
        'id', 'call_' || i, 'name', 'lookup_order', 'arguments', jsonb_build_object('order_id', 'A-' || i)))),
    jsonb_build_object('role', 'tool', 'tool_call_id', 'call_' || i, 'name', 'lookup_order', 'content',
      jsonb_build_object('order_id', 'A-' || i, 'status', 'delivered', 'total', amount,
        'customer_email', 'customer' || (i %% 9973) || '@mailbox.test', 'delivered_at', '2026-03-02T15:47:00Z')::text),
    jsonb_build_object('role', 'assistant', 'content',
      'The order was delivered and the damage is covered by our policy. I am issuing a refund of $' || amount
      || ' to the original card now.',
      'tool_calls', jsonb_build_array(jsonb_build_object(
        'id', 'call_' || i || '_2', 'name', 'issue_refund',
        'arguments', jsonb_build_object('order_id', 'A-' || i, 'amount', amount))))
  )
)"""

ITEMS_SQL = """
INSERT INTO {item} (study_id, external_id, source_format, payload, source_metadata, content_hash, word_count,
                    ai_recommendation, ai_rationale, ai_confidence, gold_label, is_probe, priority)
SELECT %(study)s, %(prefix)s || lpad(i::text, 7, '0'), 'native', p.payload, '{{}}'::jsonb,
       encode(sha256(convert_to(p.payload::text, 'UTF8')), 'hex'), %(words)s,
       -- The AI is wrong on one item in nine.
       to_jsonb(CASE WHEN (amount > 200) <> (i %% 9 = 0) THEN 'reject' ELSE 'approve' END),
       'The order was delivered and the refund of $' || amount || CASE WHEN amount > 200
           THEN ' is above the $200 limit, so the agent must escalate it to a team lead instead.'
           ELSE ' is within the $200 limit the agent may refund on its own.' END,
       round(0.55 + (i %% 45) / 100.0, 2),
       CASE WHEN i %% 4 = 0 THEN to_jsonb(CASE WHEN amount > 200 THEN 'reject' ELSE 'approve' END) END,
       false, 0
FROM generate_series(%(first)s, %(last)s) AS i
CROSS JOIN LATERAL (SELECT 20 + (i * 37) %% 400 AS amount) AS a
CROSS JOIN LATERAL (SELECT {payload} AS payload) AS p
ORDER BY i
"""

# Reviewer j of the n in an arm takes history slot s = j + n*t for its t-th label, on
# history item s // k: every item gets exactly k labels per arm, from k different
# reviewers (n >= k), and no reviewer meets an item twice. Labels are 40 s apart.
HISTORY_ASSIGNMENTS_SQL = """
WITH r AS (
    SELECT reviewer_id, arm_id,
           row_number() OVER (PARTITION BY arm_id ORDER BY reviewer_id) - 1 AS j,
           count(*) OVER (PARTITION BY arm_id) AS n
    FROM {enrolment} WHERE study_id = %(study)s AND reviewer_id = ANY(%(reviewers)s)
), h AS (
    SELECT id AS item_id, row_number() OVER (ORDER BY id) - 1 AS h
    FROM {item} WHERE study_id = %(study)s AND external_id LIKE 'h-%%'
), slots AS (
    SELECT r.reviewer_id, r.arm_id, t, r.j + r.n * t AS s
    FROM r CROSS JOIN generate_series(0, %(per)s - 1) AS t
)
INSERT INTO {assignment} (study_id, item_id, reviewer_id, arm_id, slot, quota_arm_key, state,
                          leased_at, lease_expires_at, shown_at, submitted_at, skip_reason)
SELECT %(study)s, h.item_id, slots.reviewer_id, slots.arm_id, slots.s %% %(k)s, slots.arm_id, 'submitted',
       at, at + make_interval(secs => %(lease)s), at, at + interval '25 seconds', ''
FROM slots JOIN h ON h.h = slots.s / %(k)s
CROSS JOIN LATERAL (SELECT now() - make_interval(secs => (%(per)s - slots.t) * 40) AS at) AS clock
ORDER BY slots.t, slots.reviewer_id
"""

# Reviewers mostly (3 in 4) agree with the AI, as the studies this app runs find.
HISTORY_LABELS_SQL = """
INSERT INTO {label} (assignment_id, study_id, item_id, reviewer_id, arm_id, values, comment,
                     client_timings, interactions, shown_at, submitted_at)
SELECT a.id, a.study_id, a.item_id, a.reviewer_id, a.arm_id,
       jsonb_build_object('decision', CASE WHEN a.id %% 4 = 0
           THEN CASE WHEN i.ai_recommendation #>> '{{}}' = 'approve' THEN 'reject' ELSE 'approve' END
           ELSE i.ai_recommendation #>> '{{}}' END),
       '',
       jsonb_build_object('ms_on_page', 15000 + a.id %% 20000, 'ms_to_first_answer', 9000 + a.id %% 9000),
       jsonb_build_object('tool_calls_expanded', a.id %% 2, 'outputs_expanded', a.id %% 3 / 2,
                          'rationale_opened', 0, 'keys_used', 2, 'scroll_depth', 1.0),
       a.shown_at, a.submitted_at
FROM {assignment} a JOIN {item} i ON i.id = a.item_id
WHERE a.study_id = %(study)s AND a.state = 'submitted'
ORDER BY a.id
"""

HISTORY_QUOTAS_SQL = """
UPDATE {quota} q SET submitted = q.submitted + c.n, open_slots = q.open_slots - c.n
FROM (SELECT item_id, quota_arm_key, count(*) AS n FROM {assignment}
      WHERE study_id = %(study)s GROUP BY item_id, quota_arm_key) AS c
WHERE q.item_id = c.item_id AND q.arm_key = c.quota_arm_key
"""

# Where a reviewer's claims left their cursor: on the last item they were given; and the
# count of their labels the cursor keeps for the progress line (corrections not counted).
CURSORS_SQL = """
INSERT INTO {cursor} (study_id, reviewer_id, sort_key, labels_done)
SELECT e.study_id, e.reviewer_id, coalesce(max(q.sort_key), -1), coalesce(max(done.n), 0)
FROM {enrolment} e
LEFT JOIN {assignment} a ON a.study_id = e.study_id AND a.reviewer_id = e.reviewer_id
LEFT JOIN {quota} q ON q.item_id = a.item_id AND q.arm_key = a.quota_arm_key
LEFT JOIN (SELECT reviewer_id, count(*) AS n FROM {label}
           WHERE study_id = %(study)s AND supersedes_id IS NULL GROUP BY reviewer_id) AS done
       ON done.reviewer_id = e.reviewer_id
WHERE e.study_id = %(study)s
GROUP BY e.study_id, e.reviewer_id
ON CONFLICT (study_id, reviewer_id) DO UPDATE SET sort_key = EXCLUDED.sort_key, labels_done = EXCLUDED.labels_done
"""


def execute(statement: str, params: dict | None = None) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement.format(**tables()), params)
        return cursor.rowcount


def scalar(statement: str, params: dict | list | None = None):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement.format(**tables()), params)
        return cursor.fetchone()[0]


def reviewer_name(n: int) -> str:
    return f"bench-reviewer-{n:02d}"


def reviewers_ensure(count: int = REVIEWERS) -> list:
    """The simulated reviewers, created once; one password hash serves them all."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password

    User = get_user_model()
    names = [reviewer_name(n) for n in range(1, count + 1)]
    existing = set(User.objects.filter(username__in=names).values_list("username", flat=True))
    if len(existing) < len(names):
        password_hash = make_password(PASSWORD)
        User.objects.bulk_create(
            User(username=name, email=f"{name}@example.org", password=password_hash)
            for name in names
            if name not in existing
        )
    by_name = {user.username: user for user in User.objects.filter(username__in=names)}
    return [by_name[name] for name in names]


def seed_table_ensure() -> None:
    execute(
        f"CREATE TABLE IF NOT EXISTS {SEED_TABLE} (slug text PRIMARY KEY, study_id bigint NOT NULL, "
        "items bigint NOT NULL, history_items bigint NOT NULL, last_history_assignment bigint NOT NULL, "
        "seconds double precision NOT NULL, detail jsonb NOT NULL, seeded_at timestamptz NOT NULL DEFAULT now())"
    )


def seeded(scenario: Scenario) -> dict | None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT study_id, history_items, last_history_assignment, seconds, detail FROM {SEED_TABLE} "  # noqa: S608
            "WHERE slug = %s",
            [scenario.slug],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    study_id, history_items, last_history, seconds, detail = row
    return {
        "study_id": study_id,
        "history_items": history_items,
        "last_history_assignment": last_history,
        "seconds": seconds,
        "detail": orjson.loads(detail) if isinstance(detail, str | bytes) else detail,
    }


def study_drop(slug: str) -> None:
    """Remove a study left half-seeded by an interrupted run (big tables by SQL, the rest by the ORM)."""
    from reviewapp.studies.models import Study

    study = Study.objects.filter(slug=slug).first()
    if study is None:
        return
    params = {"study": study.pk}
    execute("DELETE FROM {label} WHERE study_id = %(study)s", params)
    execute(
        "DELETE FROM {late} WHERE assignment_id IN (SELECT id FROM {assignment} WHERE study_id = %(study)s)", params
    )
    for table in ("assignment", "cursor", "quota", "item", "enrolment"):
        execute(f"DELETE FROM {{{table}}} WHERE study_id = %(study)s", params)  # noqa: S608
    study.delete()


def words_of_sample() -> int:
    """Words a reviewer reads in one seeded transcript (the same for every item but digits)."""
    from reviewapp.ingest.parsing import count_words

    sample = f"SELECT {PAYLOAD_SQL} FROM (SELECT %(i)s::int AS i, 240 AS amount) AS sample"  # noqa: S608
    payload = scalar(sample, {"i": 1})
    return count_words(orjson.loads(payload) if isinstance(payload, str) else payload)


def items_insert(study_id: int, prefix: str, count: int, words: int, label: str) -> None:
    for first in range(1, count + 1, ITEM_BATCH):
        last = min(count, first + ITEM_BATCH - 1)
        execute(
            ITEMS_SQL.replace("{payload}", PAYLOAD_SQL),
            {"study": study_id, "prefix": prefix, "words": words, "first": first, "last": last},
        )
        if count > ITEM_BATCH:
            sys.stdout.write(f"    {label}: {last:,} of {count:,} items\n")
            sys.stdout.flush()


def scenario_seed(scenario: Scenario, reviewers: list) -> dict:
    """Create the study, its items, quotas and (history) past labels; returns the seed record."""
    from django.db import transaction
    from django.db.models import Count

    from reviewapp.queue.services import quotas_sync
    from reviewapp.studies.models import Study
    from reviewapp.studies.services import arms_apply_preset, enrolment_create

    timings: dict[str, float] = {}
    started = time.perf_counter()
    mark = started

    def lap(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        timings[name] = round(now - mark, 2)
        mark = now
        sys.stdout.write(f"    {scenario.key}: {name} {timings[name]:.1f} s\n")
        sys.stdout.flush()

    study_drop(scenario.slug)
    with transaction.atomic():
        study = Study.objects.create(
            slug=scenario.slug,
            title=f"Queue benchmark: {scenario.title}",
            instructions="Decide whether the agent's **final proposed action** should go ahead.",
            status=Study.Status.RUNNING,
            overlap_k=K,
            label_schema=LABEL_SCHEMA,
            seed=STUDY_SEED,
            item_order=scenario.item_order,
            reviewer_quota=scenario.quota,
        )
        arms_apply_preset(study=study, actor=None)
        # The real allocation (seeded permuted blocks), in enrolment order.
        for reviewer in reviewers:
            enrolment_create(study=study, reviewer=reviewer, source="admin")
    lap("study, arms, enrolments")

    words = words_of_sample()
    history_items = 0
    if scenario.history:
        arm_sizes = list(
            study.enrolments.order_by().values("arm_id").annotate(n=Count("id")).values_list("n", flat=True)
        )
        # The scheme below needs at least k reviewers per arm to keep their items distinct.
        assert min(arm_sizes) >= K, arm_sizes
        history_items = math.ceil(max(arm_sizes) * scenario.history / K)
        # History items come first (lower ids), so they sit before the open items in the queue.
        items_insert(study.pk, "h-", history_items, words, "history")
    items_insert(study.pk, "q-", scenario.items, words, "open")
    lap(f"items ({history_items + scenario.items:,} by INSERT ... SELECT generate_series)")

    quotas = quotas_sync(study=study)
    lap(f"quotas_sync ({quotas:,} quota rows)")

    last_history = 0
    if scenario.history:
        params = {
            "study": study.pk,
            "reviewers": [r.pk for r in reviewers],
            "per": scenario.history,
            "k": K,
            "lease": study.lease_seconds,
        }
        with transaction.atomic():
            execute(HISTORY_ASSIGNMENTS_SQL, params)
            execute(HISTORY_LABELS_SQL, params)
            execute(HISTORY_QUOTAS_SQL, params)
            execute(CURSORS_SQL, params)
        last_history = scalar("SELECT coalesce(max(id), 0) FROM {assignment} WHERE study_id = %s", [study.pk])
        lap(f"history ({len(reviewers) * scenario.history:,} assignments and labels, cursors)")

    vacuum_analyze()
    lap("VACUUM ANALYZE, CHECKPOINT")
    seconds = round(time.perf_counter() - started, 1)
    record = {
        "study_id": study.pk,
        "history_items": history_items,
        "last_history_assignment": last_history,
        "seconds": seconds,
        "detail": timings,
    }
    execute(
        f"INSERT INTO {SEED_TABLE} (slug, study_id, items, history_items, last_history_assignment, seconds, detail) "  # noqa: S608
        "VALUES (%(slug)s, %(study_id)s, %(items)s, %(history_items)s, %(last)s, %(seconds)s, %(detail)s)",
        {
            "slug": scenario.slug,
            "study_id": study.pk,
            "items": scenario.items,
            "history_items": history_items,
            "last": last_history,
            "seconds": seconds,
            "detail": orjson.dumps(timings).decode(),
        },
    )
    return record


def vacuum_analyze() -> None:
    # Fresh statistics and visibility maps, as autovacuum would have by the time a real
    # queue is this big; a checkpoint now keeps the seed's writes out of the timed windows.
    execute("VACUUM (ANALYZE) {item}, {quota}, {assignment}, {label}, {cursor}, {enrolment}")
    execute("CHECKPOINT")


def run_state_reset(study_id: int, last_history_assignment: int) -> int:
    """Undo what earlier benchmark runs did to a seeded study; returns the assignments removed.

    Deleting an assignment gives its slot back (a lease or a submitted label held one;
    an expired or skipped one had already returned it), and cursors go back to where the
    seed left them.
    """
    from django.db import transaction

    params = {"study": study_id, "last": last_history_assignment}
    with transaction.atomic():
        execute("DELETE FROM {label} WHERE study_id = %(study)s AND assignment_id > %(last)s", params)
        execute(
            "DELETE FROM {late} WHERE assignment_id IN "
            "(SELECT id FROM {assignment} WHERE study_id = %(study)s AND id > %(last)s)",
            params,
        )
        removed = scalar(
            """
            WITH gone AS (
                DELETE FROM {assignment} WHERE study_id = %(study)s AND id > %(last)s
                RETURNING item_id, quota_arm_key, state
            ), freed AS (
                SELECT item_id, quota_arm_key,
                       count(*) FILTER (WHERE state IN ('leased', 'submitted')) AS held,
                       count(*) FILTER (WHERE state = 'submitted') AS done
                FROM gone GROUP BY item_id, quota_arm_key
            ), restored AS (
                UPDATE {quota} q SET open_slots = q.open_slots + freed.held, submitted = q.submitted - freed.done
                FROM freed WHERE q.item_id = freed.item_id AND q.arm_key = freed.quota_arm_key
            )
            SELECT count(*) FROM gone
            """,
            params,
        )
        if last_history_assignment:
            execute(CURSORS_SQL, params)
        else:
            # No history: reviewers start afresh, each cursor made (with its walk's start) at the first claim.
            execute("DELETE FROM {cursor} WHERE study_id = %(study)s", params)
    return removed


# --- gunicorn ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def gunicorn_start(workers: int, env: dict[str, str], log: Path | None = None) -> tuple[subprocess.Popen, str, Path]:
    """gunicorn with sync workers on a free loopback port: (process, base URL, error log)."""
    port = free_port()
    log = log or WORK_DIR / "gunicorn-queue.log"
    log.write_text("")  # this run's errors only
    executable = Path(sys.executable).with_name("gunicorn")
    command = [
        str(executable) if executable.exists() else (shutil.which("gunicorn") or "gunicorn"),
        "reviewapp.wsgi",
        "-w",
        str(workers),
        "--worker-class",
        "sync",
        "--bind",
        f"127.0.0.1:{port}",
        "--error-logfile",
        str(log),
        "--log-level",
        "warning",
    ]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}; see {log}:\n{log_tail(log)}")
        try:
            with urllib.request.urlopen(base + "/accounts/login/", timeout=2) as response:  # noqa: S310 (our own server)
                if response.status == 200:
                    return process, base, log
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    gunicorn_stop(process)
    raise RuntimeError(f"gunicorn did not answer within 60 s; see {log}:\n{log_tail(log)}")


def gunicorn_stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)  # gunicorn's graceful shutdown
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def log_tail(log: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# --- simulated reviewers -------------------------------------------------------------

CSRF_RE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
CHOICE_RE = re.compile(r'<input type="radio" name="(field_\w+)" value="([^"]*)"')
MAX_ERROR_SAMPLES = 5


@dataclass
class Reviewer:
    username: str
    session: aiohttp.ClientSession
    seed: int


@dataclass
class LevelStats:
    next_ms: list[float] = field(default_factory=list)
    submit_ms: list[float] = field(default_factory=list)
    labels_client: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    window_seconds: float = 0.0
    window_from: datetime | None = None
    window_to: datetime | None = None
    labels_db: int = 0
    # CPU seconds used per second of the window, by group (see cpu_snapshot).
    cores: dict[str, float] = field(default_factory=dict)

    def error(self, what: str, status: int, body: str) -> None:
        self.errors += 1
        if len(self.error_samples) < MAX_ERROR_SAMPLES:
            self.error_samples.append(f"{what}: {status}: {' '.join(body.split())[:400]}")


async def fetch(request) -> tuple[int, str, float]:
    """(status, body, milliseconds) of one request; a network failure is status 0."""
    started = time.perf_counter()
    try:
        async with request as response:
            body = await response.text()
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        status, body = 0, repr(exc)
    return status, body, (time.perf_counter() - started) * 1000


async def login(reviewer: Reviewer) -> None:
    """Through the real form: its CSRF token, then the credentials (a 302 on success)."""
    status, page, _ = await fetch(reviewer.session.get("/accounts/login/"))
    match = CSRF_RE.search(page)
    if status != 200 or not match:
        raise RuntimeError(f"login page for {reviewer.username}: {status} {page[:300]}")
    form = {"username": reviewer.username, "password": PASSWORD, "csrfmiddlewaretoken": match[1], "next": "/"}
    status, page, _ = await fetch(reviewer.session.post("/accounts/login/", data=form, allow_redirects=False))
    if status != 302:
        raise RuntimeError(f"login of {reviewer.username} failed: {status} {' '.join(page.split())[:300]}")


def answer_form(page: str, slug: str, rng_value: int) -> tuple[str, dict] | None:
    """The answer form's action and fields as the page renders them, filled in; None without one."""
    action = re.search(rf'action="(/review/{re.escape(slug)}/items/\d+/answer/)"', page)
    token = CSRF_RE.search(page)
    if not action or not token:
        return None
    choices: dict[str, list[str]] = {}
    for name, value in CHOICE_RE.findall(page):
        choices.setdefault(name, []).append(html.unescape(value))
    data = {
        "csrfmiddlewaretoken": token[1],
        # What review.js measures on the page and sends with the answer.
        "interactions": orjson.dumps(
            {
                "tool_calls_expanded": rng_value % 3,
                "outputs_expanded": rng_value % 2,
                "rationale_opened": int(rng_value % 5 == 0),
                "keys_used": 2,
                "scroll_depth": 0.8,
            }
        ).decode(),
        "client_timings": orjson.dumps(
            {"ms_on_page": 12_000 + rng_value % 20_000, "ms_to_first_answer": 8_000 + rng_value % 4_000}
        ).decode(),
    }
    for name, values in choices.items():
        data[name] = values[rng_value % len(values)]
    return action[1], data


async def reviewer_loop(reviewer: Reviewer, slug: str, stats: LevelStats, measure_from: float, until: float) -> None:
    """GET the next item, answer it, repeat; only requests inside the window are timed."""
    counter = reviewer.seed
    page_url = f"/review/{slug}/"
    while time.perf_counter() < until:
        started = time.perf_counter()
        status, page, ms = await fetch(reviewer.session.get(page_url, headers=HX))
        timed = started >= measure_from and time.perf_counter() <= until
        if status != 200:
            stats.error(f"GET next ({reviewer.username})", status, page)
            await asyncio.sleep(0.1)
            continue
        counter += 7919
        form = answer_form(page, slug, counter)
        if form is None:
            stats.error(f"GET next ({reviewer.username}): no answer form", status, page)
            await asyncio.sleep(0.1)
            continue
        if timed:
            stats.next_ms.append(ms)
        action, data = form
        started = time.perf_counter()
        status, page, ms = await fetch(reviewer.session.post(action, data=data, headers=HX))
        timed = started >= measure_from and time.perf_counter() <= until
        if status != 200:
            stats.error(f"POST answer ({reviewer.username})", status, page)
            continue
        if timed:
            stats.submit_ms.append(ms)
            stats.labels_client += 1


async def level_run(
    reviewers: list[Reviewer], slug: str, warmup: float, seconds: float, gunicorn_pid: int
) -> LevelStats:
    stats = LevelStats(window_seconds=seconds)
    now = time.perf_counter()
    measure_from, until = now + warmup, now + warmup + seconds
    wall_now = datetime.now(UTC)
    stats.window_from = wall_now + timedelta(seconds=warmup)
    stats.window_to = stats.window_from + timedelta(seconds=seconds)
    running = asyncio.gather(*(reviewer_loop(r, slug, stats, measure_from, until) for r in reviewers))
    await asyncio.sleep(warmup)
    before, started = cpu_snapshot(gunicorn_pid), time.perf_counter()
    await asyncio.sleep(max(0.0, until - time.perf_counter()))
    after, elapsed = cpu_snapshot(gunicorn_pid), time.perf_counter() - started
    stats.cores = cpu_cores(before, after, elapsed)
    await running
    return stats


def cpu_snapshot(gunicorn_pid: int) -> dict:
    """CPU seconds used so far by the machine and by each process of interest (Linux /proc).

    Shows where the cores went: to gunicorn's workers, the benchmark database's PostgreSQL
    backends, this client, or anything else on the machine.
    """
    ticks = os.sysconf("SC_CLK_TCK")
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except OSError:
        return {}
    processes: dict[int, tuple[str, float]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue  # the process ended meanwhile
        comm, rest = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split()
        pid, ppid = int(entry.name), int(rest[1])
        if pid == os.getpid():
            group = "client"
        elif gunicorn_pid in (pid, ppid):
            group = "gunicorn"
        elif comm.startswith("postgres") and BENCH_DB.encode() in cmdline(entry.path):
            # Backends of the benchmark database only; the server's background work and
            # other users' sessions (tests running meanwhile) count as "other".
            group = "postgres"
        else:
            continue
        processes[pid] = (group, (int(rest[11]) + int(rest[12])) / ticks)
    # user + nice + system + irq + softirq + steal: everything but idle and iowait.
    busy = (sum(values) - values[3] - values[4]) / ticks
    return {"machine": busy, "processes": processes}


def cmdline(proc_path: str) -> bytes:
    # A PostgreSQL backend's title: "postgres: user database host(port) state".
    try:
        return Path(proc_path, "cmdline").read_bytes()
    except OSError:
        return b""


def cpu_cores(before: dict, after: dict, seconds: float) -> dict[str, float]:
    if not before or not after or seconds <= 0:
        return {}
    used = {"gunicorn": 0.0, "postgres": 0.0, "client": 0.0}
    for pid, (group, total) in after["processes"].items():
        # A process that started in the window counts whole; one that ended is lost.
        used[group] += total - before["processes"].get(pid, (group, 0.0))[1]
    cores = {group: value / seconds for group, value in used.items()}
    cores["machine"] = (after["machine"] - before["machine"]) / seconds
    cores["other"] = max(0.0, cores["machine"] - sum(cores[g] for g in used))
    return cores


async def benchmark(base: str, gunicorn_pid: int, scenarios: list[Scenario], warmup: float, seconds: float) -> dict:
    """Every scenario at every level, one logged-in session per simulated reviewer throughout."""
    timeout = aiohttp.ClientTimeout(total=120)
    sessions = [
        aiohttp.ClientSession(
            base_url=base,
            # unsafe=True: the default jar refuses cookies from an IP address like 127.0.0.1.
            cookie_jar=aiohttp.CookieJar(unsafe=True),
            timeout=timeout,
        )
        for _ in range(REVIEWERS)
    ]
    reviewers = [Reviewer(reviewer_name(n + 1), s, n * 104_729) for n, s in enumerate(sessions)]
    results: dict[str, dict[int, LevelStats]] = {}
    try:
        # Logins hash the password (PBKDF2) on the server: a few at a time, before any timing.
        gate = asyncio.Semaphore(8)

        async def gated_login(reviewer: Reviewer) -> None:
            async with gate:
                await login(reviewer)

        started = time.perf_counter()
        await asyncio.gather(*(gated_login(r) for r in reviewers))
        sys.stdout.write(f"  {len(reviewers)} reviewers logged in ({time.perf_counter() - started:.1f} s)\n")
        for scenario in scenarios:
            results[scenario.key] = {}
            for level in LEVELS:
                stats = await level_run(reviewers[:level], scenario.slug, warmup, seconds, gunicorn_pid)
                results[scenario.key][level] = stats
                sys.stdout.write(f"  {scenario.key:>11} x {level:>2}: {level_line(stats)}\n")
                for sample in stats.error_samples:
                    sys.stdout.write(f"      {sample}\n")
                sys.stdout.flush()
    finally:
        await asyncio.gather(*(s.close() for s in sessions))
    return results


# --- figures and checks --------------------------------------------------------------


def percentile(values: list[float], q: int) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def labels_per_s(stats: LevelStats) -> float:
    return stats.labels_db / stats.window_seconds


def level_line(stats: LevelStats) -> str:
    return (
        f"next p50 {percentile(stats.next_ms, 50):.1f} p95 {percentile(stats.next_ms, 95):.1f} "
        f"p99 {percentile(stats.next_ms, 99):.1f} ms; submit+next p50 {percentile(stats.submit_ms, 50):.1f} "
        f"p95 {percentile(stats.submit_ms, 95):.1f} p99 {percentile(stats.submit_ms, 99):.1f} ms; "
        f"{stats.labels_client} labels answered 200 in the window; {stats.errors} errors; {cores_text(stats)}"
    )


def cores_text(stats: LevelStats) -> str:
    c = stats.cores
    if not c:
        return "-"
    return (
        f"{c['machine']:.2f} = gunicorn {c['gunicorn']:.2f} + PostgreSQL {c['postgres']:.2f} + "
        f"client {c['client']:.2f} + other {c['other']:.2f}"
    )


def gunicorn_ms_per_label(stats: LevelStats) -> float:
    if not stats.cores or not stats.labels_db:
        return float("nan")
    return stats.cores["gunicorn"] * stats.window_seconds / stats.labels_db * 1000


def labels_counted(study_id: int, stats: LevelStats) -> int:
    """Labels the database committed inside the window (submitted_at is set by the app server)."""
    return scalar(
        "SELECT count(*) FROM {label} WHERE study_id = %s AND submitted_at >= %s AND submitted_at < %s",
        [study_id, stats.window_from, stats.window_to],
    )


INVARIANTS = {
    "reviewer with two assignments of one item": """
        SELECT count(*) FROM (SELECT 1 FROM {assignment} WHERE study_id = ANY(%(studies)s)
                              GROUP BY item_id, reviewer_id HAVING count(*) > 1) AS t""",
    "quota rows with open_slots < 0": """
        SELECT count(*) FROM {quota} WHERE study_id = ANY(%(studies)s) AND open_slots < 0""",
    "item/arm with submitted labels + live leases > k": """
        SELECT count(*) FROM (
            SELECT a.item_id, a.quota_arm_key
            FROM {assignment} a
            JOIN {study} s ON s.id = a.study_id
            LEFT JOIN {label} l ON l.assignment_id = a.id AND l.supersedes_id IS NULL
            WHERE a.study_id = ANY(%(studies)s)
            GROUP BY a.item_id, a.quota_arm_key, s.overlap_k
            HAVING count(l.id) + count(*) FILTER (WHERE a.state = 'leased') > s.overlap_k) AS t""",
    # Not in the queue contract's words, but what the claim query trusts: each quota row
    # says exactly what its assignments hold.
    "quota rows out of step with their assignments": """
        SELECT count(*) FROM {quota} q
        JOIN {study} s ON s.id = q.study_id
        LEFT JOIN (SELECT item_id, quota_arm_key,
                          count(*) FILTER (WHERE state = 'leased') AS leased,
                          count(*) FILTER (WHERE state = 'submitted') AS submitted
                   FROM {assignment} WHERE study_id = ANY(%(studies)s)
                   GROUP BY item_id, quota_arm_key) AS a
          ON a.item_id = q.item_id AND a.quota_arm_key = q.arm_key
        WHERE q.study_id = ANY(%(studies)s)
          AND (q.open_slots <> s.overlap_k - coalesce(a.leased, 0) - coalesce(a.submitted, 0)
               OR q.submitted <> coalesce(a.submitted, 0))""",
}
# Not a violation, but with 15-minute leases none should happen here.
LATE = """
    SELECT count(*) FROM {late} l JOIN {assignment} a ON a.id = l.assignment_id WHERE a.study_id = ANY(%(studies)s)"""


def invariants_check(study_ids: list[int]) -> dict[str, int]:
    checks = {name: scalar(query, {"studies": study_ids}) for name, query in INVARIANTS.items()}
    checks["late submissions (answers kept but refused)"] = scalar(LATE, {"studies": study_ids})
    return checks


def ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.0f}" if value >= 100 else f"{value:.1f}"


def mark(ok: bool) -> str:
    return "**met**" if ok else "**missed**"


def report(
    scenarios: list[Scenario],
    results: dict[str, dict[int, LevelStats]],
    seeds: dict[str, dict],
    checks: dict[str, int],
    args: argparse.Namespace,
    warmup: float,
    seconds: float,
    database: str,
) -> str:
    lines = [
        "## Reviewer queue over HTTP: gunicorn + Django + PostgreSQL",
        "",
        f"Simulated reviewers (aiohttp, one session and cookie jar each, logged in through the login form) "
        f"against `gunicorn reviewapp.wsgi -w {args.workers}` (sync workers) with DEBUG off (a random SECRET_KEY; "
        f"HTTPS redirect and secure-only cookies off, since this is plain HTTP on the loopback) on {database}, "
        "all on this one machine. Each reviewer loops with no think time: **next** = `GET /review/<slug>/` "
        "with `HX-Request: true` (the work partial); **submit+next** = `POST` of the answer form as rendered "
        "(decision, CSRF token, the page's interaction and timing fields) with `HX-Request: true`, whose "
        f"response is the next item's partial. Each level ran {seconds:g} s after {warmup:g} s of warm-up"
        f"{' (--quick)' if args.quick else ''}. Latencies are client-side in ms, queueing at gunicorn "
        "included; labels/s = labels the database committed in the window / window (the client's count of "
        "200 answers wholly inside the window is beside it). CPU = cores busy during the window: gunicorn's "
        "workers, the PostgreSQL backends of the benchmark database, this client, and everything else on the "
        "machine (PostgreSQL's background writers, other people's tests).",
        "",
        "Studies: running, between subjects, three arms (control, recommendation, recommendation+rationale; "
        f"the {REVIEWERS} reviewers allocated by the app's permuted blocks), k = {K}, one approve/reject field; "
        "items are five-message support-agent transcripts with tool calls, seeded by SQL; quota rows by "
        "`quotas_sync`.",
        "",
    ]
    for scenario in scenarios:
        levels = results.get(scenario.key)
        if not levels:
            continue
        seed = seeds[scenario.key]
        extra = f" Item order: {scenario.item_order}" + (
            f"; reviewer quota {scenario.quota:,} (checked in every claim, reached by nobody in the window)."
            if scenario.quota
            else "; no quota."
        )
        if scenario.history:
            extra += (
                f" Each of the {REVIEWERS} reviewers already has {scenario.history:,} submitted labels in the "
                f"study, on {seed['history_items']:,} earlier items holding their k labels per arm (the "
                "smaller arms' leftovers stay open), and a cursor past them."
            )
        steps = ", ".join(f"{name} {value:.1f} s" for name, value in seed_steps(seed["detail"]))
        lines += [
            f"### {scenario.title} (`{scenario.key}`)",
            "",
            f"Seeded in {seed['seconds']:.0f} s: {steps}.{extra}",
            "",
            "| reviewers | next p50 / p95 / p99 | submit+next p50 / p95 / p99 | labels/s | labels in window (DB / client) "
            "| errors | CPU cores: gunicorn / PostgreSQL / client / other | gunicorn CPU per label |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for level, stats in levels.items():
            c = stats.cores
            cpu = f"{c['gunicorn']:.2f} / {c['postgres']:.2f} / {c['client']:.2f} / {c['other']:.2f}" if c else "-"
            lines.append(
                f"| {level} | {ms(percentile(stats.next_ms, 50))} / {ms(percentile(stats.next_ms, 95))} / "
                f"{ms(percentile(stats.next_ms, 99))} | {ms(percentile(stats.submit_ms, 50))} / "
                f"{ms(percentile(stats.submit_ms, 95))} / {ms(percentile(stats.submit_ms, 99))} | "
                f"{labels_per_s(stats):.0f} | {stats.labels_db:,} / {stats.labels_client:,} | {stats.errors} | "
                f"{cpu} | {ms(gunicorn_ms_per_label(stats))} ms |"
            )
        lines.append("")

    small, large = results.get("10k"), results.get("1M")
    if small and large:
        lines += [
            "### 1M / 10k",
            "",
            "| reviewers | next p50 | next p95 | submit+next p50 | submit+next p95 |",
            "|---:|---:|---:|---:|---:|",
        ]
        for level in LEVELS:
            lines.append(
                f"| {level} | " + " | ".join(f"{r:.2f}x" for r in scale_ratios(small[level], large[level])) + " |"
            )
        lines.append("")

    lines += ["### Targets", "", "| target | measured | verdict |", "|---|---|---|"]
    for scenario in scenarios:
        stats = results.get(scenario.key, {}).get(TARGET_NEXT_AT)
        if stats is None:
            continue
        get95, post95 = percentile(stats.next_ms, 95), percentile(stats.submit_ms, 95)
        lines.append(
            f"| next-item p95 ≤ {TARGET_NEXT_P95_MS} ms at {TARGET_NEXT_AT} reviewers, `{scenario.key}` | "
            f"GET next {ms(get95)} ms; submit+next (the htmx request that brings the next item) {ms(post95)} ms | "
            f"GET {mark(get95 <= TARGET_NEXT_P95_MS)}; submit+next {mark(post95 <= TARGET_NEXT_P95_MS)} |"
        )
    for scenario in scenarios:
        levels = results.get(scenario.key)
        if not levels:
            continue
        best_level, best = max(levels.items(), key=lambda kv: labels_per_s(kv[1]))
        lines.append(
            f"| ≥ {TARGET_LABELS_PER_S} labels/s end to end, `{scenario.key}` | best {labels_per_s(best):.0f}/s "
            f"(at {best_level} reviewer{'s' if best_level > 1 else ''}) | "
            f"{mark(labels_per_s(best) >= TARGET_LABELS_PER_S)} |"
        )
    if small and large:
        for level in LEVELS:
            worst = max(scale_ratios(small[level], large[level]))
            lines.append(
                f"| 1M at most {TARGET_SCALE_RATIO}x slower than 10k (p50 and p95 of next and submit+next), "
                f"{level} reviewer{'s' if level > 1 else ''} | worst ratio {worst:.2f}x | "
                f"{mark(worst <= TARGET_SCALE_RATIO)} |"
            )
    lines += [
        "",
        "Database invariants after the runs (all three studies; 0 expected for each): "
        + "; ".join(f"{name}: **{count}**" for name, count in checks.items())
        + ".",
        "",
        "Reading the figures: with no think time the reviewers are a closed loop, so once the server is "
        "saturated (from a few reviewers on) latency is queueing, about reviewers ÷ requests per second "
        "(Little's law), and labels/s is the server's capacity; the latency target can only be met at 16 "
        "busy reviewers if that capacity is near 16 ÷ 60 ms ≈ 270 requests/s. Real reviewers spend seconds "
        "per item, so 16 of them load the server far less. In steady state the GET returns the lease the "
        "previous POST claimed, so the claim's SKIP LOCKED scan is timed inside submit+next, and each label "
        "costs two requests (a browser using htmx makes only the POST). Client, gunicorn and PostgreSQL "
        "share the machine's cores; the CPU columns show where they went.",
        "",
        f"Reproduce: `python -m bench.queue{' --quick' if args.quick else ''}{' --reuse-db' if args.reuse_db else ''} "
        f"--workers {args.workers}` "
        f"(`make bench-queue` runs the full {FULL_LEVEL[1]:g}-second levels). It creates or recreates "
        f"`{BENCH_DB}` on DATABASE_URL's server (else the embedded one) and seeds it; `--reuse-db` keeps the seeded studies and only undoes "
        "earlier runs' assignments and labels.",
    ]
    return "\n".join(lines)


SEED_STEPS = ("study", "items", "quotas_sync", "history", "VACUUM")


def seed_steps(detail: dict[str, float]) -> list[tuple[str, float]]:
    # jsonb keeps object keys in its own order: put the steps back in the order they ran.
    def position(name: str) -> int:
        return next((i for i, step in enumerate(SEED_STEPS) if name.startswith(step)), len(SEED_STEPS))

    return sorted(detail.items(), key=lambda kv: position(kv[0]))


def scale_ratios(small: LevelStats, large: LevelStats) -> list[float]:
    """1M over 10k: next p50, next p95, submit+next p50, submit+next p95."""
    return [
        percentile(large.next_ms, 50) / percentile(small.next_ms, 50),
        percentile(large.next_ms, 95) / percentile(small.next_ms, 95),
        percentile(large.submit_ms, 50) / percentile(small.submit_ms, 50),
        percentile(large.submit_ms, 95) / percentile(small.submit_ms, 95),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK_LEVEL[1]:g} s per level after {QUICK_LEVEL[0]:g} s of warm-up (default {FULL_LEVEL[1]:g} s after {FULL_LEVEL[0]:g} s)",
    )
    parser.add_argument("--reuse-db", action="store_true", help=f"keep {BENCH_DB} and its seeded studies")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn sync workers (default 3: 2 x cores - 1)")
    parser.add_argument(
        "--scenarios", default=",".join(s.key for s in SCENARIOS), help="comma-separated subset of 10k,1M,10k-history"
    )
    args = parser.parse_args()
    wanted = set(args.scenarios.split(","))
    scenarios = [s for s in SCENARIOS if s.key in wanted]
    if not scenarios:
        parser.error(f"--scenarios: choose from {', '.join(s.key for s in SCENARIOS)}")
    warmup, seconds = QUICK_LEVEL if args.quick else FULL_LEVEL

    WORK_DIR.mkdir(parents=True, exist_ok=True)
    base_url, child_env = configure_environment()
    database_ensure(base_url, fresh=not args.reuse_db)
    sys.path.insert(0, str(ROOT))
    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from bench.report import write_section

    call_command("migrate", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    seed_table_ensure()

    reviewers = reviewers_ensure()
    seeds: dict[str, dict] = {}
    for scenario in scenarios:
        record = seeded(scenario)
        if record is None:
            sys.stdout.write(f"Seeding {scenario.key} ({scenario.title})\n")
            record = scenario_seed(scenario, reviewers)
            sys.stdout.write(f"  seeded {scenario.key} in {record['seconds']:.1f} s\n")
        else:
            removed = run_state_reset(record["study_id"], record["last_history_assignment"])
            sys.stdout.write(
                f"Reusing {scenario.key} (seeded in {record['seconds']:.1f} s); {removed:,} run rows reset\n"
            )
        seeds[scenario.key] = record
    vacuum_analyze()
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        database = f"PostgreSQL {cursor.fetchone()[0].split()[0]}"
        cursor.execute("SHOW autovacuum")
        if cursor.fetchone()[0] == "off":
            database += " (autovacuum off on this server: the benchmark runs VACUUM ANALYZE itself before timing)"
    connection.close()

    process, base, log = gunicorn_start(args.workers, child_env)
    sys.stdout.write(f"gunicorn ({args.workers} sync workers) at {base}; log {log}\n")
    try:
        results = asyncio.run(benchmark(base, process.pid, scenarios, warmup, seconds))
    finally:
        gunicorn_stop(process)

    for scenario in scenarios:
        for stats in results[scenario.key].values():
            stats.labels_db = labels_counted(seeds[scenario.key]["study_id"], stats)
    checks = invariants_check([seeds[s.key]["study_id"] for s in scenarios])
    for name, count in checks.items():
        sys.stdout.write(f"  invariant: {name}: {count}\n")

    body = report(scenarios, results, seeds, checks, args, warmup, seconds, database)
    if len(scenarios) == len(SCENARIOS):
        write_section("queue-http", body)
    else:
        sys.stdout.write("(a subset of scenarios: BENCHMARKS.md left unchanged)\n")
    sys.stdout.write(body + "\n")
    errors = sum(stats.errors for levels in results.values() for stats in levels.values())
    if errors or any(checks[name] for name in INVARIANTS):
        sys.exit(1)


if __name__ == "__main__":
    main()
