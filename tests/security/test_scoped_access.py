"""Objects are always reached through a scoped query: someone else's ids are a 404, and change nothing.

Reviewers try other reviewers' leases and other studies' slugs and ids; a researcher tries
every study address (walked from reviewapp.urls) with another study's slug and ids.
Request parameters that pick a filter, an order or a redirect are allowlisted.
"""

from __future__ import annotations

import json

import pytest
from django.test import Client

from reviewapp.ingest.models import IngestJob, Item
from reviewapp.metrics.models import MetricRun
from reviewapp.queue import services as queue
from reviewapp.queue.models import Assignment, Label, LateSubmission
from reviewapp.reports.models import ExportJob
from reviewapp.studies.models import Arm, AuditEvent, Enrolment, IngestToken, Invitation, Study
from tests.builders import enrol, user

from .routes import app_routes

HX = {"HTTP_HX_REQUEST": "true"}
ANSWER = {"field_decision": "approve", "reason": "I cannot judge this without more context", "comment": "x"}
# Enough for every form to pass validation, so that only the access check can refuse.
RESEARCHER_POST = {
    "to": "paused",
    "gold_label": "approve",
    "name": "stolen",
    "report": "labels",
    "format": "csv",
    "invite-kind": "open",
    "invite-label": "x",
    "invite-max_uses": "5",
}


def snapshot() -> dict:
    """Everything a refused request could have changed."""
    ordered = {
        Label: ("id", "values"),
        LateSubmission: ("id",),
        Assignment: ("id", "state", "initial_values", "skip_reason", "lease_expires_at"),
        Item: ("id", "gold_label", "is_probe", "ai_recommendation", "ai_rationale"),
        IngestToken: ("id", "revoked_at"),
        Invitation: ("id", "revoked_at", "uses"),
        Study: ("id", "status", "title", "updated_at"),
        Arm: ("id", "name", "weight"),
        Enrolment: ("id", "arm_id"),
        MetricRun: ("id",),
        IngestJob: ("id", "status"),
        ExportJob: ("id",),
        AuditEvent: ("id",),
    }
    return {
        model.__name__: list(model.objects.order_by("id").values_list(*fields)) for model, fields in ordered.items()
    }


def refused(client: Client, url: str, data: dict) -> list[int]:
    """GET and POST (page and htmx); each must be 404, or 405 for the method a view does not take."""
    statuses = [
        client.get(url).status_code,
        client.post(url, data).status_code,
        client.post(url, data, **HX).status_code,
    ]
    assert set(statuses) <= {404, 405} and 404 in statuses, (url, statuses)
    return statuses


@pytest.mark.django_db
class TestReviewerScope:
    def test_a_reviewer_cannot_answer_blind_answer_or_skip_with_anyone_elses_ids(self, client, ours, theirs, study):
        me = ours.reviewer
        colleague = user("colleague")
        enrol(study, colleague, "control")
        colleagues_lease = queue.claim_next(study=study, reviewer=colleague)
        enrol(theirs.study, me, "control")  # enrolled in both studies
        my_lease_there = queue.claim_next(study=theirs.study, reviewer=me)
        client.force_login(me)
        before = snapshot()

        tries = {
            "a colleague's lease, same study": ("refunds", colleagues_lease.pk),
            "another study's lease, my study's slug": ("refunds", theirs.assignment.pk),
            "my own lease there, under my study's slug": ("refunds", my_lease_there.pk),
            "my own lease here, under the other study's slug": ("theirs", ours.assignment.pk),
            "another study's lease under its own slug": ("theirs", theirs.assignment.pk),
            "an id that does not exist": ("refunds", 10**9),
        }
        for name, (slug, assignment_id) in tries.items():
            for action in ("answer", "blind", "skip"):
                url = f"/review/{slug}/items/{assignment_id}/{action}/"
                assert client.post(url, ANSWER).status_code == 404, (name, url)
                assert client.post(url, ANSWER, **HX).status_code == 404, (name, url)

        assert snapshot() == before
        # The positive control: the same request on my own lease goes through.
        assert client.post(f"/review/refunds/items/{ours.assignment.pk}/answer/", ANSWER).status_code == 303
        assert Label.objects.filter(assignment=ours.assignment).count() == 1

    def test_a_reviewer_cannot_open_a_study_they_are_not_enrolled_in(self, client, ours, theirs):
        client.force_login(ours.reviewer)
        for url in ["/review/theirs/", f"/review/theirs/items/{theirs.assignment.pk}/answer/", "/review/nope/"]:
            assert client.get(url).status_code in (404, 405)
            assert client.post(url, ANSWER, **HX).status_code in (404, 405)
        assert client.get("/review/theirs/").status_code == 404
        assert not Assignment.objects.filter(study=theirs.study, reviewer=ours.reviewer).exists()


