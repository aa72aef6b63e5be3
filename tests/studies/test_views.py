"""Study pages through the test client: every permission, every validation message."""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.auth.models import User

from reviewapp.queue.models import Assignment, Label
from reviewapp.studies.models import Arm, AuditEvent, Enrolment, Invitation, Study
from reviewapp.studies.schema import DEFAULT_LABEL_SCHEMA
from tests.builders import enrol_allocated, make_item, user

STUDY_PAGES = ["", "settings/", "arms/", "reviewers/", "items/", "audit/"]


def settings_form(study: Study, **overrides) -> dict:
    data = {
        "title": study.title,
        "instructions": study.instructions,
        "label_schema": json.dumps(study.label_schema),
        "design": study.design,
        "stratify_by": study.stratify_by,
        "overlap_k": study.overlap_k,
        "lease_seconds": study.lease_seconds,
        "probe_rate": study.probe_rate,
        "reading_wpm": study.reading_wpm,
        "flag_thresholds": json.dumps(study.flag_thresholds),
        "seed": study.seed,
    }
    data.update(overrides)
    return data


@pytest.mark.django_db
class TestPermissions:
    @pytest.mark.parametrize("page", STUDY_PAGES)
    def test_it_shows_study_pages_to_the_studys_researcher_and_admins(self, client, study, cast, page):
        for who in (cast.researcher, cast.admin):
            client.force_login(who)
            assert client.get(f"/studies/refunds/{page}").status_code == 200, (who.username, page)

    @pytest.mark.parametrize("page", STUDY_PAGES)
    def test_it_hides_a_study_from_other_researchers(self, client, study, cast, page):
        client.force_login(cast.outsider)
        assert client.get(f"/studies/refunds/{page}").status_code == 404

    @pytest.mark.parametrize("url", [*(f"/studies/refunds/{page}" for page in STUDY_PAGES), "/studies/new/"])
    def test_it_forbids_reviewers_every_researcher_page(self, client, study, cast, url):
        client.force_login(cast.reviewer)
        response = client.get(url)
        assert response.status_code == 403
        assert b"not open to reviewer accounts" in response.content

    def test_it_forbids_reviewers_every_researcher_action(self, client, study, cast):
        client.force_login(cast.reviewer)
        item = make_item(study)
        for url in (
            "/studies/refunds/status/",
            "/studies/refunds/arms/",
            "/studies/refunds/arms/preset/",
            "/studies/refunds/probes/",
            f"/studies/refunds/items/{item.pk}/gold/",
        ):
            assert client.post(url, {"to": "running", "gold_label": "approve"}).status_code == 403, url
        study.refresh_from_db()
        assert study.status == Study.Status.RUNNING
        item.refresh_from_db()
        assert item.gold_label is None

    def test_it_keeps_reviewers_out_of_the_django_admin(self, client, cast):
        client.force_login(cast.reviewer)
        response = client.get("/admin/")
        assert response.status_code == 302 and "/admin/login/" in response["Location"]

    def test_it_sends_anonymous_visitors_to_log_in(self, client, study):
        response = client.get("/studies/refunds/settings/")
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")

    def test_it_shows_reviewers_only_their_own_studies(self, client, study, cast, other_study):
        client.force_login(cast.reviewer)
        page = client.get("/").content.decode()
        assert "Refund approvals" in page and "Another team" not in page
        assert "recommendation" not in page  # no arm names or configuration on the reviewer's page


@pytest.fixture
def draft(db, cast) -> Study:
    """A study nobody was allocated to yet, so nothing is locked."""
    study = Study.objects.create(slug="draft", title="Draft")
    study.researchers.add(cast.researcher)
    Arm.objects.create(study=study, name="control")
    return study


