"""Dashboard pages: the study's progress, metrics charts and reviewers, and one reviewer's page."""

from django.urls import path

from . import dashboard_views

study = "studies/<slug:slug>/dashboard/"
urlpatterns: list = [
    path(study, dashboard_views.dashboard, name="study-dashboard"),
    path(study + "reviewers/<int:reviewer_id>/", dashboard_views.reviewer_detail, name="study-dashboard-reviewer"),
]
