"""Turn a MetricRun's stored result into rows a researcher reads (pure, no Django)."""

from __future__ import annotations

from .effects_presenters import effects_view

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
        # An estimate over reviewers says why it has no interval ("too few reviewers (2) for an
        # interval"): a bare value would read as an interval of no width.
        note = estimate.get("note")
        return f"{value(estimate['value'])} ({note})" if note else value(estimate["value"])
    return f"{value(estimate['value'])} [{bound(estimate['low'])}, {bound(estimate['high'])}]"


def over_reviewers(estimate: dict | None) -> str:
    """The reviewer-cluster interval of a rate shown beside its label-level value: "over reviewers
    [52.0, 71.0]", or the reason there is none ("too few reviewers (4) for an interval"); empty for
    a run computed before these intervals existed."""
    if not estimate:
        return ""
    if estimate.get("value") is None:
        return "—"
    if estimate.get("low") is None:
        return estimate.get("note") or "no interval over reviewers"
    return f"over reviewers [{100 * estimate['low']:.1f}, {100 * estimate['high']:.1f}]"


def confidence_percent(result: dict) -> str:
    """The run's confidence level as a percentage for the text ("95", "90", "99.5")."""
    confidence = (result.get("parameters") or {}).get("confidence", 0.95)
    return f"{100 * confidence:.1f}".removesuffix(".0")


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
                "design_effect_note": arm.get("design_effect_note"),
                # Reviewer-cluster intervals beside the label-level ones (stats/cluster_robust.py).
                "agreement_cluster": {
                    split: over_reviewers(estimate)
                    for split, estimate in arm.get("agreement_with_ai_cluster", {}).items()
                },
                "reliance_cluster": {
                    name: over_reviewers(estimate) for name, estimate in arm.get("reliance_cluster", {}).items()
                },
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
        # The effect model and randomization p-values (effects_presenters.py); None for older runs.
        "effects": effects_view(result),
        "flagged": flagged,
        "below_minimum": below_minimum(result),
        # The kappa family on every field and decision quality (agreement_presenters.py).
        "family": _agreement_context(result),
        "sensitivity": sensitivity_view(result),
        "n_labels": result["n_labels"],
        "n_reviewers": result["n_reviewers"],
        "n_items": result["n_items"],
        "n_items_ai_right": result["n_items_ai_right"],
        "n_items_ai_wrong": result["n_items_ai_wrong"],
        "n_resamples": result["parameters"]["n_resamples"],
        "confidence_percent": confidence_percent(result),
        "min_reviewers": result["parameters"].get("min_reviewers"),
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


SPLIT_NAMES = {"all": "all items", "ai_right": "AI right", "ai_wrong": "AI wrong"}


def _excludes_zero(estimate: dict | None) -> bool | None:
    """Whether the interval lies wholly on one side of zero; None without an interval."""
    if not estimate or estimate.get("low") is None or estimate.get("high") is None:
        return None
    return estimate["low"] > 0 or estimate["high"] < 0


def sensitivity_view(result: dict) -> dict | None:
    """The sensitivity view (compute.sensitivity_without_flagged): every headline effect beside
    the same effect without the flagged reviewers, with the shift in percentage points and a
    note where leaving them out changes whether the interval excludes zero. None for a run
    computed before the view existed."""
    sensitivity = result.get("sensitivity")
    if not sensitivity:
        return None
    rows = []
    for effect in sensitivity["effects"]:
        full, without = effect["full"]["cluster"], effect["without_flagged"]["cluster"]
        shift = None
        if full.get("value") is not None and without.get("value") is not None:
            shift = f"{100 * (without['value'] - full['value']):+.1f} pp"
        before, after = _excludes_zero(full), _excludes_zero(without)
        rows.append(
            {
                "effect": "Deference effect" if effect["effect"] == "deference_effect" else "Narrative increment",
                "arm": effect["arm"],
                "split": SPLIT_NAMES.get(effect["split"], effect["split"]),
                "full": points(full),
                "without": points(without),
                "shift": shift or "—",
                "changes": before is not None and after is not None and before != after,
            }
        )
    return {
        "rows": rows,
        "n_excluded": sensitivity["n_excluded"],
        "n_labels_excluded": sensitivity["n_labels_excluded"],
        "any_change": any(row["changes"] for row in rows),
    }


def below_minimum(result: dict) -> dict | None:
    """Reviewers who cross enough indicators to be flagged but have fewer labels than the minimum
    (stats/rubber_stamp.py, MIN_LABELS_TO_FLAG): not flagged, and the panel says so rather than
    "no reviewer crosses". None when there are none, and for runs from before the minimum."""
    rows = [row for row in result["reviewers"] if row.get("too_few_labels") and len(row["crossed"]) >= 2]
    if not rows:
        return None
    return {"count": len(rows), "min_labels": rows[0]["min_labels"]}