@pytest.mark.django_db
class TestCreateAndConfigure:
    def test_it_creates_a_draft_study_with_the_three_arm_preset(self, client, cast):
        client.force_login(cast.researcher)
        data = {**settings_form(Study(title="Deploys", label_schema=DEFAULT_LABEL_SCHEMA)), "slug": "deploys"}
        data.update(flag_thresholds="{}", three_arm_preset="on", seed=123)
        response = client.post("/studies/new/", data)
        assert response.status_code == 302 and response["Location"] == "/studies/deploys/"
        study = Study.objects.get(slug="deploys")
        assert study.status == Study.Status.DRAFT
        assert list(study.arms.values_list("name", flat=True)) == [
            "control",
            "recommendation",
            "recommendation+rationale",
        ]
        assert cast.researcher in study.researchers.all()
        assert AuditEvent.objects.filter(study=study, action="study.create").exists()

    def test_it_explains_a_schema_without_a_decision_field(self, client, draft, cast):
        client.force_login(cast.researcher)
        schema = {"fields": [{"name": "ok", "type": "nominal", "choices": ["yes", "no"]}]}
        response = client.post("/studies/draft/settings/", settings_form(draft, label_schema=json.dumps(schema)))
        assert response.status_code == 200
        assert "Exactly one field must have &quot;decision&quot;: true; found 0." in response.content.decode()

    def test_it_explains_malformed_schema_json(self, client, draft, cast):
        client.force_login(cast.researcher)
        response = client.post("/studies/draft/settings/", settings_form(draft, label_schema="{not json"))
        assert b"Enter a valid JSON" in response.content

    def test_it_refuses_k_below_one(self, client, draft, cast):
        client.force_login(cast.researcher)
        response = client.post("/studies/draft/settings/", settings_form(draft, overlap_k=0))
        assert b"Ensure this value is greater than or equal to 1." in response.content
        draft.refresh_from_db()
        assert draft.overlap_k == 3

    def test_it_refuses_a_probe_rate_outside_0_1(self, client, draft, cast):
        client.force_login(cast.researcher)
        response = client.post("/studies/draft/settings/", settings_form(draft, probe_rate=1.5))
        assert b"less than or equal to 1" in response.content

    def test_it_records_every_settings_change_in_the_audit_log(self, client, draft, cast):
        client.force_login(cast.researcher)
        response = client.post("/studies/draft/settings/", settings_form(draft, title="Draft v2", overlap_k=5))
        assert response.status_code == 302
        event = AuditEvent.objects.get(study=draft, action="study.update")
        assert event.actor == cast.researcher
        assert event.detail["before"] == {"title": "Draft", "overlap_k": 3}
        assert event.detail["after"] == {"title": "Draft v2", "overlap_k": 5}

    def test_it_locks_the_design_once_labels_exist(self, client, study, cast):
        item = make_item(study)
        reviewer, arm = cast.reviewer, study.arms.first()
        assignment = Assignment.objects.create(
            study=study, item=item, reviewer=reviewer, arm=arm, lease_expires_at="2030-01-01T00:00Z"
        )
        Label.objects.create(
            assignment=assignment, study=study, item=item, reviewer=reviewer, arm=arm, values={"decision": "approve"}
        )
        client.force_login(cast.researcher)
        page = client.get("/studies/refunds/settings/").content.decode()
        assert "Labels exist, so arms, the label schema and the design are locked." in page
        # Disabled fields ignore posted values: the design cannot change, the title can.
        client.post("/studies/refunds/settings/", settings_form(study, design="within", title="New title"))
        study.refresh_from_db()
        assert (study.design, study.title) == ("between", "New title")

    def test_it_refuses_arm_edits_once_reviewers_are_allocated(self, client, study, cast):
        client.force_login(cast.researcher)
        response = client.get("/studies/refunds/arms/")
        assert b"Reviewers have been allocated to arms, so arms and the design are locked." in response.content
        assert b"Save arms" not in response.content


