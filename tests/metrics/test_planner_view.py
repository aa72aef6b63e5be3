"""The planner page (metrics app), loaded into the study settings page, through the test client."""

from __future__ import annotations

from reviewapp.metrics.stats.planner import DEFAULT_SIMULATIONS

PLAN = {
    "p_control": "50",
    "p_recommendation": "60",
    "p_rationale": "65",
    "icc": "0.05",
    "reviewers_per_arm": "30",
    "items_per_reviewer": "40",
}


class TestPlannerView:
    def test_the_settings_page_loads_the_planner_from_its_own_url(self, client, study, researcher):
        client.force_login(researcher)
        page = client.get("/studies/refunds/settings/").content.decode()
        assert 'hx-get="/studies/refunds/planner/" hx-trigger="load"' in page
        assert 'href="/studies/refunds/planner/"' in page  # without JavaScript, a link
        # Positive control: the new-study page has no study, so no planner.
        assert "/planner/" not in client.get("/studies/new/").content.decode()

    def test_it_shows_the_form_with_defaults_and_computes_nothing_until_asked(self, client, study, researcher):
        client.force_login(researcher)
        response = client.get("/studies/refunds/planner/", HTTP_HX_REQUEST="true")
        page = response.content.decode()
        assert response.status_code == 200 and "<!doctype html>" not in page  # the partial only
        assert 'id="planner-form"' in page and 'name="icc"' in page and 'value="0.1"' in page
        assert "planner-table" not in page

    def test_it_gives_power_and_reviewers_needed_for_each_contrast(self, client, study, researcher):
        client.force_login(researcher)
        page = client.get("/studies/refunds/planner/", PLAN).content.decode()
        assert "<!doctype html>" in page and 'id="planner-table"' in page
        for name in ("Deference effect, recommendation arm", "Deference effect, rationale arm", "Narrative increment"):
            assert name in page
        assert "+10.0 pp" in page and "+5.0 pp" in page
        # Hand check of the formula column: deff 2.95, n_eff 406.8, power 82% for the 10 points.
        assert "82%" in page and "ICC = 2.95 (Kish 1965)" in page
        assert f"{DEFAULT_SIMULATIONS} simulated studies per power" in page
        assert "fewer than 5 per arm, the study's minimum" in page

    def test_it_refuses_a_rate_out_of_range_and_says_why(self, client, study, researcher):
        client.force_login(researcher)
        page = client.get("/studies/refunds/planner/", PLAN | {"p_control": "100"}).content.decode()
        assert "planner-table" not in page and "less than or equal to 99" in page

    def test_only_the_studys_researchers_can_plan(self, client, study, outsider):
        client.force_login(outsider)
        assert client.get("/studies/refunds/planner/", PLAN).status_code in (403, 404)
