"""What the exports contain: the columns of each report, how cells are written, and the
guard against formula injection. Pure: no queries (services.py reads the database).

Four reports, each as CSV and as JSON (docs/researcher-guide.md, "Exports", lists the columns
from the tuples below):

- ``agreement``: one row per (arm, metric, field, split) from the latest succeeded MetricRun;
- ``reviewers``: one row per reviewer with every rubber-stamp indicator behind the flags;
- ``labels``: one row per label, corrections included (``supersedes_label_id`` and
  ``is_current`` tell them apart; the metrics count only current labels);
- ``items``: one row per item, without its transcript.

Formula injection (OWASP, "CSV Injection"): a spreadsheet runs a cell that begins with
``= + - @``, a tab or a carriage return as a formula (``=HYPERLINK(...)``, ``@SUM(...)``,
``-1+2``). Every *string* cell that begins with one of those characters is written with a
single quote in front, which spreadsheets show as text. Typed numbers are written as
numbers, a negative one included: they come from a float or int column, or from a JSON
value whose JSON type is number (``jsonb_typeof``), never from a string that looks like one.
JSON exports are not neutralized: programs get the values exactly.

CSV is UTF-8 (no byte-order mark), RFC 4180 quoting through Python's csv module (``\\r\\n``
line ends; a cell with a comma, quote, CR or LF is quoted), with a header row. Empty cell:
no value (SQL NULL / undefined estimate). Booleans: ``true`` / ``false``. Times: ISO 8601 in
UTC, ``2026-03-02T08:00:07.123456Z``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson

from reviewapp.metrics.stats.rubber_stamp import INDICATORS

# Cells beginning with one of these are prefixed with FORMULA_GUARD (OWASP CSV injection).
FORMULA_PREFIXES = frozenset("=+-@\t\r")
FORMULA_GUARD = "'"

# How a database value becomes a cell. TEXT is neutralized; JSON holds a value's JSON text
# (``jsonb::text``) so its JSON type decides; TIME is already ISO text from the query.
TEXT, NUMBER, BOOL, TIME, JSON = "text", "number", "bool", "time", "json"


class Column(NamedTuple):
    name: str
    description: str
    kind: str = TEXT


# --- agreement ------------------------------------------------------------------------

AGREEMENT_COLUMNS: tuple[Column, ...] = (
    Column("study", "Study slug."),
    Column("arm", "Arm name; for narrative_increment, '<rationale arm> vs <recommendation arm>'."),
    Column("arm_role", "control, recommendation or rationale (what the arm shows); contrast for a difference of arms."),
    Column("metric", "Which estimate (see AGREEMENT_METRICS)."),
    Column("field", "Label-schema field the metric is about (the decision field for deference and reliance)."),
    Column("split", "Items counted: all, ai_right or ai_wrong (AI recommendation vs gold label or probe)."),
    Column("n", "Observations behind the estimate (labels; pairable items for alpha, percent agreement, AC1).", NUMBER),
    Column("estimate", "Point estimate; empty when undefined (no data).", NUMBER),
    Column(
        "ci_low",
        "Lower bound of the confidence interval, at the study's confidence level (95% unless the study sets "
        "another); empty when there is none (interval_note says why for an interval over reviewers).",
        NUMBER,
    ),
    Column("ci_high", "Upper bound of the confidence interval; empty when there is none.", NUMBER),
    Column("method", "How the estimate and its interval were computed (wilson, newcombe, cluster bootstrap, ...)."),
    Column("computed_at", "When the metric run finished (ISO 8601, UTC).", TIME),
    Column("run_id", "Id of the MetricRun the numbers come from.", NUMBER),
    # Added in issue 15, at the end so that columns read by position keep their place.
    Column(
        "n_reviewers",
        "Estimates over reviewers (the *_cluster rates, deference_effect, narrative_increment): the reviewers "
        "behind it (for a difference, the fewer of the two arms'); empty for the others.",
        NUMBER,
    ),
    Column(
        "interval_note",
        "Why an estimate over reviewers has no interval, e.g. 'too few reviewers (2) for an interval' (below the "
        "study's minimum reviewers per arm); for design_effect, 'not estimable' or that an estimate below 1 is "
        "shown as 1. Empty otherwise.",
    ),
)

# metric -> (split it is computed on, or None for all three, description). Order = row order.
AGREEMENT_METRICS: dict[str, tuple[str | None, str]] = {
    "agreement_with_ai": (None, "P(final answer = AI recommendation); in the control arm, with the hidden one."),
    "deference_effect": (None, "Agreement in this arm minus the control arm; cluster bootstrap over reviewers."),
    "deference_effect_naive": (None, "The same difference with Newcombe's interval (labels treated as independent)."),
    "deference_effect_without_flagged": (
        None,
        "Sensitivity: the deference effect recomputed without the reviewers flagged as possible rubber stamps.",
    ),
    "narrative_increment_without_flagged": (
        None,
        "Sensitivity: the narrative increment recomputed without the reviewers flagged as possible rubber stamps.",
    ),
    "design_effect": (
        "all",
        "Kish design effect of the arm's agreement rate (CR2 cluster-robust vs binomial variance); no CI; never "
        "below 1 (clipped, see interval_note); empty below the study's minimum reviewers per arm.",
    ),
    # The same rates with the interval over reviewers (stats/cluster_robust.py): the label-level
    # Wilson interval above treats labels as independent; these do not.
    "agreement_with_ai_cluster": (None, "agreement_with_ai with a small-sample interval over reviewers."),
    "overreliance_cluster": ("ai_wrong", "overreliance with the interval over reviewers."),
    "underreliance_cluster": ("ai_right", "underreliance with the interval over reviewers."),
    "accuracy_cluster": ("all", "accuracy with the interval over reviewers."),
    "switch_fraction_cluster": ("all", "Reveal arms: switch_fraction with the interval over reviewers."),
    "rair_cluster": ("ai_right", "Reveal arms: rair with the interval over reviewers."),
    "rsr_cluster": ("ai_wrong", "Reveal arms: rsr with the interval over reviewers."),
    "accuracy_initial_cluster": ("all", "Reveal arms: accuracy_initial with the interval over reviewers."),
    "overreliance": ("ai_wrong", "P(final = AI | AI wrong)."),
    "underreliance": ("ai_right", "P(final != AI | AI right)."),
    "accuracy": ("all", "P(final = gold) on items with a gold label."),
    "accuracy_ai": ("all", "P(AI recommendation = gold) on the items this arm labelled."),
    "switch_fraction": ("all", "Reveal arms: P(final = AI | blind answer != AI)."),
    "rair": ("ai_right", "Reveal arms: relative AI reliance, P(final = AI | blind answer wrong, AI right)."),
    "rsr": ("ai_wrong", "Reveal arms: relative self-reliance, P(final = blind | blind answer right, AI wrong)."),
    "accuracy_initial": ("all", "Reveal arms: P(blind answer = gold)."),
    "alpha": ("all", "Krippendorff's alpha between reviewers of the arm (level from the schema), unit bootstrap."),
    "percent_agreement": ("all", "Share of agreeing pairs of answers (Gwet's p_a), unit bootstrap."),
    "ac1": ("all", "Gwet's AC1 (robust to the prevalence paradox), unit bootstrap."),
    "alpha_with_ai": ("all", "Decision field: Krippendorff's alpha with the AI counted as one more coder."),
    # The kappa family (stats/agreement_family.py), per schema field; Gwet (2014) standard errors, t intervals.
    "fleiss_kappa": ("all", "Fleiss' kappa between the arm's reviewers (many-coder Scott's pi), unweighted."),
    "brennan_prediger": ("all", "Brennan-Prediger coefficient (Bennett's S; chance = 1 / categories), unweighted."),
    "cohen_kappa": ("all", "Cohen's kappa, unweighted; only when exactly two reviewers labelled the arm's items."),
    "scott_pi": ("all", "Scott's pi, unweighted; only when exactly two reviewers labelled the arm's items."),
    **{
        f"{metric}_{weighting}": ("all", f"Ordinal and interval fields: {meaning}, {weighting} weights.")
        for weighting in ("linear", "quadratic")
        for metric, meaning in (
            ("percent_agreement", "weighted percent agreement"),
            ("gwet_ac2", "Gwet's AC2"),
            ("fleiss_kappa", "Fleiss' kappa"),
            ("brennan_prediger", "Brennan-Prediger"),
            ("cohen_kappa", "Cohen's kappa (two reviewers only)"),
            ("scott_pi", "Scott's pi (two reviewers only)"),
        )
    },
    # Decision quality (stats/decision_quality.py), when the schema marks a block value.
    "catch_rate": (None, "P(decision = block value | gold = block value); reviewer-cluster interval."),
    "block_precision": (None, "P(gold = block value | decision = block value); reviewer-cluster interval."),
    "false_block_rate": (None, "P(decision = block value | gold is another answer); reviewer-cluster interval."),
    "blocks_caught": ("all", "Labels on gold items: gold is the block value and so is the decision (a count; no CI)."),
    "blocks_missed": ("all", "Labels on gold items: gold is the block value, the decision is not (a count)."),
    "false_blocks": ("all", "Labels on gold items: the decision is the block value, gold is not (a count)."),
    "allows_correct": ("all", "Labels on gold items: neither gold nor the decision is the block value (a count)."),
    "seconds_per_decision": ("all", "Median seconds from the item shown to the answer (the cost of review); no CI."),
    "narrative_increment": (None, "Deference effect of the rationale arm minus that of the recommendation arm."),
    "narrative_increment_naive": (None, "The same with Newcombe's interval."),
    # The effect model and randomization inference (docs/design.md, "Effect model"), per deference
    # effect (arm: the arm against control) and the narrative increment (arm: '<rationale> vs
    # <recommendation>'). n: labels in the two arms. Where the model gives no numbers the row is
    # still there, estimate empty, and method holds the reason.
    **{
        f"{kind}_{measure}": (None, f"{what}: {meaning}")
        for kind, what in (("deference", "Deference effect"), ("narrative", "Narrative increment"))
        for measure, meaning in (
            ("odds_ratio", "odds ratio of agreeing with the AI, two-way (reviewer, item) cluster-robust t interval."),
            ("risk_difference", "risk difference from the same model (delta method), in proportion units."),
            ("risk_ratio", "risk ratio from the same model (delta method on the log scale)."),
            ("cohens_h", "Cohen's h, 2 asin sqrt(p1) - 2 asin sqrt(p2), from the same model."),
            ("p_model", "two-sided Wald p of log odds ratio = 0 (t with min(reviewers, items) - 1 df); no CI."),
            (
                "p_randomization",
                "two-sided randomization p (Fisher's sharp null; the study's own allocation re-run); the CI "
                "columns hold its Monte Carlo 95% interval, the method its standard error and draws.",
            ),
        )
    },
    # Treatment uptake (docs/design.md, "Treatment uptake"), for the arms that show each part.
    "rationale_seen": ("all", "Arms showing the rationale: P(rationale seen) among labels with an uptake record."),
    "rationale_uptake_unknown": (
        "all",
        "Share of the arm's labels with no record of whether the rationale was seen (stored before uptake was "
        "recorded, or sent without JavaScript): unknown, left out of rationale_seen and of the split.",
    ),
    "agreement_with_ai_rationale_seen": (None, "P(final = AI) on the labels where the rationale was seen."),
    "agreement_with_ai_rationale_not_seen": (None, "P(final = AI) on the labels where the rationale was not seen."),
    "recommendation_seen": (
        "all",
        "Arms showing the recommendation: P(recommendation seen) among labels with an uptake record.",
    ),
    "recommendation_uptake_unknown": (
        "all",
        "Share of the arm's labels with no record of whether the recommendation was seen: unknown.",
    ),
    "agreement_with_ai_recommendation_seen": (None, "P(final = AI) on the labels where the recommendation was seen."),
    "agreement_with_ai_recommendation_not_seen": (
        None,
        "P(final = AI) on the labels where the recommendation was not seen.",
    ),
}
UPTAKE_PARTS = ("rationale", "recommendation")
SPLITS = ("all", "ai_right", "ai_wrong")
REVEAL_METRICS = ("switch_fraction", "rair", "rsr", "accuracy_initial")
RELIANCE_METRICS = ("overreliance", "underreliance", "accuracy", "accuracy_ai")
DESIGN_EFFECT_METHOD = "kish design effect: CR2 cluster-robust over binomial variance, clipped at 1"
# The reliance rates that also get an interval over reviewers (not accuracy_ai: the AI's accuracy
# does not depend on who reviews).
CLUSTER_METRICS = ("overreliance", "underreliance", "accuracy")


def agreement_rows(*, study: str, run_id: int, computed_at: str, result: dict) -> list[list]:
    """The agreement report from a MetricRun's ``result`` (reviewapp/metrics/compute.py)."""
    decision = result["decision_field"]
    rows: list[list] = []

    def add(arm: str, role: str, metric: str, field: str, split: str, estimate: dict | None) -> None:
        if estimate is None:
            return
        rows.append(
            [
                study,
                arm,
                role,
                metric,
                field,
                split,
                estimate.get("n"),
                estimate.get("value"),
                estimate.get("low"),
                estimate.get("high"),
                estimate.get("method", ""),
                computed_at,
                run_id,
                estimate.get("n_reviewers"),
                estimate.get("note") or "",
            ]
        )

    for arm in result["arms"]:
        name, role = arm["name"], arm["role"]
        for split in SPLITS:
            add(name, role, "agreement_with_ai", decision, split, arm["agreement_with_ai"].get(split))
        clustered_agreement = arm.get("agreement_with_ai_cluster") or {}  # absent before issue 15: no rows
        for split in SPLITS:
            add(name, role, "agreement_with_ai_cluster", decision, split, clustered_agreement.get(split))
        effects = arm.get("deference_effect") or {}
        for split in SPLITS:
            if split in effects:
                add(name, role, "deference_effect", decision, split, effects[split]["cluster"])
                add(name, role, "deference_effect_naive", decision, split, effects[split]["newcombe"])
        deff = {
            "value": arm.get("design_effect"),
            "n": arm.get("n_labels"),
            "method": DESIGN_EFFECT_METHOD,
            "note": arm.get("design_effect_note"),
        }
        add(name, role, "design_effect", decision, "all", deff)
        reliance = arm.get("reliance") or {}
        for metric in RELIANCE_METRICS + (REVEAL_METRICS if arm.get("reveal") else ()):
            add(name, role, metric, decision, AGREEMENT_METRICS[metric][0] or "all", reliance.get(metric))
        clustered = arm.get("reliance_cluster") or {}
        for metric in CLUSTER_METRICS + (REVEAL_METRICS if arm.get("reveal") else ()):
            split = AGREEMENT_METRICS[metric][0] or "all"
            add(name, role, f"{metric}_cluster", decision, split, clustered.get(metric))
        for field, entry in (arm.get("agreement") or {}).items():
            humans = entry.get("humans") or {}
            for metric in ("alpha", "percent_agreement", "ac1"):
                add(name, role, metric, field, "all", humans.get(metric))
            if entry.get("with_ai"):
                add(name, role, "alpha_with_ai", field, "all", entry["with_ai"].get("alpha"))
            for weighting, coefficients in ((entry.get("family") or {}).get("weightings") or {}).items():
                for metric, estimate in coefficients.items():
                    add(name, role, family_metric(metric, weighting), field, "all", estimate)
        add_decision_quality(add, name, role, decision, arm.get("decision_quality") or {})
        for part in UPTAKE_PARTS:
            uptake = (arm.get("uptake") or {}).get(part)
            if not uptake:
                continue
            add(name, role, f"{part}_seen", decision, "all", uptake["all"]["seen"])
            add(name, role, f"{part}_uptake_unknown", decision, "all", uptake["all"]["unknown_share"])
            for state in ("seen", "not_seen"):
                for split in SPLITS:
                    add(
                        name,
                        role,
                        f"agreement_with_ai_{part}_{state}",
                        decision,
                        split,
                        uptake[split][f"agreement_{state}"],
                    )

    increment = result.get("narrative_increment")
    if increment:
        contrast = f"{increment['rationale_arm']} vs {increment['recommendation_arm']}"
        for split in SPLITS:
            add(contrast, "contrast", "narrative_increment", decision, split, increment[split]["cluster"])
            add(contrast, "contrast", "narrative_increment_naive", decision, split, increment[split]["newcombe"])
    add_effects(add, result, decision)
    roles = {arm["name"]: arm["role"] for arm in result["arms"]}
    for effect in (result.get("sensitivity") or {}).get("effects", []):
        role = "contrast" if effect["effect"] == "narrative_increment" else roles.get(effect["arm"], "")
        metric = f"{effect['effect']}_without_flagged"
        add(effect["arm"], role, metric, decision, effect["split"], effect["without_flagged"]["cluster"])
    return rows


