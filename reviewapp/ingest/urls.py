from django.urls import path

from . import views

urlpatterns = [
    path("api/studies/<slug:slug>/items", views.items_create, name="api-items-create"),
    path("api/studies/<slug:slug>/uploads", views.uploads_create, name="api-uploads-create"),
    path("api/studies/<slug:slug>/uploads/<int:job_id>", views.upload_detail, name="api-upload-detail"),
]
