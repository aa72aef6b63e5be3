"""Invisible direction overrides and zero-width spaces from a transcript reach the Django
admin as visible markers, never raw.

An item's external id "invoice\u202efdp.exe" displays as "invoiceexe.pdf" if the raw U+202E
reaches the page. Every admin list and detail page that shows transcript-derived text (the
item's external id, title, transcript, rationale and metadata; an upload's file name and its
errors; items named in assignments, labels and late answers; what a reviewer typed) must
show ⟦U+202E⟧ instead, as the review page does.
"""

from __future__ import annotations

import orjson
import pytest
from django.contrib.auth.models import User

from reviewapp.ingest.models import IngestJob, Item
from reviewapp.ingest.parsing import parse_jsonl
from reviewapp.ingest.services import items_ingest
from reviewapp.queue.models import Assignment, Label, LateSubmission
from reviewapp.queue.services import assignment_skip, claim_next, label_submit
from reviewapp.rendering import HIDDEN_CHARACTERS
from reviewapp.studies.models import AuditEvent
from tests.builders import enrol_allocated

RLO = "\u202e"
HIDDEN = [chr(code) for code in HIDDEN_CHARACTERS]
RECORD = {
    "external_id": f"invoice{RLO}fdp.exe",
    "title": f"Pay invoice{RLO}fdp.exe\u200b",
    "messages": [
        {"role": "user", "content": f"Pay the attached invoice{RLO}fdp.exe"},
        {"role": "assistant", "content": "Paying pay\u200bpal now \u2066ok\u2069"},
    ],
    "metadata": {"source": f"crm{RLO}\ufeff"},
    "ai_recommendation": "approve",
    "ai_rationale": f"The invoice{RLO}fdp.exe looks right",
}


@pytest.fixture
def seeded(study, admin_client):
    assert items_ingest(study=study, results=parse_jsonl([orjson.dumps(RECORD)])).committed
    item = Item.objects.get()
    job = IngestJob.objects.create(
        study=study,
        filename=f"batch{RLO}lmth.jsonl",
        stored_path="/nowhere",
        status="failed",
        errors=[{"location": "line 1", "reason": "duplicate", "external_id": RECORD["external_id"]}],
        message=f"1 error in batch{RLO}lmth.jsonl",
    )
    first, second = enrol_allocated(study), enrol_allocated(study)
    assignment = claim_next(study=study, reviewer=first)
    label, _ = label_submit(
        study=study,
        reviewer=first,
        assignment_id=assignment.pk,
        values={"decision": "approve"},
        comment=f"matches invoice{RLO}fdp.exe",
    )
    skipped = claim_next(study=study, reviewer=second)
    assignment_skip(study=study, reviewer=second, assignment_id=skipped.pk, reason=f"cannot open{RLO}fdp.exe")
    late = LateSubmission.objects.create(assignment=assignment, values={"decision": "reject"}, reason="slot taken")
    event = AuditEvent.objects.create(study=study, action="item.gold", detail={"item": RECORD["external_id"]})
    return {
        "item": item,
        "job": job,
        "assignment": assignment,
        "skipped": skipped,
        "label": label,
        "late": late,
        "event": event,
        "study": study,
    }


def pages(seeded) -> dict[str, str]:
    return {
        "item list": "/admin/ingest/item/",
        "item": f"/admin/ingest/item/{seeded['item'].pk}/change/",
        "item delete": f"/admin/ingest/item/{seeded['item'].pk}/delete/",
        "item history": f"/admin/ingest/item/{seeded['item'].pk}/history/",
        "ingest job list": "/admin/ingest/ingestjob/",
        "ingest job": f"/admin/ingest/ingestjob/{seeded['job'].pk}/change/",
        "assignment list": "/admin/review_queue/assignment/",
        "assignment": f"/admin/review_queue/assignment/{seeded['assignment'].pk}/change/",
        "skipped assignment": f"/admin/review_queue/assignment/{seeded['skipped'].pk}/change/",
        "label list": "/admin/review_queue/label/",
        "label": f"/admin/review_queue/label/{seeded['label'].pk}/change/",
        "late answer list": "/admin/review_queue/latesubmission/",
        "late answer": f"/admin/review_queue/latesubmission/{seeded['late'].pk}/change/",
        "audit event": f"/admin/studies/auditevent/{seeded['event'].pk}/change/",
        "study audit log": f"/studies/{seeded['study'].slug}/audit/",
    }


@pytest.mark.django_db
class TestAdminHiddenCharacters:
    def test_no_admin_page_shows_a_raw_hidden_character(self, admin_client, seeded):
        for name, url in pages(seeded).items():
            response = admin_client.get(url)
            page = response.content.decode()
            assert response.status_code == 200, (name, response.status_code)
            raw = sorted({f"U+{ord(c):04X}" for c in HIDDEN if c in page})
            assert not raw, f"{name} ({url}) shows raw {raw}"
            # The text itself is there, its hidden character shown as a marker.
            assert "⟦U+202E⟧" in page, f"{name} ({url}) does not show the text"

    def test_the_item_page_shows_every_transcript_field_with_markers(self, admin_client, seeded):
        page = admin_client.get(f"/admin/ingest/item/{seeded['item'].pk}/change/").content.decode()
        assert "invoice⟦U+202E⟧fdp.exe" in page  # external id, title, transcript, rationale
        assert "Pay invoice⟦U+202E⟧fdp.exe⟦U+200B⟧" in page  # the title
        assert "pay⟦U+200B⟧pal now ⟦U+2066⟧ok⟦U+2069⟧" in page  # the transcript
        assert "crm⟦U+202E⟧⟦U+FEFF⟧" in page  # the metadata
        assert "The invoice⟦U+202E⟧fdp.exe looks right" in page  # the rationale
        list_page = admin_client.get("/admin/ingest/item/").content.decode()
        assert "invoice⟦U+202E⟧fdp.exe" in list_page and "Pay invoice⟦U+202E⟧fdp.exe⟦U+200B⟧" in list_page

    def test_the_stored_data_keeps_the_characters_it_arrived_with(self, admin_client, seeded):
        """Markers are only how the admin shows the text: what is stored (and exported) is unchanged."""
        item = Item.objects.get()
        assert item.external_id == RECORD["external_id"] and item.ai_rationale == RECORD["ai_rationale"]
        assert Label.objects.get().comment == f"matches invoice{RLO}fdp.exe"
        assert Assignment.objects.get(pk=seeded["skipped"].pk).skip_reason == f"cannot open{RLO}fdp.exe"

    def test_transcript_fields_cannot_be_edited_in_the_admin(self, admin_client, seeded):
        """An edit box would show the raw characters, and saving it would store the markers."""
        item = seeded["item"]
        page = admin_client.get(f"/admin/ingest/item/{item.pk}/change/").content.decode()
        for field in ("external_id", "payload", "ai_rationale", "source_metadata", "ai_recommendation"):
            assert f'name="{field}"' not in page
        assert 'name="priority"' in page  # the control: editable fields still are
        assert admin_client.get("/admin/ingest/item/add/").status_code == 403
        assert User.objects.filter(is_superuser=True).count() == 1
