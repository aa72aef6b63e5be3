"""The writer under concurrency: the unique constraint decides, nothing is half-written."""

from __future__ import annotations

import threading
import time

import orjson
import pytest
from django.db import DEFAULT_DB_ALIAS, connections

from reviewapp.ingest.models import Item
from reviewapp.ingest.parsing import parse_jsonl
from reviewapp.ingest.services import ConcurrentIngestError, items_ingest
from tests.builders import record


@pytest.mark.django_db(transaction=True)
class TestConcurrentIngest:
    def test_it_reports_a_race_on_the_same_id_and_writes_nothing(self, study):
        # Another writer has inserted "a" but not committed yet.
        other = connections.create_connection(DEFAULT_DB_ALIAS)
        other.set_autocommit(False)
        with other.cursor() as cursor:
            cursor.execute(
                "INSERT INTO ingest_item (study_id, external_id, source_format, payload, source_metadata, "
                "content_hash, word_count, ai_rationale, is_probe, priority) "
                "VALUES (%s, 'a', 'native', '{}', '{}', 'x', 0, '', false, 0)",
                [study.pk],
            )
        outcome: dict = {}

        def ingest() -> None:
            lines = [orjson.dumps(record(external_id="a")), orjson.dumps(record(external_id="b"))]
            try:
                items_ingest(study=study, results=parse_jsonl(lines))
            except ConcurrentIngestError as exc:
                outcome["error"] = str(exc)
            finally:
                connections.close_all()

        thread = threading.Thread(target=ingest)
        thread.start()
        time.sleep(0.5)  # the COPY now waits on the other writer's uncommitted "a"
        other.commit()
        other.close()
        thread.join(timeout=30)
        assert "Send it again" in outcome["error"]
        assert list(Item.objects.filter(study=study).values_list("external_id", flat=True)) == ["a"]

    def test_it_skips_what_the_other_writer_stored_when_sent_again(self, study):
        items_ingest(study=study, results=parse_jsonl([orjson.dumps(record(external_id="a"))]))
        lines = [orjson.dumps(record(external_id="a")), orjson.dumps(record(external_id="b"))]
        outcome = items_ingest(study=study, results=parse_jsonl(lines))
        assert (outcome.created, outcome.duplicates, outcome.committed) == (1, 1, True)
