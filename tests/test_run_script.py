"""./scripts/run watches the Celery worker and beat: restarts one that exits, stops everything
loudly when one keeps exiting, and stops the rest when the web server exits.

The script's own ``supervise`` function runs here (the script is sourced, which defines its
functions without starting anything), under the same ``set -euo pipefail`` its main part
runs with, on stand-in services: short shell commands in place of runserver and celery.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from tests.conftest import ROOT

SCRIPT = ROOT / "scripts" / "run"


def supervise(folder: Path, services: str, *names: str, **env: str) -> subprocess.CompletedProcess:
    """Define the stand-in services (bash functions run_<name>), then ``supervise NAMES``."""
    code = f"""
set -euo pipefail
source {SCRIPT}
LOG_DIR={folder}
cd {folder}
{services}
supervise {" ".join(names)}
"""
    return subprocess.run(
        ["bash", "-c", code], capture_output=True, text=True, timeout=60, env={**os.environ, **env}, cwd=folder
    )


def running(marker: str) -> list[int]:
    """Processes whose command line holds ``marker`` (a stand-in's unique sleep)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and marker in (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def starts(folder: Path, name: str) -> int:
    path = folder / f"{name}.starts"
    return len(path.read_text().splitlines()) if path.exists() else 0


class TestRunScriptSupervision:
    def test_it_restarts_a_worker_that_exits(self, tmp_path):
        # The worker exits with status 3 on its first start and stays up on its second.
        services = """
run_web() { exec sleep 4; }
run_worker() {
  echo started >> worker.starts
  if [ "$(wc -l < worker.starts)" -ge 2 ]; then exec sleep 31.71; fi
  echo "worker: cannot reach the broker" >&2
  exit 3
}
"""
        result = supervise(tmp_path, services, "web", "worker")

        assert result.returncode == 0, result.stderr
        assert starts(tmp_path, "worker") == 2
        assert "worker exited (status 3); starting it again (1 of 5 restarts" in result.stderr
        assert "cannot reach the broker" in (tmp_path / "worker.log").read_text()
        # The web server's exit stopped the restarted worker too.
        assert "web exited (status 0); stopping worker." in result.stderr
        assert running("sleep 31.71") == []

    def test_it_stops_everything_loudly_when_a_worker_keeps_exiting(self, tmp_path):
        services = """
run_web() { exec sleep 33.31; }
run_worker() { echo started >> worker.starts; echo "worker: broker folder is missing" >&2; exit 7; }
run_beat() { exec sleep 33.32; }
"""
        started = time.monotonic()
        result = supervise(tmp_path, services, "web", "worker", "beat", RUN_MAX_RESTARTS="2")

        assert result.returncode == 1
        assert time.monotonic() - started < 30
        assert starts(tmp_path, "worker") == 3  # the first start and two restarts
        assert "worker exited (status 7) 3 times within 60 s: STOPPING EVERYTHING." in result.stderr
        # The reason is on the terminal, not only in the log.
        assert "worker: broker folder is missing" in result.stderr
        assert running("sleep 33.31") == [] and running("sleep 33.32") == []

    def test_healthy_services_are_started_once_and_stopped_with_the_web_server(self, tmp_path):
        """The control: nothing is restarted or reported when nothing exits."""
        services = """
run_web() { exec sleep 2; }
run_worker() { echo started >> worker.starts; exec sleep 32.21; }
run_beat() { echo started >> beat.starts; exec sleep 32.22; }
"""
        result = supervise(tmp_path, services, "web", "worker", "beat")

        assert result.returncode == 0, result.stderr
        assert (starts(tmp_path, "worker"), starts(tmp_path, "beat")) == (1, 1)
        assert "starting it again" not in result.stderr and "STOPPING" not in result.stderr
        assert "web exited (status 0); stopping worker beat." in result.stderr
        assert running("sleep 32.21") == [] and running("sleep 32.22") == []

    def test_a_web_server_that_fails_ends_the_run_with_its_status(self, tmp_path):
        services = """
run_web() { exit 4; }
run_worker() { exec sleep 34.41; }
"""
        result = supervise(tmp_path, services, "web", "worker")

        assert result.returncode == 4
        assert running("sleep 34.41") == []
