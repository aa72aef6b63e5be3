"""A study's Exports page and its downloads: CSV for people, JSON for programs.

Small exports stream in the request; labels or items above EXPORT_SYNC_MAX_ROWS are
written to a file by a Celery job, polled on the page, then downloaded. Only the study's
researchers (and superusers) export; every export is audit-logged.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseStopPolling

from reviewapp.jobs import waiting_for_broker
from reviewapp.metrics.services import latest_run
from reviewapp.studies.access import researcher_required, researcher_study_or_404
from reviewapp.studies.models import Study

from . import exports, services
from .methods import study_methods
from .models import ExportJob

CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "json": "application/json", "jsonl": "application/x-ndjson"}
# Which formats each report comes in: the row reports stream JSON Lines, not one document.
FORMATS = {
    "agreement": ("csv", "json"),
    "reviewers": ("csv", "json"),
    "labels": ("csv", "jsonl"),
    "items": ("csv", "jsonl"),
}
JOBS_SHOWN = 10


def jobs_context(study: Study) -> dict:
    """The prepared files and whether any is still moving (what the progress poll needs)."""
    jobs = list(ExportJob.objects.filter(study=study).select_related("requested_by")[:JOBS_SHOWN])
    return {
        "study": study,
        "jobs": jobs,
        "jobs_active": any(not job.is_finished for job in jobs),
        "sync_max_rows": settings.EXPORT_SYNC_MAX_ROWS,
        "keep_days": settings.EXPORT_KEEP_DAYS,
    }


def exports_context(study: Study, **extra) -> dict:
    field_names = [f["name"] for f in study.label_schema["fields"]]
    columns = {
        "agreement": exports.AGREEMENT_COLUMNS,
        "reviewers": exports.REVIEWER_COLUMNS,
        "labels": exports.label_columns(field_names),
        "items": exports.ITEM_COLUMNS,
    }
    run = latest_run(study)
    reports = []
    for key, (title, description) in exports.REPORTS.items():
        rows = services.row_count(study, key) if key in exports.ROW_REPORTS else None
        reports.append(
            {
                "key": key,
                "title": title,
                "description": description,
                "columns": columns[key],
                "formats": FORMATS[key],
                "rows": rows,
                "needs_job": rows is not None and rows > settings.EXPORT_SYNC_MAX_ROWS,
                "needs_metrics": key in exports.SUMMARY_REPORTS and run is None,
            }
        )
    return {**jobs_context(study), "reports": reports, "latest_run": run, **extra}


@researcher_required
def exports_page(request: HttpRequest, slug: str) -> HttpResponse:
    study = researcher_study_or_404(request.user, slug)
    if request.htmx and request.GET.get("part") == "jobs":
        context = jobs_context(study)
        response = render(request, "reports/exports.html#jobs", context)
        if not context["jobs_active"]:
            # Nothing is moving any more; this response holds the final state.
            response.status_code = HttpResponseStopPolling.status_code
        return response
    return render(request, "reports/exports.html", exports_context(study))


def _attachment(response: HttpResponse, filename: str | None) -> HttpResponse:
    if filename:
        response["Content-Disposition"] = content_disposition_header(as_attachment=True, filename=filename)
    response["X-Content-Type-Options"] = "nosniff"
    # Research data: not kept by the browser or any shared cache.
    response["Cache-Control"] = "private, no-store"
    return response


def _filename(study: Study, report: str, fmt: str) -> str:
    return exports.export_filename(study.slug, report, timezone.now().date().isoformat(), fmt)


@researcher_required
def export_download(request: HttpRequest, slug: str, report: str, fmt: str) -> HttpResponse:
    """One report in one format, streamed; a row report too large to stream points to a job."""
    study = researcher_study_or_404(request.user, slug)
    if fmt not in FORMATS.get(report, ()):
        raise Http404("No such report in that format.")
    if report in exports.SUMMARY_REPORTS:
        return _summary_download(request, study, report, fmt)
    rows = services.row_count(study, report)
    if rows > settings.EXPORT_SYNC_MAX_ROWS:
        notice = (
            f"The {report} report has {rows:,} rows, more than the {settings.EXPORT_SYNC_MAX_ROWS:,} streamed "
            "directly: prepare it as a file, which a background job writes while this page shows its progress."
        )
        if fmt == "jsonl":
            jobs_url = reverse("study-export-job-create", args=[study.slug])
            body = {"error": notice, "rows": rows, "limit": settings.EXPORT_SYNC_MAX_ROWS, "jobs_url": jobs_url}
            return JsonResponse(body, status=409)
        messages.info(request, notice)
        return redirect("study-exports", study.slug)
    services.export_logged(study=study, actor=request.user, report=report, fmt=fmt, mode="stream", rows=rows)
    chunks = services.row_stream(services.row_source(study, report), fmt)
    response = StreamingHttpResponse(chunks, content_type=CONTENT_TYPES[fmt])
    return _attachment(response, _filename(study, report, fmt))


def _summary_download(request: HttpRequest, study: Study, report: str, fmt: str) -> HttpResponse:
    try:
        summary = services.summary_report(study, report)
    except services.NoMetrics as exc:
        if fmt == "json":
            return JsonResponse(
                {"error": str(exc), "study_url": reverse("study-detail", args=[study.slug])}, status=409
            )
        context = exports_context(study, error=str(exc))
        return _attachment(render(request, "reports/exports.html", context, status=409), None)
    services.export_logged(
        study=study,
        actor=request.user,
        report=report,
        fmt=fmt,
        mode="stream",
        rows=len(summary.rows),
        run=summary.run.pk,
    )
    if fmt == "json":
        body = {
            "study": study.slug,
            "report": report,
            "run_id": summary.run.pk,
            "computed_at": exports.iso_utc(summary.run.finished_at),
            "columns": [{"name": c.name, "description": c.description} for c in summary.columns],
            "rows": summary.json_rows(),
        }
        if report == "agreement":
            # The methods paragraph and table for a paper (reports/methods.py), and the sensitivity
            # view as the run stored it (its rows are also in "rows", *_without_flagged).
            body["methods"] = study_methods(study, summary.run.result)
            body["sensitivity"] = summary.run.result.get("sensitivity")
        return _attachment(JsonResponse(body), None)
    chunks = exports.csv_stream(summary.names, [summary.csv_rows()])
    response = StreamingHttpResponse(chunks, content_type=CONTENT_TYPES["csv"])
    return _attachment(response, _filename(study, report, "csv"))


@researcher_required
@require_POST
def export_job_create(request: HttpRequest, slug: str) -> HttpResponse:
    """Prepare a labels or items file in the background (the page polls its progress)."""
    study = researcher_study_or_404(request.user, slug)
    report, fmt = request.POST.get("report", ""), request.POST.get("format", "csv")
    if report not in exports.ROW_REPORTS or fmt not in FORMATS[report]:
        return HttpResponse("Choose report labels or items and format csv or jsonl.", status=400)
    job, created = services.export_job_create(
        study=study, report=report, fmt=fmt, actor=request.user, rows_total=services.row_count(study, report)
    )
    # Read after the commit that published it; its note is in the JSON too.
    waiting = waiting_for_broker(job)
    if "application/json" in request.headers.get("Accept", ""):
        # A program: the job's status and, once done, its download URL.
        return JsonResponse(_job_json(job), status=202 if created else 200)
    if waiting:
        messages.warning(request, "The file is queued; it will run when the broker is back.")
    elif created:
        messages.info(request, "The file is being prepared; it appears below when ready.")
    else:
        messages.info(request, "It is already being prepared.")
    return redirect(reverse("study-exports", args=[study.slug]) + "#jobs")


@researcher_required
def export_job_status(request: HttpRequest, slug: str, job_id: int) -> JsonResponse:
    study = researcher_study_or_404(request.user, slug)
    return JsonResponse(_job_json(get_object_or_404(ExportJob, study=study, pk=job_id)))


@researcher_required
def export_job_download(request: HttpRequest, slug: str, job_id: int) -> HttpResponse:
    study = researcher_study_or_404(request.user, slug)
    job = get_object_or_404(ExportJob, study=study, pk=job_id)
    path = Path(job.file_path)
    if not job.is_downloadable or not path.is_file():
        raise Http404("This export is not ready, failed, or has expired.")
    services.export_logged(
        study=study,
        actor=request.user,
        report=job.report,
        fmt=job.format,
        mode="download",
        rows=job.rows_done,
        job=job.pk,
        bytes=job.size_bytes,
    )
    response = FileResponse(path.open("rb"), as_attachment=True, filename=job.filename, content_type=job.content_type)
    return _attachment(response, job.filename)


def _job_json(job: ExportJob) -> dict:
    slug = job.study.slug
    return {
        "job": job.pk,
        "report": job.report,
        "format": job.format,
        "status": job.status,
        "rows_done": job.rows_done,
        "rows_total": job.rows_total,
        "progress_percent": job.progress_percent,
        "size_bytes": job.size_bytes,
        "note": job.note,
        "error": job.error,
        "filename": job.filename,
        "status_url": reverse("study-export-job-status", args=[slug, job.pk]),
        "download_url": reverse("study-export-job-download", args=[slug, job.pk]) if job.is_downloadable else None,
    }
