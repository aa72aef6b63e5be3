"""Requests that queue a background job while the broker cannot be reached.

The job's row is committed first and its message published after the commit; when the
publish fails, the request still answers as it would (no 500), the job stays queued, and
the warning says the recovery sweep will enqueue it (tests/faults/test_broker_down.py
shows the sweep doing it with real processes). The broker here is a closed port on the
loopback: a real connection refused and a real kombu OperationalError. Committed data
(transactional tests), so on_commit runs at the commit as it does in production.
"""

from __future__ import annotations

import orjson
import pytest

from reviewapp.ingest.models import IngestJob
from reviewapp.metrics.models import MetricRun
from reviewapp.queue.models import Label
from reviewapp.queue.services import claim_next
from reviewapp.reports.models import ExportJob
from tests.builders import enrol_allocated, make_labelled, record, researcher_of

from .conftest import celery_broker
from .servers import free_port

pytestmark = pytest.mark.django_db(transaction=True)

SWEEP_WARNING = "left for the recovery sweep"


@pytest.fixture
def broker_down():
    with celery_broker(f"redis://127.0.0.1:{free_port()}/0"):
        yield


class TestBrokerUnreachable:
    def test_a_metrics_request_answers_normally_and_keeps_the_run_queued(self, client, study, broker_down, caplog):
        labelled = make_labelled(study)
        client.force_login(researcher_of(labelled))

        response = client.post("/studies/refunds/metrics/run/", HTTP_HX_REQUEST="true")

        assert response.status_code == 200 and b"Queued; will run when the broker is back." in response.content
        assert MetricRun.objects.get().status == "queued"
        assert SWEEP_WARNING in caplog.text

    def test_an_upload_is_accepted_and_its_job_kept_queued(
        self, client, study, token, broker_down, caplog, settings, tmp_path
    ):
        settings.UPLOAD_DIR = tmp_path
        response = client.post(
            "/api/studies/refunds/uploads?filename=batch.jsonl",
            data=orjson.dumps(record(external_id="u1")) + b"\n",
            content_type="application/x-ndjson",
            HTTP_AUTHORIZATION=f"Bearer {token}",
        )

        assert response.status_code == 202, response.content
        assert IngestJob.objects.get().status == "queued" and response.json()["status"] == "queued"
        assert SWEEP_WARNING in caplog.text

    def test_an_export_job_is_accepted_and_kept_queued(self, client, study, broker_down, caplog, settings, tmp_path):
        settings.EXPORT_DIR = tmp_path
        labelled = make_labelled(study)
        client.force_login(researcher_of(labelled))

        response = client.post("/studies/refunds/exports/jobs/", {"report": "labels", "format": "csv"})

        assert response.status_code == 302
        assert ExportJob.objects.get().status == "queued"
        assert SWEEP_WARNING in caplog.text

    def test_a_label_submit_needs_no_broker(self, client, study, broker_down):
        make_labelled(study)
        user = enrol_allocated(study)
        assignment = claim_next(study=study, reviewer=user)
        client.force_login(user)

        response = client.post(
            f"/review/refunds/items/{assignment.pk}/answer/", {"field_decision": "approve"}, HTTP_HX_REQUEST="true"
        )

        assert response.status_code == 200 and b"Saved." in response.content
        assert Label.objects.get(assignment=assignment).values == {"decision": "approve"}
