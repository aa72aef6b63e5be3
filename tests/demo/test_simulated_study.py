"""The simulated demo study shows what a study on this app looks like: quotas, each
reviewer's own item order, and how often the rationale was actually seen."""

from __future__ import annotations

from collections import Counter

from reviewapp.demo.simulation import SIMULATED_QUOTA, simulated_study
from reviewapp.queue.models import Label
from reviewapp.studies.models import Study
from tests.builders import user


def test_the_simulated_study_has_quotas_per_reviewer_orders_and_uptake(db):
    study = simulated_study(user("ada", is_staff=True, is_superuser=True), lambda message: None)

    assert study.item_order == Study.ItemOrder.SHUFFLED and study.reviewer_quota == SIMULATED_QUOTA
    per_reviewer = Counter(Label.objects.filter(study=study).values_list("reviewer_id", flat=True))
    assert len(per_reviewer) == 24
    assert max(per_reviewer.values()) == SIMULATED_QUOTA  # the quota binds, and is never passed
    # Each reviewer's sequence starts somewhere else: the items served first differ.
    firsts = {
        reviewer: Label.objects.filter(study=study, reviewer_id=reviewer, position=1).values_list("item_id", flat=True)[
            0
        ]
        for reviewer in per_reviewer
    }
    assert len(set(firsts.values())) >= 12
    # The rationale arm's rationale sits behind a click; about half the labels saw it.
    rationale_labels = Label.objects.filter(study=study, arm__shows_ai_rationale=True)
    seen = rationale_labels.filter(interactions__rationale_seen=1).count()
    assert 0.2 < seen / rationale_labels.count() < 0.8
    assert study.arms.get(shows_ai_rationale=True).rationale_display == "collapsed"
