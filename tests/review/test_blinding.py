"""The blinding contract: what a control-arm reviewer's arm hides never reaches them.

A canary string is planted in every hidden field of every item (recommendation,
rationale, confidence, gold, probe flag, source metadata, external id) and in other
reviewers' labels and late answers. Then every page, htmx partial, API and error
response the control reviewer can reach is fetched, and each body and header is
searched. A positive control shows the canaries do flow where an arm allows them.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from reviewapp.queue import services as queue
from reviewapp.queue.models import Assignment, LateSubmission
from reviewapp.studies.models import Invitation, Study
from tests.builders import enrol, make_items

CANARIES = {
    "recommendation": "CANARYREC7431",
    "rationale": "CANARYRATIONALE7431",
    "gold": "CANARYGOLD7431",
    "metadata": "CANARYMETA7431",
    "external_id": "CANARYEXT7431",
    "other_comment": "CANARYOTHER7431",
    "late_answer": "CANARYLATE7431",
}
# Confidence is a number: its renderings are the canaries.
CONFIDENCE = 0.8642
CONFIDENCE_RENDERINGS = ["0.8642", "86.42", "86%", "Confidence"]
HX = {"HTTP_HX_REQUEST": "true"}


def leaked(response) -> list[str]:
    text = response.content.decode(errors="replace") + "\n" + "\n".join(f"{k}: {v}" for k, v in response.items())
    found = [name for name, canary in CANARIES.items() if canary in text]
    found += [f"confidence as {r!r}" for r in CONFIDENCE_RENDERINGS if r in text]
    if "probe" in text.lower():
        found.append("the word 'probe'")
    return found


@pytest.fixture
def canary_study(study):
    Study.objects.filter(pk=study.pk).update(overlap_k=1)
    study.refresh_from_db()
    for n in range(3):
        make_items(
            study,
            1,
            prefix=f"{CANARIES['external_id']}-{n}",
            ai_recommendation=CANARIES["recommendation"],
            ai_rationale=f"Because {CANARIES['rationale']}.",
            ai_confidence=CONFIDENCE,
            gold_label=CANARIES["gold"],
            is_probe=True,
            source_metadata={"note": CANARIES["metadata"]},
        )
    # Another reviewer (rationale arm) labelled an item, and left a late answer on another.
    other = enrol(study, "other", "rationale")
    assignment = queue.claim_next(study=study, reviewer=other)
    queue.label_submit(
        study=study,
        reviewer=other,
        assignment_id=assignment.pk,
        values={"decision": "reject"},
        comment=CANARIES["other_comment"],
    )
    LateSubmission.objects.create(
        assignment=assignment, values={"decision": CANARIES["late_answer"]}, reason="planted for the test"
    )
    return study


@pytest.mark.django_db
class TestControlArmBlinding:
    def test_no_response_a_control_reviewer_can_reach_carries_a_hidden_field(self, client, canary_study):
        study = canary_study
        control = enrol(canary_study, "ctrl", "control")
        rival = enrol(canary_study, "rival", "control")
        invitation = Invitation.objects.create(study=study, label="cohort")
        client.force_login(control)
        responses = {}

        def fetch(name, method, url, data=None, **extra):
            responses[name] = getattr(client, method)(url, data or {}, **extra)
            return responses[name]

        base = f"/review/{study.slug}/"
        fetch("home", "get", "/")
        fetch("review page", "get", base)
        fetch("review partial", "get", base, **HX)
        first = Assignment.objects.get(reviewer=control, state="leased")
        answer = f"{base}items/{first.pk}/answer/"
        fetch("invalid answer (htmx)", "post", answer, {"field_decision": "maybe"}, **HX)
        fetch("invalid answer (page)", "post", answer, {"field_decision": "maybe"})
        fetch("malformed measurements", "post", answer, {"field_decision": "approve", "interactions": "[1"}, **HX)
        fetch("blind answer in a non-reveal arm", "post", f"{base}items/{first.pk}/blind/", {}, **HX)
        fetch("skip without reason", "post", f"{base}items/{first.pk}/skip/", {"reason": ""}, **HX)
        fetch(
            "NUL in a skip reason",
            "post",
            f"{base}items/{first.pk}/skip/",
            {"reason": "other", "other_reason": "\x00"},
            **HX,
        )
        fetch("NUL in a comment", "post", answer, {"field_decision": "approve", "comment": "\x00"}, **HX)
        fetch("GET on a POST address", "get", answer)
        fetch("answer (htmx, next item)", "post", answer, {"field_decision": "approve"}, **HX)
        fetch("double submit", "post", answer, {"field_decision": "approve"}, **HX)
        fetch("another answer from a stale tab", "post", answer, {"field_decision": "reject"}, **HX)
        second = Assignment.objects.get(reviewer=control, state="leased")
        # The control reviewer's lease runs out and a rival takes the slot: the 409 path.
        Assignment.objects.filter(pk=second.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=5))
        client.force_login(rival)
        client.get(base)
        client.force_login(control)
        fetch("late answer (409)", "post", f"{base}items/{second.pk}/answer/", {"field_decision": "reject"}, **HX)
        fetch("late answer again (409)", "post", f"{base}items/{second.pk}/answer/", {"field_decision": "x"}, **HX)
        fetch("someone else's assignment", "post", f"{base}items/{first.pk - 1}/answer/", {"field_decision": "approve"})
        fetch("next after 409", "get", base, **HX)
        fetch(
            "answer (page, redirect)",
            "post",
            f"{base}items/{Assignment.objects.get(reviewer=control, state='leased').pk}/answer/",
            {"field_decision": "approve"},
        )
        fetch("all done", "get", base)
        fetch("another study", "get", "/review/nope/")
        for page in ["", "items/", "items/?probes=1", "reviewers/", "audit/", "arms/", "settings/"]:
            fetch(f"researcher page {page or 'detail'}", "get", f"/studies/{study.slug}/{page}")
        fetch("items API", "post", f"/api/studies/{study.slug}/items", content_type="application/json")
        fetch("uploads API", "get", f"/api/studies/{study.slug}/uploads/1")
        fetch("admin", "get", "/admin/")
        fetch("admin items", "get", "/admin/ingest/item/")
        fetch("join page", "get", f"/join/{invitation.token}/")
        fetch("password page", "get", "/accounts/password/")
        fetch("missing page", "get", "/no/such/page/")

        assert responses["late answer (409)"].status_code == 409
        assert responses["someone else's assignment"].status_code == 404
        assert 'id="all-done"' in responses["all done"].content.decode()
        leaks = {name: found for name, response in responses.items() if (found := leaked(response))}
        assert leaks == {}
        assert responses["NUL in a comment"].status_code == 400
        assert "already answered" in responses["another answer from a stale tab"].content.decode()
        assert len(responses) == 35

    def test_the_canaries_do_reach_an_arm_that_shows_them(self, client, canary_study):
        """The positive control: the same search finds what the rationale arm may see."""
        client.force_login(enrol(canary_study, "shown", "rationale"))
        found = leaked(client.get(f"/review/{canary_study.slug}/"))
        assert "recommendation" in found and "rationale" in found
        assert "gold" not in found and "other_comment" not in found
