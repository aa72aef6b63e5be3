"""A reviewer's page on the dashboard: indicators, timeline, labels; scoped to the study."""

from __future__ import annotations

import re

from django.contrib.auth.models import User

from reviewapp.studies.models import Arm, Enrolment
from tests.builders import compute_metrics, enrol

URL = "/studies/refunds/dashboard/reviewers/{}/"


def in_arm(study, arm_name: str) -> list[User]:
    return [
        e.reviewer
        for e in Enrolment.objects.filter(study=study, arm__name=arm_name).select_related("reviewer").order_by("id")
    ]


class TestReviewerPage:
    def test_it_is_404_for_a_user_not_enrolled_in_this_study(self, client, study, other_study, researcher):
        Arm.objects.create(study=other_study, name="control")
        elsewhere = enrol(other_study, "elsewhere", "control")
        other_study.researchers.add(researcher)
        client.force_login(researcher)

        assert client.get(URL.format(elsewhere.pk)).status_code == 404
        assert client.get(URL.format(researcher.pk)).status_code == 404
        assert client.get(URL.format(999_999)).status_code == 404
        assert client.get(f"/studies/other/dashboard/reviewers/{elsewhere.pk}/").status_code == 200

    def test_it_shows_a_reviewer_without_labels(self, client, study, researcher):
        quiet = enrol(study, "quiet", "control")
        client.force_login(researcher)
        page = client.get(URL.format(quiet.pk)).content.decode()
        assert "This reviewer has no labels yet." in page
        assert "No labels from this reviewer yet." in page
        assert "No metrics yet" in page
        assert "chart-timeline" not in page

    def test_it_shows_the_indicators_the_timeline_and_the_labels(self, client, labelled, researcher):
        compute_metrics(labelled)
        stamp = in_arm(labelled, "rationale")[0]  # approved all four: agrees with the AI every time
        client.force_login(researcher)

        page = client.get(URL.format(stamp.pk)).content.decode()

        assert "100.0%" in page  # agreement with the AI, 4 of 4
        table = page[page.index('id="indicator-table"') :]
        for name in ("Agreed with planted errors", "Faster than reading floor", "Label entropy", "Agreement drift"):
            assert name in table
        assert "flag above 0.3" in table and "flag below 0.3" in table
        timeline = re.search(r'<svg class="dash-chart" id="chart-timeline".*?</svg>', page, re.S).group(0)
        assert 'role="img"' in timeline
        assert timeline.count("agrees with the AI)") == 4  # one mark per label, with its title
        assert "#4 i4: approve (agrees with the AI)" in timeline
        assert 'id="chart-running"' in page and "rationale arm 87.5%" in page
        labels = page[page.index('id="recent-labels"') :]
        assert [m for m in re.findall(r"<code>(i\d)</code>", labels)] == ["i4", "i3", "i2", "i1"]

    def test_the_control_arm_timeline_says_the_ai_was_hidden(self, client, labelled, researcher):
        reviewer = in_arm(labelled, "control")[0]
        client.force_login(researcher)
        page = client.get(URL.format(reviewer.pk)).content.decode()
        assert "agrees with the hidden AI" in page
        assert "No metrics yet" in page

    def test_the_label_list_pages_with_htmx(self, client, labelled, researcher):
        reviewer = in_arm(labelled, "control")[0]
        client.force_login(researcher)
        url = URL.format(reviewer.pk) + "?page=1"
        response = client.get(url, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="recent-labels")
        html = response.content.decode()
        assert html.lstrip().startswith('<div id="recent-labels"') and "<html" not in html
        assert html.count("<code>i") == 4
