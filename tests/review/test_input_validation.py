"""Every text a reviewer can type is validated: a NUL is a 400 naming the field, never a 500."""

from __future__ import annotations

import json

import pytest

from reviewapp.queue.models import Assignment, Label
from reviewapp.studies.schema import DEFAULT_LABEL_SCHEMA
from tests.builders import enrol, make_items

HX = {"HTTP_HX_REQUEST": "true"}
NUL = "\u0000"
SCHEMA = {
    **DEFAULT_LABEL_SCHEMA,
    "fields": [
        *DEFAULT_LABEL_SCHEMA["fields"],
        {"name": "severity", "type": "interval", "min": 0, "max": 10, "required": False},
    ],
}


@pytest.fixture
def leased(client, study):
    study.label_schema = SCHEMA
    study.save(update_fields=["label_schema"])
    make_items(study, 2)
    reviewer = enrol(study, "rev", "control")
    client.force_login(reviewer)
    client.get(f"/review/{study.slug}/")
    return Assignment.objects.get(reviewer=reviewer, state="leased")


def post(client, study, assignment, action: str, data: dict):
    return client.post(f"/review/{study.slug}/items/{assignment.pk}/{action}/", data, **HX)


def nothing_written(assignment) -> bool:
    assignment.refresh_from_db()
    return not Label.objects.exists() and assignment.state == "leased" and assignment.skip_reason == ""


@pytest.mark.django_db
class TestReviewerInputValidation:
    def test_a_nul_in_the_comment_is_a_400_naming_it_with_the_answer_kept(self, client, study, leased):
        response = post(client, study, leased, "answer", {"field_decision": "reject", "comment": f"see{NUL}log"})
        assert response.status_code == 400  # was a 500
        body = response.content.decode()
        assert "comment contains a NUL character" in body
        assert NUL not in body
        assert 'value="reject" data-key="2" checked' in body  # the answer is kept in the form
        assert "see\ufffdlog</textarea>" in body  # and the comment, the NUL shown as �
        assert nothing_written(leased)
        # Positive control: the same answer without the NUL is saved.
        response = post(client, study, leased, "answer", {"field_decision": "reject", "comment": "see log"})
        assert response.status_code == 200 and Label.objects.get().comment == "see log"

    def test_a_nul_in_an_interval_typed_as_text_is_a_400_naming_the_field(self, client, study, leased):
        response = post(client, study, leased, "answer", {"field_decision": "approve", "field_severity": f"3{NUL}"})
        body = response.content.decode()
        assert response.status_code == 400 and "severity contains a NUL character" in body
        assert NUL not in body and 'value="3\ufffd"' in body
        assert nothing_written(leased)

    def test_a_nul_in_the_measurements_is_a_400(self, client, study, leased):
        for name in ("interactions", "client_timings"):
            data = {"field_decision": "approve", name: json.dumps({f"keys_used{NUL}": 1})}
            response = post(client, study, leased, "answer", data)
            body = response.content.decode()
            assert response.status_code == 400 and f"{name}: contains a NUL character" in body
            assert NUL not in body
        assert nothing_written(leased)

    def test_a_nul_in_a_skip_reason_is_a_400_with_the_skip_form_kept_open(self, client, study, leased):
        response = post(client, study, leased, "skip", {"reason": "other", "other_reason": f"dup{NUL}licate"})
        assert response.status_code == 400  # was a 500
        body = response.content.decode()
        assert "Other reason contains a NUL character" in body and NUL not in body
        assert '<details class="skip" id="skip" open>' in body
        assert 'value="other" checked' in body and 'value="dup\ufffdlicate"' in body
        assert nothing_written(leased)

        response = post(client, study, leased, "skip", {"reason": f"I have a conflict{NUL}"})
        assert response.status_code == 400 and "Reason contains a NUL character" in response.content.decode()
        response = post(client, study, leased, "skip", {"reason": "other", "other_reason": "x" * 201})
        assert response.status_code == 400 and "Other reason is 201 characters" in response.content.decode()
        assert nothing_written(leased)
        # Positive control: a clean reason skips.
        response = post(client, study, leased, "skip", {"reason": "other", "other_reason": "duplicate"})
        leased.refresh_from_db()
        assert response.status_code == 200 and (leased.state, leased.skip_reason) == ("skipped", "duplicate")

    def test_an_empty_skip_reason_keeps_the_item_and_says_why(self, client, study, leased):
        response = post(client, study, leased, "skip", {"reason": "other", "other_reason": "  "})
        body = response.content.decode()
        assert response.status_code == 400 and "Other reason is required: say why you skip this item." in body
        assert 'id="answer-form"' in body  # the item is still there to answer or skip
        assert nothing_written(leased)
