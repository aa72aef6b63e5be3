"""Researcher pages: login required, the study's ingest status, helpful 404s, strict CSP."""

from __future__ import annotations

import pytest

from reviewapp.ingest.models import IngestJob


@pytest.mark.django_db
class TestPages:
    def test_it_sends_anonymous_visitors_to_login(self, client):
        response = client.get("/")
        assert response.status_code == 302
        assert response["Location"] == "/accounts/login/"

    def test_it_keeps_reviewers_out_of_study_pages(self, client, study, reviewer):
        client.force_login(reviewer)
        assert client.get("/studies/refunds/").status_code == 403

    def test_it_lists_studies_with_item_counts(self, admin_client, study):
        response = admin_client.get("/")
        assert response.status_code == 200
        assert b"Refund approvals" in response.content

    def test_it_shows_an_empty_state_without_studies(self, admin_client):
        assert b"No studies yet." in admin_client.get("/").content

    def test_it_shows_how_to_ingest_when_a_study_is_empty(self, admin_client, study):
        response = admin_client.get("/studies/refunds/")
        assert b"/api/studies/refunds/items" in response.content

    def test_it_polls_job_progress_and_stops_when_done(self, admin_client, study):
        job = IngestJob.objects.create(study=study, filename="a.jsonl", stored_path="/x", size_bytes=100, bytes_done=40)
        partial = admin_client.get("/studies/refunds/?part=jobs", HTTP_HX_REQUEST="true")
        assert partial.status_code == 200
        assert b'value="40"' in partial.content and b"<html" not in partial.content
        IngestJob.objects.filter(pk=job.pk).update(status=IngestJob.Status.SUCCEEDED)
        done = admin_client.get("/studies/refunds/?part=jobs", HTTP_HX_REQUEST="true")
        assert done.status_code == 286  # htmx: stop polling

    def test_it_answers_an_unknown_study_with_a_helpful_404(self, admin_client):
        response = admin_client.get("/studies/nope/")
        assert response.status_code == 404
        assert b"Back to your studies" in response.content

    def test_it_sends_a_strict_content_security_policy(self, admin_client):
        policy = admin_client.get("/")["Content-Security-Policy"]
        assert "script-src 'self'" in policy
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
