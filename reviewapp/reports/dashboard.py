"""The dashboard's numbers as rows and chart data (pure: a MetricRun result and counts in).

The result's shape is documented in reviewapp/metrics/compute.py; every estimate is
``{value, low, high, n, method}`` and is formatted here with the metrics presenters, so
the dashboard and the study page print the same numbers the same way.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from reviewapp.metrics.presenters import INDICATOR_NAMES, UPTAKE_PARTS, coefficient, over_reviewers, percent, points
from reviewapp.metrics.stats.rubber_stamp import DEFAULT_THRESHOLDS, INDICATORS

from . import charts

SPLITS = (("all", "All items"), ("ai_right", "AI right"), ("ai_wrong", "AI wrong"))
ACTIVITY_DAYS = 14
ROLLING_WINDOW = 20
# The increment gets its own colour after the arms'.
INCREMENT_SERIES = 7

# What each rubber-stamp indicator measures, for the reviewer page (rubber_stamp.py has the sources).
INDICATOR_HELP = {
    "probe_agree": "Share of planted-error probes on which the reviewer took the AI's wrong answer.",
    "discrimination_gap": (
        "P(agree | AI right) - P(agree | AI wrong): near zero means agreeing whether or not the AI is right."
    ),
    "fast_share": "Share of decisions made faster than the item can be read at the study's reading speed.",
    "streak_ratio": "Longest run of agreements with the AI, over the run the reviewer's own agree rate would predict.",
    "entropy": "Spread of the reviewer's answers: 0 = always the same answer, 1 = every answer equally often.",
    "evidence_opened": "Share of items on which a tool call was expanded or the rationale opened.",
    "drift": "Agree rate in the second half of the session minus the first half.",
}


# --- Formatting ------------------------------------------------------------------------


def pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def number(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def seconds_text(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.1f} s" if value < 100 else f"{value:,.0f} s"


def _ci_note(name: str, estimate: dict | None, formatter) -> str:
    n = (estimate or {}).get("n")
    suffix = f", n = {n:,}" if n is not None else ""
    return f"{name}: {formatter(estimate)}{suffix}"


def _estimate(label: str, estimate: dict | None, formatter, series: int, note_name: str | None = None):
    estimate = estimate or {}
    return charts.Estimate(
        label=label,
        value=estimate.get("value"),
        low=estimate.get("low"),
        high=estimate.get("high"),
        note=_ci_note(note_name or label, estimate, formatter),
        series=series,
        reason=(estimate.get("note") or "") if estimate.get("low") is None else "",
    )


def _rate_row(arm: dict, split: str, series: int) -> charts.Estimate:
    """An arm's agreement rate with its interval over reviewers (stats/cluster_robust.py), the
    label-level Wilson interval in the mark's title beside it; Wilson alone for a run computed
    before the reviewer intervals existed."""
    wilson = arm["agreement_with_ai"].get(split)
    cluster = (arm.get("agreement_with_ai_cluster") or {}).get(split)
    if not cluster:
        return _estimate(arm["name"], wilson, percent, series)
    row = _estimate(arm["name"], cluster, percent, series)
    # The title: the label-level numbers as in the table, then what the whisker shows.
    note = f"{_ci_note(arm['name'], wilson, percent)}; the whisker: {over_reviewers(cluster)}"
    return charts.Estimate(row.label, row.value, row.low, row.high, note, series, row.reason)


def control_arm(result: dict) -> dict | None:
    return next((arm for arm in result["arms"] if arm["role"] == "control"), None)


# --- Deference, effects, agreement -------------------------------------------------------


def deference_panels(result: dict) -> list[charts.Panel]:
    """Per split, each arm's agreement with the AI and its interval over reviewers (``_rate_row``;
    none, with the reason, below the study's minimum number of reviewers); the control arm's
    rate (agreement with the recommendation it never saw) as the baseline line."""
    control = control_arm(result)
    panels = []
    for split, title in SPLITS:
        rows = [_rate_row(arm, split, index) for index, arm in enumerate(result["arms"])]
        reference = None
        label = ""
        if control is not None and (value := control["agreement_with_ai"].get(split, {}).get("value")) is not None:
            reference, label = value, f"baseline: {control['name']} {pct(value)}"
        panels.append(charts.Panel(title=title, rows=rows, reference=reference, reference_label=label))
    return panels


def deference_table(result: dict) -> list[dict]:
    return [
        {
            "name": arm["name"],
            "role": arm["role"],
            "n_labels": arm["n_labels"],
            "n_reviewers": arm["n_reviewers"],
            "cells": [
                {
                    "text": percent(arm["agreement_with_ai"].get(split)),
                    "n": arm["agreement_with_ai"].get(split, {}).get("n"),
                    "cluster": over_reviewers((arm.get("agreement_with_ai_cluster") or {}).get(split)),
                }
                for split, _ in SPLITS
            ],
        }
        for arm in result["arms"]
    ]


def effect_panels(result: dict) -> list[charts.Panel]:
    """Per split, each AI arm minus control (cluster bootstrap over reviewers), and the
    narrative increment (rationale minus recommendation)."""
    increment = result.get("narrative_increment")
    panels = []
    for split, title in SPLITS:
        rows = []
        for index, arm in enumerate(result["arms"]):
            effect = (arm.get("deference_effect") or {}).get(split)
            if effect is None:
                continue
            rows.append(_estimate(arm["name"], effect["cluster"], points, index, note_name=f"{arm['name']} vs control"))
        if increment:
            label = f"{increment['rationale_arm']} vs {increment['recommendation_arm']}"
            rows.append(
                _estimate(
                    "narrative increment",
                    increment[split]["cluster"],
                    points,
                    INCREMENT_SERIES,
                    note_name=f"narrative increment ({label})",
                )
            )
        if rows:
            panels.append(charts.Panel(title=title, rows=rows, reference=0.0, reference_label="no difference"))
    return panels


def effect_table(result: dict) -> list[dict]:
    rows = []
    for arm in result["arms"]:
        effects = arm.get("deference_effect")
        if not effects:
            continue
        rows.append(
            {
                "name": f"{arm['name']} vs control",
                "kind": "deference effect",
                "cells": [_effect_cell(effects.get(split)) for split, _ in SPLITS],
                "design_effect": number(arm.get("design_effect"), 1),
                "design_effect_note": arm.get("design_effect_note") or "",
            }
        )
    increment = result.get("narrative_increment")
    if increment:
        rows.append(
            {
                "name": f"{increment['rationale_arm']} vs {increment['recommendation_arm']}",
                "kind": "narrative increment",
                "cells": [_effect_cell(increment.get(split)) for split, _ in SPLITS],
                "design_effect": "",
            }
        )
    return rows


def _effect_cell(effect: dict | None) -> dict:
    if not effect:
        return {"cluster": "—", "naive": "—"}
    return {"cluster": points(effect["cluster"]), "naive": points(effect["newcombe"])}


def agreement_panels(result: dict) -> list[charts.Panel]:
    """Krippendorff's alpha and Gwet's AC1 per arm on the decision field, unit-bootstrap CIs."""
    field = result["decision_field"]
    panels = []
    for key, title in (("alpha", "Krippendorff's alpha"), ("ac1", "Gwet's AC1")):
        rows = []
        for index, arm in enumerate(result["arms"]):
            humans = (arm.get("agreement", {}).get(field) or {}).get("humans") or {}
            rows.append(
                _estimate(arm["name"], humans.get(key), coefficient, index, note_name=f"{arm['name']}: {title}")
            )
        panels.append(charts.Panel(title=title, rows=rows, reference=0.0, reference_label="chance"))
    return panels


def agreement_table(result: dict) -> list[dict]:
    field = result["decision_field"]
    rows = []
    for arm in result["arms"]:
        entry = arm.get("agreement", {}).get(field) or {}
        humans = entry.get("humans") or {}
        with_ai = entry.get("with_ai") or {}
        rows.append(
            {
                "name": arm["name"],
                "alpha": coefficient(humans.get("alpha")),
                "ac1": coefficient(humans.get("ac1")),
                "percent_agreement": percent(humans.get("percent_agreement")),
                "alpha_with_ai": coefficient(with_ai.get("alpha")),
                "units": humans.get("n_units"),
                "degenerate": humans.get("degenerate", False),
            }
        )
    return rows


def uptake_panels(result: dict) -> list[charts.Panel]:
    """One panel per arm and shown part (rationale, recommendation): the arm's agreement with the
    AI on the labels where it was seen and where it was not (Wilson intervals), against the
    control baseline. Short row labels: arm names can be long."""
    control = control_arm(result)
    reference = (control or {}).get("agreement_with_ai", {}).get("all", {}).get("value")
    label = f"baseline: {control['name']} {pct(reference)}" if reference is not None else ""
    panels = []
    for index, arm in enumerate(result["arms"]):
        for part, name in UPTAKE_PARTS:
            entry = (arm.get("uptake") or {}).get(part)
            if not entry:
                continue
            rows = [
                _estimate(state, entry["all"][key], percent, index, note_name=f"{arm['name']}, {name} {state}")
                for key, state in (("agreement_seen", "seen"), ("agreement_not_seen", "not seen"))
            ]
            title = f"{arm['name']}: the {name}"
            panels.append(charts.Panel(title=title, rows=rows, reference=reference, reference_label=label))
    return panels


def estimate_domain(panels: Sequence[charts.Panel], *, low: float, high: float, symmetric: bool = False):
    """The smallest round domain holding every point and interval, at least [low, high]."""
    values = [low, high]
    for panel in panels:
        for row in panel.rows:
            values += [v for v in (row.value, row.low, row.high) if v is not None and math.isfinite(v)]
        if panel.reference is not None:
            values.append(panel.reference)
    lo, hi = min(values), max(values)
    if symmetric:
        edge = max(abs(lo), abs(hi))
        lo, hi = -edge, edge
    return charts.nice_domain(lo, hi, 5)


# --- Progress and activity ---------------------------------------------------------------

STATE_ORDER = (
    ("full", "fully labelled", "dash-state-full"),
    ("partial", "partially labelled", "dash-state-partial"),
    ("in_progress", "in progress (live lease)", "dash-state-live"),
    ("unclaimed", "not yet claimed", "dash-state-open"),
)


def queue_rows(states: Sequence[dict], arm_names: dict[int, str]) -> list[dict]:
    """One row per queue (an arm, or the shared queue of a within-subjects study)."""
    rows = []
    for state in states:
        key = state["arm_key"]
        name = "all arms (within subjects)" if key == 0 else arm_names.get(key, f"arm {key}")
        total = sum(state[s] for s, _, _ in STATE_ORDER)
        rows.append(
            {
                "name": name,
                "total": total,
                "cells": [
                    {"key": s, "label": label, "n": state[s], "share": pct(state[s] / total) if total else "—"}
                    for s, label, _ in STATE_ORDER
                ],
                "segments": [charts.Segment(label, state[s], css) for s, label, css in STATE_ORDER],
            }
        )
    return rows


def labels_per_arm(counts: dict[int, int], arms: Iterable[tuple[int, str]]) -> list[dict]:
    total = sum(counts.values())
    return [
        {"name": name, "n": counts.get(arm_id, 0), "share": pct(counts.get(arm_id, 0) / total) if total else "—"}
        for arm_id, name in arms
    ]


def activity_window(last_day: date | None, days: int = ACTIVITY_DAYS) -> list[date]:
    """The ``days`` days ending on the study's last day with labels (a paused study still
    shows its last fortnight of work, not an empty one)."""
    if last_day is None:
        return []
    return [last_day - timedelta(days=days - 1 - i) for i in range(days)]


def daily_totals(per_day: dict[tuple[int, date], int], window: Sequence[date]) -> list[tuple[str, int]]:
    totals = dict.fromkeys(window, 0)
    for (_, day), count in per_day.items():
        if day in totals:
            totals[day] += count
    return [(day.isoformat(), totals[day]) for day in window]


# --- Reviewer table ----------------------------------------------------------------------

# Sort keys a request may ask for: anything else gets the default order. The key picks a
# Python attribute of the rows below; nothing from the request reaches SQL.
SORT_KEYS = ("reviewer", "arm", "labels", "last_active", "flags", *INDICATORS)
DEFAULT_SORT = ("flags", "desc")
DEFAULT_DIRECTION = {"reviewer": "asc", "arm": "asc"}


@dataclass
class ReviewerRow:
    id: int
    name: str
    arm: str
    enrolled: bool
    labels: int
    last_active: datetime | None
    days: list[int]
    flagged: bool
    crossed: list[str]
    indicators: dict[str, dict]
    in_metrics: bool
    spark: str = ""  # the activity sparkline's markup, drawn for the rows on the shown page

    @property
    def n_crossed(self) -> int:
        return len(self.crossed)

    def sort_value(self, key: str):
        if key == "reviewer":
            return self.name.lower()
        if key == "arm":
            return self.arm.lower()
        if key == "labels":
            return self.labels
        if key == "last_active":
            return self.last_active.timestamp() if self.last_active else None
        if key == "flags":
            return (self.flagged, self.n_crossed) if self.in_metrics else None
        return self.indicators.get(key, {}).get("shrunk")


def indicator_cells(row: dict | None) -> dict[str, dict]:
    """Each indicator of a result row with its texts, in INDICATORS order."""
    cells = {}
    for name, (_, direction) in INDICATORS.items():
        indicator = (row or {}).get("indicators", {}).get(name) or {}
        cells[name] = {
            "name": name,
            "title": INDICATOR_NAMES.get(name, name),
            "help": INDICATOR_HELP.get(name, ""),
            "shrunk": indicator.get("shrunk"),
            "raw": indicator.get("raw"),
            "n": indicator.get("n", 0),
            "threshold": indicator.get("threshold"),
            "direction": direction,
            "rule": _rule(direction, indicator.get("threshold")),
            "crossed": bool(indicator.get("crossed")),
            "shrunk_text": number(indicator.get("shrunk")),
            "raw_text": number(indicator.get("raw")),
        }
    return cells


def _rule(direction: str, threshold: float | None) -> str:
    if threshold is None:
        return ""
    return f"flag above {threshold:g}" if direction == "max" else f"flag below {threshold:g}"


def reviewer_rows(
    *,
    enrolled: Sequence[dict],
    result: dict | None,
    activity: dict[int, dict],
    window: Sequence[date],
    names: dict[int, str],
) -> list[ReviewerRow]:
    """Every enrolled reviewer (and any reviewer the result has that is not enrolled), with
    live activity and, when metrics exist, their rubber-stamp indicators."""
    by_id = {row["reviewer"]: row for row in (result or {}).get("reviewers", [])}
    people = {person["id"]: person for person in enrolled}
    ids = list(people) + [rid for rid in by_id if rid not in people]
    rows = []
    for rid in ids:
        person = people.get(rid)
        metric = by_id.get(rid)
        seen = activity.get(rid, {})
        per_day = seen.get("days", {})
        rows.append(
            ReviewerRow(
                id=rid,
                name=person["name"] if person else names.get(rid, f"reviewer {rid}"),
                arm=person["arm"] if person else (metric or {}).get("arm", ""),
                enrolled=person is not None,
                labels=seen.get("labels", 0),
                last_active=seen.get("last_active"),
                days=[per_day.get(day, 0) for day in window],
                flagged=bool(metric and metric["flagged"]),
                crossed=list(metric["crossed"]) if metric else [],
                indicators=indicator_cells(metric),
                in_metrics=metric is not None,
            )
        )
    return rows


def sort_rows(rows: Sequence[ReviewerRow], key: str | None, direction: str | None):
    """Rows in the asked order when ``key`` is allowed, else the default (flags first).
    Rows without a value go last either way; ties break by name. Returns (rows, key, dir)."""
    if key not in SORT_KEYS:
        key, direction = DEFAULT_SORT
    if direction not in ("asc", "desc"):
        direction = DEFAULT_DIRECTION.get(key, "desc")
    by_name = sorted(rows, key=lambda r: (r.name.lower(), r.id))
    present = [r for r in by_name if r.sort_value(key) is not None]
    missing = [r for r in by_name if r.sort_value(key) is None]
    present.sort(key=lambda r: r.sort_value(key), reverse=direction == "desc")
    return present + missing, key, direction


# Short column heads for the reviewer table; the long name is the head's title.
SHORT_NAMES = {
    "probe_agree": "Probe agree",
    "discrimination_gap": "Right-wrong gap",
    "fast_share": "Too fast",
    "streak_ratio": "Streak ratio",
    "entropy": "Entropy",
    "evidence_opened": "Evidence",
    "drift": "Drift",
}
COLUMN_TITLES = {
    "reviewer": "Reviewer",
    "arm": "Arm",
    "labels": "Labels",
    "last_active": "Last active",
    "flags": "Flags",
}


def thresholds_for(overrides: dict | None) -> dict:
    """The study's flag thresholds over the defaults (what a metrics run would use)."""
    return {**DEFAULT_THRESHOLDS, **(overrides or {})}


