"""The served deployment, built and run the way the Docker image builds and runs it.

Docker's daemon is not available on the machines this suite runs on (``docker build``
cannot run), so this test reproduces the image's build and run steps outside Docker, from
the files themselves so they cannot drift apart:

- build: the build context is copied as ``COPY . .`` copies it (minus what .dockerignore
  leaves out), then the Dockerfile's own ``collectstatic`` RUN line runs in it through
  ``sh -c``, with nothing in its environment but the Dockerfile's ENV lines (a build sees
  no other variables; the virtualenv stands in for the image's ``pip install``);
- run: docker-compose.yml's web command (migrate, then gunicorn with its workers) runs in
  that copy with the web service's environment: its defaults, a random SECRET_KEY, the
  test database and broker in place of the postgres and redis services, a free loopback
  port in place of 0.0.0.0:8000, and plain HTTP as the compose file's comment says for a
  local trial. DEBUG is off, as in the image.

Then a researcher and a reviewer log in, and the login page, the study page and the
review page must render (200), and every static file each page links to must be served
(200) under its content-hashed name. Not reproduced: the base image, ``useradd`` and
running as that user.
"""

from __future__ import annotations

import fnmatch
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import orjson
import pytest
import yaml
from django.conf import settings
from django.contrib.auth.models import User

from reviewapp.ingest.parsing import parse_jsonl
from reviewapp.ingest.services import items_ingest
from reviewapp.studies.models import Enrolment
from reviewapp.studies.services import enrolment_create
from tests.conftest import ROOT, database_url_for_subprocess
from tests.faults.servers import Browser, free_port, password_hash, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "served-image-password"  # throwaway accounts in the test database
STATIC_RE = re.compile(r'(?:href|src)="(/static/[^"]+)"')
# What ManifestStaticFilesStorage names a file: its name, 12 hex digits of its hash, its suffix.
HASHED_RE = re.compile(r"\.[0-9a-f]{12}\.\w+$")


def dockerfile_lines() -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def dockerfile_env() -> dict[str, str]:
    env = {}
    for line in dockerfile_lines():
        if line.startswith("ENV "):
            for pair in shlex.split(line[4:]):
                name, _, value = pair.partition("=")
                env[name] = value
    return env


def collectstatic_command() -> str:
    (command,) = [line[4:] for line in dockerfile_lines() if line.startswith("RUN ") and "collectstatic" in line]
    return command


def build_context(destination: Path) -> Path:
    """Copy the project as ``COPY . .`` does, leaving out what .dockerignore names."""
    patterns = [
        line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip()[:1] not in ("", "#")
    ]
    assert not any(p.startswith("!") for p in patterns), "exceptions (!) in .dockerignore: teach this test them"

    def ignored(folder: str, names: list[str]) -> set[str]:
        relative = Path(folder).relative_to(ROOT)
        skip = set()
        for name in names:
            path = str(relative / name) if str(relative) != "." else name
            for pattern in patterns:
                pattern = pattern.rstrip("/")
                bare = pattern.removeprefix("**/")
                if fnmatch.fnmatch(path, pattern) or (pattern.startswith("**/") and fnmatch.fnmatch(name, bare)):
                    skip.add(name)
        return skip

    shutil.copytree(ROOT, destination, ignore=ignored, symlinks=True)
    return destination


def container_env(**variables: str) -> dict[str, str]:
    """A container's environment: the image's ENV lines and the given variables, nothing of ours
    but the virtualenv on PATH (where the image has its pip-installed packages)."""
    path = f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin"
    return {"PATH": path, "HOME": os.environ.get("HOME", "/root"), **dockerfile_env(), **variables}


def compose_value(value: str, given: dict[str, str]) -> str:
    """A compose environment value with ``${NAME:-default}`` / ``${NAME:?message}`` filled in."""

    def fill(match: re.Match) -> str:
        name, operator, rest = match[1], match[2], match[3]
        if name in given:
            return given[name]
        if operator == ":-":
            return rest
        pytest.fail(f"docker-compose.yml needs {name}: {rest}")

    return re.sub(r"\$\{(\w+)(:[-?])([^}]*)\}", fill, str(value))


