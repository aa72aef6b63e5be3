"""Study pages: thin views (access check, form, one service call, render)."""

from __future__ import annotations

import sys

from axes.handlers.proxy import AxesProxyHandler
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.signals import user_login_failed
from django.core.paginator import Paginator
from django.db import InterfaceError as DatabaseInterfaceError
from django.db import OperationalError as DatabaseOperationalError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.views import defaults as default_views
from django.views.decorators.http import require_POST

from reviewapp.security import lockout_response

from . import services
from .access import researcher_required, researcher_study_or_404
from .devices import device_cookie_set, join_signals
from .forms import (
    ArmFormSet,
    EnrolForm,
    InvitationForm,
    ReviewerSignupForm,
    StudyCreateForm,
    StudyForm,
    TokenForm,
)
from .models import AuditEvent, Enrolment, IngestToken, Invitation, Study

AUDIT_PER_PAGE = 50


@researcher_required
def study_create(request: HttpRequest) -> HttpResponse:
    form = StudyCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        fields = {name: form.cleaned_data[name] for name in StudyForm.Meta.fields}
        study = services.study_create(
            actor=request.user, fields=fields, three_arm_preset=form.cleaned_data["three_arm_preset"]
        )
        messages.success(request, f"Study '{study.title}' created as a draft.")
        return redirect("study-detail", study.slug)
    return render(request, "studies/study_form.html", {"form": form, "creating": True})


@researcher_required
@require_POST
def token_create(request: HttpRequest, slug: str) -> HttpResponse:
    study = researcher_study_or_404(request.user, slug)
    form = TokenForm(request.POST)
    if form.is_valid():
        token, plaintext = IngestToken.issue(study=study, name=form.cleaned_data["name"], created_by=request.user)
        services.audit(study, request.user, "token.issue", token=token.display_prefix)
        messages.warning(request, f"Ingest token '{token.name}' (shown once, copy it now): {plaintext}")
    return redirect("study-detail", study.slug)


@researcher_required
@require_POST
def token_revoke(request: HttpRequest, slug: str, token_id: int) -> HttpResponse:
    study = researcher_study_or_404(request.user, slug)
    token = get_object_or_404(IngestToken, study=study, pk=token_id)
    if token.is_active:
        token.revoke()
        services.audit(study, request.user, "token.revoke", token=token.display_prefix)
        messages.success(request, f"Token '{token.name}' revoked.")
    return redirect("study-detail", study.slug)


@researcher_required
def study_settings(request: HttpRequest, slug: str) -> HttpResponse:
    study = researcher_study_or_404(request.user, slug)
    reason = services.lock_reason(study)
    form = StudyForm(request.POST or None, instance=study, locked_reason=reason)
    if request.method == "POST" and form.is_valid():
        changes = form.changes()
        # The form already wrote cleaned values onto the instance; reload so the
        # service compares against what is stored.
        study.refresh_from_db()
        try:
            changed = services.study_update(study=study, actor=request.user, changes=changes)
        except services.StudyRuleError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Saved: {', '.join(changed)}." if changed else "Nothing changed.")
            return redirect("study-detail", study.slug)
    return render(request, "studies/study_form.html", {"form": form, "study": study, "lock_reason": reason})


@researcher_required
@require_POST
def study_transition(request: HttpRequest, slug: str) -> HttpResponse:
    study = researcher_study_or_404(request.user, slug)
    try:
        services.study_transition(
            study=study,
            actor=request.user,
            to_status=request.POST.get("to", ""),
            confirmation=request.POST.get("confirm_slug"),
        )
    except services.StudyRuleError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Study is now {request.POST['to']}.")
    return redirect("study-detail", study.slug)