def table_columns(current_key: str, current_direction: str, thresholds: dict) -> list[dict]:
    """Header cells of the reviewer table: per column the query string that sorts by it
    (toggling when it is the current one), its aria-sort value and, for an indicator,
    the rule that flags it."""
    columns = []
    for key in SORT_KEYS:
        if key == current_key:
            direction = "asc" if current_direction == "desc" else "desc"
            aria = "ascending" if current_direction == "asc" else "descending"
        else:
            direction = DEFAULT_DIRECTION.get(key, "desc")
            aria = "none"
        column = {
            "key": key,
            "title": COLUMN_TITLES.get(key) or SHORT_NAMES.get(key, key),
            "long_title": INDICATOR_NAMES.get(key, ""),
            "query": f"sort={key}&dir={direction}",
            "aria": aria,
            "arrow": ("▲" if current_direction == "asc" else "▼") if key == current_key else "",
            "indicator": key in INDICATORS,
            "rule": "",
            "limit": "",
        }
        if key in INDICATORS:
            threshold_key, rule_direction = INDICATORS[key]
            column["rule"] = _rule(rule_direction, thresholds.get(threshold_key))
            threshold = thresholds.get(threshold_key)
            column["limit"] = "" if threshold is None else f"{'>' if rule_direction == 'max' else '<'} {threshold:g}"
        columns.append(column)
    return columns


