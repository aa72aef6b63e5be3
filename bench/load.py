"""Load: 64 reviewers through gunicorn for minutes, served as docker-compose.yml serves the app.

    python -m bench.load [--minutes 3] [--reviewers 64] [--think 2-8] [--phases think,busy] [--workers N]

Two phases, each a timed window of ``--minutes`` after a warm-up, with the same reviewers:

- ``think``: reviewers read before they answer, ``--think`` seconds (uniform, 2-8 s by
  default), as people do; this is the load 64 real reviewers put on the server;
- ``busy``: no think time, every reviewer answers as soon as the item arrives; this finds
  the server's capacity (and its latency when saturated).

Each reviewer is an aiohttp session logged in through the login form; it loops as
bench/queue.py's do: GET the review page as htmx does (the next item's partial), then
POST the answer form as rendered (its response is the following item). gunicorn runs
with the web service's command from docker-compose.yml (its ``--workers``; sync workers,
gunicorn's default), DEBUG off, a random SECRET_KEY and the compose file's other
defaults, except the three HTTPS-only settings, turned off as its comment says for a
plain-HTTP trial. Docker itself is not used: the report says whether it was available.

The study is bench/queue.py's kind (a 10,000-item, three-arm study, k = 3, seeded by SQL)
in bench/queue.py's database (``reviewapp_bench`` on DATABASE_URL's server, else the
embedded one), under its own slug; what earlier runs added is undone first. Afterwards:
every submit answered 200 must have its label in the database (no lost label), the
queue's invariants must hold (no double assignment, no item over k, quotas true), and no
request may fail. The ``load`` section of BENCHMARKS.md is written; the exit status is 1
if any check failed.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import aiohttp
import django
import yaml

from bench import queue as q

SCENARIO = q.Scenario("load", "bench-load", "10,000 items (load test)", 10_000, 0)
ANSWER_RE = re.compile(r"/items/(\d+)/answer/")
LOGIN_CONCURRENCY = 8  # logins hash a password on the server: a few at a time, before timing


@dataclass
class Phase:
    name: str
    think: tuple[float, float]  # (min, max) seconds of reading per item; (0, 0) for none
    warmup: float
    seconds: float
    stats: q.LevelStats = field(default_factory=q.LevelStats)
    acknowledged: list[int] = field(default_factory=list)  # assignments whose submit got 200
    requests: int = 0

    @property
    def thinking(self) -> bool:
        return self.think[1] > 0


# --- the compose file's web service -----------------------------------------------------


def compose_web() -> tuple[str, int]:
    """The web service's gunicorn command in docker-compose.yml, and its worker count."""
    services = yaml.safe_load((q.ROOT / "docker-compose.yml").read_text())["services"]
    command = services["web"]["command"]
    gunicorn = command[command.index("gunicorn") :].rstrip('"')
    workers = re.search(r"(?:--workers|-w)[ =](\d+)", gunicorn)
    return gunicorn, int(workers[1]) if workers else 1


def docker_status() -> str:
    try:
        result = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"not usable ({type(exc).__name__})"
    if result.returncode == 0:
        return "available"
    reason = next((line.strip() for line in result.stderr.splitlines() if line.strip()), "docker info failed")
    return f"not usable (`docker info`: {reason[:160]})"


# --- reviewers ------------------------------------------------------------------------


