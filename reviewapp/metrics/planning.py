"""The planner's form and what its page shows (the simulation itself is stats/planner.py).

Rates are asked in percent, as a researcher states them ("about 60% agree with the AI when it is
shown"); the stats core takes proportions.
"""

from __future__ import annotations

from django import forms

from reviewapp.studies.models import Study

from .stats.planner import (
    DEFAULT_SIMULATIONS,
    MAX_ITEMS_PER_REVIEWER,
    MAX_REVIEWERS,
    PlanInput,
)

# Defaults for a study without a plan yet: a deference effect of 10 points, 15 for the rationale
# arm, and an ICC of 0.1, within the 0.05-0.2 reviewers showed in the studies behind issue 15.
DEFAULTS = {
    "p_control": 50,
    "p_recommendation": 60,
    "p_rationale": 65,
    "icc": 0.1,
    "reviewers_per_arm": 20,
    "items_per_reviewer": 40,
}


def _rate(label: str) -> forms.FloatField:
    return forms.FloatField(label=label, min_value=1, max_value=99, help_text="percent")


class PlannerForm(forms.Form):
    p_control = _rate("Agreement with the AI's (hidden) recommendation, control arm")
    p_recommendation = _rate("Agreement with the AI, recommendation arm")
    p_rationale = _rate("Agreement with the AI, rationale arm")
    icc = forms.FloatField(
        label="Intraclass correlation (ICC) of reviewers",
        min_value=0,
        max_value=0.95,
        help_text="how alike one reviewer's answers are; 0.05-0.2 is common",
    )
    reviewers_per_arm = forms.IntegerField(label="Reviewers per arm", min_value=2, max_value=MAX_REVIEWERS)
    items_per_reviewer = forms.IntegerField(label="Items per reviewer", min_value=1, max_value=MAX_ITEMS_PER_REVIEWER)

    def plan_input(self, study: Study) -> PlanInput:
        data = self.cleaned_data
        return PlanInput(
            p_control=data["p_control"] / 100,
            p_recommendation=data["p_recommendation"] / 100,
            p_rationale=data["p_rationale"] / 100,
            icc=float(data["icc"]),
            reviewers_per_arm=data["reviewers_per_arm"],
            items_per_reviewer=data["items_per_reviewer"],
            confidence=study_confidence(study),
            n_simulations=DEFAULT_SIMULATIONS,
            seed=study.seed % 2**32,
            min_reviewers=getattr(study, "min_reviewers_for_interval", None),
        )


def study_confidence(study: Study) -> float:
    """The study's confidence level (Study.confidence_level), 0.95 where there is none."""
    return float(getattr(study, "confidence_level", None) or 0.95)


def initial(study: Study) -> dict:
    """The defaults, with the study's own quota as the items per reviewer when it has one."""
    return DEFAULTS | ({"items_per_reviewer": study.reviewer_quota} if study.reviewer_quota else {})


def plan_rows(result: dict) -> list[dict]:
    """One row per contrast: the effect in points, the simulated power with its Monte Carlo
    standard error, the design-effect formula's power, and the reviewers needed each way."""

    def needed(n: int | None) -> str:
        return str(n) if n is not None else f"more than {result['max_reviewers']}"

    return [
        {
            "name": row["name"],
            "effect": f"{100 * row['effect']:+.1f} pp",
            "power": f"{100 * row['power']:.0f}%",
            "power_se": f"{100 * row['power_mc_se']:.1f}",
            "power_formula": f"{100 * row['power_design_effect']:.0f}%",
            "needed": needed(row["reviewers_needed"]) if row["effect"] else "—",
            "needed_formula": needed(row["reviewers_needed_design_effect"]) if row["effect"] else "—",
            "enough": row["power"] >= result["target_power"],
        }
        for row in result["contrasts"]
    ]
