"""The effect model and randomization inference of a run (result["effects"], metrics/effects.py)
as rows a researcher reads: the study's metrics panel, the dashboard and agreement.csv (pure,
no Django). A run stored before the key existed gives None, and the templates show nothing."""

from __future__ import annotations

SPLIT_NAMES = {"all": "All items", "ai_right": "AI right", "ai_wrong": "AI wrong"}
KIND_NAMES = {"deference": "deference effect", "narrative": "narrative increment"}


def _ratio(estimate: dict | None) -> str:
    if not estimate or estimate.get("value") is None:
        return "—"
    return f"{estimate['value']:.2f} [{estimate['low']:.2f}, {estimate['high']:.2f}]"


def _points(estimate: dict | None) -> str:
    if not estimate or estimate.get("value") is None:
        return "—"
    return f"{100 * estimate['value']:+.1f} pp [{100 * estimate['low']:+.1f}, {100 * estimate['high']:+.1f}]"


def _signed(estimate: dict | None) -> str:
    if not estimate or estimate.get("value") is None:
        return "—"
    return f"{estimate['value']:+.2f} [{estimate['low']:+.2f}, {estimate['high']:+.2f}]"


def p_text(p: float | None) -> str:
    if p is None:
        return "—"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def randomization_text(test: dict | None) -> str:
    """ "0.004 (± 0.002, 1,000 draws)", or a dash where the test was not run."""
    if not test or test.get("p") is None:
        return "—"
    return f"{test['p']:.3f} (± {test['mc_se']:.3f}, {test['n']:,} draws)"


def effects_view(result: dict) -> dict | None:
    effects = result.get("effects")
    if not effects:
        return None
    model = effects.get("model") or {}
    randomization = effects.get("randomization") or {}
    rows = []
    for row in effects.get("rows", []):
        se = row.get("se_log_or") or {}
        rows.append(
            {
                "contrast": f"{row['first']} vs {row['second']}",
                "kind": KIND_NAMES.get(row["kind"], row["kind"]),
                "split": SPLIT_NAMES.get(row["split"], row["split"]),
                "reason": row.get("reason", ""),
                "odds_ratio": _ratio(row.get("odds_ratio")),
                "risk_difference": _points(row.get("risk_difference")),
                "risk_ratio": _ratio(row.get("risk_ratio")),
                "cohens_h": _signed(row.get("cohens_h")),
                "p_model": p_text(row.get("p_model")),
                "p_randomization": randomization_text(row.get("randomization")),
                "p_all_arms": p_text((row.get("randomization") or {}).get("p_all_arms")),
                "se_ratio": f"{se['two_way'] / se['reviewer']:.2f}" if se.get("reviewer") else "—",
                "few_clusters": bool(row.get("few_clusters")),
                "note": row.get("note", ""),
            }
        )
    return {
        "reason": effects.get("reason") or model.get("reason", ""),
        "method": model.get("method", ""),
        "caveat": model.get("caveat", ""),
        "df": model.get("df"),
        "confidence": f"{100 * model['confidence']:.1f}".removesuffix(".0") if model.get("confidence") else "",
        "psd_adjusted": bool(model.get("psd_adjusted")),
        "randomization_method": randomization.get("method", ""),
        "randomization_reason": randomization.get("reason", ""),
        "randomization_warning": randomization.get("warning", ""),
        "n_rerandomizations": randomization.get("n_rerandomizations"),
        "reproduced": randomization.get("reproduced"),
        "n_allocated": randomization.get("n_reviewers"),
        "rows": rows,
    }
