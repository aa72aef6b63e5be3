"""The planner (stats/planner.py): power by simulation through the app's own estimators, against
alpha at no effect, 1 at a huge one, monotone in n, and the design-effect formula by hand."""

from __future__ import annotations

import math

import pytest

from reviewapp.metrics.stats.clustered import narrative_increment
from reviewapp.metrics.stats.planner import (
    PlanInput,
    design_effect_power,
    plan,
    reviewers_needed,
    simulated_power,
)


class TestPlanner:
    def test_power_is_near_alpha_when_there_is_no_effect(self):
        # 1000 studies: Monte Carlo standard error sqrt(0.05 * 0.95 / 1000) = 0.007.
        power = simulated_power(0.5, 0.5, icc=0.1, reviewers=20, items=30, n_simulations=1000, seed=1)
        assert 0.03 <= power.power <= 0.07
        assert power.mc_se == pytest.approx(math.sqrt(power.power * (1 - power.power) / 1000))

    def test_power_is_near_one_for_a_huge_effect(self):
        power = simulated_power(0.2, 0.8, icc=0.1, reviewers=10, items=20, n_simulations=300, seed=1)
        assert power.power >= 0.99

    def test_power_grows_with_the_number_of_reviewers(self):
        powers = [
            simulated_power(0.5, 0.6, icc=0.1, reviewers=n, items=30, n_simulations=300, seed=0).power
            for n in (5, 10, 20, 40, 80)
        ]
        assert powers == sorted(powers) and powers[0] < 0.15 and powers[-1] > 0.9

    def test_too_few_reviewers_never_detect_anything(self):
        # Below the estimators' minimum reviewers per arm there is no interval: not detected,
        # as in the real study, whatever the effect.
        assert simulated_power(0.1, 0.9, icc=0.1, reviewers=2, items=50, n_simulations=50).power == 0.0

    def test_a_plan_holds_the_studys_minimum_reviewers_for_an_interval(self):
        spec = {"icc": 0.05, "reviewers_per_arm": 8, "items_per_reviewer": 40, "n_simulations": 50}
        strict = plan(PlanInput(0.2, 0.8, 0.9, **spec, min_reviewers=10))["contrasts"][0]
        assert strict["power"] == 0.0 and strict["reviewers_needed"] == 10
        # Positive control: at the estimators' default (5) eight reviewers detect a huge effect.
        assert plan(PlanInput(0.2, 0.8, 0.9, **spec))["contrasts"][0]["power"] == 1.0

    def test_the_design_effect_formula_by_hand_and_the_simulation_beside_it(self):
        # 100 reviewers an arm, 5 items each, ICC 0.1: design effect 1 + 4 * 0.1 = 1.4 (Kish 1965),
        # n_eff = 500 / 1.4 = 357.14 labels an arm; SE = sqrt((0.6 * 0.4 + 0.5 * 0.5) / 357.14)
        # = 0.03704; |d| / SE = 0.1 / 0.03704 = 2.700; power = Phi(2.700 - 1.960) = Phi(0.740) = 0.770.
        formula = design_effect_power(0.6, 0.5, icc=0.1, reviewers=100, items=5)
        assert formula == pytest.approx(0.7703, abs=0.0005)
        # The app's estimators agree within 3 Monte Carlo standard errors (0.013 at 1000 studies).
        simulated = simulated_power(0.6, 0.5, icc=0.1, reviewers=100, items=5, n_simulations=1000, seed=3)
        assert simulated.power == pytest.approx(formula, abs=0.04)
        # Positive control: without the design effect (ICC 0) the formula promises far more.
        assert design_effect_power(0.6, 0.5, icc=0.0, reviewers=100, items=5) > formula + 0.1

    def test_the_reviewers_needed_reach_the_target_and_one_fewer_does_not(self):
        options = {"icc": 0.05, "items": 40, "n_simulations": 200, "seed": 4}
        needed = reviewers_needed(0.65, 0.5, **options)
        assert needed is not None and 5 <= needed <= 40
        assert simulated_power(0.65, 0.5, reviewers=needed, **options).power >= 0.8
        assert simulated_power(0.65, 0.5, reviewers=needed - 1, **options).power < 0.8
        # No effect: no number of reviewers is enough.
        assert reviewers_needed(0.5, 0.5, **options) is None

    def test_a_plan_gives_every_contrast_seeded(self):
        spec = PlanInput(0.5, 0.6, 0.65, icc=0.05, reviewers_per_arm=30, items_per_reviewer=40, n_simulations=100)
        first = plan(spec)
        assert [row["key"] for row in first["contrasts"]] == [
            "deference_recommendation",
            "deference_rationale",
            "narrative_increment",
        ]
        assert [round(row["effect"], 6) for row in first["contrasts"]] == [0.1, 0.15, 0.05]
        assert first["design_effect"] == pytest.approx(1 + 39 * 0.05)
        increment = first["contrasts"][2]
        expected = simulated_power(
            0.65, 0.6, icc=0.05, reviewers=30, items=40, contrast=narrative_increment, n_simulations=100
        )
        assert increment["power"] == expected.power
        # The smaller the effect, the more reviewers it needs.
        needed = [row["reviewers_needed"] for row in first["contrasts"]]
        assert needed[1] < needed[0] < needed[2]
        assert plan(spec) == first

    @pytest.mark.parametrize(
        "change",
        [
            {"p_control": 0.0},
            {"p_rationale": 1.0},
            {"icc": 1.0},
            {"icc": -0.1},
            {"reviewers_per_arm": 0},
            {"reviewers_per_arm": True},
            {"items_per_reviewer": 1.5},
            {"confidence": 1.0},
            {"n_simulations": 10**6},
        ],
    )
    def test_it_refuses_inputs_outside_their_range(self, change):
        good = {
            "p_control": 0.5,
            "p_recommendation": 0.6,
            "p_rationale": 0.65,
            "icc": 0.1,
            "reviewers_per_arm": 20,
            "items_per_reviewer": 30,
        }
        PlanInput(**good)  # positive control
        with pytest.raises(ValueError, match=next(iter(change))):
            PlanInput(**(good | change))
