"""A job requested inside a transaction that rolls back is never enqueued, so it never runs.

Metric runs, ingest jobs and export jobs publish their task with ``transaction.on_commit``:
after the row is committed, never for a row that was rolled back. Measured on a private
Redis: the Celery queue's length after the transaction, with real commits (transactional
test database) and a committed control that does publish.
"""

from __future__ import annotations

import pytest
from django.db import transaction

from reviewapp.ingest.models import IngestJob
from reviewapp.ingest.services import ingest_job_create
from reviewapp.metrics.models import MetricRun
from reviewapp.metrics.services import metric_run_request
from reviewapp.reports.models import ExportJob
from reviewapp.reports.services import export_job_create
from tests.builders import make_labelled, researcher_of

from .conftest import celery_broker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.fault]


class Refused(Exception):
    """Something later in the same transaction failed."""


def request_all_three(study, actor, upload) -> None:
    metric_run_request(study=study, actor=actor)
    ingest_job_create(study=study, stored_path=upload, filename=upload.name, created_by=actor)
    export_job_create(study=study, report="labels", fmt="csv", actor=actor)


class TestRolledBackJobsNeverRun:
    def test_nothing_is_enqueued_for_jobs_whose_transaction_rolled_back(self, study, private_redis, tmp_path, settings):
        settings.EXPORT_DIR = tmp_path / "exports"
        labelled = make_labelled(study)
        researcher = researcher_of(labelled)
        upload = tmp_path / "upload.jsonl"
        upload.write_text('{"external_id": "late", "messages": [{"role": "user", "content": "Hi"}]}\n')

        with celery_broker(private_redis.url):
            with pytest.raises(Refused), transaction.atomic():
                request_all_three(labelled, researcher, upload)
                assert private_redis.queued() == 0  # nothing before the commit either
                raise Refused

            assert private_redis.queued() == 0
            assert not MetricRun.objects.exists() and not IngestJob.objects.exists()
            assert not ExportJob.objects.exists()

            # The control: the same requests, committed, publish one message each.
            with transaction.atomic():
                request_all_three(labelled, researcher, upload)
                assert private_redis.queued() == 0
            assert private_redis.queued() == 3
        assert (MetricRun.objects.get().status, IngestJob.objects.get().status) == ("queued", "queued")
        assert ExportJob.objects.get().status == "queued"
