"""The study page's metrics panel: the latest numbers, and a button that computes new ones."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseStopPolling

from reviewapp.jobs import BROKER_DOWN_NOTE, waiting_for_broker
from reviewapp.studies.access import researcher_required, researcher_study_or_404
from reviewapp.studies.models import Study

from . import planning, presenters, services
from .stats.planner import plan


def metrics_context(study: Study) -> dict:
    latest = services.latest_run(study)
    view = None
    if latest is not None:
        reviewer_ids = [row["reviewer"] for row in latest.result["reviewers"] if row["flagged"]]
        names = dict(get_user_model().objects.filter(pk__in=reviewer_ids).values_list("pk", "username"))
        view = presenters.metrics_view(latest.result, names)
    failed = study.metric_runs.filter(status="failed").order_by("-id").first()
    return {
        "study": study,
        "latest": latest,
        "metrics": view,
        "active": services.active_run(study),
        "failed": failed if failed and (latest is None or failed.pk > latest.pk) else None,
    }


@researcher_required
def metrics_panel(request: HttpRequest, slug: str) -> HttpResponse:
    """The panel: loaded into the study page and polled by htmx while a run is active; as a
    page of its own without JavaScript."""
    study = researcher_study_or_404(request.user, slug)
    context = metrics_context(study)
    response = render(request, "metrics/_panel.html" if request.htmx else "metrics/panel_page.html", context)
    if request.htmx and context["active"] is None:
        # Nothing is moving any more; this response holds the final state.
        response.status_code = HttpResponseStopPolling.status_code
    return response


@researcher_required
@require_POST
def metrics_run(request: HttpRequest, slug: str) -> HttpResponse:
    study = researcher_study_or_404(request.user, slug)
    run, created = services.metric_run_request(study=study, actor=request.user)
    if run is not None and run.is_active and waiting_for_broker(run):
        notice = BROKER_DOWN_NOTE
    elif created:
        notice = "Computing the metrics now."
    elif run is None:
        notice = "There are no labels yet: nothing to compute."
    elif run.is_active:
        notice = "A computation is already running; its progress is below."
    else:
        notice = "Nothing changed since the last computation: the numbers below are current."
    if request.htmx:
        return render(request, "metrics/_panel.html", {**metrics_context(study), "notice": notice})
    messages.info(request, notice)
    return redirect(reverse("study-detail", args=[study.slug]) + "#metrics")


@researcher_required
def study_planner(request: HttpRequest, slug: str) -> HttpResponse:
    """The planner (stats/planner.py): power and reviewers needed, before the study starts.
    Loaded into the study settings page by htmx (the "planner" partial), a page of its own
    without JavaScript. A GET form: nothing is stored, and a plan can be linked."""
    study = researcher_study_or_404(request.user, slug)
    form = planning.PlannerForm(request.GET or None, initial=planning.initial(study))
    result = None
    if form.is_bound and form.is_valid():
        result = plan(form.plan_input(study))
    context = {
        "study": study,
        "form": form,
        "plan": result,
        "rows": planning.plan_rows(result) if result else None,
        "confidence": planning.study_confidence(study),
    }
    return render(request, "metrics/planner.html#planner" if request.htmx else "metrics/planner.html", context)