async def reviewer_loop(reviewer: q.Reviewer, phase: Phase, measure_from: float, until: float) -> None:
    """GET the next item, read it (think time), answer it; time what falls in the window."""
    rng = random.Random(reviewer.seed)
    stats = phase.stats
    counter = reviewer.seed
    page_url = f"/review/{SCENARIO.slug}/"
    if phase.thinking:
        # Reviewers do not all start at once: spread them over one reading time.
        await asyncio.sleep(rng.uniform(0, phase.think[1]))
    while time.perf_counter() < until:
        started = time.perf_counter()
        status, page, ms = await q.fetch(reviewer.session.get(page_url, headers=q.HX))
        phase.requests += 1
        timed = started >= measure_from and time.perf_counter() <= until
        if status != 200:
            stats.error(f"GET next ({reviewer.username})", status, page)
            await asyncio.sleep(0.5)
            continue
        counter += 7919
        form = q.answer_form(page, SCENARIO.slug, counter)
        if form is None:
            stats.error(f"GET next ({reviewer.username}): no answer form", status, page)
            await asyncio.sleep(0.5)
            continue
        if timed:
            stats.next_ms.append(ms)
        if phase.thinking:
            await asyncio.sleep(rng.uniform(*phase.think))
            if time.perf_counter() >= until:
                break
        action, data = form
        started = time.perf_counter()
        status, page, ms = await q.fetch(reviewer.session.post(action, data=data, headers=q.HX))
        phase.requests += 1
        timed = started >= measure_from and time.perf_counter() <= until
        if status != 200:
            stats.error(f"POST answer ({reviewer.username})", status, page)
            continue
        phase.acknowledged.append(int(ANSWER_RE.search(action)[1]))
        if timed:
            stats.submit_ms.append(ms)
            stats.labels_client += 1


async def phase_run(reviewers: list[q.Reviewer], phase: Phase, gunicorn_pid: int) -> None:
    stats = phase.stats
    stats.window_seconds = phase.seconds
    now = time.perf_counter()
    measure_from, until = now + phase.warmup, now + phase.warmup + phase.seconds
    stats.window_from = datetime.now(UTC) + timedelta(seconds=phase.warmup)
    stats.window_to = stats.window_from + timedelta(seconds=phase.seconds)
    running = asyncio.gather(*(reviewer_loop(r, phase, measure_from, until) for r in reviewers))
    await asyncio.sleep(phase.warmup)
    before, started = q.cpu_snapshot(gunicorn_pid), time.perf_counter()
    await asyncio.sleep(max(0.0, until - time.perf_counter()))
    after, elapsed = q.cpu_snapshot(gunicorn_pid), time.perf_counter() - started
    stats.cores = q.cpu_cores(before, after, elapsed)
    await running


async def drive(base: str, gunicorn_pid: int, count: int, phases: list[Phase]) -> None:
    timeout = aiohttp.ClientTimeout(total=120)
    sessions = [
        aiohttp.ClientSession(base_url=base, cookie_jar=aiohttp.CookieJar(unsafe=True), timeout=timeout)
        for _ in range(count)
    ]
    reviewers = [q.Reviewer(q.reviewer_name(n + 1), s, n * 104_729) for n, s in enumerate(sessions)]
    try:
        gate = asyncio.Semaphore(LOGIN_CONCURRENCY)

        async def gated_login(reviewer: q.Reviewer) -> None:
            async with gate:
                await q.login(reviewer)

        started = time.perf_counter()
        await asyncio.gather(*(gated_login(r) for r in reviewers))
        sys.stdout.write(f"  {count} reviewers logged in ({time.perf_counter() - started:.1f} s)\n")
        for phase in phases:
            sys.stdout.write(f"  {phase.name}: {phase.warmup:g} s warm-up, {phase.seconds:g} s timed\n")
            sys.stdout.flush()
            await phase_run(reviewers, phase, gunicorn_pid)
            sys.stdout.write(f"  {phase.name}: {q.level_line(phase.stats)}\n")
            for sample in phase.stats.error_samples:
                sys.stdout.write(f"      {sample}\n")
            sys.stdout.flush()
    finally:
        await asyncio.gather(*(s.close() for s in sessions))


# --- study and checks -------------------------------------------------------------------


def study_ready(count: int) -> int:
    """The load study, seeded or reset to its seeded state; returns its id."""
    from reviewapp.studies.models import Enrolment

    reviewers = q.reviewers_ensure(count)
    record = q.seeded(SCENARIO)
    enrolled = Enrolment.objects.filter(study_id=record["study_id"]).count() if record else 0
    if record is None or enrolled < count:
        # A new study, or one seeded for fewer reviewers (scenario_seed replaces it).
        q.execute("DELETE FROM bench_queue_seed WHERE slug = %s", [SCENARIO.slug])
        sys.stdout.write(f"Seeding {SCENARIO.title} for {count} reviewers\n")
        record = q.scenario_seed(SCENARIO, reviewers)
    else:
        removed = q.run_state_reset(record["study_id"], record["last_history_assignment"])
        sys.stdout.write(f"Reusing the load study; {removed:,} assignments of earlier runs removed\n")
    q.vacuum_analyze()
    return record["study_id"]


