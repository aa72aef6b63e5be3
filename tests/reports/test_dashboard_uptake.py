"""Treatment uptake on the dashboard and the study page's metrics panel: per arm, the share of
labels on which the rationale (or recommendation) was seen, and agreement with the AI split by
seen / not seen; labels without a record are counted as unknown and the page says so."""

from __future__ import annotations

import re

from reviewapp.metrics.presenters import uptake_rows
from reviewapp.queue.models import Label
from reviewapp.reports import dashboard
from tests.builders import compute_metrics

URL = "/studies/refunds/dashboard/"


def mark_seen(study) -> None:
    """The rationale reviewers (AI: approve everywhere; "aaaa" and "aara"): the first saw the
    rationale on i1 and i2, not on i3, no record on i4; the second saw it on i1 and i3 only."""
    seen = ({"i1": 1, "i2": 1, "i3": 0}, {"i1": 1, "i2": 0, "i3": 1, "i4": 0})
    labels = list(Label.objects.filter(study=study, arm__name="rationale").select_related("item"))
    first = min(label.reviewer_id for label in labels)
    for label in labels:
        flag = seen[0 if label.reviewer_id == first else 1].get(label.item.external_id)
        if flag is not None:
            Label.objects.filter(pk=label.pk).update(interactions={"rationale_seen": flag, "recommendation_seen": 1})


class TestDashboardUptake:
    def test_the_dashboard_shows_the_seen_share_and_the_split_with_intervals(self, client, labelled, researcher):
        mark_seen(labelled)
        compute_metrics(labelled)
        client.force_login(researcher)

        page = client.get(URL).content.decode()

        table = page[page.index('id="uptake-table"') :]
        table = table[: table.index("</table>")]
        rationale = re.search(r'<tr data-arm="rationale" data-part="rationale">(.*?)</tr>', table, re.S).group(1)
        # Seen on 4 of the 7 labels with a record; one unknown; agreement 3/4 seen, 3/3 not.
        assert "57.1% [" in rationale and "4 of 7" in rationale
        assert '<td class="num">1</td>' in rationale
        assert "75.0% [" in rationale and "100.0% [" in rationale
        assert "count as unknown, not as not seen" in table
        assert 'data-arm="control"' not in table  # the control arm shows nothing
        assert "rationale, rationale seen" in page[page.index('id="chart-uptake"') :]

    def test_the_study_pages_metrics_panel_shows_it_too(self, client, labelled, researcher):
        mark_seen(labelled)
        compute_metrics(labelled)
        client.force_login(researcher)
        panel = client.get("/studies/refunds/metrics/").content.decode()
        assert 'id="uptake-table"' in panel and "4 of 7 labels" in panel
        assert "count as unknown, not as not seen" in panel

    def test_labels_without_a_record_are_unknown_not_unseen(self, client, labelled, researcher):
        """No label here carries uptake: the share is undefined, never 0% seen."""
        compute_metrics(labelled)
        client.force_login(researcher)
        table = client.get(URL).content.decode()
        table = table[table.index('id="uptake-table"') :]
        rationale = re.search(r'<tr data-arm="rationale" data-part="rationale">(.*?)</tr>', table, re.S).group(1)
        assert "— " in rationale and "0 of 0" in rationale and '<td class="num">8</td>' in rationale
        assert "0.0%" not in rationale

    def test_a_run_from_before_uptake_was_recorded_has_no_rows(self):
        result = {"arms": [{"name": "rationale", "role": "rationale", "agreement_with_ai": {}}]}
        assert uptake_rows(result) == [] and dashboard.uptake_panels(result) == []
