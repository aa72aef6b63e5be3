"""Probes look like real items in everything an arm shows: no probe is the only item without
a rationale where an arm shows the rationale."""

from __future__ import annotations

import pytest

from reviewapp.queue.models import Assignment
from reviewapp.studies.models import AuditEvent, Study
from reviewapp.studies.services import StudyRuleError, probe_tells, study_transition
from tests.builders import make_item, user

pytestmark = pytest.mark.django_db


@pytest.fixture
def draft(study, researcher) -> Study:
    """A draft three-arm study (one arm shows the rationale) whose real items carry a rationale."""
    Study.objects.filter(pk=study.pk).update(status="draft", probe_rate=0.2)
    study.refresh_from_db()
    for n in range(10):
        make_item(
            study,
            external_id=f"g{n}",
            gold_label="approve",
            ai_recommendation="approve",
            ai_rationale="The order is within the refund policy.",
        )
    return study


def generate(client, study):
    return client.post(f"/studies/{study.slug}/probes/", follow=True).content.decode()


class TestProbeRationales:
    def test_generated_probes_must_get_a_rationale_before_the_study_starts(self, client, draft, researcher):
        client.force_login(researcher)
        page = generate(client, draft)
        assert "2 probes generated." in page
        assert "2 probes have no rationale, but arm rationale shows the AI&#x27;s rationale" in page

        with pytest.raises(StudyRuleError, match="2 probes have no rationale"):
            study_transition(study=draft, actor=researcher, to_status="running")
        draft.refresh_from_db()
        assert draft.status == "draft"

        items_page = client.get(f"/studies/{draft.slug}/items/?show=probes").content.decode()
        assert items_page.count("needs a rationale") == 2
        for probe in draft.items.filter(is_probe=True):
            response = client.post(
                f"/studies/{draft.slug}/items/{probe.pk}/rationale/",
                {"rationale": "The customer says the parcel never came; **reject** is safer."},
                follow=True,
            )
            assert "rationale saved." in response.content.decode()
        assert probe_tells(draft) == []
        study_transition(study=draft, actor=researcher, to_status="running")
        assert AuditEvent.objects.filter(study=draft, action="probe.rationale").count() == 2

    def test_a_study_without_a_rationale_arm_starts_with_bare_probes(self, client, draft, researcher):
        """The control: no arm shows the rationale, so an empty one tells nobody anything."""
        draft.arms.filter(shows_ai_rationale=True).update(shows_ai_rationale=False)
        client.force_login(researcher)
        generate(client, draft)
        assert draft.items.filter(is_probe=True, ai_rationale="").count() == 2
        study_transition(study=draft, actor=researcher, to_status="running")

    def test_bare_probes_are_no_tell_when_no_real_item_has_a_rationale(self, client, draft, researcher):
        draft.items.update(ai_rationale="")
        client.force_login(researcher)
        generate(client, draft)
        assert probe_tells(draft) == []

    def test_it_refuses_to_generate_into_a_running_study_that_shows_rationales(self, client, draft, researcher):
        study_transition(study=draft, actor=researcher, to_status="running")
        client.force_login(researcher)
        page = generate(client, draft)
        assert "Pause the study, generate the probes, write their rationales, then resume." in page
        assert not draft.items.filter(is_probe=True).exists()

        study_transition(study=draft, actor=researcher, to_status="paused")
        generate(client, draft)
        with pytest.raises(StudyRuleError, match="Cannot resume: 2 probes have no rationale"):
            study_transition(study=draft, actor=researcher, to_status="running")

    def test_a_served_probe_keeps_its_rationale_and_a_real_item_is_not_touched(self, client, draft, researcher):
        client.force_login(researcher)
        generate(client, draft)
        probe = draft.items.filter(is_probe=True).first()
        real = draft.items.filter(is_probe=False).first()
        reviewer = user("rev")
        Assignment.objects.create(
            study=draft, item=probe, reviewer=reviewer, arm=draft.arms.first(), lease_expires_at="2030-01-01T00:00Z"
        )
        served = client.post(f"/studies/{draft.slug}/items/{probe.pk}/rationale/", {"rationale": "x"}, follow=True)
        assert "has been served to a reviewer" in served.content.decode()
        untouched = client.post(f"/studies/{draft.slug}/items/{real.pk}/rationale/", {"rationale": "x"}, follow=True)
        assert "Only a probe&#x27;s rationale is written here" in untouched.content.decode()
        real.refresh_from_db()
        assert real.ai_rationale == "The order is within the refund policy."