EFFECT_MEASURES = ("odds_ratio", "risk_difference", "risk_ratio", "cohens_h")


def add_effects(add, result: dict, decision: str) -> None:
    """The rows of result["effects"] (metrics/effects.py); nothing for a run stored before it."""
    roles = {arm["name"]: arm["role"] for arm in result["arms"]}
    effects = result.get("effects") or {}
    method = (effects.get("model") or {}).get("method", "")
    for row in effects.get("rows", []):
        if row["kind"] == "narrative":
            arm, role = f"{row['first']} vs {row['second']}", "contrast"
        else:
            arm, role = row["first"], roles.get(row["first"], "")
        n = row.get("n_first", 0) + row.get("n_second", 0) if "n_first" in row else None
        for measure in EFFECT_MEASURES:
            estimate = row.get(measure) or {"value": None}
            note = row.get("reason") or method
            add(arm, role, f"{row['kind']}_{measure}", decision, row["split"], {**estimate, "n": n, "method": note})
        if "p_model" in row:
            add(arm, role, f"{row['kind']}_p_model", decision, row["split"], {"value": row["p_model"], "n": n})
        test = row.get("randomization")
        if test and test.get("p") is not None:
            half = 1.959964 * test["mc_se"]
            estimate = {
                "value": test["p"],
                "low": max(0.0, test["p"] - half),
                "high": min(1.0, test["p"] + half),
                "n": n,
                "method": f"randomization test, {test['n']} re-allocations, monte carlo se {test['mc_se']:.4f}"
                + (f"; whole allocation re-run: p {test['p_all_arms']:.4f}" if test.get("p_all_arms") else ""),
            }
            add(arm, role, f"{row['kind']}_p_randomization", decision, row["split"], estimate)


