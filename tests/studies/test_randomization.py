"""Permuted-block allocation: balanced within one block, reproducible from the seed."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from django.contrib.auth.models import User

from reviewapp.studies.models import Enrolment, ReviewerProfile, Study
from reviewapp.studies.randomization import (
    BETWEEN_BLOCK_MULTIPLIER,
    allocate_assignment,
    allocate_reviewer,
    permuted_block,
    weights_error,
)
from reviewapp.studies.services import StudyRuleError, enrolment_create
from tests.builders import user


class TestPureAllocation:
    def test_it_puts_each_arm_weight_times_multiplier_in_a_block(self):
        block = permuted_block([2, 1, 1], seed=5, stream="between:", block_index=0, multiplier=2)
        assert Counter(block) == {0: 4, 1: 2, 2: 2}

    def test_it_reproduces_the_same_allocation_from_the_same_seed(self):
        first = [allocate_reviewer([1, 1, 1], 42, "novice", n).arm_index for n in range(300)]
        again = [allocate_reviewer([1, 1, 1], 42, "novice", n).arm_index for n in range(300)]
        other_seed = [allocate_reviewer([1, 1, 1], 43, "novice", n).arm_index for n in range(300)]
        other_stratum = [allocate_reviewer([1, 1, 1], 42, "expert", n).arm_index for n in range(300)]
        assert first == again
        assert first != other_seed and first != other_stratum

    def test_it_stays_within_one_block_of_the_target_at_every_step(self):
        weights = [2, 1, 1]
        size = sum(weights) * BETWEEN_BLOCK_MULTIPLIER
        counts = Counter()
        for n in range(1000):
            counts[allocate_reviewer(weights, 7, "", n).arm_index] += 1
            for arm, weight in enumerate(weights):
                target = (n + 1) * weight / sum(weights)
                assert abs(counts[arm] - target) <= size

    def test_it_never_allocates_a_zero_weight_arm(self):
        arms = {allocate_reviewer([1, 0, 1], 3, "", n).arm_index for n in range(200)}
        assert arms == {0, 2}

    def test_it_explains_weights_that_cannot_allocate(self):
        assert "sum to zero" in weights_error([0, 0])
        assert "no arms" in weights_error([])

    def test_it_counterbalances_arms_across_an_items_assignments(self):
        for item_id in range(50):
            arms = [allocate_assignment([1, 1, 1], 11, item_id, slot).arm_index for slot in range(3)]
            assert sorted(arms) == [0, 1, 2]


@pytest.mark.django_db
class TestEnrolment:
    def make_reviewers(self, count: int, strata: list[str] | None = None) -> list[User]:
        users = User.objects.bulk_create([User(username=f"r{i}") for i in range(count)])
        if strata:
            rng = random.Random(1)
            ReviewerProfile.objects.bulk_create(
                [ReviewerProfile(user=u, attributes={"experience": rng.choice(strata)}) for u in users]
            )
        return users

    def test_it_keeps_1000_stratified_enrolments_balanced_within_a_block(self, study):
        Study.objects.filter(pk=study.pk).update(stratify_by="experience")
        study.refresh_from_db()
        for reviewer in self.make_reviewers(1000, ["novice", "intermediate", "expert"]):
            enrolment_create(study=study, reviewer=reviewer, source=Enrolment.Source.ADMIN)
        block_size = 3 * BETWEEN_BLOCK_MULTIPLIER
        for stratum in ("novice", "intermediate", "expert"):
            rows = Enrolment.objects.filter(study=study, stratum=stratum)
            counts = Counter(rows.values_list("arm__name", flat=True))
            assert len(counts) == 3
            assert max(counts.values()) - min(counts.values()) <= block_size, (stratum, counts)
            assert sum(counts.values()) == rows.count() > 250

    def test_it_can_recompute_every_stored_allocation_from_the_seed(self, study):
        for reviewer in self.make_reviewers(60):
            enrolment_create(study=study, reviewer=reviewer, source=Enrolment.Source.ADMIN)
        arms, weights = study.arm_weights()
        for enrolment in Enrolment.objects.filter(study=study):
            allocation = allocate_reviewer(weights, enrolment.seed, enrolment.stratum, enrolment.sequence)
            assert arms[allocation.arm_index] == enrolment.arm
            assert (allocation.block_index, allocation.block_position) == (
                enrolment.block_index,
                enrolment.block_position,
            )

    def test_it_allocates_once_and_never_changes_the_arm(self, study):
        reviewer = self.make_reviewers(1)[0]
        first, created = enrolment_create(study=study, reviewer=reviewer, source=Enrolment.Source.ADMIN)
        again, created_again = enrolment_create(study=study, reviewer=reviewer, source=Enrolment.Source.ADMIN)
        assert (created, created_again) == (True, False)
        assert again.arm == first.arm

    def test_it_leaves_the_arm_open_in_a_within_subjects_study(self, study):
        Study.objects.filter(pk=study.pk).update(design=Study.Design.WITHIN)
        enrolment, _ = enrolment_create(study=study, reviewer=self.make_reviewers(1)[0], source="admin")
        assert enrolment.arm is None

    def test_it_refuses_researcher_accounts_as_reviewers(self, study):
        staff = user("rex", is_staff=True)
        with pytest.raises(StudyRuleError, match="researcher account"):
            enrolment_create(study=study, reviewer=staff, source="admin")

    def test_it_refuses_to_enrol_when_weights_sum_to_zero(self, study):
        study.arms.update(weight=0)
        with pytest.raises(StudyRuleError, match="sum to zero"):
            enrolment_create(study=study, reviewer=self.make_reviewers(1)[0], source="admin")
