"""A metrics run requested from the study page and computed by a real Celery worker."""

from __future__ import annotations

import time

import pytest

from reviewapp.metrics.models import MetricRun

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


class TestMetricsOnAWorker:
    def test_a_real_worker_computes_the_run_the_button_queued(
        self, client, labelled, researcher, celery_worker_process
    ):
        client.force_login(researcher)

        response = client.post("/studies/refunds/metrics/run/", HTTP_HX_REQUEST="true")
        assert b"Computing the metrics now." in response.content

        deadline = time.monotonic() + 60
        run = MetricRun.objects.get(study=labelled)
        while run.status in ("queued", "running") and time.monotonic() < deadline:
            time.sleep(0.2)
            run.refresh_from_db()
        assert run.status == "succeeded", (run.status, run.error)
        assert run.attempts == 1 and run.result["n_labels"] == 16
        rationale = next(a for a in run.result["arms"] if a["name"] == "rationale")
        assert rationale["agreement_with_ai"]["all"]["value"] == 0.875

        panel = client.get("/studies/refunds/metrics/", HTTP_HX_REQUEST="true")
        assert panel.status_code == 286 and b"87.5% [" in panel.content