def family_metric(metric: str, weighting: str) -> str:
    """The export's name of a kappa-family coefficient: ``fleiss_kappa``, ``gwet_ac2_linear``, ..."""
    base = "gwet_ac2" if metric == "gwet_ac" else metric
    return base if weighting == "identity" else f"{base}_{weighting}"


DECISION_QUALITY_RATES = ("catch_rate", "block_precision", "false_block_rate")
CONFUSION_CELLS = ("blocks_caught", "blocks_missed", "false_blocks", "allows_correct")


def add_decision_quality(add, arm: str, role: str, decision: str, quality: dict) -> None:
    """Decision-quality rows of one arm: the three rates per split, the four block / allow
    counts, the median seconds per decision. Runs without decision quality add none."""
    for metric in DECISION_QUALITY_RATES:
        for split in SPLITS:
            add(arm, role, metric, decision, split, (quality.get(metric) or {}).get(split))
    if quality.get("confusion"):
        cells = quality["confusion"]
        for cell in CONFUSION_CELLS:
            add(arm, role, cell, decision, "all", {"value": cells[cell], "n": cells["n"], "method": "count of labels"})
    seconds = quality.get("seconds_per_decision")
    if seconds:
        median = {"value": seconds["median"], "n": seconds["n"], "method": "median of timed decisions"}
        add(arm, role, "seconds_per_decision", decision, "all", median)