# --- Dwell time vs agreement -------------------------------------------------------------


def scatter_points(rows: Sequence[ReviewerRow], dwell: dict[int, dict], arm_index: dict[str, int], href) -> list:
    points_out = []
    for row in rows:
        stats = dwell.get(row.id)
        if not stats or stats.get("median_seconds") is None or not stats.get("n"):
            continue
        rate = stats["agree"] / stats["n"]
        flag = " · flagged" if row.flagged else ""
        points_out.append(
            charts.ScatterPoint(
                x=max(stats["median_seconds"], charts.TIMELINE_MIN_SECONDS),
                y=rate,
                note=f"{row.name} ({row.arm}): median {seconds_text(stats['median_seconds'])}, "
                f"agrees with the AI on {pct(rate)} of {stats['n']:,}{flag}",
                series=arm_index.get(row.arm, charts.SERIES_COUNT - 1),
                flagged=row.flagged,
                href=href(row) if row.enrolled else "",
            )
        )
    return points_out


# --- Reviewer page -----------------------------------------------------------------------


@dataclass(frozen=True)
class LabelFact:
    """One of a reviewer's labels, as the reviewer page needs it."""

    seq: int
    submitted_at: datetime
    seconds: float | None
    decision: object
    ai: object
    gold: object
    is_probe: bool
    word_count: int
    external_id: str

    @property
    def agree(self) -> bool | None:
        if self.ai is None or self.decision is None:
            return None
        return self.decision == self.ai


