"""Writes one benchmark's section of BENCHMARKS.md, leaving the other sections alone."""

from __future__ import annotations

import os
import platform
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "BENCHMARKS.md"
HEADER = (
    "# Benchmarks\n\n"
    "Written by `make bench` (or each `python -m bench.<name>`); each section says the machine and date it was "
    "measured on. Targets come from the issues; these are measurements, not unit tests.\n"
)


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        pg = subprocess.run(["psql", "--version"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pg = "psql not found"
    return f"{platform.node() or 'host'}: {os.cpu_count()} cores, {cpu}; Python {platform.python_version()}; {pg}"


def server_url() -> str:
    """The PostgreSQL server the benchmarks create their databases on: DATABASE_URL's, or,
    as the app does without it, the embedded server under var/pgdata (started if needed)."""
    url = os.environ.get("DATABASE_URL", "")
    if url:
        return url
    from reviewapp.embedded_db import embedded_database_url

    return embedded_database_url(Path(os.environ.get("EMBEDDED_PG_DIR", ROOT / "var" / "pgdata")))


def write_section(name: str, body: str) -> None:
    text = REPORT.read_text() if REPORT.exists() else HEADER
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = f"<!-- bench:{name} -->\n{body.strip()}\n\n_Measured {stamp} on {machine()}._\n<!-- /bench:{name} -->"
    pattern = re.compile(rf"<!-- bench:{re.escape(name)} -->.*?<!-- /bench:{re.escape(name)} -->", re.S)
    text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section + "\n"
    REPORT.write_text(text)
