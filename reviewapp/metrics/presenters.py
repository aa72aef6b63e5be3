"""Turn a MetricRun's stored result into rows a researcher reads (pure, no Django)."""

from __future__ import annotations

INDICATOR_NAMES = {
    "probe_agree": "agreed with planted errors",
    "discrimination_gap": "agree gap, AI right vs wrong",
    "fast_share": "faster than reading floor",
    "streak_ratio": "agree streak vs expected",
    "entropy": "label entropy",
    "evidence_opened": "evidence opened",
    "drift": "agreement drift",
}


def _formatted(estimate: dict | None, value, bound) -> str:
    """ "value [low, high]", the value alone when there is no interval, an em dash when undefined."""
    if not estimate or estimate.get("value") is None:
        return "—"
    if estimate.get("low") is None:
        return value(estimate["value"])
    return f"{value(estimate['value'])} [{bound(estimate['low'])}, {bound(estimate['high'])}]"


def percent(estimate: dict | None) -> str:
    """A proportion: "62.0% [58.1, 65.7]"."""
    return _formatted(estimate, lambda v: f"{100 * v:.1f}%", lambda v: f"{100 * v:.1f}")


def points(estimate: dict | None) -> str:
    """A difference of proportions in percentage points, signed: "+4.2 pp [+1.0, +7.5]"."""
    return _formatted(estimate, lambda v: f"{100 * v:+.1f} pp", lambda v: f"{100 * v:+.1f}")


def coefficient(estimate: dict | None) -> str:
    """A coefficient such as alpha: "0.743 [0.61, 0.85]"."""
    return _formatted(estimate, lambda v: f"{v:.3f}", lambda v: f"{v:.2f}")


UPTAKE_PARTS = (("rationale", "rationale"), ("recommendation", "recommendation"))
UNKNOWN_NOTE = (
    "Labels stored before uptake was recorded (or sent from a browser without JavaScript) carry no record: "
    "they count as unknown, not as not seen, and are left out of the seen share and of the split."
)


def uptake_rows(result: dict) -> list[dict]:
    """Treatment uptake per arm and shown part (docs/design.md, "Treatment uptake"): the share of
    labels on which the rationale (or recommendation) was seen, how many have no record, and
    agreement with the AI when it was seen and when not, on all items and on those the AI got
    wrong. Arms that show neither have no rows; a run computed before uptake was recorded has none."""
    rows = []
    for arm in result["arms"]:
        for part, name in UPTAKE_PARTS:
            entry = (arm.get("uptake") or {}).get(part)
            if not entry:
                continue
            every, wrong = entry["all"], entry["ai_wrong"]
            seen = every["seen"]
            display = ""
            if part == "rationale":
                display = "behind “Why?”" if entry.get("display") == "collapsed" else "expanded"
            rows.append(
                {
                    "arm": arm["name"],
                    "part": part,
                    "name": name,
                    "display": display,
                    "seen": percent(seen),
                    "seen_count": round(seen["value"] * seen["n"]) if seen.get("value") is not None else 0,
                    "recorded": seen["n"],
                    "unknown": every["unknown"],
                    "n_labels": every["n_labels"],
                    "agreement_seen": percent(every["agreement_seen"]),
                    "agreement_not_seen": percent(every["agreement_not_seen"]),
                    "n_seen": every["agreement_seen"]["n"],
                    "n_not_seen": every["agreement_not_seen"]["n"],
                    "wrong_seen": percent(wrong["agreement_seen"]),
                    "wrong_not_seen": percent(wrong["agreement_not_seen"]),
                }
            )
    return rows


def metrics_view(result: dict, reviewer_names: dict[int, str]) -> dict:
    """Rows for the study page: per arm, the increment, agreement, flagged reviewers."""
    arms = []
    for arm in result["arms"]:
        effect = arm.get("deference_effect") or {}
        agreement = arm.get("agreement", {}).get(result["decision_field"], {})
        reliance = arm["reliance"]
        arms.append(
            {
                "name": arm["name"],
                "role": arm["role"],
                "n_labels": arm["n_labels"],
                "n_reviewers": arm["n_reviewers"],
                "agreement": {split: percent(arm["agreement_with_ai"][split]) for split in arm["agreement_with_ai"]},
                "effect": {split: points(effect[split]["cluster"]) for split in effect},
                "effect_naive": {split: points(effect[split]["newcombe"]) for split in effect},
                "design_effect": f"{arm['design_effect']:.1f}" if arm.get("design_effect") is not None else "—",
                "accuracy": percent(reliance.get("accuracy")),
                "overreliance": percent(reliance.get("overreliance")),
                "underreliance": percent(reliance.get("underreliance")),
                "switch_fraction": percent(reliance.get("switch_fraction")) if arm["reveal"] else None,
                "rair": percent(reliance.get("rair")) if arm["reveal"] else None,
                "rsr": percent(reliance.get("rsr")) if arm["reveal"] else None,
                "alpha": coefficient(agreement.get("humans", {}).get("alpha")),
                "ac1": coefficient(agreement.get("humans", {}).get("ac1")),
                "percent_agreement": percent(agreement.get("humans", {}).get("percent_agreement")),
                "alpha_with_ai": coefficient(agreement.get("with_ai", {}).get("alpha")),
                "degenerate": agreement.get("humans", {}).get("degenerate", False),
            }
        )
    increment = result.get("narrative_increment")
    increment_view = None
    if increment:
        increment_view = {
            "arms": f"{increment['rationale_arm']} vs {increment['recommendation_arm']}",
            "defined": increment["all"]["cluster"]["value"] is not None,
            **{split: points(increment[split]["cluster"]) for split in ("all", "ai_right", "ai_wrong")},
        }
    flagged = [
        {
            "name": reviewer_names.get(row["reviewer"], f"reviewer {row['reviewer']}"),
            "arm": row.get("arm", ""),
            "n": row["n"],
            "crossed": [
                {
                    "name": INDICATOR_NAMES.get(name, name),
                    "value": _indicator_value(row["indicators"][name]),
                    "threshold": row["indicators"][name]["threshold"],
                }
                for name in row["crossed"]
            ],
        }
        for row in result["reviewers"]
        if row["flagged"]
    ]
    return {
        "arms": arms,
        "has_reveal": any(arm["reveal"] for arm in result["arms"]),
        "increment": increment_view,
        "uptake": uptake_rows(result),
        "uptake_note": UNKNOWN_NOTE,
        "flagged": flagged,
        # The kappa family on every field and decision quality (agreement_presenters.py).
        "family": _agreement_context(result),
        "n_labels": result["n_labels"],
        "n_reviewers": result["n_reviewers"],
        "n_items": result["n_items"],
        "n_items_ai_right": result["n_items_ai_right"],
        "n_items_ai_wrong": result["n_items_ai_wrong"],
        "n_resamples": result["parameters"]["n_resamples"],
        "decision_field": result["decision_field"],
    }


def _agreement_context(result: dict) -> dict:
    # Imported here: agreement_presenters formats with this module's functions.
    from .agreement_presenters import agreement_context

    return agreement_context(result)


def _indicator_value(indicator: dict) -> str:
    shrunk, raw = indicator.get("shrunk"), indicator.get("raw")
    if shrunk is None:
        return "—"
    return f"{shrunk:.2f} (raw {raw:.2f}, n={indicator['n']})" if raw is not None else f"{shrunk:.2f}"