@researcher_required
def study_arms(request: HttpRequest, slug: str) -> HttpResponse:
    study = researcher_study_or_404(request.user, slug)
    reason = services.lock_reason(study)
    formset = ArmFormSet(request.POST or None, queryset=study.arms.all(), prefix="arms")
    if request.method == "POST" and not reason and formset.is_valid():
        arms, delete_ids = [], []
        for form in formset.forms:
            if form.instance.pk and form.cleaned_data.get("DELETE"):
                delete_ids.append(form.instance.pk)
            elif form.instance.pk or form.has_changed():
                spec = {k: v for k, v in form.cleaned_data.items() if k in form.Meta.fields}
                arms.append({**spec, "id": form.instance.pk})
        try:
            services.arms_save(study=study, actor=request.user, arms=arms, delete_ids=delete_ids)
        except services.StudyRuleError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, "Arms saved.")
            return redirect("study-arms", study.slug)
    return render(request, "studies/arms.html", {"study": study, "formset": formset, "lock_reason": reason})


@researcher_required
@require_POST
def study_arms_preset(request: HttpRequest, slug: str) -> HttpResponse:
    study = researcher_study_or_404(request.user, slug)
    try:
        services.arms_apply_preset(study=study, actor=request.user)
    except services.StudyRuleError as exc:
        messages.error(request, str(exc))
    return redirect("study-arms", study.slug)


@researcher_required
def study_reviewers(request: HttpRequest, slug: str) -> HttpResponse:
    study = researcher_study_or_404(request.user, slug)
    enrol_form = EnrolForm(prefix="enrol")
    invite_form = InvitationForm(prefix="invite")
    if request.method == "POST" and "enrol-usernames" in request.POST:
        enrol_form = EnrolForm(request.POST, prefix="enrol")
        if enrol_form.is_valid():
            done = _enrol_all(request, study, enrol_form.cleaned_data["usernames"])
            if done:
                return redirect("study-reviewers", study.slug)
    elif request.method == "POST":
        invite_form = InvitationForm(request.POST, prefix="invite")
        if invite_form.is_valid():
            data = invite_form.cleaned_data
            attributes = (
                {study.stratify_by: data["stratum_value"]} if study.stratify_by and data["stratum_value"] else {}
            )
            made = services.invitations_create(
                study=study,
                actor=request.user,
                kind=data["kind"],
                label=data["label"],
                max_uses=data["max_uses"],
                emails=data["emails"],
                attributes=attributes,
            )
            messages.success(request, f"{len(made)} invitation link{'s' if len(made) != 1 else ''} created.")
            return redirect("study-reviewers", study.slug)
    context = {
        "study": study,
        "enrolments": services.enrolments_listed(study),
        "invitations": study.invitations.all(),
        "enrol_form": enrol_form,
        "invite_form": invite_form,
        "balance": services.arm_balance(study),
        "alike": services.enrolments_alike(study),
        "site": request.build_absolute_uri("/").rstrip("/"),
    }
    return render(request, "studies/reviewers.html", context)


def _enrol_all(request: HttpRequest, study: Study, users) -> bool:
    problems = []
    for user in users:
        try:
            enrolment, created = services.enrolment_create(
                study=study, reviewer=user, source=Enrolment.Source.ADMIN, actor=request.user
            )
        except services.StudyRuleError as exc:
            problems.append(f"{user.get_username()}: {exc}")
            continue
        if enrolment.allocated_at is None:
            verb = "joined; their arm is allocated when the study starts" if created else "was already enrolled"
            messages.success(request, f"{user.get_username()} {verb}.")
            continue
        arm = enrolment.arm.name if enrolment.arm else "per assignment"
        verb = "enrolled in arm" if created else "was already in arm"
        messages.success(request, f"{user.get_username()} {verb} {arm}.")
    for problem in problems:
        messages.error(request, problem)
    return not problems


@researcher_required
@require_POST
def enrolment_remove(request: HttpRequest, slug: str, enrolment_id: int) -> HttpResponse:
    study = researcher_study_or_404(request.user, slug)
    get_object_or_404(Enrolment, study=study, pk=enrolment_id)
    try:
        name = services.enrolment_remove(study=study, actor=request.user, enrolment_id=enrolment_id)
    except services.StudyRuleError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{name} was removed from the study.")
    return redirect("study-reviewers", study.slug)