@pytest.mark.django_db
class TestArms:
    def arms_form(self, arms: list[dict], initial: int = 0) -> dict:
        data = {"arms-TOTAL_FORMS": len(arms), "arms-INITIAL_FORMS": initial}
        for i, arm in enumerate(arms):
            for key, value in arm.items():
                if value is True:
                    data[f"arms-{i}-{key}"] = "on"
                elif value is not False:
                    data[f"arms-{i}-{key}"] = value
        return data

    def test_it_saves_arms_with_weights_and_what_they_show(self, client, db, cast):
        study = Study.objects.create(slug="fresh", title="Fresh")
        study.researchers.add(cast.researcher)
        client.force_login(cast.researcher)
        data = self.arms_form(
            [
                {"name": "control", "weight": 2},
                {"name": "reveal", "weight": 1, "shows_ai_recommendation": True, "reveal": True},
            ]
        )
        assert client.post("/studies/fresh/arms/", data).status_code == 302
        assert list(study.arms.values_list("name", "weight", "reveal")) == [("control", 2, False), ("reveal", 1, True)]

    def test_it_refuses_weights_that_sum_to_zero(self, client, db, cast):
        study = Study.objects.create(slug="fresh", title="Fresh")
        study.researchers.add(cast.researcher)
        client.force_login(cast.researcher)
        data = self.arms_form([{"name": "a", "weight": 0}, {"name": "b", "weight": 0}])
        response = client.post("/studies/fresh/arms/", data, follow=True)
        assert "Arm weights sum to zero" in response.content.decode()
        assert not study.arms.exists()

    def test_it_refuses_reveal_mode_without_the_recommendation(self, client, db, cast):
        study = Study.objects.create(slug="fresh", title="Fresh")
        study.researchers.add(cast.researcher)
        client.force_login(cast.researcher)
        data = self.arms_form([{"name": "r", "weight": 1, "reveal": True}])
        response = client.post("/studies/fresh/arms/", data, follow=True)
        assert "Reveal mode needs the AI recommendation shown." in response.content.decode()
        assert not study.arms.exists()

    def test_it_applies_the_preset_only_to_an_empty_study(self, client, study, cast):
        Enrolment.objects.filter(study=study).delete()
        client.force_login(cast.researcher)
        response = client.post("/studies/refunds/arms/preset/", follow=True)
        assert "The study already has arms" in response.content.decode()


@pytest.mark.django_db
class TestLifecycle:
    def test_it_will_not_start_without_arms_or_items(self, client, draft, cast):
        study = draft
        study.arms.all().delete()
        client.force_login(cast.researcher)
        response = client.post("/studies/draft/status/", {"to": "running"}, follow=True)
        text = response.content.decode()
        assert "Cannot start" in text and "no arms" in text and "no items" in text
        study.refresh_from_db()
        assert study.status == "draft"

    def test_it_goes_draft_running_paused_running_closed(self, client, draft, cast):
        study = draft
        make_item(study)
        client.force_login(cast.researcher)
        for to in ("running", "paused", "running", "closed"):
            client.post("/studies/draft/status/", {"to": to, "confirm_slug": "draft"})
            study.refresh_from_db()
            assert study.status == to
        assert AuditEvent.objects.filter(study=study, action="study.status").count() == 4

    def test_it_refuses_to_reopen_a_closed_study(self, client, draft, cast):
        study = draft
        Study.objects.filter(pk=study.pk).update(status="closed")
        client.force_login(cast.researcher)
        response = client.post("/studies/draft/status/", {"to": "running"}, follow=True)
        assert "A closed study cannot become running." in response.content.decode()


@pytest.mark.django_db
class TestInvitations:
    @pytest.fixture
    def stratified(self, study):
        # Before the cast joins: the design is locked once anyone is allocated.
        Study.objects.filter(pk=study.pk).update(stratify_by="experience")

    @pytest.fixture
    def within_subjects(self, study):
        Study.objects.filter(pk=study.pk).update(design=Study.Design.WITHIN)

    def test_it_signs_up_and_enrols_a_reviewer_through_a_link(self, client, study, stratified, cast):
        invitation = Invitation.objects.create(study=study, attributes={"experience": "expert"})
        page = client.get(invitation.path)
        assert b"Create your reviewer account" in page.content
        response = client.post(
            invitation.path, {"username": "newbie", "password1": "a-Long-pass-42", "password2": "a-Long-pass-42"}
        )
        assert response.status_code == 302
        enrolment = Enrolment.objects.get(study=study, reviewer__username="newbie")
        assert (enrolment.source, enrolment.stratum) == ("invitation", "expert")
        assert enrolment.arm is not None
        invitation.refresh_from_db()
        assert invitation.uses == 1

    def test_it_enrols_a_logged_in_reviewer_once(self, client, study, cast):
        invitation = Invitation.objects.create(study=study)
        reviewer = user("late")
        client.force_login(reviewer)
        client.post(invitation.path)
        client.post(invitation.path)
        assert Enrolment.objects.filter(study=study, reviewer=reviewer).count() == 1

    def test_it_refuses_a_revoked_or_used_up_link_and_creates_no_account(self, client, study):
        used_up = Invitation.objects.create(study=study, max_uses=1, uses=1)
        response = client.post(
            used_up.path, {"username": "ghost", "password1": "a-Long-pass-42", "password2": "a-Long-pass-42"}
        )
        assert response.status_code == 410
        assert b"used as many times as it allows" in response.content
        assert not User.objects.filter(username="ghost").exists()

    def test_it_answers_an_unknown_link_with_404(self, client, db):
        response = client.get("/join/not-a-token/")
        assert response.status_code == 404
        assert b"This invitation link is not valid." in response.content

    def test_it_enrols_accounts_by_username_and_names_unknown_ones(self, client, study, cast):
        user("fresh")
        client.force_login(cast.researcher)
        response = client.post("/studies/refunds/reviewers/", {"enrol-usernames": "fresh\nnobody"})
        assert b"No such accounts: nobody." in response.content
        assert not Enrolment.objects.filter(reviewer__username="fresh").exists()
        response = client.post("/studies/refunds/reviewers/", {"enrol-usernames": "fresh"}, follow=True)
        assert b"fresh enrolled in arm" in response.content

    def test_it_explains_balance_in_a_within_subjects_study(self, client, study, within_subjects, cast):
        client.force_login(cast.researcher)
        page = client.get("/studies/refunds/reviewers/").content.decode()
        assert "the arm is chosen per assignment" in page

    def test_it_shows_arm_balance_to_researchers(self, client, study, cast):
        for i in range(5):
            enrol_allocated(study, f"b{i}")
        client.force_login(cast.researcher)
        page = client.get("/studies/refunds/reviewers/").content.decode()
        assert "Arm balance" in page and "(2.3)" in page  # 7 reviewers, one third each


