"""Researcher pages. Issue-level scope for now: the study list and a study's ingest status."""

from __future__ import annotations

from django.contrib.admin.views.decorators import staff_member_required
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django_htmx.http import HttpResponseStopPolling

from reviewapp.ingest.models import IngestJob

from .models import Study


@staff_member_required
def home(request: HttpRequest) -> HttpResponse:
    studies = Study.objects.annotate(item_count=Count("items")).order_by("-created_at")
    return render(request, "studies/home.html", {"studies": studies})


@staff_member_required
def study_detail(request: HttpRequest, slug: str) -> HttpResponse:
    study = get_object_or_404(Study, slug=slug)
    jobs = list(IngestJob.objects.filter(study=study)[:10])
    context = {
        "study": study,
        "item_count": study.items.count(),
        "formats": study.items.values("source_format").annotate(n=Count("id")).order_by("-n"),
        "gold_count": study.items.filter(gold_label__isnull=False).count(),
        "probe_count": study.items.filter(is_probe=True).count(),
        "arms": study.arms.all(),
        "jobs": jobs,
    }
    if request.htmx and request.GET.get("part") == "jobs":
        if all(job.is_finished for job in jobs):
            # Stop polling once nothing is moving; the final state is in this response.
            response = render(request, "studies/study_detail.html#jobs", context)
            response.status_code = HttpResponseStopPolling.status_code
            return response
        return render(request, "studies/study_detail.html#jobs", context)
    return render(request, "studies/study_detail.html", context)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, "404.html", {"path": request.path}, status=404)
