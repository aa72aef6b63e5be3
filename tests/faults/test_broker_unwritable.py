"""Requests that queue a background job while the filesystem broker cannot write a message.

The embedded default's broker is kombu's filesystem transport: a message is a file in
BROKER_DIR/queue. When that folder is gone (deleted under a running app) kombu raises a
bare FileNotFoundError while it declares the queue; when it is read-only it cannot add
the message file. Either way the job's row is already committed, and the recovery sweep
will publish it once the folder is back. So "Compute metrics", a prepared export, an
upload from the study page and one through the API must answer as usual (no 500), tell
the user the job is queued and will run when the broker is back, show that as the job's
state, and the sweep must publish it once the folder is writable again.

The control: the same actions with a writable folder publish one message each and say
nothing of the broker. Committed data (transactional tests), so on_commit runs at the
commit as it does in production. Tests run as root, whom file modes do not stop: the
read-only folder is made immutable (chattr +i) instead, which stops root too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from reviewapp.ingest.models import IngestJob
from reviewapp.jobs import BROKER_DOWN_NOTE, recover_jobs
from reviewapp.metrics.models import MetricRun
from reviewapp.reports.models import ExportJob
from tests.builders import make_labelled, record, researcher_of

from .conftest import celery_broker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.fault]

TOLD = "will run when the broker is back"
UPLOAD = orjson.dumps(record(external_id="late-arrival")) + b"\n"


class FilesystemBroker:
    """kombu's filesystem transport in a folder of the test's own, as settings.py configures it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.queue = folder / "queue"
        self.options = {
            "data_folder_in": str(self.queue),
            "data_folder_out": str(self.queue),
            "control_folder": str(folder / "control"),
            "store_processed": False,
        }
        self.immutable = False
        self.create()

    def create(self) -> None:
        for name in ("queue", "control"):
            (self.folder / name).mkdir(parents=True, exist_ok=True)

    def messages(self) -> int:
        return len(list(self.queue.glob("*.msg")))

    def remove(self) -> None:
        shutil.rmtree(self.folder)

    def make_read_only(self) -> None:
        for name in ("queue", "control"):
            folder = self.folder / name
            if os.geteuid() != 0:
                folder.chmod(0o555)
                continue
            result = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, text=True)
            if result.returncode != 0:
                pytest.skip(f"cannot make a folder read-only for root here (chattr +i: {result.stderr.strip()})")
            self.immutable = True

    def make_writable(self) -> None:
        for name in ("queue", "control"):
            folder = self.folder / name
            if self.immutable:
                subprocess.run(["chattr", "-i", str(folder)], check=True)
            elif folder.exists():
                folder.chmod(0o755)
        self.immutable = False
        self.create()


@pytest.fixture
def broker(tmp_path):
    broker = FilesystemBroker(tmp_path / "broker")
    with celery_broker("filesystem://", broker.options):
        yield broker
    broker.make_writable()  # so pytest can delete the folder


@pytest.fixture
def researcher_client(client, study, settings, tmp_path):
    settings.EXPORT_DIR = tmp_path / "exports"
    settings.UPLOAD_DIR = tmp_path / "uploads"
    settings.UPLOAD_DIR.mkdir()
    client.force_login(researcher_of(make_labelled(study)))
    return client


def compute_metrics(client, token) -> str:
    response = client.post("/studies/refunds/metrics/run/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    return response.content.decode()


def prepare_export(client, token) -> str:
    response = client.post("/studies/refunds/exports/jobs/", {"report": "labels", "format": "csv"}, follow=True)
    assert response.status_code == 200 and response.redirect_chain
    return response.content.decode()


def upload_from_study_page(client, token) -> str:
    upload = SimpleUploadedFile("batch.jsonl", UPLOAD, content_type="application/x-ndjson")
    response = client.post("/studies/refunds/upload/", {"file": upload, "format": ""}, follow=True)
    assert response.status_code == 200 and response.redirect_chain
    return response.content.decode()


def upload_through_the_api(client, token) -> str:
    """A pipeline's upload: 202, and the status it polls says why the job waits."""
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    response = client.post(
        "/api/studies/refunds/uploads?filename=batch.jsonl", UPLOAD, content_type="application/x-ndjson", **auth
    )
    assert response.status_code == 202, response.content
    return client.get(response.json()["status_url"], **auth).content.decode()


@dataclass(frozen=True)
class Action:
    request: Callable[..., str]  # as the user does it; returns what the user is shown
    model: type
    state_page: str  # where the researcher sees the job later (a reload, the progress poll)


ACTIONS = {
    "metrics": Action(compute_metrics, MetricRun, "/studies/refunds/metrics/"),
    "export": Action(prepare_export, ExportJob, "/studies/refunds/exports/"),
    "upload": Action(upload_from_study_page, IngestJob, "/studies/refunds/"),
    "api-upload": Action(upload_through_the_api, IngestJob, "/studies/refunds/"),
}


class TestBrokerUnwritable:
    @pytest.mark.parametrize("fault", ["folder missing", "folder read-only"])
    @pytest.mark.parametrize("action", list(ACTIONS))
    def test_the_job_is_queued_and_the_user_told_it_runs_when_the_broker_is_back(
        self, researcher_client, token, broker, settings, caplog, action, fault
    ):
        action = ACTIONS[action]
        if fault == "folder missing":
            broker.remove()
        else:
            broker.make_read_only()

        page = action.request(researcher_client, token)

        job = action.model.objects.get()
        assert job.status == "queued" and job.note == BROKER_DOWN_NOTE
        assert TOLD in page, page[:2000]
        assert "left for the recovery sweep" in caplog.text
        assert BROKER_DOWN_NOTE in researcher_client.get(action.state_page).content.decode()

        # The broker is back: the sweep publishes the job, and the note goes.
        broker.make_writable()
        settings.JOBS_REQUEUE_AFTER_SECONDS = 0
        assert recover_jobs() == 1
        assert broker.messages() == 1
        job.refresh_from_db()
        assert job.status == "queued" and job.note == ""
        assert BROKER_DOWN_NOTE not in researcher_client.get(action.state_page).content.decode()

    @pytest.mark.parametrize("action", list(ACTIONS))
    def test_the_same_action_with_a_writable_broker_publishes_and_says_nothing_of_it(
        self, researcher_client, token, broker, action
    ):
        action = ACTIONS[action]

        page = action.request(researcher_client, token)

        assert broker.messages() == 1
        job = action.model.objects.get()
        assert job.status == "queued" and job.note == ""
        assert TOLD not in page