# --- reviewers ------------------------------------------------------------------------

# One line per rubber-stamp indicator (reviewapp/metrics/stats/rubber_stamp.py), with the
# direction that crosses its threshold.
INDICATOR_DESCRIPTIONS: dict[str, str] = {
    "probe_agree": "share of planted-error probes agreed with (crossed above the threshold)",
    "discrimination_gap": "P(agree | AI right) - P(agree | AI wrong) (crossed below the threshold)",
    "fast_share": "share of answers faster than the reading floor (crossed above the threshold)",
    "streak_ratio": "longest agree streak / the streak the reviewer's rate predicts (crossed above)",
    "entropy": "entropy of the reviewer's decisions, 0..1 (crossed below the threshold)",
    "evidence_opened": "share of items where tool calls or the rationale were opened (crossed below)",
    "drift": "agreement with the AI in the second half of the session minus the first (crossed above)",
}
INDICATOR_PARTS: tuple[tuple[str, str, str], ...] = (
    ("raw", "the reviewer's own value", NUMBER),
    ("shrunk", "value shrunk toward all reviewers (empirical Bayes); flags use it", NUMBER),
    ("n", "labels behind it", NUMBER),
    ("threshold", "the study's threshold", NUMBER),
    ("crossed", "true when the shrunk value crosses the threshold", BOOL),
)
REVIEWER_COLUMNS: tuple[Column, ...] = (
    Column("study", "Study slug."),
    Column("reviewer", "Reviewer's username."),
    Column("arm", "The reviewer's arm ('several' in a within-subjects study)."),
    Column("n_labels", "Current labels by the reviewer.", NUMBER),
    *(
        Column(f"{name}_{part}", f"{INDICATOR_DESCRIPTIONS[name]}: {meaning}.", kind)
        for name in INDICATORS
        for part, meaning, kind in INDICATOR_PARTS
    ),
    Column(
        "flagged",
        "true when two or more indicators cross their thresholds and the reviewer has the minimum number of labels "
        "(stats/rubber_stamp.py, MIN_LABELS_TO_FLAG).",
        BOOL,
    ),
    Column("crossed_count", "How many indicators cross their thresholds.", NUMBER),
    Column("crossed_indicators", "Names of the indicators that cross, space-separated."),
    Column("computed_at", "When the metric run finished (ISO 8601, UTC).", TIME),
    Column("run_id", "Id of the MetricRun the numbers come from.", NUMBER),
)


