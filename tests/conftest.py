"""Shared fixtures: a study with the classic three arms, its ingest token, a real Celery worker."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings

from reviewapp.studies.models import Arm, IngestToken, Study

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"


@pytest.fixture
def study(db) -> Study:
    study = Study.objects.create(slug="refunds", title="Refund approvals", status=Study.Status.RUNNING)
    Arm.objects.create(study=study, name="control", position=0)
    Arm.objects.create(study=study, name="recommendation", position=1, shows_ai_recommendation=True)
    Arm.objects.create(study=study, name="rationale", position=2, shows_ai_recommendation=True, shows_ai_rationale=True)
    return study


@pytest.fixture
def other_study(db) -> Study:
    return Study.objects.create(slug="other", title="Another team's study")


@pytest.fixture
def token(study) -> str:
    _token, plaintext = IngestToken.issue(study=study, name="pipeline")
    return plaintext


def database_url_for_subprocess() -> str:
    """The URL of the database this test session uses (the test database)."""
    from django.db import connection

    db = connection.settings_dict
    host = db.get("HOST") or ""
    socket_dir = (db.get("OPTIONS") or {}).get("host")
    user = quote(db.get("USER") or "postgres")
    password = quote(db.get("PASSWORD") or "")
    if socket_dir:
        return f"postgresql://{user}:{password}@/{db['NAME']}?host={socket_dir}"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgresql://{user}:{password}@{host}{port}/{db['NAME']}"


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker, tmp_path_factory):
    """A real `celery worker` process on the configured broker, using the test database."""
    log_path = tmp_path_factory.mktemp("worker") / "worker.log"
    env = {
        **os.environ,
        "DATABASE_URL": database_url_for_subprocess(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "SECRET_KEY": secrets.token_urlsafe(50),  # DEBUG is off: the settings refuse a short key
        "DEBUG": "false",
    }
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "reviewapp",
        "worker",
        "--loglevel=INFO",
        "--concurrency=1",
        "--pool=prefork",
        "--purge",
        "--without-mingle",
        "--without-gossip",
    ]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while b"ready." not in log_path.read_bytes():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"Celery worker did not start:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.2)
    yield process, log_path
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture
def labelled(study) -> Study:
    """Four reviewers' answers on four items, the metrics worked out by hand (tests/labelled_study.py)."""
    from tests.labelled_study import make_labelled

    return make_labelled(study)


@pytest.fixture
def researcher(db, study):
    """A researcher of the study (staff, on its researchers list)."""
    from django.contrib.auth.models import User

    user = User.objects.create_user("rosa", password="pw-rosa-12345", is_staff=True)
    study.researchers.add(user)
    return user
