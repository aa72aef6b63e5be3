"""The study dashboard and a reviewer's page: what researchers look at."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse

from reviewapp.ingest.tallies import item_counts
from reviewapp.metrics import services as metrics_services
from reviewapp.metrics.agreement_presenters import agreement_context
from reviewapp.metrics.effects_presenters import effects_view
from reviewapp.metrics.models import MetricRun
from reviewapp.metrics.presenters import UNKNOWN_NOTE, confidence_percent, sensitivity_view, uptake_rows
from reviewapp.queue import tallies
from reviewapp.studies.access import researcher_required, researcher_study_or_404
from reviewapp.studies.models import Enrolment, Study

from . import charts
from . import dashboard as presenters
from . import dashboard_queries as queries
from .methods import study_methods

REVIEWERS_PER_PAGE = 50
LABELS_PER_PAGE = 25
# The timeline draws at most this many of a reviewer's latest labels (the running rate
# uses every label read): a few hundred marks stay legible and the page stays small.
TIMELINE_POINTS = 300


def _is_partial(request: HttpRequest, target: str) -> bool:
    return bool(request.htmx) and request.htmx.target == target and not request.htmx.history_restore_request


@researcher_required
def dashboard(request: HttpRequest, slug: str) -> HttpResponse:
    study = researcher_study_or_404(request.user, slug)
    latest = metrics_services.latest_run(study)
    table = reviewer_table_context(request, study, latest)
    if _is_partial(request, "reviewer-table"):
        return render(request, "reports/dashboard.html#reviewer_table", {"study": study, **table})
    context = {"study": study, "latest": latest, **table, **overview_context(study, latest, table)}
    return render(request, "reports/dashboard.html", context)


@researcher_required
def reviewer_detail(request: HttpRequest, slug: str, reviewer_id: int) -> HttpResponse:
    study = researcher_study_or_404(request.user, slug)
    # Scoped to the study: a user enrolled elsewhere (or nowhere) is a 404 here.
    enrolment = get_object_or_404(
        Enrolment.objects.select_related("reviewer", "arm"), study=study, reviewer_id=reviewer_id
    )
    decision = next(f for f in study.label_schema["fields"] if f.get("decision"))["name"]
    page = queries.recent_labels(
        study,
        reviewer_id,
        older=_label_id(request.GET.get("older")),
        newer=_label_id(request.GET.get("newer")),
        size=LABELS_PER_PAGE,
    )
    labels = {
        "page": page,
        "label_rows": presenters.recent_label_rows(page.labels, decision),
        "total_labels": tallies.reviewer_label_count(study.pk, reviewer_id),
        "newest_id": page.labels[0].pk if page.labels else None,
        "oldest_id": page.labels[-1].pk if page.labels else None,
    }
    if _is_partial(request, "recent-labels"):
        return render(
            request, "reports/reviewer.html#recent_labels", {"study": study, "enrolment": enrolment, **labels}
        )
    context = {"study": study, "enrolment": enrolment, **labels, **reviewer_context(study, enrolment)}
    return render(request, "reports/reviewer.html", context)


def _label_id(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() and len(value) < 19 else None


# --- Context builders ------------------------------------------------------------------


def reviewer_table_context(request: HttpRequest, study: Study, latest: MetricRun | None) -> dict:
    """The reviewer table: every enrolled reviewer, live activity, indicators when computed."""
    activity = queries.activity(study, presenters.ACTIVITY_DAYS)
    window = presenters.activity_window(activity.last_day)
    result = latest.result if latest else None
    enrolled = queries.enrolled_reviewers(study)
    rows = presenters.reviewer_rows(
        enrolled=enrolled,
        result=result,
        activity=activity.reviewers,
        window=window,
        names=queries.usernames(result, enrolled),
    )
    ordered, key, direction = presenters.sort_rows(rows, request.GET.get("sort"), request.GET.get("dir"))
    page = Paginator(ordered, REVIEWERS_PER_PAGE).get_page(request.GET.get("page"))
    for row in page.object_list:
        if row.labels:
            row.spark = charts.sparkline(row.days, aria_label=f"{row.name}: labels per day, last {len(window)} days")
    thresholds = result["parameters"]["thresholds"] if result else presenters.thresholds_for(study.flag_thresholds)
    columns = presenters.table_columns(key, direction, thresholds)
    return {
        "reviewers": rows,
        "reviewer_page": page,
        "sort": key,
        "direction": direction,
        "sort_columns": {column["key"]: column for column in columns},
        "indicator_columns": [column for column in columns if column["indicator"]],
        "activity_window": window,
        "activity": activity,
    }


def overview_context(study: Study, latest: MetricRun | None, table: dict) -> dict:
    arms = list(study.arms.order_by("position", "id").values_list("id", "name"))
    states = queries.queue_states(study)
    queue_rows = presenters.queue_rows(states, dict(arms))
    per_arm = table["activity"].per_arm
    n_items = item_counts([study.pk])[study.pk].items
    n_labels = sum(per_arm.values())
    window = table["activity_window"]
    per_day = {
        (rid, day): count for rid, entry in table["activity"].reviewers.items() for day, count in entry["days"].items()
    }
    days = presenters.daily_totals(per_day, window)
    context = {
        "n_labels": n_labels,
        "n_items": n_items,
        "n_enrolled": sum(1 for row in table["reviewers"] if row.enrolled),
        "n_active": sum(1 for row in table["reviewers"] if row.labels),
        "queue_rows": queue_rows,
        # Items without quota rows: a draft study's queue is built when it starts.
        "outside_queue": max(0, n_items - max((row["total"] for row in queue_rows), default=0)),
        "queue_chart": charts.stacked_bars(
            [(row["name"], row["segments"]) for row in queue_rows],
            aria_label="Items by state in each arm's queue: "
            + "; ".join(
                f"{row['name']}: " + ", ".join(f"{c['n']} {c['label']}" for c in row["cells"]) for row in queue_rows
            ),
            chart_id="chart-queue",
        )
        if queue_rows
        else None,
        "labels_per_arm": presenters.labels_per_arm(per_arm, arms),
        "days": days,
        "days_chart": charts.day_bars(
            days,
            aria_label="Labels per day: " + ", ".join(f"{day} {count}" for day, count in days),
            chart_id="chart-days",
        )
        if days
        else None,
        "active_run": metrics_services.active_run(study),
    }
    if latest is not None:
        context.update(metrics_charts(study, latest, table["reviewers"], n_labels))
    return context


def metrics_charts(study: Study, latest: MetricRun, rows: list, n_labels: int) -> dict:
    result = latest.result
    arm_index = {arm["name"]: index for index, arm in enumerate(result["arms"])}
    level = confidence_percent(result)  # the run's confidence level, e.g. "95"

    def percent_tick(value: float) -> str:
        return f"{100 * value:.0f}%"

    deference = presenters.deference_panels(result)
    effects = presenters.effect_panels(result)
    agreement = presenters.agreement_panels(result)
    context = {
        "result": result,
        "since": max(0, n_labels - latest.watermark.get("label_count", 0)),
        "deference_rows": presenters.deference_table(result),
        "deference_chart": charts.dot_whisker(
            deference,
            domain=(0.0, 1.0),
            ticks=charts.nice_ticks(0, 1, 5),
            tick_label=percent_tick,
            axis_title=f'Agreement with the AI\'s recommendation on "{result["decision_field"]}" '
            f"({level}% interval over reviewers)",
            aria_label="Agreement with the AI by arm, for all items, items where the AI was right and items where "
            "it was wrong; the control arm's agreement with the hidden recommendation is the baseline. "
            "The numbers are in the table below.",
            chart_id="chart-deference",
        ),
        "effect_rows": presenters.effect_table(result),
        "agreement_rows": presenters.agreement_table(result),
        "agreement_chart": charts.dot_whisker(
            agreement,
            domain=(domain := presenters.estimate_domain(agreement, low=0.0, high=1.0)),
            ticks=charts.nice_ticks(*domain, 5),
            tick_label=lambda v: f"{v:.1f}",
            axis_title=f"Coefficient ({level}% unit-bootstrap interval)",
            aria_label="Krippendorff's alpha and Gwet's AC1 between reviewers, by arm. "
            "The numbers are in the table below.",
            chart_id="chart-agreement",
        ),
    }
    context["confidence_percent"] = level
    # The kappa family on every field and decision quality, as on the study page.
    context["family"] = agreement_context(result)
    uptake = presenters.uptake_panels(result)
    context["uptake_rows"] = uptake_rows(result)
    context["uptake_note"] = UNKNOWN_NOTE
    # The effect model and randomization p-values, as on the study page (effects_presenters.py).
    context["effects_model"] = effects_view(result)
    context["sensitivity"] = sensitivity_view(result)
    context["methods"] = study_methods(study, result)
    if uptake:
        context["uptake_chart"] = charts.dot_whisker(
            uptake,
            domain=(0.0, 1.0),
            ticks=charts.nice_ticks(0, 1, 5),
            tick_label=percent_tick,
            axis_title=f"Agreement with the AI when the reviewer saw it and when not ({level}% Wilson interval)",
            aria_label="Agreement with the AI by arm, on labels where the rationale or recommendation was seen "
            "and where it was not. The numbers are in the table below.",
            chart_id="chart-uptake",
        )
    if effects:
        effect_domain = presenters.estimate_domain(effects, low=-0.1, high=0.1)
        context["effect_chart"] = charts.dot_whisker(
            effects,
            domain=effect_domain,
            ticks=charts.nice_ticks(*effect_domain, 6),
            tick_label=lambda v: f"{100 * v:+.0f} pp" if round(100 * v) else "0",
            axis_title=f"Difference in agreement with the AI, percentage points ({level}% interval over reviewers)",
            aria_label="Deference effect of each AI arm against control, and the narrative increment, by split. "
            "The numbers are in the table below.",
            chart_id="chart-effects",
        )
    dwell = queries.reviewer_dwell(study, latest)
    points = presenters.scatter_points(
        rows, dwell, arm_index, lambda row: reverse("study-dashboard-reviewer", args=[study.slug, row.id])
    )
    if points:
        x_domain = charts.log_domain([p.x for p in points], charts.TIMELINE_MIN_SECONDS)
        # Zoomed to where reviewers are (agreement rarely goes below a half), ticks every 10 or 25 points.
        y_domain = charts.nice_domain(min(0.5, min(p.y for p in points) - 0.02), 1.0, 5)
        context["scatter_chart"] = charts.scatter(
            points,
            x_domain=x_domain,
            y_domain=y_domain,
            x_ticks=charts.log_ticks(*x_domain),
            y_ticks=charts.nice_ticks(*y_domain, 5),
            x_label=lambda v: f"{v:g} s",
            y_label=percent_tick,
            x_title="Median seconds to decide (log scale)",
            y_title="Agreement with the AI",
            legend=[
                *(charts.LegendEntry(name, charts.series_class(index)) for name, index in arm_index.items()),
                charts.LegendEntry("flagged", "dash-ring", "ring"),
            ],
            aria_label=f"Median seconds to decide against agreement with the AI, one point per reviewer "
            f"({len(points)}), coloured by arm; flagged reviewers ringed. The numbers are in the table below.",
            chart_id="chart-dwell",
        )
        context["scatter_rows"] = sorted(points, key=lambda p: p.note.lower())
    return context


def reviewer_context(study: Study, enrolment: Enrolment) -> dict:
    latest = metrics_services.latest_run(study)
    reviewer_id = enrolment.reviewer_id
    metric_row = None
    arm_rate = None
    if latest is not None:
        metric_row = next((row for row in latest.result["reviewers"] if row["reviewer"] == reviewer_id), None)
        arm_name = enrolment.arm.name if enrolment.arm else None
        arm = next((arm for arm in latest.result["arms"] if arm["name"] == arm_name), None)
        if arm is not None:
            arm_rate = arm["agreement_with_ai"]["all"].get("value")
    facts, total = queries.reviewer_label_facts(study, reviewer_id)
    ai_hidden = enrolment.arm is not None and enrolment.arm.is_control
    context = {
        "ai_hidden": ai_hidden,
        "latest": latest,
        "metric_row": metric_row,
        "indicators": presenters.indicator_cells(metric_row).values() if metric_row else [],
        "total_labels": total,
        "summary": presenters.reviewer_summary(facts, study.reading_wpm),
        "shown_labels": min(len(facts), TIMELINE_POINTS),
        "read_labels": len(facts),
    }
    if not facts:
        return context
    name = enrolment.reviewer.get_username()
    drawn = facts[-TIMELINE_POINTS:]
    context["timeline_chart"] = charts.timeline(
        presenters.timeline_points(drawn, study.reading_wpm),
        seq_domain=(drawn[0].seq, drawn[-1].seq),
        aria_label=f"{name}: seconds to decide each of labels {drawn[0].seq} to {drawn[-1].seq} in submit order, "
        f"against each item's reading floor; colour says agreement with the AI, diamonds are probes.",
        chart_id="chart-timeline",
        ai_hidden=ai_hidden,
    )
    cumulative, rolling = presenters.running_rates(facts)
    if cumulative:
        arm_label = enrolment.arm.name if enrolment.arm else "arm"
        context["running_chart"] = charts.running_rate(
            cumulative,
            rolling,
            seq_domain=(facts[0].seq, facts[-1].seq),
            reference=arm_rate,
            reference_label=f"{arm_label} arm {presenters.pct(arm_rate)}" if arm_rate is not None else "",
            window=presenters.ROLLING_WINDOW,
            aria_label=f"{name}: agreement with the AI so far and over the last {presenters.ROLLING_WINDOW} labels, "
            f"in submit order; finally {presenters.pct(cumulative[-1][1])}.",
            chart_id="chart-running",
        )
    return context