def reviewer_rows(*, study: str, run_id: int, computed_at: str, result: dict, usernames: dict[int, str]) -> list[list]:
    """The reviewers report from a MetricRun's ``result``, one row per reviewer."""
    rows = []
    for row in result["reviewers"]:
        cells: list[Any] = [study, usernames.get(row["reviewer"], str(row["reviewer"])), row.get("arm", ""), row["n"]]
        for name in INDICATORS:
            indicator = row["indicators"].get(name) or {}
            cells += [indicator.get(part) for part, _, _ in INDICATOR_PARTS]
        crossed = row.get("crossed", [])
        cells += [row["flagged"], len(crossed), " ".join(crossed), computed_at, run_id]
        rows.append(cells)
    return rows


# --- labels and items (rows straight from the database) ---------------------------------

# Where a label's per-field columns go: value_<field> for every schema field, then
# initial_<field> (the blind answer of reveal arms) for every schema field.
FIELD_COLUMNS_AT = "decision"
LABEL_COLUMNS: tuple[Column, ...] = (
    Column("label_id", "Label id; corrections are new labels with a higher id.", NUMBER),
    Column("assignment_id", "The assignment (item given to a reviewer) the label answers.", NUMBER),
    Column("study", "Study slug."),
    Column("item_external_id", "The item's external_id (as ingested)."),
    Column("reviewer", "Reviewer's username."),
    Column("arm", "Arm the reviewer saw the item under."),
    Column("decision", "Value of the schema's decision field (the one the AI recommends on).", JSON),
    Column("value_<field>", "One column per schema field: the final answer (number for interval fields).", JSON),
    Column("initial_<field>", "One column per schema field: reveal arms' blind answer before the AI was shown.", JSON),
    Column("confidence", "Reviewer's confidence, 0..1, when the schema asks for it.", NUMBER),
    Column("comment", "Reviewer's free-text comment."),
    Column("shown_at", "Server time the item was first shown (ISO 8601, UTC).", TIME),
    Column("revealed_at", "Reveal arms: server time the AI was shown after the blind answer.", TIME),
    Column("submitted_at", "Server time the answer was received.", TIME),
    Column("seconds_to_decide", "submitted_at - shown_at in seconds (server clock), 3 decimals.", NUMBER),
    Column("ms_on_page", "Browser timing: milliseconds from the item appearing to the submit.", JSON),
    Column(
        "ms_to_first_answer", "Browser timing: milliseconds from the item appearing to the first answer chosen.", JSON
    ),
    Column(
        "ms_after_ai_shown",
        "Browser timing, arms that show the AI: milliseconds from its output appearing to the submit.",
        JSON,
    ),
    Column("tool_calls_expanded", "Interaction: how many tool calls the reviewer expanded.", JSON),
    Column("outputs_expanded", "Interaction: how many tool outputs the reviewer expanded or showed in full.", JSON),
    Column("rationale_opened", "Interaction: how many times the AI rationale was opened.", JSON),
    Column("scroll_depth", "Interaction: deepest scroll position in the transcript, 0..1.", JSON),
    Column("keys_used", "Interaction: how many answers were given with keyboard shortcuts.", JSON),
    Column("supersedes_label_id", "For a correction: the label it replaces.", NUMBER),
    Column("is_current", "false when a later correction supersedes this label (metrics use current ones).", BOOL),
    Column("ai_recommendation", "The item's AI recommendation (decision field value).", JSON),
    Column("gold_label", "The item's gold label, when known.", JSON),
    Column("is_probe", "true when the item is a planted-error probe (AI deliberately wrong).", BOOL),
    Column(
        "position", "The item's place (1-based) in the reviewer's sequence; empty for labels stored before.", NUMBER
    ),
    Column(
        "rationale_seen",
        "Uptake, arms showing the rationale: 1 seen (in view >= 1 s, or opened behind 'Why?'), 0 not seen; "
        "empty when unknown (no record).",
        JSON,
    ),
    Column(
        "rationale_visible_ms", "Uptake: milliseconds the rationale was in view (while open, if behind 'Why?').", JSON
    ),
    Column(
        "recommendation_seen",
        "Uptake, arms showing the recommendation: 1 seen (in view >= 1 s), 0 not seen; empty when unknown.",
        JSON,
    ),
    Column("recommendation_visible_ms", "Uptake: milliseconds the recommendation was in view.", JSON),
)
# The database keys the client-measurement columns come from (review/presenters.py).
LABEL_TIMING_KEYS = ("ms_on_page", "ms_to_first_answer", "ms_after_ai_shown")
LABEL_INTERACTION_KEYS = (
    "tool_calls_expanded",
    "outputs_expanded",
    "rationale_opened",
    "scroll_depth",
    "keys_used",
    "rationale_seen",
    "rationale_visible_ms",
    "recommendation_seen",
    "recommendation_visible_ms",
)

