"""The kappa family and decision quality as rows a researcher reads (pure, no Django): the
study page's metrics panel and the dashboard both render these, through
templates/metrics/_agreement_family.html and templates/metrics/_decision_quality.html.

A run stored before these metrics existed has no ``family`` or ``decision_quality`` keys: the
rows are then empty and the templates say to recompute, never fail.
"""

from __future__ import annotations

from .presenters import coefficient, confidence_percent, percent

WEIGHTING_NAMES = {"identity": "unweighted", "linear": "linear weights", "quadratic": "quadratic weights"}
LEVEL_NAMES = {"nominal": "nominal", "ordinal": "ordinal", "interval": "interval"}
BLOCK_MESSAGE = (
    'Mark which answer blocks the action in the label schema ("block_value" on the decision field, '
    'e.g. "reject") to see catch rate, block precision and false-block rate.'
)
TWO_CODER_NOTE = (
    "Cohen's κ and Scott's π compare two reviewers; they are shown where exactly two reviewers labelled "
    "an arm's shared items (with more, Fleiss' κ is their many-reviewer form)."
)


def _coefficient(estimate: dict | None) -> dict:
    """A coefficient as "0.743 [0.61, 0.85]" with its standard error below, or an em dash."""
    if not estimate or estimate.get("value") is None:
        return {"text": "—", "se": None}
    se = estimate.get("se")
    return {"text": coefficient(estimate), "se": f"{se:.3f}" if se is not None else None}


def family_rows(result: dict) -> list[dict]:
    """One row per schema field, arm and weighting: unweighted rows carry Krippendorff's alpha,
    percent agreement and AC1 (unit bootstrap) beside Fleiss, Brennan-Prediger, Cohen and Scott
    (Gwet's standard errors); weighted rows carry weighted percent agreement and AC2 instead."""
    rows = []
    fields: list[str] = []
    for arm in result["arms"]:
        for field in arm.get("agreement") or {}:
            if field not in fields:
                fields.append(field)
    for field in fields:
        for arm in result["arms"]:
            entry = (arm.get("agreement") or {}).get(field) or {}
            family = entry.get("family")
            if not family:
                continue
            humans = entry.get("humans") or {}
            for weighting, coefficients in family["weightings"].items():
                unweighted = weighting == "identity"
                rows.append(
                    {
                        "field": field,
                        "level": LEVEL_NAMES.get(entry.get("level"), entry.get("level", "")),
                        "arm": arm["name"],
                        "weighting": WEIGHTING_NAMES.get(weighting, weighting),
                        "alpha": _coefficient(humans.get("alpha")) if unweighted else None,
                        "percent_agreement": (
                            {"text": percent(humans.get("percent_agreement")), "se": None}
                            if unweighted
                            else _coefficient(coefficients.get("percent_agreement"))
                        ),
                        "gwet_ac": _coefficient(humans.get("ac1") if unweighted else coefficients.get("gwet_ac")),
                        "fleiss_kappa": _coefficient(coefficients.get("fleiss_kappa")),
                        "brennan_prediger": _coefficient(coefficients.get("brennan_prediger")),
                        "cohen_kappa": _coefficient(coefficients.get("cohen_kappa")),
                        "scott_pi": _coefficient(coefficients.get("scott_pi")),
                        "units": humans.get("n_units"),
                        "n_coders": family.get("n_coders"),
                    }
                )
    return rows


def _rate(estimate: dict | None) -> dict:
    """A rate with its reviewer-cluster interval, or the reason there is none."""
    estimate = estimate or {}
    # percent() already says why there is no interval ("too few reviewers (2) for an interval").
    return {"text": percent(estimate), "n": estimate.get("n")}


def _seconds(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.1f} s" if value < 100 else f"{value:,.0f} s"


def decision_quality_view(result: dict) -> dict | None:
    """Per arm: catch rate, block precision, false-block rate (all items; reviewer-cluster
    intervals), the confusion matrix and the median seconds per decision. Without a block value
    in the schema, ``message`` instead of the rates. None for a run stored before decision
    quality existed."""
    arms = [arm for arm in result["arms"] if arm.get("decision_quality")]
    if not arms:
        return None
    block = result.get("block_value")
    rows = []
    for arm in arms:
        quality = arm["decision_quality"]
        seconds = quality.get("seconds_per_decision") or {}
        row = {
            "arm": arm["name"],
            "seconds": _seconds(seconds.get("median")),
            "n_timed": seconds.get("n", 0),
            # An arm without labels on gold items has no rates and no matrix to show.
            "has_rates": "catch_rate" in quality and quality.get("n_labels", 0) > 0,
        }
        if row["has_rates"]:
            values = quality["values"]
            matrix = quality["confusion"]["matrix"]
            row.update(
                {
                    "catch_rate": _rate(quality["catch_rate"]["all"]),
                    "block_precision": _rate(quality["block_precision"]["all"]),
                    "false_block_rate": _rate(quality["false_block_rate"]["all"]),
                    "catch_rate_ai_wrong": _rate(quality["catch_rate"].get("ai_wrong")),
                    "n_labels": quality["n_labels"],
                    "n_probe_labels": quality["n_probe_labels"],
                    "values": values,
                    "matrix": [
                        {"gold": value, "is_block": value == block, "cells": cells}
                        for value, cells in zip(values, matrix, strict=True)
                    ],
                    "cells": {
                        name: quality["confusion"][name]
                        for name in ("blocks_caught", "blocks_missed", "false_blocks", "allows_correct")
                    },
                }
            )
        rows.append(row)
    return {
        "block_value": block,
        "message": None if block else BLOCK_MESSAGE,
        "rows": rows,
        "decision_field": result.get("decision_field", ""),
    }


def agreement_context(result: dict) -> dict:
    """What the two partial templates need, for the panel and the dashboard alike."""
    return {
        "family_rows": family_rows(result),
        "family_note": TWO_CODER_NOTE,
        "decision_quality": decision_quality_view(result),
        # The run's confidence level ("95", "90"), for the captions.
        "confidence_percent": confidence_percent(result),
    }