@researcher_required
@require_POST
def invitation_revoke(request: HttpRequest, slug: str, invitation_id: int) -> HttpResponse:
    study = researcher_study_or_404(request.user, slug)
    invitation = get_object_or_404(Invitation, study=study, pk=invitation_id)
    if invitation.revoked_at is None:
        invitation.revoked_at = timezone.now()
        invitation.save(update_fields=["revoked_at"])
        services.audit(study, request.user, "invitation.revoke", invitation=invitation.pk)
    return redirect("study-reviewers", study.slug)


@researcher_required
def study_audit(request: HttpRequest, slug: str) -> HttpResponse:
    study = researcher_study_or_404(request.user, slug)
    events = AuditEvent.objects.filter(study=study)
    page = Paginator(events, AUDIT_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "studies/audit.html", {"study": study, "page": page})


def join(request: HttpRequest, token: str) -> HttpResponse:
    """An invitation link: sign up or log in, then confirm to join the study.

    The response gives this browser its device cookie, so a second account signing up from
    it later is recognised (studies/devices.py)."""
    invitation = Invitation.objects.select_related("study").filter(token=token).first()
    if invitation is None:
        return render(request, "studies/join.html", {"problem": "This invitation link is not valid."}, status=404)
    return device_cookie_set(request, _join(request, invitation))


def _join(request: HttpRequest, invitation: Invitation) -> HttpResponse:
    study = invitation.study
    problem = invitation.unusable_reason()
    signup = None
    if not request.user.is_authenticated:
        signup = ReviewerSignupForm(request.POST or None, invitation_email=invitation.email)
    if request.method == "POST" and problem is None:
        if signup is not None and (refused := _signup_throttled(request, signup)):
            return refused
        if signup is not None and not signup.is_valid():
            _count_taken_username(request, signup)
            return render(request, "studies/join.html", {"invitation": invitation, "study": study, "signup": signup})
        try:
            # An account is only created together with its enrolment.
            with transaction.atomic():
                user = signup.save() if signup is not None else request.user
                services.invitation_accept(invitation=invitation, user=user, signals=join_signals(request))
        except services.StudyRuleError as exc:
            problem = str(exc)
        else:
            if signup is not None:
                login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, f"You have joined '{study.title}'.")
            return redirect("home")
    context = {"invitation": invitation, "study": study, "signup": signup, "problem": problem}
    return render(request, "studies/join.html", context, status=410 if problem else 200)


def _signup_throttled(request: HttpRequest, signup: ReviewerSignupForm) -> HttpResponse | None:
    """The lockout page (429) when this address, or this username from it, is locked out.

    Sign-up tells whether a username is taken (it must: the person has to pick another), so
    probing it for accounts is throttled like guessing passwords: ``_count_taken_username``
    counts each taken name as a failed login with django-axes, whose per-address limit
    (AXES_IP_FAILURE_LIMIT) then stops the probing."""
    credentials = {"username": signup.data.get("username", "")}
    if AxesProxyHandler.is_locked(request, credentials):
        return lockout_response(request, credentials=credentials)
    return None


def _count_taken_username(request: HttpRequest, signup: ReviewerSignupForm) -> None:
    if signup.has_error("username", code="unique"):
        credentials = {"username": signup.data.get("username", "")}
        user_login_failed.send(sender=ReviewerSignupForm, credentials=credentials, request=request)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, "404.html", {"path": request.path}, status=404)


def forbidden(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, "403.html", {"path": request.path, "reason": str(exception or "")}, status=403)


# How long a client should wait before trying again when the database is unreachable.
DATABASE_RETRY_AFTER_SECONDS = 5


def server_error(request: HttpRequest) -> HttpResponse:
    """500, or 503 with Retry-After when the database cannot be reached (restarting, failing
    over, out of connections): a passing condition the client can wait out. Each write
    either committed or rolled back whole, and a reviewer's answer sent again counts once.

    Django calls this inside its ``except`` block, so the exception is still current. The
    503 page is rendered without the request: no user, no session, no query.
    """
    exception = sys.exc_info()[1]
    if isinstance(exception, DatabaseOperationalError | DatabaseInterfaceError):
        response = HttpResponse(render_to_string("503.html"), status=503)
        response["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
        return response
    return default_views.server_error(request)