def timeline_points(labels: Sequence[LabelFact], reading_wpm: int) -> list[charts.TimelinePoint]:
    out = []
    for label in labels:
        floor = label.word_count / reading_wpm * 60 if label.word_count and reading_wpm else None
        agree = label.agree
        verdict = (
            "no AI recommendation" if agree is None else ("agrees with the AI" if agree else "disagrees with the AI")
        )
        note = (
            f"#{label.seq} {label.external_id}: {label.decision} ({verdict}), {seconds_text(label.seconds)}"
            f"{'' if floor is None else f', floor {seconds_text(floor)}'}{' · probe' if label.is_probe else ''}"
        )
        out.append(
            charts.TimelinePoint(
                seq=label.seq, seconds=label.seconds, floor=floor, agree=agree, probe=label.is_probe, note=note
            )
        )
    return out


def running_rates(
    labels: Sequence[LabelFact], window: int = ROLLING_WINDOW, max_points: int = 600
) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    """Cumulative agreement and agreement over the last ``window`` labels with an AI
    recommendation, at each such label; thinned to at most ``max_points`` points."""
    cumulative, rolling = [], []
    hits = 0
    recent: list[int] = []
    seen = 0
    for label in labels:
        if label.agree is None:
            continue
        seen += 1
        hits += label.agree
        recent.append(int(label.agree))
        if len(recent) > window:
            recent.pop(0)
        cumulative.append((label.seq, hits / seen))
        rolling.append((label.seq, sum(recent) / len(recent)))
    step = max(1, math.ceil(len(cumulative) / max_points))
    if step > 1:
        keep = list(range(0, len(cumulative), step))
        if keep[-1] != len(cumulative) - 1:
            keep.append(len(cumulative) - 1)
        cumulative = [cumulative[i] for i in keep]
        rolling = [rolling[i] for i in keep]
    return cumulative, rolling


