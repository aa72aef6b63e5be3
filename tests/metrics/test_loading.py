"""The one-pass loader: what the stats core receives for each label."""

from __future__ import annotations

import numpy as np

from reviewapp.metrics.loading import labels_load
from reviewapp.queue.models import Label
from reviewapp.queue.services import claim_next, label_submit
from tests.builders import APPROVE, load_items, reviewers_by_arm


class TestLabelLoading:
    def test_it_loads_codes_timings_and_evidence_for_every_current_label(self, study):
        load_items(study)
        (user,) = reviewers_by_arm(study, {"rationale": 1})["rationale"]
        answers = [
            ({"decision": "reject"}, {"tool_calls_expanded": 2}),
            ({"decision": "approve"}, {"tool_calls_expanded": 0, "scroll_depth": 0.9}),
            ({"decision": "approve"}, {"rationale_opened": 1}),
        ]
        for values, interactions in answers:
            assignment = claim_next(study=study, reviewer=user)
            label_submit(
                study=study, reviewer=user, assignment_id=assignment.pk, values=values, interactions=interactions
            )
        first = Label.objects.order_by("id").first()
        # A correction supersedes the first answer: only the newest of a chain counts.
        Label.objects.create(
            assignment=first.assignment,
            study=study,
            item=first.item,
            reviewer=user,
            arm=first.arm,
            values={"decision": "approve"},
            supersedes=first,
            shown_at=first.shown_at,
        )

        data = labels_load(study)

        assert len(data) == 3 and first.pk not in data.label_id
        choices = {"approve": 0, "reject": 1}
        # In label order: i2, i3, then the correction of i1. The AI says approve everywhere;
        # gold is approve, reject, approve.
        assert data.decision.tolist() == [choices["approve"]] * 3
        assert data.ai.tolist() == [0, 0, 0] and data.gold.tolist() == [0, 1, 0]
        # "0 expanded" is not evidence; a rationale opened is; the correction carries none.
        assert data.evidence_opened.tolist() == [False, True, False]
        assert np.all(data.seconds >= 0) and np.all(np.isfinite(data.seconds))
        assert data.fields["decision"].tolist() == data.decision.tolist()
        assert set(data.arm.tolist()) == {first.arm_id}

    def test_a_rationale_seen_counts_as_evidence_opened(self, study):
        # The rationale is shown expanded by default: nothing to open, so "rationale_opened"
        # stays 0 and only "rationale_seen" says the reviewer had it on screen.
        load_items(study)
        (user,) = reviewers_by_arm(study, {"rationale": 1})["rationale"]
        answers = [
            {"rationale_seen": 1, "rationale_opened": 0},
            {"rationale_seen": 0, "rationale_opened": 0},  # positive control: shown, not seen
            {"rationale_seen": 0, "rationale_opened": 1},
        ]
        for interactions in answers:
            assignment = claim_next(study=study, reviewer=user)
            label_submit(
                study=study, reviewer=user, assignment_id=assignment.pk, values=APPROVE, interactions=interactions
            )

        data = labels_load(study)

        assert data.evidence_opened.tolist() == [True, False, True]
        assert data.rationale_seen.tolist() == [1, 0, 0]

    def test_a_study_without_labels_loads_empty_arrays(self, study):
        data = labels_load(study)
        assert len(data) == 0 and data.decision.dtype == np.int32