@pytest.mark.django_db
class TestResearcherScope:
    def theirs_values(self, theirs, export_job):
        def value(route, parameter):
            if parameter == "job_id" and route.name.startswith("study-export"):
                return export_job.pk
            return {
                "slug": theirs.study.slug,
                "token_id": theirs.token.pk,
                "invitation_id": theirs.invitation.pk,
                "item_id": theirs.item.pk,
                "job_id": theirs.job.pk,
                "reviewer_id": theirs.reviewer.pk,
                "enrolment_id": Enrolment.objects.get(study=theirs.study, reviewer=theirs.reviewer).pk,
                "report": "labels",
            }.get(parameter)

        return value

    def test_every_study_address_is_a_404_with_another_studys_slug_or_ids(self, client, ours, theirs):
        export_job = ExportJob.objects.create(
            study=theirs.study, report="labels", file_path="/nowhere.csv", filename="theirs.csv"
        )
        client.force_login(ours.researcher)
        theirs_value = self.theirs_values(theirs, export_job)
        before = snapshot()

        tried = []
        for route in app_routes():
            if not route.route.startswith("studies/<slug:slug>/"):
                continue
            # Their slug with their ids: the study itself is not ours.
            tried.append(refused(client, route.url(theirs_value), RESEARCHER_POST))
            if any(parameter.endswith("_id") for parameter in route.parameters):
                # Our slug with their ids: the object is not in our study.
                ours_slug = lambda r, p: ours.study.slug if p == "slug" else theirs_value(r, p)  # noqa: E731
                tried.append(refused(client, route.url(ours_slug), RESEARCHER_POST))

        assert snapshot() == before
        assert len(tried) >= 30
        # The positive control: our own token can be revoked from our own study.
        client.post(f"/studies/refunds/tokens/{ours.token.pk}/revoke/")
        assert IngestToken.objects.get(pk=ours.token.pk).revoked_at is not None

    def test_a_researcher_is_not_a_reviewer_of_their_own_or_anyone_elses_study(self, client, ours, theirs):
        client.force_login(ours.researcher)
        assert client.get("/review/refunds/").status_code == 404
        assert client.get("/review/theirs/").status_code == 404


@pytest.mark.django_db
class TestAllowlistedParameters:
    def test_an_unknown_item_filter_shows_all_items_and_known_ones_filter(self, client, ours):
        client.force_login(ours.researcher)
        Item.objects.filter(pk=ours.item.pk).update(gold_label="approve")
        rows = lambda query: client.get(f"/studies/refunds/items/{query}").content.count(b"<tr>") - 1  # noqa: E731
        assert rows("?show=gold") == 1
        for bogus in ["?show=bogus", "?show=__class__", "?show=gold_label__isnull", "?show=", "?show=gold%00"]:
            response = client.get(f"/studies/refunds/items/{bogus}")
            assert response.status_code == 200, bogus
            assert rows(bogus) == 3, bogus

    def test_bogus_page_numbers_fall_back_to_a_real_page(self, client, ours):
        client.force_login(ours.researcher)
        for page in ["bogus", "-1", "0", "1e9", "99999999999999999999", "1;DROP"]:
            assert client.get(f"/studies/refunds/items/?page={page}").status_code == 200, page
            assert client.get(f"/studies/refunds/audit/?page={page}").status_code == 200, page
            assert client.get(f"/studies/refunds/dashboard/?page={page}").status_code == 200, page

    def test_an_unknown_dashboard_sort_key_falls_back_to_the_default_order(self, client, ours):
        client.force_login(ours.researcher)
        default = client.get("/studies/refunds/dashboard/")
        for query in ["?sort=password&dir=asc", "?sort=__class__&dir=sideways", "?sort=reviewer__password"]:
            response = client.get(f"/studies/refunds/dashboard/{query}")
            assert response.status_code == 200, query
            assert (response.context["sort"], response.context["direction"]) == (
                default.context["sort"],
                default.context["direction"],
            ), query

    def test_an_unknown_partial_name_renders_the_whole_page(self, client, ours):
        client.force_login(ours.researcher)
        response = client.get("/studies/refunds/?part=../../base", **HX)
        assert response.status_code == 200 and b"<html" in response.content

    def test_an_unknown_status_changes_nothing(self, client, ours):
        client.force_login(ours.researcher)
        client.post("/studies/refunds/status/", {"to": "__class__"})
        assert Study.objects.get(slug="refunds").status == "running"

    def test_an_unknown_ingest_format_is_refused_by_name(self, client, ours):
        _token, secret = IngestToken.issue(study=ours.study, name="t")
        response = client.post(
            "/api/studies/refunds/items?format=pickle",
            json.dumps({"external_id": "x", "messages": []}),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {secret}",
        )
        assert response.status_code == 400
        assert "Unknown format 'pickle'" in response.json()["error"]

    def test_unknown_export_reports_and_formats_are_refused(self, client, ours):
        client.force_login(ours.researcher)
        assert client.get("/studies/refunds/exports/passwords.csv").status_code == 404
        assert client.get("/studies/refunds/exports/labels.exe.csv").status_code == 404
        response = client.post("/studies/refunds/exports/jobs/", {"report": "auth_user", "format": "csv"})
        assert response.status_code == 400

    def test_the_gold_form_redirects_only_within_the_site(self, client, ours):
        client.force_login(ours.researcher)
        url = f"/studies/refunds/items/{ours.item.pk}/gold/"
        for outside in ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)"]:
            response = client.post(url, {"gold_label": "approve", "next": outside})
            assert response["Location"] == "/studies/refunds/items/", outside
        kept = client.post(url, {"gold_label": "approve", "next": "/studies/refunds/items/?show=gold&page=2"})
        assert kept["Location"] == "/studies/refunds/items/?show=gold&page=2"
