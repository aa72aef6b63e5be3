"""A methods paragraph and table for a paper, generated from the study and its latest metrics.

What a methods section of a human-AI reliance study states (design, allocation, item order,
quota, the sample per arm, exclusions, estimators and intervals, the confidence level), written
from what the app actually did: the study's settings, the allocation it ran, and the method
strings the metrics run stored beside every estimate (MetricRun.result), so the paragraph names
the estimators the numbers came from, not the ones the documentation hoped for. Citations are
added for every method the paragraph names.

``methods_facts`` reads the study and its arms, and from the metrics run the labels per arm and the skipped and late
answers); ``methods_section`` is pure and builds the text from those facts and the result.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from reviewapp.metrics.stats.rubber_stamp import MIN_CROSSED_TO_FLAG, MIN_LABELS_TO_FLAG
from reviewapp.studies.models import Study

# Which reference a method string (or a fixed part of the design) calls for: the first keyword
# found in the lower-cased text. Full references, so the paragraph can be pasted as it is.
CITATIONS: tuple[tuple[str, str], ...] = (
    (
        "permuted blocks",
        "Altman, D. G., & Bland, J. M. (1999). How to randomise. BMJ, 319, 703-704.",
    ),
    (
        "wilson",
        "Wilson, E. B. (1927). Probable inference, the law of succession, and statistical inference. "
        "JASA, 22, 209-212.",
    ),
    (
        "newcombe",
        "Newcombe, R. G. (1998). Interval estimation for the difference between independent proportions. "
        "Statistics in Medicine, 17, 873-890.",
    ),
    (
        "mover",
        "Zou, G. Y., & Donner, A. (2008). Construction of confidence limits about effect measures: a "
        "general approach. Statistics in Medicine, 27, 1693-1702.",
    ),
    (
        "bell-mccaffrey",
        "Bell, R. M., & McCaffrey, D. F. (2002). Bias reduction in standard errors for linear regression "
        "with multi-stage samples. Survey Methodology, 28, 169-181.",
    ),
    (
        "cluster bootstrap",
        "Davison, A. C., & Hinkley, D. V. (1997). Bootstrap Methods and their Application. Cambridge University Press.",
    ),
    (
        "design effect",
        "Kish, L. (1965). Survey Sampling. Wiley.",
    ),
    (
        "two-way",
        "Cameron, A. C., Gelbach, J. B., & Miller, D. L. (2011). Robust inference with multiway "
        "clustering. Journal of Business & Economic Statistics, 29, 238-249.",
    ),
    (
        "randomization",
        "Fisher, R. A. (1935). The Design of Experiments. Oliver & Boyd.",
    ),
    (
        "krippendorff",
        "Krippendorff, K. (2004). Content Analysis: An Introduction to Its Methodology (2nd ed.). Sage.",
    ),
    (
        "ac1",
        "Gwet, K. L. (2008). Computing inter-rater reliability and its variance in the presence of high "
        "agreement. British Journal of Mathematical and Statistical Psychology, 61, 29-48.",
    ),
    (
        "beta-binomial",
        "Griffiths, D. A. (1973). Maximum likelihood estimation for the beta-binomial distribution. "
        "Biometrics, 29, 637-648.",
    ),
    (
        "empirical bayes",
        "Efron, B., & Morris, C. (1975). Data analysis using Stein's estimator and its generalizations. "
        "JASA, 70, 311-319.",
    ),
    (
        "reading speed",
        "Brysbaert, M. (2019). How many words do we read per minute? Journal of Memory and Language, 109, 104047.",
    ),
)
SPLIT_WORDS = "all items, items where the AI was right and items where it was wrong (by gold label or planted probe)"


@dataclass(frozen=True)
class ArmFacts:
    name: str
    shows_recommendation: bool
    shows_rationale: bool
    shows_confidence: bool
    reveal: bool
    rationale_display: str
    weight: int
    quota: int | None
    n_reviewers: int
    n_items: int
    n_labels: int

    @property
    def role(self) -> str:
        if not (self.shows_recommendation or self.shows_rationale or self.shows_confidence or self.reveal):
            return "control"
        return "rationale" if self.shows_rationale else "recommendation"

    @property
    def shows(self) -> str:
        """What a reviewer in this arm sees of the AI's output, in words."""
        parts = []
        if self.shows_recommendation:
            parts.append("the AI's recommendation")
        if self.shows_confidence:
            parts.append("its confidence")
        if self.shows_rationale:
            display = "behind a “Why?” click" if self.rationale_display == "collapsed" else "shown expanded"
            parts.append(f"its rationale, {display}")
        if not parts:
            text = "no AI output; the recommendation is hidden"
        else:
            text = ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1]
        if self.reveal:
            text += ", after the reviewer records a blind answer"
        return text


