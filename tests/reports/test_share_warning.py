"""The study page shows the quota setting and warns when one reviewer gave more than the study's
set share of an arm's labels (read from the label tallies), naming who, where, how much, and a
quota that would prevent it."""

from __future__ import annotations

import pytest

from reviewapp.queue.services import claim_next, label_submit
from reviewapp.studies.models import Arm, Study
from tests.builders import APPROVE, make_items, reviewers_by_arm

pytestmark = pytest.mark.django_db

PAGE = "/studies/refunds/"


def label(study: Study, reviewer, n: int) -> None:
    for _ in range(n):
        assignment = claim_next(study=study, reviewer=reviewer)
        label_submit(study=study, reviewer=reviewer, assignment_id=assignment.pk, values=APPROVE)


def warnings(client) -> str:
    page = client.get(PAGE).content.decode()
    return "".join(part.split("</p>")[0] for part in page.split('class="msg msg-warning share-warning"')[1:])


class TestShareWarning:
    @pytest.fixture
    def room(self, study):
        """Four control reviewers on four items (k = 4, so each item can take all four)."""
        Study.objects.filter(pk=study.pk).update(overlap_k=4)
        study.refresh_from_db()
        make_items(study, 4)
        return reviewers_by_arm(study, {"control": 4})["control"]

    def test_it_is_silent_when_nobody_holds_more_than_the_share(self, client, study, researcher, room):
        for reviewer in room:
            label(study, reviewer, 1)  # 25% each: at the line, not over it
        client.force_login(researcher)
        assert warnings(client) == ""

    def test_it_names_the_reviewer_the_arm_the_share_and_a_quota(self, client, study, researcher, room):
        for reviewer in room:
            label(study, reviewer, 1)
        label(study, room[0], 1)  # 2 of the control arm's 5 labels: 40%
        client.force_login(researcher)
        text = warnings(client)
        name = room[0].username
        assert f"<strong>{name}</strong> gave 2 of the 5 labels in arm <strong>control</strong> (40%)" in text
        assert "more than the 25% this study warns at" in text
        # A quarter of the arm's 16 planned labels (4 items x k = 4).
        assert "A quota of 4 items per reviewer would hold anyone to at most 25% of the arm's 16 planned labels" in text
        assert all(other.username not in text for other in room[1:])

    def test_the_share_is_the_studys_setting(self, client, study, researcher, room):
        """The control: the same labels under a 50% setting warn of nothing."""
        for reviewer in room:
            label(study, reviewer, 1)
        label(study, room[0], 1)
        Study.objects.filter(pk=study.pk).update(reviewer_share_warning=0.5)
        client.force_login(researcher)
        assert warnings(client) == ""

    def test_it_shows_the_quota_setting(self, client, study, researcher):
        client.force_login(researcher)
        page = client.get(PAGE).content.decode()
        assert "<strong>No limit</strong>" in page and "more than 25% of an arm" in page
        Study.objects.filter(pk=study.pk).update(reviewer_quota=40, reviewer_share_warning=0.3)
        Arm.objects.filter(study=study, name="rationale").update(reviewer_quota=20)
        page = client.get(PAGE).content.decode()
        assert "at most <strong>40</strong> items; arm rationale: at most 20" in page
        assert "more than 30% of an arm" in page
