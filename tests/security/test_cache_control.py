"""Researcher pages and exports hold research data: no browser or shared cache may keep them.

Every route of the app under studies/ (and the export addresses) goes through
researcher_required, which sends ``Cache-Control: private, no-store`` (with no-cache,
must-revalidate and max-age=0, as the reviewer pages' never_cache does); the home page,
which lists a researcher's studies, sends it too.
"""

from __future__ import annotations

import pytest
from django.test import Client

from reviewapp.reports.models import ExportJob
from reviewapp.studies.models import Enrolment

from .routes import app_routes


def never_stored(response) -> bool:
    directives = {d.strip() for d in response.get("Cache-Control", "").split(",")}
    return {"private", "no-store"} <= directives


@pytest.fixture
def export_job(ours, settings, tmp_path):
    settings.EXPORT_DIR = tmp_path
    path = tmp_path / "labels.csv"
    path.write_text("label_id\r\n1\r\n")
    return ExportJob.objects.create(
        study=ours.study,
        report="labels",
        file_path=str(path),
        filename="refunds-labels.csv",
        status="succeeded",
        size_bytes=path.stat().st_size,
    )


@pytest.mark.django_db
class TestCacheControl:
    def values(self, ours, export_job):
        def value(route, parameter):
            if parameter == "job_id" and route.name.startswith("study-export"):
                return export_job.pk
            if parameter == "report" and route.name == "study-export-json":
                return "agreement"  # labels come as JSON Lines; the agreement report as JSON
            return {
                "slug": ours.study.slug,
                "token_id": ours.token.pk,
                "invitation_id": ours.invitation.pk,
                "item_id": ours.item.pk,
                "job_id": ours.job.pk,
                "reviewer_id": ours.reviewer.pk,
                "enrolment_id": Enrolment.objects.get(study=ours.study, reviewer=ours.reviewer).pk,
                "report": "labels",
                "fmt": "csv",
            }.get(parameter)

        return value

    def test_every_researcher_page_and_export_is_private_and_never_stored(self, ours, export_job):
        client = Client()
        client.force_login(ours.researcher)
        researcher_routes = [r for r in app_routes() if getattr(r.callback, "researcher_only", False)]
        # Every study address is a researcher page; none was left without the decorator.
        assert {r.route for r in app_routes() if r.route.startswith("studies/")} <= {r.route for r in researcher_routes}

        answered = {}
        for route in researcher_routes:
            url = route.url(self.values(ours, export_job))
            response = client.get(url)
            answered[url] = response.status_code
            assert never_stored(response), f"{url} ({response.status_code}): {response.get('Cache-Control')!r}"

        # The pages themselves answered, exports and the prepared file included.
        assert answered["/studies/refunds/"] == 200
        assert answered["/studies/refunds/exports/labels.csv"] == 200
        assert answered[f"/studies/refunds/exports/jobs/{export_job.pk}/download/"] == 200
        assert len(answered) >= 25

    def test_the_home_page_is_never_stored(self, ours):
        for user in (ours.researcher, ours.reviewer):
            client = Client()
            client.force_login(user)
            response = client.get("/")
            assert response.status_code == 200 and never_stored(response)