def labels_lost(acknowledged: list[int]) -> int:
    """Submits answered 200 whose label is not in the database."""
    if not acknowledged:
        return 0
    saved = q.scalar("SELECT count(DISTINCT assignment_id) FROM {label} WHERE assignment_id = ANY(%s)", [acknowledged])
    return len(set(acknowledged)) - saved


# --- report ---------------------------------------------------------------------------------


def phase_row(phase: Phase, reviewers: int) -> str:
    s = phase.stats
    p = q.percentile
    think = f"{phase.think[0]:g}-{phase.think[1]:g} s" if phase.thinking else "none"
    cores = s.cores
    cpu = f"{cores['gunicorn']:.2f} / {cores['postgres']:.2f} / {cores['client']:.2f}" if cores else "-"
    requests_per_s = (len(s.next_ms) + len(s.submit_ms)) / phase.seconds
    return (
        f"| {phase.name} | {reviewers} | {think} | {phase.seconds:g} s | {q.labels_per_s(s):.1f} | "
        f"{requests_per_s:.1f} | "
        f"{q.ms(p(s.next_ms, 50))} / {q.ms(p(s.next_ms, 95))} / {q.ms(p(s.next_ms, 99))} | "
        f"{q.ms(p(s.submit_ms, 50))} / {q.ms(p(s.submit_ms, 95))} / {q.ms(p(s.submit_ms, 99))} | "
        f"{s.labels_db:,} | {s.errors} | {cpu} |"
    )


def report(args, phases: list[Phase], checks: dict, lost: int, acknowledged: int, setup: dict) -> str:
    total_errors = sum(p.stats.errors for p in phases)
    mean_think = sum(think_range(args.think)) / 2
    double = checks["reviewer with two assignments of one item"]
    lines = [
        f"## Load: {args.reviewers} reviewers through gunicorn, served as docker-compose.yml serves it",
        "",
        f"`{setup['command']}` (the compose web service's command; {setup['workers']} sync workers, bound to a "
        f"free loopback port instead of 0.0.0.0:8000) with the compose file's settings: DEBUG off, a random "
        f"SECRET_KEY, CONN_MAX_AGE and everything else at the app's defaults, except SECURE_SSL_REDIRECT, "
        f"SESSION_COOKIE_SECURE and CSRF_COOKIE_SECURE turned off, as the compose file says for a plain-HTTP "
        f"trial. Docker was {setup['docker']}; gunicorn ran directly on this machine, not in the image, "
        f"against {setup['database']} rather than the compose file's PostgreSQL 17 container. The client, "
        "gunicorn and PostgreSQL share the machine's cores.",
        "",
        f"Each reviewer (aiohttp, one session each, logged in through the login form) loops: **next** = "
        f"`GET /review/<slug>/` with `HX-Request: true`; then, in the `think` phase, reads for a uniform "
        f"{args.think} s; then **submit** = `POST` of the answer form as rendered (its response is the "
        f"following item). The `busy` phase has no reading time: the server's capacity. Latencies are "
        f"client-side in ms; labels/s counts labels the database committed in the timed window. Study: "
        f"{SCENARIO.title}, three arms, k = {q.K}, one approve/reject field, seeded by bench/queue.py.",
        "",
        "| phase | reviewers | think time | timed window | labels/s | requests/s | next p50 / p95 / p99 | "
        "submit p50 / p95 / p99 | labels in window | errors | CPU cores: gunicorn / PostgreSQL / client |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        *(phase_row(phase, args.reviewers) for phase in phases),
        "",
        f"Checks over both phases: **{total_errors} errors** (any non-200 answer or network failure); "
        f"**{double} double assignments**; **{lost} lost labels** ({acknowledged:,} submits answered 200, "
        f"{acknowledged - lost:,} of them in the database); other queue invariants: "
        + "; ".join(
            f"{name}: **{count}**"
            for name, count in checks.items()
            if name != "reviewer with two assignments of one item"
        )
        + ".",
        "",
        *(
            [
                f"Reading the figures: with a {args.think} s reading time a reviewer offers about one label per "
                f"{mean_think:g} s, so {args.reviewers} of them ask for about {args.reviewers / mean_think:.0f} "
                "labels/s (requests/s counts both requests of each label); below the busy phase's capacity, "
                "latency is service time, not queueing. Without reading time the reviewers are a closed loop "
                "and latency is mostly queueing at gunicorn (reviewers ÷ capacity, Little's law).",
            ]
            if mean_think
            else []
        ),
        "",
        f"Reproduce: `python -m bench.load --minutes {args.minutes:g} --reviewers {args.reviewers} --think "
        f"{args.think}` (`make bench-load` runs the default 3 minutes per phase).",
    ]
    return "\n".join(lines)


