"""The metrics panel says when reviewers cross two or more thresholds but have too few labels to
be flagged (stats/rubber_stamp.py, MIN_LABELS_TO_FLAG), instead of "no reviewer crosses"."""

from __future__ import annotations

from reviewapp.metrics.presenters import below_minimum
from tests.builders import compute_metrics


class TestFlagMinimumView:
    def test_it_counts_reviewers_below_the_minimum_who_would_be_flagged(self):
        rows = [
            {"crossed": ["fast_share", "evidence_opened"], "too_few_labels": True, "min_labels": 20},
            {"crossed": ["fast_share"], "too_few_labels": True, "min_labels": 20},  # one crossed: never flagged
            {"crossed": ["fast_share", "drift"], "too_few_labels": False, "min_labels": 20},  # flagged
        ]
        assert below_minimum({"reviewers": rows}) == {"count": 1, "min_labels": 20}
        assert below_minimum({"reviewers": rows[1:]}) is None
        assert below_minimum({"reviewers": [{"crossed": ["a", "b"], "flagged": True}]}) is None  # an old run

    def test_the_panel_says_so(self, client, labelled, researcher):
        # The four hand-worked reviewers have 4 labels each and every one crosses two or more
        # thresholds: before the minimum all four were flagged on 4 labels.
        run = compute_metrics(labelled)
        assert all(len(row["crossed"]) >= 2 and not row["flagged"] for row in run.result["reviewers"])
        client.force_login(researcher)

        page = client.get("/studies/refunds/metrics/").content.decode()

        assert "4 reviewers cross two or more thresholds with fewer than 20 labels: not flagged" in page
        assert "No reviewer is flagged" in page
        # Positive control: nobody crossing, no such line.
        for row in run.result["reviewers"]:
            row["crossed"] = []
        run.save(update_fields=["result"])
        assert 'id="below-minimum"' not in client.get("/studies/refunds/metrics/").content.decode()
