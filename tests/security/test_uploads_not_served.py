"""Uploaded transcripts and export files are never served from the app's origin.

They live outside every static folder, no route serves a folder, traversal through the
static handlers finds nothing, and what the app does hand out (exports) is an attachment
that the browser must not sniff into HTML.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.test import Client, override_settings

from reviewapp.reports.models import ExportJob
from reviewapp.studies.models import IngestToken
from tests.conftest import ROOT, database_url_for_subprocess

from .routes import patterns

CANARY = b"<html><script>window.__xss=1</script>UPLOADCANARY7431</html>"
FILE_SERVERS = ("django.views.static", "django.contrib.staticfiles.views")


def traversals(folder: Path, name: str) -> list[str]:
    relative = folder.resolve().relative_to(settings.BASE_DIR)  # e.g. var/uploads
    encoded = str(relative).replace("/", "%2F")
    absolute = str(folder.resolve() / name)
    return [
        f"/static/../{relative}/{name}",
        f"/static/../../{relative}/{name}",
        f"/static/css/../../{relative}/{name}",
        f"/static/%2e%2e/{relative}/{name}",
        f"/static/%2E%2E%2F{encoded}%2F{name}",
        f"/static/..%2f..%2f{relative}/{name}",
        f"/static/..%5c{relative}%5c{name}",
        f"/static/....//{relative}/{name}",
        f"/static/{absolute}",
        f"/static//{absolute}",
        f"/static/%2F{absolute.lstrip('/')}",
        f"/{relative}/{name}",
        f"/uploads/{name}",
        f"/exports/{name}",
        f"/media/{name}",
        f"/static/{name}",
        f"/static/uploads/{name}",
    ]


@pytest.fixture
def private_files():
    """A hostile file in UPLOAD_DIR and one in EXPORT_DIR, as the app would store them."""
    made = []
    for folder in (Path(settings.UPLOAD_DIR), Path(settings.EXPORT_DIR)):
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{uuid.uuid4().hex}.html"
        path.write_bytes(CANARY)
        made.append(path)
    yield made
    for path in made:
        path.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def production_server(django_db_setup, tmp_path_factory):
    """gunicorn with production settings (DEBUG off, WhiteNoise over collected static files).

    Plain HTTP on the loopback, so the HTTPS redirect and secure-only cookies are off.
    """
    static_root = tmp_path_factory.mktemp("static")
    env = {
        **os.environ,
        "DATABASE_URL": database_url_for_subprocess(),
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "SECURE_SSL_REDIRECT": "false",
        "SESSION_COOKIE_SECURE": "false",
        "CSRF_COOKIE_SECURE": "false",
        "STATIC_ROOT": str(static_root),
        "LOG_LEVEL": "WARNING",
    }
    collect = [sys.executable, "manage.py", "collectstatic", "--no-input", "-v0"]
    subprocess.run(collect, cwd=ROOT, env=env, check=True, capture_output=True, timeout=120)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    gunicorn = [sys.executable, "-m", "gunicorn", "reviewapp.wsgi", "-w", "1", "--bind", f"127.0.0.1:{port}"]
    process = subprocess.Popen(gunicorn, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"gunicorn did not start: {process.stderr.read().decode()[-2000:]}")
        try:
            if raw_get(base, "/accounts/login/")[0] == 200:
                break
        except OSError:
            time.sleep(0.2)
    yield base
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


def raw_get(base_url: str, path: str) -> tuple[int, bytes]:
    """GET with the path sent byte for byte (no client-side normalization of '..' or %2e)."""
    host = urlsplit(base_url)
    connection = http.client.HTTPConnection(host.hostname, host.port, timeout=10)
    connection.request("GET", path)
    response = connection.getresponse()
    return response.status, response.read()


class TestUploadsNeverServed:
    def test_upload_and_export_folders_are_outside_every_served_folder(self):
        served = [Path(settings.STATIC_ROOT).resolve(), *(Path(p).resolve() for p in settings.STATICFILES_DIRS)]
        for private in (Path(settings.UPLOAD_DIR).resolve(), Path(settings.EXPORT_DIR).resolve()):
            for folder in served:
                assert private != folder and folder not in private.parents and private not in folder.parents
        assert not settings.MEDIA_ROOT  # nothing is configured as user-uploaded media

    def test_no_route_serves_files_from_a_folder(self):
        servers = [route for route, pattern in patterns() if pattern.callback.__module__.startswith(FILE_SERVERS)]
        assert servers == []

    @pytest.mark.django_db
    def test_traversal_through_the_static_middleware_finds_nothing(self, client, private_files):
        for path in private_files:
            for url in traversals(path.parent, path.name):
                response = client.get(url)
                body = b"".join(response.streaming_content) if response.streaming else response.content
                assert response.status_code in (400, 404), (url, response.status_code)
                assert b"UPLOADCANARY" not in body, url

    @pytest.mark.django_db
    def test_traversal_finds_nothing_when_whitenoise_reads_the_disk_on_each_request(self, private_files):
        # DEBUG-style WhiteNoise: files are looked up on disk per request, where '..' would matter.
        with override_settings(WHITENOISE_USE_FINDERS=True, WHITENOISE_AUTOREFRESH=True):
            client = Client()
            assert client.get("/static/css/app.css").status_code == 200  # the positive control
            for path in private_files:
                for url in traversals(path.parent, path.name):
                    response = client.get(url)
                    body = b"".join(response.streaming_content) if response.streaming else response.content
                    assert response.status_code in (400, 404), (url, response.status_code)
                    assert b"UPLOADCANARY" not in body, url

    def test_traversal_over_real_http_to_the_production_server_finds_nothing(self, production_server, private_files):
        status, body = raw_get(production_server, "/static/css/app.css")
        assert status == 200 and body  # the positive control: WhiteNoise serves collected files
        for path in private_files:
            for url in traversals(path.parent, path.name):
                status, body = raw_get(production_server, url)
                assert status in (400, 404), (url, status)
                assert b"UPLOADCANARY" not in body, url

    @pytest.mark.django_db
    def test_the_upload_status_api_returns_the_jobs_numbers_never_the_file(self, client, study):
        _token, secret = IngestToken.issue(study=study, name="t")
        auth = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
        record = json.dumps({"external_id": "u-1", "messages": [{"role": "user", "content": CANARY.decode()}]})
        created = client.post(
            "/api/studies/refunds/uploads?filename=x.jsonl", record, content_type="application/x-ndjson", **auth
        )
        assert created.status_code == 202
        status = client.get(created.json()["status_url"], **auth)
        assert status.status_code == 200 and status["Content-Type"] == "application/json"
        assert b"UPLOADCANARY" not in status.content
        Path(study.ingest_jobs.get().stored_path).unlink(missing_ok=True)  # no worker runs in this test


@pytest.mark.django_db
class TestDownloadsAreAttachments:
    def test_every_response_forbids_content_sniffing(self, client, study, admin):
        assert settings.SECURE_CONTENT_TYPE_NOSNIFF is True
        client.force_login(admin)
        for url in ["/", "/studies/refunds/", "/no/such/page/", "/api/studies/refunds/items", "/static/css/app.css"]:
            response = client.get(url)
            assert response["X-Content-Type-Options"] == "nosniff", url

    def test_exports_download_as_attachments(self, client, study, admin):
        client.force_login(admin)
        for url in ["/studies/refunds/exports/labels.csv", "/studies/refunds/exports/items.jsonl"]:
            response = client.get(url)
            assert response.status_code == 200, url
            assert response["Content-Disposition"].startswith("attachment;"), url
            assert response["X-Content-Type-Options"] == "nosniff", url

    def test_a_prepared_export_file_downloads_as_an_attachment(self, client, study, admin):
        folder = Path(settings.EXPORT_DIR)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{uuid.uuid4().hex}.csv"
        path.write_bytes(CANARY)
        try:
            job = ExportJob.objects.create(
                study=study, report="labels", format="csv", status="succeeded", file_path=str(path),
                filename="refunds-labels.csv", size_bytes=len(CANARY),
            )  # fmt: skip
            client.force_login(admin)
            response = client.get(f"/studies/refunds/exports/jobs/{job.pk}/download/")
            assert response.status_code == 200
            assert response["Content-Disposition"].startswith("attachment;")
            assert response["X-Content-Type-Options"] == "nosniff"
            assert not response["Content-Type"].startswith("text/html")
        finally:
            path.unlink(missing_ok=True)
