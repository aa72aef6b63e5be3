from django.contrib import admin
from django.urls import include, path

from reviewapp.studies import views as study_views

urlpatterns = [
    path("", study_views.home, name="home"),
    path("studies/<slug:slug>/", study_views.study_detail, name="study-detail"),
    path("admin/", admin.site.urls),
    path("", include("reviewapp.ingest.urls")),
]

handler404 = "reviewapp.studies.views.not_found"