def seed(study) -> None:
    lines = (
        orjson.dumps(
            {
                "external_id": f"t{n}",
                "title": f"Refund order {n}",
                "messages": [{"role": "user", "content": f"Refund order {n}, please."}],
                "ai_recommendation": "approve",
            }
        )
        for n in range(5)
    )
    assert items_ingest(study=study, results=parse_jsonl(lines)).committed
    reviewer = User.objects.create(username="reviewer-1", password=password_hash(PASSWORD))
    enrolment_create(study=study, reviewer=reviewer, source=Enrolment.Source.ADMIN)
    researcher = User.objects.create(username="rosa", password=password_hash(PASSWORD), is_staff=True)
    study.researchers.add(researcher)


def fetch(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=15) as response:  # noqa: S310 (our own server over http)
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


class TestServedImage:
    @pytest.fixture
    def app_dir(self, tmp_path) -> Path:
        """The image's /app after its build steps."""
        app = build_context(tmp_path / "app")
        result = subprocess.run(
            ["sh", "-c", collectstatic_command()],
            cwd=app,
            env=container_env(),
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return app

    @pytest.fixture
    def web(self, app_dir, tmp_path):
        """docker-compose.yml's web service, run in the built /app: its base URL."""
        service = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["web"]
        given = {
            "SECRET_KEY": secrets.token_urlsafe(50),
            # Plain HTTP on the loopback, as the compose file's comment says for a local trial.
            "SECURE_SSL_REDIRECT": "false",
            "SESSION_COOKIE_SECURE": "false",
            "CSRF_COOKIE_SECURE": "false",
        }
        environment = {name: compose_value(value, given) for name, value in service["environment"].items()}
        # The postgres and redis services are the test database and broker here; /app is the copy.
        environment["DATABASE_URL"] = database_url_for_subprocess()
        environment["CELERY_BROKER_URL"] = settings.CELERY_BROKER_URL
        environment = {name: value.replace("/app/", f"{app_dir}/") for name, value in environment.items()}
        assert "DEBUG" not in environment or environment["DEBUG"].lower() in ("false", "0", "off")

        port = free_port()
        command = service["command"].replace("0.0.0.0:8000", f"127.0.0.1:{port}")
        assert f"127.0.0.1:{port}" in command, command
        log = tmp_path / "web.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(
                shlex.split(command),
                cwd=app_dir,
                env=container_env(**environment),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        base = f"http://127.0.0.1:{port}"

        def answers() -> bool:
            if process.poll() is not None:
                pytest.fail(f"the web command exited with {process.returncode}:\n{log.read_text()[-3000:]}")
            try:
                fetch(base + "/accounts/login/")
            except OSError:
                return False
            return True

        try:
            wait_until(answers, 90, "gunicorn to answer", interval=0.2)
            yield base, log
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)  # gunicorn's graceful shutdown, and sh's
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()

    def assert_static_served(self, base: str, page: str, what: str) -> list[str]:
        links = STATIC_RE.findall(page)
        assert links, f"the {what} links no static file"
        for link in links:
            assert HASHED_RE.search(link), f"{link} on the {what} is not a content-hashed name"
            status, headers, body = fetch(base + link)
            assert status == 200 and body, f"{link} on the {what}: {status}"
            # whitenoise marks hashed files as never changing.
            assert "immutable" in headers.get("Cache-Control", ""), headers
        return links

    def test_it_renders_the_login_study_and_review_pages_with_debug_off(self, study, web):
        seed(study)
        base, log = web

        status, _headers, body = fetch(base + "/accounts/login/")
        page = body.decode()
        assert status == 200, f"login page: {status}\n{log.read_text()[-3000:]}"
        assert 'name="password"' in page
        linked = self.assert_static_served(base, page, "login page")
        assert any(link.endswith(".css") for link in linked) and any(link.endswith(".js") for link in linked)

        researcher = Browser(base)
        researcher.login("rosa", PASSWORD)
        status, page = researcher.request("GET", "/studies/refunds/")
        assert status == 200 and "Refund approvals" in page, (status, page[:500])
        self.assert_static_served(base, page, "study page")

        reviewer = Browser(base)
        reviewer.login("reviewer-1", PASSWORD)
        status, page = reviewer.request("GET", "/review/refunds/")
        assert status == 200 and "Refund order" in page, (status, page[:500])
        self.assert_static_served(base, page, "review page")

        # The server ran with DEBUG off: an unknown address gets the plain 404, not the debug page.
        status, _headers, body = fetch(base + "/no-such-page/")
        assert status == 404 and b"URLconf" not in body