def think_range(text: str) -> tuple[float, float]:
    low, _, high = text.partition("-")
    low_s, high_s = float(low), float(high or low)
    if low_s < 0 or high_s < low_s:
        raise argparse.ArgumentTypeError("--think takes MIN-MAX seconds, e.g. 2-8")
    return low_s, high_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=3.0, help="timed window of each phase (default 3)")
    parser.add_argument("--reviewers", type=int, default=64)
    parser.add_argument("--think", default="2-8", help="reading time per item in the think phase, MIN-MAX seconds")
    parser.add_argument("--phases", default="think,busy", help="comma-separated: think, busy (default both)")
    parser.add_argument("--workers", type=int, help="gunicorn workers (default: docker-compose.yml's web service)")
    args = parser.parse_args()
    try:
        think = think_range(args.think)
    except (ValueError, argparse.ArgumentTypeError):
        parser.error("--think takes MIN-MAX seconds, e.g. 2-8")
    names = [name for name in args.phases.split(",") if name]
    if not names or set(names) - {"think", "busy"}:
        parser.error("--phases: think, busy or both")
    seconds = args.minutes * 60
    phases = [
        Phase(name, think if name == "think" else (0.0, 0.0), think[1] + 2 if name == "think" else 10.0, seconds)
        for name in names
    ]

    command, compose_workers = compose_web()
    workers = args.workers or compose_workers
    if args.workers and args.workers != compose_workers:
        command = f"{command} (run here with --workers {workers})"
    q.WORK_DIR.mkdir(parents=True, exist_ok=True)
    base_url, child_env = q.configure_environment()
    q.database_ensure(base_url, fresh=False)
    sys.path.insert(0, str(q.ROOT))
    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from bench.report import write_section

    call_command("migrate", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    q.seed_table_ensure()
    study_id = study_ready(args.reviewers)
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        database = f"PostgreSQL {cursor.fetchone()[0].split()[0]}"
    connection.close()
    setup = {"command": command, "workers": workers, "docker": docker_status(), "database": database}

    process, base, log = q.gunicorn_start(workers, child_env, log=q.WORK_DIR / "gunicorn-load.log")
    sys.stdout.write(f"gunicorn ({workers} sync workers) at {base}; log {log}\n")
    try:
        asyncio.run(drive(base, process.pid, args.reviewers, phases))
    finally:
        q.gunicorn_stop(process)

    for phase in phases:
        phase.stats.labels_db = q.labels_counted(study_id, phase.stats)
    acknowledged = [a for phase in phases for a in phase.acknowledged]
    lost = labels_lost(acknowledged)
    checks = q.invariants_check([study_id])
    body = report(args, phases, checks, lost, len(acknowledged), setup)
    write_section("load", body)
    sys.stdout.write(body + "\n")
    if lost or any(p.stats.errors for p in phases) or any(checks[name] for name in q.INVARIANTS):
        sys.exit(1)


if __name__ == "__main__":
    main()
