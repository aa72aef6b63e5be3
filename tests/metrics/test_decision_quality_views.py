"""The kappa family and decision quality on the study page's metrics panel and the dashboard,
through the test client, on the hand-worked labelled study (tests/builders.py): gold says
approve, approve, reject, reject; the default schema blocks on "reject".

Control: c1 answers a r r r, c2 a a r a. Catch rate 3 of 4 (75%), block precision 3 of 4,
false-block rate 1 of 4 (c1 on i2). Rationale: r1 a a a a, r2 a a r a: catch rate 1 of 4 (25%),
precision 1 of 1, false blocks 0 of 4. Two reviewers per arm: no interval, the reason instead.
Cohen's kappa of the two control reviewers: p_a 2/4, p_e .25 x .75 + .75 x .25 = .375, so 0.2."""

from __future__ import annotations

import pytest

from reviewapp.jobs import job_run
from reviewapp.metrics import services
from reviewapp.metrics.agreement_presenters import BLOCK_MESSAGE, agreement_context
from reviewapp.metrics.models import MetricRun
from reviewapp.metrics.presenters import metrics_view
from reviewapp.reports.exports import agreement_rows
from tests.builders import make_labelled


def compute(study) -> MetricRun:
    run, _ = services.metric_run_request(study=study)
    job_run(MetricRun, run.pk)
    return MetricRun.objects.get(pk=run.pk)


class TestDecisionQualityPages:
    def test_the_panel_shows_decision_quality_and_the_family(self, client, labelled, researcher):
        run = compute(labelled)
        quality = {arm["name"]: arm["decision_quality"] for arm in run.result["arms"]}
        assert quality["control"]["catch_rate"]["all"]["value"] == 0.75
        assert quality["control"]["block_precision"]["all"]["value"] == 0.75
        assert quality["control"]["false_block_rate"]["all"]["value"] == 0.25
        assert quality["control"]["confusion"]["matrix"] == [[3, 1], [1, 3]]
        assert quality["rationale"]["catch_rate"]["all"]["value"] == 0.25
        assert quality["rationale"]["false_block_rate"]["all"]["value"] == 0.0
        client.force_login(researcher)
        page = client.get("/studies/refunds/metrics/").content.decode()
        assert "Decision quality: are the right actions blocked?" in page
        assert 'a block is the answer "reject" on "decision"' in page
        assert "75.0%" in page and "25.0%" in page
        assert "too few reviewers (2) for an interval" in page
        assert "3 blocks caught, 1 missed, 1 false block." in page
        assert "Agreement between reviewers on every field" in page
        # The two control reviewers' Cohen's kappa, by hand above.
        control = agreement_context(run.result)["family_rows"][0]
        assert control["arm"] == "control" and control["cohen_kappa"]["text"].startswith("0.200")
        assert "0.200" in page
        assert BLOCK_MESSAGE not in page

    @pytest.mark.parametrize("confidence", [0.95, 0.9])
    def test_the_captions_give_the_studys_confidence_level(self, client, labelled, researcher, confidence):
        type(labelled).objects.filter(pk=labelled.pk).update(confidence_level=confidence)
        compute(labelled)
        client.force_login(researcher)
        for url in ("/studies/refunds/metrics/", "/studies/refunds/dashboard/"):
            page = client.get(url).content.decode()
            level = f"{round(confidence * 100)}%"
            assert f"Rates with {level} intervals over reviewers" in page
            assert f"Gwet's AC1 with {level} unit-bootstrap intervals" in page

    def test_the_dashboard_shows_a_confusion_matrix_per_arm(self, client, labelled, researcher):
        compute(labelled)
        client.force_login(researcher)
        page = client.get("/studies/refunds/dashboard/").content.decode()
        assert page.count('class="table dash-data confusion-matrix"') == 2  # control and rationale have labels
        assert 'id="decision-quality-table"' in page and 'id="agreement-family-table"' in page
        assert 'reject <span class="muted">(block)</span>' in page

    def test_without_a_block_value_it_asks_for_one_instead_of_numbers(self, client, study, researcher):
        schema = dict(study.label_schema)
        schema["fields"] = [{k: v for k, v in f.items() if k != "block_value"} for f in schema["fields"]]
        study.label_schema = schema
        study.save(update_fields=["label_schema"])
        make_labelled(study)
        run = compute(study)
        assert all("catch_rate" not in arm["decision_quality"] for arm in run.result["arms"])
        client.force_login(researcher)
        page = client.get("/studies/refunds/metrics/").content.decode()
        assert "Mark which answer blocks the action in the label schema" in page
        assert "Catch rate" not in page and "confusion-matrix" not in page
        # The cost of review is still there.
        assert "Median seconds per decision" in page

    def test_a_run_stored_before_these_metrics_still_renders(self, client, labelled, researcher):
        run = compute(labelled)
        for arm in run.result["arms"]:
            del arm["decision_quality"]
            for entry in arm["agreement"].values():
                entry.pop("family", None)
        run.save(update_fields=["result"])
        view = metrics_view(run.result, {})
        assert view["family"]["family_rows"] == [] and view["family"]["decision_quality"] is None
        client.force_login(researcher)
        page = client.get("/studies/refunds/metrics/").content.decode()
        assert "computed before it was measured (recompute them)" in page
        assert client.get("/studies/refunds/dashboard/").status_code == 200
        # And the export leaves the new rows out rather than failing.
        rows = agreement_rows(study="refunds", run_id=run.pk, computed_at="", result=run.result)
        assert not any(row[3] in ("catch_rate", "fleiss_kappa") for row in rows)

    def test_the_agreement_export_has_their_rows(self, labelled):
        run = compute(labelled)
        rows = agreement_rows(study="refunds", run_id=run.pk, computed_at="", result=run.result)
        by_key = {(row[1], row[3], row[5]): row for row in rows}

        def numbers(arm, metric, split="all"):
            row = by_key[(arm, metric, split)]
            return row[6], row[7]  # n, estimate

        assert numbers("control", "catch_rate") == (4, 0.75)
        assert numbers("control", "block_precision") == (4, 0.75)
        assert numbers("control", "false_block_rate") == (4, 0.25)
        assert numbers("rationale", "catch_rate") == (4, 0.25)
        assert numbers("control", "blocks_caught") == (8, 3) and numbers("control", "false_blocks") == (8, 1)
        assert numbers("control", "seconds_per_decision")[0] == 8
        assert numbers("control", "cohen_kappa")[1] == pytest.approx(0.2)
        assert numbers("control", "scott_pi")[1] == pytest.approx(0.0)
        # The rationale arm's reviewers give "approve" on three items of four each: Fleiss' kappa exists.
        assert ("rationale", "fleiss_kappa", "all") in by_key
        # A nominal decision field has no weighted rows.
        assert not any(row[3].endswith(("_linear", "_quadratic")) for row in rows)