def reviewer_summary(labels: Sequence[LabelFact], reading_wpm: int) -> dict:
    """Plain counts behind the charts: agreement, median time, share under the floor."""
    with_ai = [label for label in labels if label.agree is not None]
    timed = [label.seconds for label in labels if label.seconds is not None]
    # As the fast_share indicator counts: labels with a time and a reading floor.
    floored = [label for label in labels if label.seconds is not None and label.word_count and reading_wpm]
    fast = [label for label in floored if label.seconds < label.word_count / reading_wpm * 60]
    probes = [label for label in with_ai if label.is_probe]
    return {
        "n": len(labels),
        "agree": pct(sum(label.agree for label in with_ai) / len(with_ai)) if with_ai else "—",
        "n_with_ai": len(with_ai),
        "median_seconds": seconds_text(statistics.median(timed)) if timed else "—",
        "fast": pct(len(fast) / len(floored)) if floored else "—",
        "probes": len(probes),
        "probes_agreed": sum(label.agree for label in probes),
    }


def recent_label_rows(labels: Iterable, decision_field: str) -> list[dict]:
    """Rows of the reviewer page's label list from Label objects (with their item)."""
    rows = []
    for label in labels:
        decision = (label.values or {}).get(decision_field)
        ai = label.item.ai_recommendation
        seconds = None if label.shown_at is None else (label.submitted_at - label.shown_at).total_seconds()
        rows.append(
            {
                "external_id": label.item.external_id,
                "decision": "—" if decision is None else decision,
                "ai": "—" if ai is None else ai,
                "gold": "—" if label.item.gold_label is None else label.item.gold_label,
                "agree": None if ai is None or decision is None else decision == ai,
                "is_probe": label.item.is_probe,
                "seconds": seconds_text(seconds),
                "submitted_at": label.submitted_at,
            }
        )
    return rows