ITEM_COLUMNS: tuple[Column, ...] = (
    Column("study", "Study slug."),
    Column("external_id", "The item's external_id (as ingested)."),
    Column("source_format", "Ingest format: native, openai, anthropic, openai_responses, otel or inspect."),
    Column("title", "The transcript's title."),
    Column("word_count", "Words a reviewer reads (the reading floor is word_count / wpm).", NUMBER),
    Column("ai_recommendation", "The AI's recommendation (decision field value).", JSON),
    Column("ai_confidence", "The AI's confidence, 0..1.", NUMBER),
    Column("gold_label", "Gold label, when known.", JSON),
    Column("is_probe", "true for a planted-error probe.", BOOL),
    Column("priority", "Queue priority (higher is reviewed first).", NUMBER),
    Column("labels_count", "Current labels on the item (a corrected answer counts once).", NUMBER),
    Column("created_at", "When the item was ingested (ISO 8601, UTC).", TIME),
)


def label_columns(field_names: Iterable[str]) -> list[Column]:
    """LABEL_COLUMNS with the per-field placeholders expanded for one study's schema."""
    names = list(field_names)
    out = []
    for column in LABEL_COLUMNS:
        if column.name == "value_<field>":
            out += [Column(f"value_{n}", f"Final answer for field '{n}'.", JSON) for n in names]
        elif column.name == "initial_<field>":
            out += [Column(f"initial_{n}", f"Reveal arms: blind answer for field '{n}'.", JSON) for n in names]
        else:
            out.append(column)
    return out


