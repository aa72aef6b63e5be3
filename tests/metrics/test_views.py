"""The metrics panel on the study page, through the test client."""

from __future__ import annotations

from reviewapp.jobs import job_run
from reviewapp.metrics import services
from reviewapp.metrics.models import MetricRun
from reviewapp.studies.models import AuditEvent


class TestMetricsPanel:
    def test_the_study_page_loads_the_panel_from_its_own_url(self, client, study, researcher):
        client.force_login(researcher)
        page = client.get("/studies/refunds/").content.decode()
        assert 'hx-get="/studies/refunds/metrics/" hx-trigger="load"' in page
        assert "No metrics yet" not in page  # the study page computes no metrics itself

    def test_it_shows_an_empty_state_before_any_computation(self, client, study, researcher):
        client.force_login(researcher)
        response = client.get("/studies/refunds/metrics/", HTTP_HX_REQUEST="true")
        assert response.status_code == 286  # nothing to poll for
        assert b"No metrics yet" in response.content

    def test_it_shows_the_latest_numbers_with_intervals_and_when_they_were_computed(self, client, labelled, researcher):
        run, _ = services.metric_run_request(study=labelled)
        job_run(MetricRun, run.pk)
        client.force_login(researcher)

        # Without JavaScript, the panel's own URL is a page of its own.
        page = client.get("/studies/refunds/metrics/").content.decode()

        assert "<!doctype html>" in page and "Refund approvals" in page
        assert "Computed " in page and "from 16 labels by 4 reviewers on 4 items" in page
        # Rationale arm: 7 of 8 agree with the AI, Wilson interval; effect +37.5 points vs control.
        assert "87.5% [" in page and "+37.5 pp [" in page
        assert "Krippendorff" in page
        assert "Narrative increment (rationale vs recommendation): needs labels in both arms." in page

    def test_the_button_queues_one_run_and_the_panel_polls_its_progress(self, client, labelled, researcher):
        client.force_login(researcher)

        response = client.post("/studies/refunds/metrics/run/", HTTP_HX_REQUEST="true")
        again = client.post("/studies/refunds/metrics/run/", HTTP_HX_REQUEST="true")

        assert response.status_code == 200 and b"Computing the metrics now." in response.content
        assert b'hx-trigger="every 2s"' in response.content and b"<progress" in response.content
        assert b"already running" in again.content
        assert MetricRun.objects.filter(study=labelled).count() == 1
        assert AuditEvent.objects.filter(action="metrics.requested", actor=researcher).count() == 1

        job_run(MetricRun, MetricRun.objects.get().pk)
        final = client.get("/studies/refunds/metrics/", HTTP_HX_REQUEST="true")
        assert final.status_code == 286  # htmx stops polling: the run is done
        assert b"Computed " in final.content and b"every 2s" not in final.content

    def test_a_study_without_labels_says_so(self, client, study, researcher):
        client.force_login(researcher)
        response = client.post("/studies/refunds/metrics/run/", follow=True)
        assert b"There are no labels yet: nothing to compute." in response.content

    def test_reviewers_and_other_researchers_cannot_see_or_start_it(self, client, study, reviewer, outsider):
        client.force_login(reviewer)
        assert client.get("/studies/refunds/metrics/").status_code == 403
        assert client.post("/studies/refunds/metrics/run/").status_code == 403
        client.force_login(outsider)
        assert client.get("/studies/refunds/metrics/").status_code == 404
        assert client.post("/studies/refunds/metrics/run/").status_code == 404
        assert not MetricRun.objects.exists()
