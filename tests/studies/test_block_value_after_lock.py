"""The label schema's block value is analysis only (which answer decision quality counts as
blocking the action), so it can be marked after the design locked, on every path; the rest
of the schema stays locked (the positive control)."""

from __future__ import annotations

import json

import pytest
from django.db import IntegrityError, connection, transaction

from reviewapp.queue.models import Assignment, Label
from reviewapp.studies.models import AuditEvent, Study
from reviewapp.studies.schema import block_value, with_block_value, without_block_value
from tests.builders import make_item


@pytest.fixture
def locked(study, cast) -> Study:
    """The fixture study with labels, and a schema that marks no block value (taking it away
    is itself allowed under the lock: the cast's reviewers are already allocated)."""
    Study.objects.filter(pk=study.pk).update(label_schema=without_block_value(study.label_schema))
    item = make_item(study)
    arm = study.arms.first()
    assignment = Assignment.objects.create(
        study=study, item=item, reviewer=cast.reviewer, arm=arm, lease_expires_at="2030-01-01T00:00Z"
    )
    Label.objects.create(
        assignment=assignment, study=study, item=item, reviewer=cast.reviewer, arm=arm, values={"decision": "approve"}
    )
    study.refresh_from_db()
    return study


def settings_post(study: Study, **overrides) -> dict:
    data = {
        "title": study.title,
        "instructions": study.instructions,
        "lease_seconds": study.lease_seconds,
        "probe_rate": study.probe_rate,
        "reading_wpm": study.reading_wpm,
        "flag_thresholds": json.dumps(study.flag_thresholds),
    }
    data.update(overrides)
    return data


class TestBlockValueAfterTheLock:
    def test_the_settings_page_marks_the_block_value_of_a_locked_study(self, client, locked, cast):
        client.force_login(cast.researcher)
        page = client.get("/studies/refunds/settings/").content.decode()
        assert "Answer that blocks the action" in page and 'name="block_value"' in page

        response = client.post("/studies/refunds/settings/", settings_post(locked, block_value="reject"))

        assert response.status_code == 302
        locked.refresh_from_db()
        assert block_value(locked.label_schema) == "reject"
        event = AuditEvent.objects.filter(study=locked, action="study.update").latest("id")
        assert "label_schema" in event.detail["after"] and event.actor_id == cast.researcher.pk

    def test_the_rest_of_the_schema_stays_locked(self, client, locked, cast):
        client.force_login(cast.researcher)
        before = locked.label_schema
        decision = {**before["fields"][0], "choices": ["approve", "reject", "escalate"]}
        changed = {**before, "fields": [decision, *before["fields"][1:]]}
        client.post("/studies/refunds/settings/", settings_post(locked, label_schema=json.dumps(changed)))
        locked.refresh_from_db()
        assert locked.label_schema == before

    def test_the_database_allows_the_block_value_and_refuses_other_schema_changes(self, locked):
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE studies_study SET label_schema = %s WHERE id = %s",
                [json.dumps(with_block_value(locked.label_schema, "reject")), locked.pk],
            )
        locked.refresh_from_db()
        assert block_value(locked.label_schema) == "reject"
        schema = locked.label_schema
        renamed = {**schema, "fields": [{**schema["fields"][0], "name": "verdict"}, *schema["fields"][1:]]}
        with pytest.raises(IntegrityError, match="Not changed: label_schema"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(
                    "UPDATE studies_study SET label_schema = %s WHERE id = %s", [json.dumps(renamed), locked.pk]
                )
