"""The pages that show a whole study at a glance: the study list and the study's overview.

They sum up every stage of the flow (items and ingest jobs, arms and reviewers, the queue),
so they live here at its end; the metrics panel loads from its own URL (metrics/views.py).
"""

from __future__ import annotations

from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django_htmx.http import HttpResponseStopPolling

from reviewapp.ingest.forms import UploadForm
from reviewapp.ingest.models import IngestJob
from reviewapp.ingest.tallies import item_counts
from reviewapp.studies import services as study_services
from reviewapp.studies.access import is_researcher, researcher_required, researcher_studies, researcher_study_or_404
from reviewapp.studies.forms import TokenForm
from reviewapp.studies.models import Enrolment, Study

JOBS_SHOWN = 10


@never_cache  # a researcher's list of studies, a reviewer's own: not kept by any cache
def home(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect("login")
    if is_researcher(request.user):
        # Reviewers counted by a join of their own (a few rows per study); items read from
        # the tallies, never counted: joining both to the study multiplied them together.
        studies = list(
            researcher_studies(request.user).annotate(reviewer_count=Count("enrolments")).order_by("-created_at")
        )
        counts = item_counts([study.pk for study in studies])
        for study in studies:
            study.item_count = counts[study.pk].items
        return render(request, "studies/home.html", {"studies": studies})
    enrolments = Enrolment.objects.filter(reviewer=request.user).select_related("study").order_by("-joined_at")
    return render(request, "studies/reviewer_home.html", {"enrolments": enrolments})


@researcher_required
def study_detail(request: HttpRequest, slug: str) -> HttpResponse:
    study = researcher_study_or_404(request.user, slug)
    # The error lists can be long; the table shows only their count.
    jobs = list(IngestJob.objects.filter(study=study).defer("errors")[:JOBS_SHOWN])
    if request.htmx and request.GET.get("part") == "jobs":
        # The progress poll (every 2 s) renders the jobs and computes nothing else.
        response = render(request, "studies/study_detail.html#jobs", {"study": study, "jobs": jobs})
        if all(job.is_finished for job in jobs):
            # Stop polling once nothing is moving; the final state is in this response.
            response.status_code = HttpResponseStopPolling.status_code
        return response
    counts = item_counts([study.pk])[study.pk]
    context = {
        "study": study,
        "item_count": counts.items,
        "formats": [{"source_format": name, "n": n} for name, n in sorted(counts.formats.items(), key=lambda f: -f[1])],
        "gold_count": counts.gold,
        "probe_count": counts.probes,
        "arms": study.arms.all(),
        "jobs": jobs,
        "balance": study_services.arm_balance(study),
        "transitions": study.allowed_transitions().items(),
        "start_problems": study_services.start_problems(study) if study.status == Study.Status.DRAFT else [],
        "lock_reason": study_services.lock_reason(study),
        "upload_form": UploadForm(),
        "token_form": TokenForm(),
        "tokens": study.ingest_tokens.order_by("-created_at"),
    }
    return render(request, "studies/study_detail.html", context)