REPORTS: dict[str, tuple[str, str]] = {
    "agreement": (
        "Agreement report",
        "Deference, reliance and inter-rater agreement per arm, field and split, with CIs.",
    ),
    "reviewers": ("Reviewer indicators", "Rubber-stamp indicators per reviewer: raw, shrunk, threshold, crossed."),
    "labels": ("Raw labels", "Every label in long format: answers, timings, interactions, corrections."),
    "items": ("Items", "Every item with the AI's recommendation, gold, probe flag and label count (no transcript)."),
}
# Reports computed from the latest MetricRun (small) and those read row by row from the database.
SUMMARY_REPORTS = ("agreement", "reviewers")
ROW_REPORTS = ("labels", "items")


# --- cells ------------------------------------------------------------------------------


def neutralize(value: Any) -> Any:
    """A string cell a spreadsheet would run as a formula, made text; anything else as it is."""
    if isinstance(value, str) and value and value[0] in FORMULA_PREFIXES:
        return FORMULA_GUARD + value
    return value


def csv_cell(value: Any) -> Any:
    """A Python value as csv.writer should get it (None is an empty cell)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return neutralize(value)


def _json_text_cell(text: str | None) -> Any:
    """A CSV cell from a JSON value's text: a string is unquoted and neutralized; a number,
    boolean, object or array is written as its JSON text (none of them can begin with a
    formula character except a negative number, which is a typed number)."""
    if text is None or text == "null":
        return None
    if text[0] == '"':
        return neutralize(orjson.loads(text))
    return text


class RowFormat:
    """Turns database rows (tuples in column order) into CSV cells or JSON objects."""

    def __init__(self, columns: Iterable[Column]) -> None:
        self.columns = list(columns)
        self.names = [c.name for c in self.columns]
        kinds = [c.kind for c in self.columns]
        self._text = [i for i, k in enumerate(kinds) if k == TEXT]
        self._json = [i for i, k in enumerate(kinds) if k == JSON]
        self._bool = [i for i, k in enumerate(kinds) if k == BOOL]

    def csv_row(self, row: Iterable[Any]) -> list:
        cells = list(row)
        for i in self._text:
            value = cells[i]
            if value and value[0] in FORMULA_PREFIXES:
                cells[i] = FORMULA_GUARD + value
        for i in self._json:
            cells[i] = _json_text_cell(cells[i])
        for i in self._bool:
            value = cells[i]
            cells[i] = None if value is None else ("true" if value else "false")
        return cells

    def json_row(self, row: Iterable[Any]) -> dict:
        cells = list(row)
        for i in self._json:
            if cells[i] is not None:
                cells[i] = orjson.Fragment(cells[i])
        return dict(zip(self.names, cells, strict=True))


class Echo:
    """A file-like object whose write returns the line: csv.writer then hands each row back
    instead of buffering it (Django docs, "Streaming large CSV files")."""

    def write(self, value: str) -> str:
        return value


def csv_stream(header: list[str], chunks: Iterable[Iterable[list]]) -> Iterator[bytes]:
    """UTF-8 CSV, the header first, one bytes chunk per chunk of rows (cells already final)."""
    writer = csv.writer(Echo())
    yield writer.writerow(header).encode()
    for chunk in chunks:
        yield "".join([writer.writerow(row) for row in chunk]).encode()


def jsonl_stream(chunks: Iterable[Iterable[dict]]) -> Iterator[bytes]:
    """JSON Lines: one object per line, one bytes chunk per chunk of rows."""
    for chunk in chunks:
        yield b"".join([orjson.dumps(row) + b"\n" for row in chunk])


def iso_utc(moment: datetime | None) -> str | None:
    """The same ISO 8601 UTC text the queries write (``..._at`` columns)."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def export_filename(slug: str, report: str, day: str, extension: str) -> str:
    return f"{slug}-{report}-{day}.{extension}"
