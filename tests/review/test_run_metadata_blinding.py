"""An Inspect run's task, model, target and scores are for researchers: a reviewer in any arm never
gets them, and learns of an errored run only through a neutral notice.
"""

from __future__ import annotations

import pytest

from reviewapp.ingest.models import Item
from reviewapp.studies.models import Arm
from tests.builders import enrol, make_items

CANARIES = {
    "task": "CANARYTASK5521",
    "model": "CANARYMODEL5521",
    "target": "CANARYTARGET5521",
    "score": "CANARYSCORE5521",
    "error": "CANARYERROR5521",
}


def run_metadata(errored: bool) -> dict:
    metadata = {
        "task": CANARIES["task"],
        "model": CANARIES["model"],
        "target": CANARIES["target"],
        "scores": {"match": {"value": CANARIES["score"], "explanation": "x"}},
        "eval_id": "e1",
        "sample_id": "s1",
        "epoch": 1,
        "fidelity_warnings": ["1 image part shown as a placeholder"],
    }
    if errored:
        metadata["sample_error"] = CANARIES["error"]
    return metadata


@pytest.mark.django_db
class TestRunMetadataBlinding:
    @pytest.mark.parametrize("errored", [False, True])
    def test_no_arm_shows_a_reviewer_the_run_metadata(self, client, study, errored):
        make_items(study, 3, source_format="inspect", source_metadata=run_metadata(errored))
        for arm in Arm.objects.filter(study=study):
            reviewer = enrol(study, f"r-{arm.name}", arm.name)
            client.force_login(reviewer)
            page = client.get(f"/review/{study.slug}/").content.decode()
            assert 'id="transcript"' in page, arm.name  # an item is on screen
            assert [name for name, canary in CANARIES.items() if canary in page] == [], arm.name
            assert "shown as a placeholder" not in page, arm.name
            assert ("This run ended with an error" in page) is errored, arm.name

    def test_the_researcher_sees_task_model_target_scores_and_the_error(self, client, study, researcher):
        make_items(study, 1, prefix="ok", source_format="inspect", source_metadata=run_metadata(False))
        make_items(study, 1, prefix="crashed", source_format="inspect", source_metadata=run_metadata(True))
        client.force_login(researcher)
        page = client.get(f"/studies/{study.slug}/items/").content.decode()
        for name in ("task", "model", "target", "score", "error"):
            assert CANARIES[name] in page, name  # the positive control for the test above
        assert page.count(">errored</span>") == 1
        assert "Not shown in full: 1 image part shown as a placeholder" in page
        assert Item.objects.count() == 2
