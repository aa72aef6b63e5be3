"""The methods paragraph and table for a paper (reports/methods.py): the text from hand-built facts,
then through the dashboard and the JSON report."""

from __future__ import annotations

import re

from reviewapp.queue.models import Assignment
from reviewapp.reports.methods import ArmFacts, MethodsFacts, methods_section, study_methods
from reviewapp.studies.models import Study
from tests.builders import compute_metrics

CLUSTER = "reviewer-cluster MOVER (Wilson, CR2 design effect, Bell-McCaffrey t)"


def arm(name: str, reviewers: int, items: int, labels: int, **shows) -> ArmFacts:
    options = {"shows_recommendation": False, "shows_rationale": False, "shows_confidence": False, "reveal": False}
    return ArmFacts(
        name=name,
        rationale_display=shows.pop("rationale_display", "expanded"),
        weight=1,
        quota=shows.pop("quota", None),
        n_reviewers=reviewers,
        n_items=items,
        n_labels=labels,
        **(options | shows),
    )


def facts(**changes) -> MethodsFacts:
    values = {
        "design": "between",
        "arms": (
            arm("control", 10, 40, 400),
            arm("recommendation", 11, 40, 440, shows_recommendation=True),
            arm(
                "rationale", 9, 38, 360, shows_recommendation=True, shows_rationale=True, rationale_display="collapsed"
            ),
        ),
        "stratify_by": "experience",
        "item_order": "shuffled",
        "overlap_k": 3,
        "reviewer_quota": 40,
        "seed": 1234,
        "reading_wpm": 238,
        "n_skipped": 7,
        "n_late": 1,
        "n_corrections": 2,
    }
    return MethodsFacts(**(values | changes))


def result(confidence: float = 0.9, flagged: int = 2) -> dict:
    wilson = {"value": 0.5, "method": "wilson"}
    effect = {"all": {"cluster": {"value": 0.1, "method": CLUSTER}, "newcombe": {"value": 0.1, "method": "newcombe"}}}
    return {
        "n_labels": 1200,
        "n_reviewers": 30,
        "n_items": 40,
        "decision_field": "decision",
        "arms": [
            {"name": "control", "agreement_with_ai": {"all": wilson}, "deference_effect": None},
            {"name": "recommendation", "agreement_with_ai": {"all": wilson}, "deference_effect": effect},
            {"name": "rationale", "agreement_with_ai": {"all": wilson}, "deference_effect": effect},
        ],
        "narrative_increment": {"all": {"cluster": {"value": 0.05, "method": CLUSTER}}},
        "flagged_reviewers": flagged,
        "sensitivity": {"n_excluded": flagged, "n_labels_excluded": 80, "effects": []},
        "parameters": {"confidence": confidence},
    }


class TestMethods:
    def test_it_states_design_allocation_order_quota_sample_exclusions_and_estimators(self):
        section = methods_section(facts(), result())
        text = section["paragraph"]
        assert text.startswith(
            "We ran a between-subjects experiment with 3 arms: control (no AI output; the recommendation is hidden)"
        )
        assert "rationale (the AI's recommendation and its rationale, behind a “Why?” click)" in text
        assert "seeded permuted blocks" in text and "stratified by experience" in text and "(1234)" in text
        assert "shuffled per reviewer" in text and "labelled by 3 reviewers per arm" in text
        assert "at most 40 items" in text
        assert "1200 labels from 30 reviewers on 40 items" in text
        assert "recommendation: 11 reviewers, 40 items, 440 labels" in text
        assert "Skipped assignments (7) and late answers (1;" in text and "corrected labels (2)" in text
        assert "Of the reviewers, 2 were flagged as possible rubber stamps" in text and "never on fewer than 20" in text
        assert "recomputed without them (80 labels left out)" in text
        # The estimators as the run stored them, and the study's confidence.
        assert f"deference effect: {CLUSTER}" in text and "agreement with the AI per arm (label level): wilson" in text
        assert text.endswith("All intervals are 90% intervals.")
        assert section["table"][2] == {
            "arm": "rationale",
            "role": "rationale",
            "shows": "the AI's recommendation and its rationale, behind a “Why?” click",
            "reviewers": 9,
            "items": 38,
            "labels": 360,
        }
        references = " ".join(section["references"])
        for author in ("Altman", "Wilson", "Newcombe", "Zou", "Bell", "Kish", "Griffiths", "Efron", "Brysbaert"):
            assert author in references
        # Positive control: methods the run did not use are not cited.
        assert "Davison" not in references and "Krippendorff" not in references

    def test_a_within_subjects_study_without_strata_or_flags_says_so(self):
        text = methods_section(
            facts(design="within", stratify_by="", item_order="fixed", reviewer_quota=None), result(0.95, 0)
        )["paragraph"]
        assert "within-subjects" in text and "chosen per assignment" in text and "reviewers per arm" not in text
        assert "stratified" not in text and "at most" not in text and "same fixed order" in text
        assert "Of the reviewers, 0 were flagged" in text and "recomputed without them" not in text
        assert text.endswith("All intervals are 95% intervals.")

    def test_the_dashboard_shows_it_with_a_copy_button_and_no_inline_script(self, client, labelled, researcher):
        # Counted by the metrics run, as skipped (the paragraph describes the run's data).
        Assignment.objects.filter(study=labelled).update(state="skipped")
        compute_metrics(labelled)
        client.force_login(researcher)

        page = client.get("/studies/refunds/dashboard/").content.decode()

        assert 'id="methods-paragraph"' in page and 'data-copy-target="methods-paragraph"' in page
        assert re.search(r'<script src="/static/js/copy[^"]*\.js" defer></script>', page)
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page)  # the CSP allows no inline script
        paragraph = re.search(r'id="methods-paragraph"[^>]*>(.*?)</p>', page, re.S).group(1)
        assert "16 labels from 4 reviewers on 4 items" in paragraph
        assert "control: 2 reviewers, 4 items, 8 labels" in paragraph and "Skipped assignments (16)" in paragraph

    def test_the_json_report_carries_it(self, client, labelled, researcher):
        compute_metrics(labelled)
        client.force_login(researcher)

        data = client.get("/studies/refunds/exports/agreement.json").json()

        methods = data["methods"]
        assert [row["arm"] for row in methods["table"]] == ["control", "recommendation", "rationale"]
        assert [row["reviewers"] for row in methods["table"]] == [2, 0, 2]
        assert methods["confidence"] == Study.objects.get().confidence_level
        assert methods["paragraph"].startswith("We ran a between-subjects experiment with 3 arms")
        assert data["sensitivity"]["n_excluded"] == 0
        # The CSV has no room for it: only the JSON report carries the paragraph.
        assert "We ran a" not in client.get("/studies/refunds/exports/agreement.csv").getvalue().decode()

    def test_a_run_stored_before_exclusions_were_counted_says_so(self, labelled):
        result = compute_metrics(labelled).result
        counted = study_methods(labelled, result)["paragraph"]
        older = study_methods(labelled, {k: v for k, v in result.items() if k != "exclusions"})["paragraph"]
        assert "Skipped assignments (0)" in counted
        assert "Skipped assignments (not counted by this run; recompute the metrics)" in older
