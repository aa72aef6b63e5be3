from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from reviewapp.ingest import item_views
from reviewapp.metrics import views as metrics_views
from reviewapp.reports import overview_views
from reviewapp.review import views as review_views
from reviewapp.security import ThrottledPasswordChangeView
from reviewapp.studies import views as study_views

study = "studies/<slug:slug>/"
review = "review/<slug:slug>/"
urlpatterns = [
    path(review, review_views.review_page, name="review"),
    path(review + "items/<int:assignment_id>/answer/", review_views.answer_submit, name="review-answer"),
    path(review + "items/<int:assignment_id>/blind/", review_views.blind_answer, name="review-blind"),
    path(review + "items/<int:assignment_id>/skip/", review_views.skip, name="review-skip"),
    path("", overview_views.home, name="home"),
    path("studies/new/", study_views.study_create, name="study-create"),
    path(study, overview_views.study_detail, name="study-detail"),
    path(study + "settings/", study_views.study_settings, name="study-settings"),
    path(study + "status/", study_views.study_transition, name="study-transition"),
    path(study + "upload/", item_views.study_upload, name="study-upload"),
    path(study + "tokens/", study_views.token_create, name="token-create"),
    path(study + "tokens/<int:token_id>/revoke/", study_views.token_revoke, name="token-revoke"),
    path(study + "arms/", study_views.study_arms, name="study-arms"),
    path(study + "arms/preset/", study_views.study_arms_preset, name="study-arms-preset"),
    path(study + "reviewers/", study_views.study_reviewers, name="study-reviewers"),
    path(study + "reviewers/<int:enrolment_id>/remove/", study_views.enrolment_remove, name="enrolment-remove"),
    path(study + "invitations/<int:invitation_id>/revoke/", study_views.invitation_revoke, name="invitation-revoke"),
    path(study + "items/", item_views.study_items, name="study-items"),
    path(study + "items/<int:item_id>/gold/", item_views.item_gold, name="item-gold"),
    path(study + "items/<int:item_id>/rationale/", item_views.probe_rationale, name="probe-rationale"),
    path(study + "probes/", item_views.probes_generate, name="probes-generate"),
    path(study + "audit/", study_views.study_audit, name="study-audit"),
    path(study + "metrics/", metrics_views.metrics_panel, name="study-metrics"),
    path(study + "metrics/run/", metrics_views.metrics_run, name="study-metrics-run"),
    path(study + "planner/", metrics_views.study_planner, name="study-planner"),
    path("join/<str:token>/", study_views.join, name="join"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    # Wrong old passwords count as failed logins (django-axes), so the form cannot be used to guess.
    path("accounts/password/", ThrottledPasswordChangeView.as_view(), name="password_change"),
    path("accounts/password/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("admin/", admin.site.urls),
    path("", include("reviewapp.ingest.urls")),
    path("", include("reviewapp.reports.urls")),
]

handler403 = "reviewapp.studies.views.forbidden"
handler404 = "reviewapp.studies.views.not_found"
handler500 = "reviewapp.studies.views.server_error"