@pytest.mark.django_db
class TestGoldAndProbes:
    def test_it_sets_and_validates_gold_labels(self, client, study, cast):
        item = make_item(study)
        client.force_login(cast.researcher)
        client.post(f"/studies/refunds/items/{item.pk}/gold/", {"gold_label": "reject"})
        item.refresh_from_db()
        assert item.gold_label == "reject"
        response = client.post(f"/studies/refunds/items/{item.pk}/gold/", {"gold_label": "maybe"}, follow=True)
        assert "Gold label &#x27;maybe&#x27; is not one of approve, reject." in response.content.decode()

    def test_it_generates_probes_at_the_study_rate_against_gold(self, client, study, cast):
        Study.objects.filter(pk=study.pk).update(probe_rate=0.2)
        for i in range(10):
            make_item(study, external_id=f"g{i}", gold_label="approve", ai_recommendation="approve")
        client.force_login(cast.researcher)
        response = client.post("/studies/refunds/probes/", follow=True)
        assert b"2 probes generated." in response.content
        probes = study.items.filter(is_probe=True)
        assert probes.count() == 2
        for probe in probes:
            assert probe.ai_recommendation == "reject" != probe.gold_label
            assert probe.source_metadata["probe_original"]["ai_recommendation"] == "approve"
        again = client.post("/studies/refunds/probes/", follow=True)
        assert b"No probes generated" in again.content

    def test_it_lists_items_with_pagination(self, client, study, cast):
        for i in range(60):
            make_item(study, external_id=f"p{i:02d}")
        client.force_login(cast.researcher)
        first = client.get("/studies/refunds/items/").content.decode()
        after = re.search(r'after=([-0-9.]+)" rel="next"', first).group(1)
        second = client.get(f"/studies/refunds/items/?show=all&after={after}").content.decode()
        assert "60 items, in queue order" in first and "50 shown of 60" in first
        assert ">p49<" in first and ">p50<" not in first
        assert ">p50<" in second and ">p59<" in second and ">p49<" not in second
        assert 'rel="next"' not in second and 'rel="prev"' in second


@pytest.mark.django_db
class TestInstructions:
    def test_it_renders_instructions_as_sanitized_markdown(self, client, study):
        Study.objects.filter(pk=study.pk).update(
            instructions="**Read the tool output.** <script>alert(1)</script> [bad](javascript:alert(1)) "
            "<img src=x onerror=alert(1)> [guide](https://example.org/guide)"
        )
        invitation = Invitation.objects.create(study=study)
        page = client.get(invitation.path).content.decode()
        assert "<strong>Read the tool output.</strong>" in page
        assert "<script>alert(1)" not in page and "&lt;script&gt;" in page
        assert 'href="javascript:' not in page and "<img" not in page
        assert '<a href="https://example.org/guide" rel="noopener noreferrer nofollow">guide</a>' in page
