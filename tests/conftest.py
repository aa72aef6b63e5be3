"""Shared fixtures: a study with the classic three arms, its ingest token, the fixed cast of users
(tests/builders.py builds them), the hand-checked labelled study, a real Celery worker."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.contrib.auth.models import User

from reviewapp.studies.models import Arm, IngestToken, Study
from tests.builders import enrol, make_labelled, researcher_of, user

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"


@pytest.fixture
def study(db) -> Study:
    # Fixed order: the hand-worked cases and exports are written in serving order. The
    # shuffled walk (the default for new studies) has its own tests (tests/queue/test_order.py).
    study = Study.objects.create(
        slug="refunds", title="Refund approvals", status=Study.Status.RUNNING, item_order=Study.ItemOrder.FIXED
    )
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
    """Four reviewers' answers on four items, the metrics worked out by hand (tests/builders.py)."""
    return make_labelled(study)


# --- the cast: who can see what is tested with the same people everywhere ------------------


@pytest.fixture
def admin(db) -> User:
    """A superuser: every study, the Django admin."""
    return user("ada", is_staff=True, is_superuser=True)


@pytest.fixture
def admin_user(admin) -> User:
    """pytest-django's ``admin_user`` (and so its ``admin_client``) is the cast's admin."""
    return admin


@pytest.fixture
def researcher(study) -> User:
    """A researcher of the study (staff, on its researchers list)."""
    return researcher_of(study, "rosa")


@pytest.fixture
def outsider(other_study) -> User:
    """A researcher of another team's study (``other_study``), not of this one."""
    return researcher_of(other_study, "otto")


@pytest.fixture
def reviewer(study) -> User:
    """A reviewer in the study's control arm."""
    return enrol(study, "rev", "control")


@pytest.fixture
def other_reviewer(study, reviewer) -> User:
    """A second reviewer, in the recommendation arm (enrolled after ``reviewer``)."""
    return enrol(study, "remy", "recommendation")


@dataclass
class Cast:
    admin: User
    researcher: User
    outsider: User
    reviewer: User
    other_reviewer: User


@pytest.fixture
def cast(admin, researcher, outsider, reviewer, other_reviewer) -> Cast:
    """Everyone at once, for pages whose answer depends on who asks."""
    return Cast(admin, researcher, outsider, reviewer, other_reviewer)
