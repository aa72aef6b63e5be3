"""A 1M-label raw export streamed through the real view, timed, with its memory.

    python -m bench.export [--runs 3] [--labels 1000000] [--items 10000] [--reviewers 200] [--no-tracemalloc]

Uses the study bench.metrics seeds in ``reviewapp_bench_metrics`` (on DATABASE_URL's, else the embedded
server): if that database does not hold it with the requested numbers of labels, items and
reviewers, it is seeded first with bench.metrics' own seeding (set-based SQL, about 30 s).

Each run calls the export view function (``export_views.export_download``) with a request
from RequestFactory and a researcher of the study, exactly as Django's handler would, and
consumes the StreamingHttpResponse iterator to the end, counting bytes and rows; the
threshold EXPORT_SYNC_MAX_ROWS is raised for the run so the view streams instead of
queueing a job. Memory: the kernel's peak-RSS mark is reset before each run
(``/proc/self/clear_refs``), RSS is sampled as the rows go by, and one more run under
tracemalloc gives the peak of Python allocations. Then the same export as JSON Lines, and
as a background job (the task's service run in this process, writing the file). Writes the
``export`` section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import django

from bench import metrics as seeding

TARGET_SECONDS = 30.0
SAMPLES = 10  # RSS samples per run, evenly over the rows


def ensure_seeded(args: argparse.Namespace) -> dict:
    """The bench.metrics study, seeded if missing; returns its seeding record."""
    base_url = seeding.configure_environment()
    seeding.database_ensure(base_url, fresh=False)
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    record = seeding.seeded(args)
    if record is not None:
        return record
    from django.db import connection

    connection.close()
    sys.stdout.write(f"Seeding {args.labels:,} labels with bench.metrics (database {seeding.BENCH_DB})\n")
    seeding.database_ensure(base_url, fresh=True)
    call_command("migrate", verbosity=0)
    seeding.seeded(args)  # creates the seed table
    return seeding.seed(args)


def researcher(study):
    from django.contrib.auth import get_user_model

    user, _ = get_user_model().objects.get_or_create(username="bench-export", defaults={"is_staff": True})
    study.researchers.add(user)
    return user


def export_once(study, user, fmt: str, expected_rows: int) -> dict:
    """One export through the view, consumed to the end."""
    from django.test import RequestFactory, override_settings

    from reviewapp.reports import export_views

    request = RequestFactory().get(f"/studies/{study.slug}/exports/labels.{fmt}")
    request.user = user
    every = max(1, expected_rows // SAMPLES)
    rss = []
    baseline = seeding.rss_mb()
    per_run_peak = seeding.peak_reset()
    size = lines = 0
    next_sample = every
    started = time.perf_counter()
    with override_settings(EXPORT_SYNC_MAX_ROWS=10**12):
        response = export_views.export_download(request, slug=study.slug, report="labels", fmt=fmt)
        first_byte = None
        for chunk in response.streaming_content:
            if first_byte is None:
                first_byte = time.perf_counter() - started
            size += len(chunk)
            lines += chunk.count(b"\n")
            if lines >= next_sample:
                rss.append(seeding.rss_mb())
                next_sample += every
        response.close()
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "first_byte": first_byte or seconds,
        "bytes": size,
        # The seeded labels have no line break inside a cell, so lines are rows (+ the header).
        "rows": lines - (1 if fmt == "csv" else 0),
        "baseline_mb": baseline,
        "peak_mb": seeding.peak_rss_mb(),
        "peak_is_per_run": per_run_peak,
        "rss_samples": rss,
        "streaming": response.streaming,
    }


def traced_peak(study, user, expected_rows: int) -> tuple[float, float]:
    """Peak of Python allocations during one more CSV export (tracemalloc slows it down)."""
    tracemalloc.start()
    try:
        outcome = export_once(study, user, "csv", expected_rows)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / 2**20, outcome["seconds"]


def job_once(study) -> dict:
    """The same export as a background job, its service run in this process."""
    from django.test import override_settings

    from reviewapp.jobs import job_run
    from reviewapp.reports import services
    from reviewapp.reports.models import ExportJob

    with tempfile.TemporaryDirectory(prefix="bench-export-") as directory, override_settings(EXPORT_DIR=directory):
        job, _ = services.export_job_create(study=study, report="labels", fmt="csv", actor=None)
        baseline = seeding.rss_mb()
        per_run_peak = seeding.peak_reset()
        started = time.perf_counter()
        job = job_run(ExportJob, job.pk)
        seconds = time.perf_counter() - started
        size = Path(job.file_path).stat().st_size
    return {
        "seconds": seconds,
        "rows": job.rows_done,
        "bytes": size,
        "status": job.status,
        "baseline_mb": baseline,
        "peak_mb": seeding.peak_rss_mb(),
        "peak_is_per_run": per_run_peak,
    }


def report(args, record, study_labels, runs, jsonl, job, traced, database, loads) -> str:
    walls = [r["seconds"] for r in runs]
    median = statistics.median(walls)
    median_run = sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2]
    peak = max(r["peak_mb"] for r in runs)
    baseline = median_run["baseline_mb"]
    samples = median_run["rss_samples"]
    growth = max(r["peak_mb"] - r["baseline_mb"] for r in runs)
    met = median <= TARGET_SECONDS
    per_run = all(r["peak_is_per_run"] for r in runs)
    lines = [
        f"## Export: {study_labels:,} raw labels streamed as CSV, {database}",
        "",
        f"The `bench-metrics` study of bench.metrics ({args.items:,} items, {args.reviewers} reviewers, 3 arms, "
        f"{study_labels:,} labels). Each run calls the export view (`export_views.export_download`, GET "
        "`/studies/<slug>/exports/labels.csv`) with a RequestFactory request as a researcher and consumes the "
        "`StreamingHttpResponse` to the end, counting bytes and rows (EXPORT_SYNC_MAX_ROWS raised so the view "
        "streams instead of queueing a job). The view reads with a server-side cursor, "
        f"{2000:,} rows per fetch, and writes each chunk through `csv.writer` with formula neutralization.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| rows / bytes per export | {median_run['rows']:,} / {median_run['bytes'] / 2**20:,.1f} MiB "
        f"({median_run['bytes'] / median_run['rows']:.0f} B per row, 28 columns) |",
        f"| **CSV export, wall time, median of {len(runs)}** | **{median:.2f} s** "
        f"({median_run['rows'] / median:,.0f} rows/s) |",
        f"| all runs | {', '.join(f'{w:.2f} s' for w in walls)} |",
        f"| time to the first bytes (median run) | {median_run['first_byte']:.2f} s |",
        f"| RSS before the export (median run) | {baseline:,.0f} MB |",
        "| RSS while streaming, every 10% of the rows (median run) | "
        + ", ".join(f"{mb:,.0f}" for mb in samples)
        + " MB |",
        f"| **peak RSS during an export** | **{peak:,.0f} MB**, at most {growth:+,.0f} MB over the RSS before it"
        + (" (peak mark reset before each run)" if per_run else " (whole process: the peak could not be reset)")
        + " |",
    ]
    if traced:
        lines.append(
            f"| peak of Python allocations (tracemalloc, one more run; {traced[1]:.1f} s under tracing) | "
            f"{traced[0]:,.1f} MiB |"
        )
    lines += [
        f"| the same export as JSON Lines (`labels.jsonl`), one run | {jsonl['seconds']:.2f} s, "
        f"{jsonl['bytes'] / 2**20:,.1f} MiB, peak RSS {jsonl['peak_mb']:,.0f} MB |",
        f"| the same export as a background job (`jobs.job_run` in this process, writing the file) | "
        f"{job['seconds']:.2f} s, {job['rows']:,} rows, {job['bytes'] / 2**20:,.1f} MiB, "
        f"peak RSS {job['peak_mb']:,.0f} MB ({job['status']}) |",
        f"| load average (1 min) before / after | {loads[0]:.2f} / {loads[1]:.2f} |",
        "",
        "| target | measured | verdict |",
        "|---|---|---|",
        f"| a {study_labels:,}-label raw export streamed within {TARGET_SECONDS:.0f} s at flat memory | "
        f"median {median:.2f} s; RSS flat within {max(samples) - min(samples):.0f} MB while streaming, "
        f"peak {peak:,.0f} MB | {'**met**' if met else '**missed**'} |",
        "",
        "Caveats: PostgreSQL runs on the same two cores; the fetch is synchronous (the server computes the "
        "next 2,000 rows while Python waits), so database and Python time add up rather than overlap. The "
        "default EXPORT_SYNC_MAX_ROWS (100,000) sends an export this large to a background job in the app, "
        "because a sync gunicorn worker is killed after its 30 s timeout; the job writes the same bytes.",
        "",
        f"Reproduce: `python -m bench.export` (`make bench-export`); it reuses `{seeding.BENCH_DB}` seeded by "
        "`python -m bench.metrics` and seeds it if missing"
        + (f" (seeded in {record['seconds']:.1f} s)" if record else "")
        + ".",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--labels", type=int, default=1_000_000)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--reviewers", type=int, default=200)
    parser.add_argument("--no-tracemalloc", action="store_true", help="skip the extra run under tracemalloc")
    args = parser.parse_args()

    sys.path.insert(0, str(seeding.ROOT))
    record = ensure_seeded(args)

    from django.db import connection

    from bench.report import write_section
    from reviewapp.queue.models import Label
    from reviewapp.studies.models import Study

    study = Study.objects.get(slug=seeding.STUDY_SLUG)
    user = researcher(study)
    labels = Label.objects.filter(study=study).count()
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        database = f"server PostgreSQL {cursor.fetchone()[0].split()[0]}"
    sys.stdout.write(f"Exporting {labels:,} labels of {study.slug}\n")

    load_before = os.getloadavg()[0]
    runs = []
    for index in range(args.runs):
        outcome = export_once(study, user, "csv", labels)
        runs.append(outcome)
        sys.stdout.write(
            f"  csv run {index + 1}: {outcome['seconds']:.2f} s, {outcome['rows']:,} rows, "
            f"{outcome['bytes'] / 2**20:,.1f} MiB, RSS {outcome['baseline_mb']:,.0f} -> peak {outcome['peak_mb']:,.0f} MB; "
            f"samples {', '.join(f'{mb:.0f}' for mb in outcome['rss_samples'])}\n"
        )
        sys.stdout.flush()
        if outcome["rows"] != labels or not outcome["streaming"]:
            sys.exit(f"the export had {outcome['rows']:,} rows, expected {labels:,}")
    jsonl = export_once(study, user, "jsonl", labels)
    sys.stdout.write(f"  jsonl: {jsonl['seconds']:.2f} s, {jsonl['rows']:,} rows, peak {jsonl['peak_mb']:,.0f} MB\n")
    job = job_once(study)
    sys.stdout.write(f"  job: {job['seconds']:.2f} s, {job['rows']:,} rows, {job['status']}\n")
    traced = None
    if not args.no_tracemalloc:
        traced = traced_peak(study, user, labels)
        sys.stdout.write(f"  tracemalloc peak {traced[0]:,.1f} MiB ({traced[1]:.1f} s traced)\n")
    load_after = os.getloadavg()[0]

    body = report(args, record, labels, runs, jsonl, job, traced, database, (load_before, load_after))
    write_section("export", body)
    sys.stdout.write(body + "\n")


if __name__ == "__main__":
    main()
