"""The study dashboard through the test client: access, numbers, sorting, empty states, escaping."""

from __future__ import annotations

import re

from django.contrib.auth.models import User

from reviewapp.studies.models import Arm, Enrolment
from tests.builders import compute_metrics, enrol

URL = "/studies/refunds/dashboard/"
HOSTILE = "<script>alert(1)</script>"


def reviewer_order(html: str) -> list[str]:
    return re.findall(r'<tr class="[^"]*" data-reviewer="([^"]+)"', html)


def svg(html: str, chart_id: str) -> str:
    match = re.search(rf'<svg class="dash-chart" id="{chart_id}".*?</svg>', html, re.S)
    assert match, f"no chart {chart_id}"
    return match.group(0)


class TestDashboard:
    def test_it_is_for_the_study_researchers_only(self, client, study, researcher, reviewer, outsider):
        assert client.get(URL).status_code == 302
        assert client.get(URL)["Location"].startswith("/accounts/login/")
        client.force_login(reviewer)
        assert client.get(URL).status_code == 403
        assert client.get(f"{URL}reviewers/{reviewer.pk}/").status_code == 403
        client.force_login(outsider)
        assert client.get(URL).status_code == 404
        assert client.get(f"{URL}reviewers/{reviewer.pk}/").status_code == 404
        client.force_login(researcher)
        assert client.get(URL).status_code == 200
        assert client.get(f"{URL}reviewers/{reviewer.pk}/").status_code == 200

    def test_the_study_tabs_link_to_it(self, client, study, researcher):
        client.force_login(researcher)
        assert f'href="{URL}"'.encode() in client.get("/studies/refunds/").content

    def test_it_says_when_there_are_no_labels_yet(self, client, study, researcher):
        enrol(study, "quiet", "control")
        client.force_login(researcher)
        page = client.get(URL).content.decode()
        assert "No labels yet, so no metrics" in page
        # The progress panels are drawn without metrics too: one reviewer enrolled, none with labels.
        assert '<div class="card-num">0 / 1</div>' in page
        for arm in ("control", "recommendation", "rationale"):
            assert f'<td>{arm}</td><td class="num">0</td>' in page
        assert "no labels" in page  # the enrolled reviewer's row

    def test_it_offers_to_compute_when_there_are_labels_but_no_metrics(self, client, labelled, researcher):
        client.force_login(researcher)
        page = client.get(URL).content.decode()
        assert "No metrics yet" in page
        assert 'action="/studies/refunds/metrics/run/"' in page and "Compute metrics" in page
        assert 'id="chart-deference"' not in page
        # Progress is live, metrics or not: 8 labels in each of the two arms with reviewers.
        assert re.search(r"<td>control</td><td class=\"num\">8</td>", page)
        assert re.search(r"<td>rationale</td><td class=\"num\">8</td>", page)

    def test_it_shows_the_stored_numbers_with_their_intervals(self, client, labelled, researcher):
        compute_metrics(labelled)
        client.force_login(researcher)

        page = client.get(URL).content.decode()

        # The rationale arm agrees with the AI on 7 of 8 labels (Wilson), +37.5 points over control.
        deference = page[page.index('id="deference-table"') :]
        assert re.search(r"rationale <span class=\"muted\">\(rationale\)</span></th>.*?<td>87\.5% \[", deference, re.S)
        assert "50.0% [" in deference  # control: 4 of 8 agree with the hidden recommendation
        effects = page[page.index('id="effect-table"') :]
        assert "+37.5 pp [" in effects
        chart = svg(page, "chart-deference")
        assert 'role="img"' in chart and "aria-label=" in chart
        assert "rationale: 87.5% [" in chart  # the mark's <title>
        assert "baseline: control 50.0%" in chart
        assert "<title>" in svg(page, "chart-effects") and "+37.5 pp" in svg(page, "chart-effects")
        assert "Krippendorff" in svg(page, "chart-agreement")
        assert 'id="chart-dwell"' in page and 'id="chart-queue"' in page

    def test_the_queue_states_count_items_per_arm(self, client, labelled, researcher):
        client.force_login(researcher)
        page = client.get(URL).content.decode()
        table = page[page.index("<th>Queue</th>") :]
        rows = dict(re.findall(r'<tr><th scope="row">(\w+)</th>(.*?)</tr>', table, re.S))
        cells = {arm: re.findall(r'<td class="num">(\d+)', row) for arm, row in rows.items()}
        # k = 3 and two reviewers labelled each item: partially labelled in their arms.
        # Columns: fully, partially, in progress, not yet claimed, items.
        assert cells["control"] == ["0", "4", "0", "0", "4"]
        assert cells["rationale"] == ["0", "4", "0", "0", "4"]
        assert cells["recommendation"] == ["0", "0", "0", "4", "4"]

    def test_it_sorts_by_an_allowed_key_and_ignores_others(self, client, labelled, researcher):
        compute_metrics(labelled)
        client.force_login(researcher)
        names = sorted(Enrolment.objects.filter(study=labelled).values_list("reviewer__username", flat=True))

        ascending = reviewer_order(client.get(URL + "?sort=reviewer&dir=asc").content.decode())
        descending = reviewer_order(client.get(URL + "?sort=reviewer&dir=desc").content.decode())
        bogus = client.get(URL + "?sort=id%3BDROP+TABLE+auth_user&dir=sideways")
        default = reviewer_order(client.get(URL).content.decode())

        assert ascending == names and descending == names[::-1]
        assert bogus.status_code == 200
        assert reviewer_order(bogus.content.decode()) == default
        assert 'aria-sort="descending"' in bogus.content.decode()  # the default: flags, descending
        assert User.objects.exists()

    def test_it_sorts_by_an_indicator_with_missing_values_last(self, client, labelled, researcher):
        compute_metrics(labelled)
        client.force_login(researcher)
        enrolled = Enrolment.objects.filter(study=labelled)

        order = reviewer_order(client.get(URL + "?sort=discrimination_gap&dir=desc").content.decode())

        # Rationale reviewer answers: "aara" has a gap of +50 points, "aaaa" none at all. Control
        # reviewers never saw the AI (no AI-based indicator) and reviewers without labels have no
        # indicators: they come after, whichever the direction.
        rationale = list(
            enrolled.filter(arm__name="rationale").order_by("id").values_list("reviewer__username", flat=True)
        )
        assert order[:2] == rationale[::-1]
        assert set(order[2:]) == set(
            enrolled.exclude(arm__name="rationale").values_list("reviewer__username", flat=True)
        )

    def test_an_htmx_sort_returns_only_the_table(self, client, labelled, researcher):
        client.force_login(researcher)
        response = client.get(URL + "?sort=labels&dir=asc", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="reviewer-table")
        html = response.content.decode()
        assert response.status_code == 200
        assert html.lstrip().startswith('<div id="reviewer-table"') and "<html" not in html
        assert 'hx-get="/studies/refunds/dashboard/?sort=labels&amp;dir=desc"' in html
        assert 'href="/studies/refunds/dashboard/?sort=labels&amp;dir=desc#reviewers"' in html

    def test_it_paginates_more_than_fifty_reviewers_and_keeps_the_sort(
        self, client, study, researcher, django_assert_max_num_queries
    ):
        for n in range(55):
            enrol(study, f"person-{n:02d}", ("control", "recommendation", "rationale")[n % 3])
        client.force_login(researcher)

        with django_assert_max_num_queries(20):
            first = client.get(URL + "?sort=reviewer&dir=asc").content.decode()
        second = client.get(URL + "?sort=reviewer&dir=asc&page=2").content.decode()

        assert reviewer_order(first) == [f"person-{n:02d}" for n in range(50)]
        assert reviewer_order(second) == [f"person-{n:02d}" for n in range(50, 55)]
        assert "Page 1 of 2 (55 reviewers)" in first
        assert "?sort=reviewer&amp;dir=asc&amp;page=2" in first

    def test_hostile_arm_and_reviewer_names_are_escaped(self, client, labelled, researcher):
        Arm.objects.filter(study=labelled, name="rationale").update(name=HOSTILE)
        someone = Enrolment.objects.filter(study=labelled, arm__name=HOSTILE).first().reviewer
        User.objects.filter(pk=someone.pk).update(username=HOSTILE + "-user")
        compute_metrics(labelled)
        client.force_login(researcher)

        dashboard = client.get(URL).content.decode()
        reviewer_page = client.get(f"{URL}reviewers/{someone.pk}/").content.decode()

        for html in (dashboard, reviewer_page):
            assert HOSTILE not in html
        escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
        assert escaped in svg(dashboard, "chart-deference")
        assert escaped in svg(dashboard, "chart-dwell")
        assert escaped + "-user" in svg(dashboard, "chart-dwell")
        assert escaped + "-user" in svg(reviewer_page, "chart-timeline")