@dataclass(frozen=True)
class MethodsFacts:
    design: str  # between | within
    arms: tuple[ArmFacts, ...]
    stratify_by: str
    item_order: str  # shuffled | fixed
    overlap_k: int
    reviewer_quota: int | None
    seed: int
    reading_wpm: int
    n_skipped: int | None
    n_late: int | None
    n_corrections: int | None
    extra: dict = field(default_factory=dict)


def methods_facts(study: Study, result: dict) -> MethodsFacts:
    """What the paragraph needs: the study's settings, and from the metrics run it describes
    (so the paragraph and the numbers agree, and a page view makes no pass over the labels)
    per arm the reviewers, distinct items and current labels, and the answers the metrics
    leave out (skipped assignments, late answers, superseded labels; None for runs stored
    before they were counted)."""
    per_arm = {arm.get("id"): arm for arm in result.get("arms", [])}
    arms = tuple(
        ArmFacts(
            name=arm.name,
            shows_recommendation=arm.shows_ai_recommendation,
            shows_rationale=arm.shows_ai_rationale,
            shows_confidence=arm.shows_ai_confidence,
            reveal=arm.reveal,
            rationale_display=arm.rationale_display,
            weight=arm.weight,
            quota=arm.reviewer_quota,
            n_reviewers=per_arm.get(arm.pk, {}).get("n_reviewers", 0),
            n_items=per_arm.get(arm.pk, {}).get("n_items", 0),
            n_labels=per_arm.get(arm.pk, {}).get("n_labels", 0),
        )
        for arm in study.arms.order_by("position", "id")
    )
    excluded = result.get("exclusions") or {}
    return MethodsFacts(
        design=study.design,
        arms=arms,
        stratify_by=study.stratify_by,
        item_order=study.item_order,
        overlap_k=study.overlap_k,
        reviewer_quota=study.reviewer_quota,
        seed=study.seed,
        reading_wpm=study.reading_wpm,
        n_skipped=excluded.get("skipped"),
        n_late=excluded.get("late"),
        n_corrections=excluded.get("corrections"),
    )


# --- The text (pure) --------------------------------------------------------------------------


