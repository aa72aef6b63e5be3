"""The reviewer's quota on the page: "n of Q" on the progress line, and its own end page when
the reviewer has done their Q (not the "nothing left" page)."""

from __future__ import annotations

import pytest
from django.utils import timezone

from reviewapp.queue.models import Assignment
from reviewapp.studies.models import Arm, Enrolment, Study
from tests.builders import enrol, make_items, user

HX = {"HTTP_HX_REQUEST": "true"}


def set_study(study: Study, **fields) -> Study:
    Study.objects.filter(pk=study.pk).update(**fields)
    study.refresh_from_db()
    return study


def answer_all(client, study: Study, reviewer, limit: int = 20) -> str:
    """Answer whatever is served until nothing is; the last page's body."""
    client.force_login(reviewer)
    body = client.get(f"/review/{study.slug}/").content.decode()
    for _ in range(limit):
        live = Assignment.objects.filter(reviewer=reviewer, state="leased").first()
        if live is None:
            return body
        body = client.post(
            f"/review/{study.slug}/items/{live.pk}/answer/", {"field_decision": "approve"}, **HX
        ).content.decode()
    raise AssertionError("still serving items")


@pytest.mark.django_db
class TestQuotaPage:
    def test_the_progress_line_says_n_of_the_quota(self, client, study):
        set_study(study, reviewer_quota=3)
        make_items(study, 5)
        client.force_login(enrol(study, "quoted", "control"))
        body = client.get(f"/review/{study.slug}/").content.decode()
        assert 'You have labelled <strong id="done-count">0</strong> of the <strong id="quota">3</strong>' in body

    def test_reaching_the_quota_shows_its_own_thank_you_page(self, client, study):
        set_study(study, reviewer_quota=2)
        make_items(study, 5)
        reviewer = enrol(study, "quoted", "control")
        body = answer_all(client, study, reviewer)
        assert 'id="quota-done"' in body and "You have done your 2; thank you." in body
        assert 'id="all-done"' not in body
        assert 'id="done-count">2</strong> of the <strong id="quota">2</strong>' in body
        # A reload shows the same end page.
        assert "You have done your 2; thank you." in client.get(f"/review/{study.slug}/").content.decode()

    def test_without_a_quota_the_end_is_nothing_left_to_review(self, client, study):
        """The positive control: the same path with no quota ends on the other page."""
        make_items(study, 2)
        body = answer_all(client, study, enrol(study, "free", "control"))
        assert 'id="all-done"' in body and 'id="quota-done"' not in body
        assert 'id="quota"' not in body

    def test_an_arms_quota_wins_over_the_studys(self, client, study):
        set_study(study, reviewer_quota=4)
        Arm.objects.filter(study=study, name="recommendation").update(reviewer_quota=1)
        make_items(study, 3)
        body = answer_all(client, study, enrol(study, "armed", "recommendation"))
        assert "You have done your 1; thank you." in body
        client.force_login(enrol(study, "other", "control"))
        assert 'id="quota">4</strong>' in client.get(f"/review/{study.slug}/").content.decode()

    def test_within_subjects_the_studys_quota_applies(self, client, study):
        """The arm changes item by item, so no arm's quota can apply: the study's does."""
        set_study(study, design=Study.Design.WITHIN, reviewer_quota=2)
        Arm.objects.filter(study=study).update(reviewer_quota=1)
        make_items(study, 4)
        within = user("within")
        Enrolment.objects.create(
            study=study, reviewer=within, arm=None, seed=1, sequence=0, source="admin", allocated_at=timezone.now()
        )
        body = answer_all(client, study, within)
        assert "You have done your 2; thank you." in body

    def test_a_reviewer_not_allocated_yet_sees_the_study_has_not_started(self, client, study):
        """Joined a draft study: no arm until Start, and the page still renders."""
        set_study(study, status=Study.Status.DRAFT, reviewer_quota=5)
        make_items(study, 2)
        early = user("early")
        Enrolment.objects.create(study=study, reviewer=early, arm=None, seed=1, source="admin")
        client.force_login(early)
        for extra in ({}, HX):
            response = client.get(f"/review/{study.slug}/", **extra)
            assert response.status_code == 200
            body = response.content.decode()
            assert "not started yet" in body and 'id="quota">5</strong>' in body
