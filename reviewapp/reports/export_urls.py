"""Export endpoints: the Exports page of a study, its downloads and its background jobs."""

from __future__ import annotations

from django.urls import path

from . import export_views as views

exports = "studies/<slug:slug>/exports/"
urlpatterns = [
    path(exports, views.exports_page, name="study-exports"),
    path(exports + "<str:report>.csv", views.export_download, {"fmt": "csv"}, name="study-export-csv"),
    path(exports + "<str:report>.json", views.export_download, {"fmt": "json"}, name="study-export-json"),
    path(exports + "<str:report>.jsonl", views.export_download, {"fmt": "jsonl"}, name="study-export-jsonl"),
    path(exports + "jobs/", views.export_job_create, name="study-export-job-create"),
    path(exports + "jobs/<int:job_id>.json", views.export_job_status, name="study-export-job-status"),
    path(exports + "jobs/<int:job_id>/download/", views.export_job_download, name="study-export-job-download"),
]