def _number(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _first_method(estimates: Iterator[dict | None]) -> str | None:
    return next((e["method"] for e in estimates if e and e.get("method")), None)


def _alpha(arm: dict, field_name: str | None) -> dict | None:
    return (((arm.get("agreement") or {}).get(field_name) or {}).get("humans") or {}).get("alpha")


def estimator_rows(result: dict) -> list[dict]:
    """(quantity, method) for each headline number, the method as the run stored it."""
    arms = result.get("arms", [])
    decision = result.get("decision_field")
    effects = [arm.get("deference_effect") or {} for arm in arms]
    increment = result.get("narrative_increment") or {}
    rows = [
        ("Agreement with the AI per arm (label level)", _first_method(a["agreement_with_ai"].get("all") for a in arms)),
        (
            "Agreement with the AI per arm (reviewer clusters)",
            _first_method((a.get("agreement_with_ai_cluster") or {}).get("all") for a in arms),
        ),
        ("Deference effect", _first_method(e.get("all", {}).get("cluster") for e in effects)),
        ("Deference effect, labels as independent", _first_method(e.get("all", {}).get("newcombe") for e in effects)),
        ("Narrative increment", _first_method([(increment.get("all") or {}).get("cluster")])),
        ("Inter-rater agreement", _first_method(_alpha(arm, decision) for arm in arms)),
        ("Effect model", (result.get("effects") or {}).get("model", {}).get("method")),
        ("Randomization inference", (result.get("effects") or {}).get("randomization", {}).get("method")),
    ]
    return [{"quantity": quantity, "method": method} for quantity, method in rows if method]


def _design_sentence(facts: MethodsFacts) -> str:
    arms = "; ".join(f"{arm.name} ({arm.shows})" for arm in facts.arms)
    kind = "between-subjects" if facts.design == "between" else "within-subjects"
    return f"We ran a {kind} experiment with {_number(len(facts.arms), 'arm')}: {arms}."


def _allocation_sentence(facts: MethodsFacts) -> str:
    weights = ", ".join(f"{arm.name} {arm.weight}" for arm in facts.arms)
    if facts.design == "between":
        text = (
            "Each reviewer was allocated to one arm for the whole study by seeded permuted blocks "
            f"(Altman & Bland 1999; block size twice the sum of the arm weights, weights {weights})"
        )
        text += f", stratified by {facts.stratify_by}" if facts.stratify_by else ""
    else:
        text = (
            "The arm was chosen per assignment from each item's own seeded permuted-block sequence "
            f"(Altman & Bland 1999; weights {weights}), so every item was seen under every arm about equally often"
        )
    return text + f"; the allocation is reproducible from the study's seed ({facts.seed})."


def _items_sentence(facts: MethodsFacts) -> str:
    order = (
        "in a seeded order shuffled per reviewer, so an item's position was balanced across reviewers"
        if facts.item_order == "shuffled"
        else "in the same fixed order for every reviewer"
    )
    text = f"Items were presented {order}; each item was to be labelled by {_number(facts.overlap_k, 'reviewer')}"
    text += " per arm" if facts.design == "between" else ""
    quotas = [f"{arm.name} {arm.quota}" for arm in facts.arms if arm.quota]
    if facts.reviewer_quota:
        text += f", and each reviewer labelled at most {_number(facts.reviewer_quota, 'item')}"
    if quotas:
        text += f" (arm quotas: {', '.join(quotas)})"
    return text + "."


def _sample_sentence(facts: MethodsFacts, result: dict) -> str:
    per_arm = "; ".join(
        f"{arm.name}: {_number(arm.n_reviewers, 'reviewer')}, {_number(arm.n_items, 'item')}, "
        f"{_number(arm.n_labels, 'label')}"
        for arm in facts.arms
    )
    return (
        f"The analysis used {_number(result.get('n_labels', 0), 'label')} from "
        f"{_number(result.get('n_reviewers', 0), 'reviewer')} on {_number(result.get('n_items', 0), 'item')} "
        f"({per_arm})."
    )


def _count(n: int | None) -> str:
    # Runs stored before the exclusions were counted do not have them.
    return "not counted by this run; recompute the metrics" if n is None else str(n)


def _exclusions_sentence(facts: MethodsFacts, result: dict) -> str:
    flagged = result.get("flagged_reviewers", 0)
    sensitivity = result.get("sensitivity") or {}
    text = (
        f"Skipped assignments ({_count(facts.n_skipped)}) and late answers ({_count(facts.n_late)}; arriving "
        "after the item's lease had passed to another reviewer) were not counted, and corrected labels "
        f"({_count(facts.n_corrections)}) counted in their corrected form only. "
        f"Of the reviewers, {flagged} {'was' if flagged == 1 else 'were'} flagged as possible rubber stamps "
        f"({MIN_CROSSED_TO_FLAG} or more of seven behavioural indicators beyond their thresholds after "
        "empirical-Bayes shrinkage toward the room, the proportions under a beta-binomial prior fitted by "
        f"maximum likelihood; Efron & Morris 1975; Griffiths 1973; never on fewer than {MIN_LABELS_TO_FLAG} "
        f"labels; decisions faster than a reading speed of {facts.reading_wpm} words a minute counted as fast, "
        "Brysbaert 2019). Flagged reviewers were kept in the main analysis"
    )
    if sensitivity and flagged:
        text += f"; every headline effect was recomputed without them ({_number(sensitivity.get('n_labels_excluded', 0), 'label')} left out) as a sensitivity analysis"  # noqa: E501
    return text + "."


def _estimators_sentence(result: dict, rows: list[dict]) -> str:
    confidence = (result.get("parameters") or {}).get("confidence", 0.95)
    methods = "; ".join(f"{row['quantity'][0].lower()}{row['quantity'][1:]}: {row['method']}" for row in rows)
    return (
        "Deference was measured as agreement with the AI's recommendation (in the control arm, with the "
        "recommendation it did not see), and the deference effect as an arm's agreement minus the control "
        "arm's; the narrative increment is the rationale arm's deference effect minus the recommendation "
        f"arm's, each on {SPLIT_WORDS}. Estimators and intervals: {methods}. "
        f"All intervals are {100 * confidence:g}% intervals."
    )


def citations_for(text: str) -> list[str]:
    lowered = text.lower()
    return [reference for keyword, reference in CITATIONS if keyword in lowered]


def methods_section(facts: MethodsFacts, result: dict) -> dict:
    """The paragraph, the per-arm table and the references (JSON-ready)."""
    rows = estimator_rows(result)
    sentences = [
        _design_sentence(facts),
        _allocation_sentence(facts),
        _items_sentence(facts),
        _sample_sentence(facts, result),
        _exclusions_sentence(facts, result),
        _estimators_sentence(result, rows),
    ]
    paragraph = " ".join(sentences)
    cited_text = paragraph + " permuted blocks design effect reading speed beta-binomial empirical bayes"
    return {
        "paragraph": paragraph,
        "table": [
            {
                "arm": arm.name,
                "role": arm.role,
                "shows": arm.shows,
                "reviewers": arm.n_reviewers,
                "items": arm.n_items,
                "labels": arm.n_labels,
            }
            for arm in facts.arms
        ],
        "estimators": rows,
        "confidence": (result.get("parameters") or {}).get("confidence", 0.95),
        "references": citations_for(cited_text),
    }


def study_methods(study: Study, result: dict) -> dict:
    """The methods section of ``study`` with its latest metrics ``result``."""
    return methods_section(methods_facts(study, result), result)
