"""Study pages: thin views (access check, form, one service call, render)."""

from __future__ import annotations

import re
import sys
from collections import Counter
from dataclasses import dataclass

from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.signals import user_login_failed
from django.core.paginator import Paginator
from django.db import InterfaceError as DatabaseInterfaceError
from django.db import OperationalError as DatabaseOperationalError
from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.db.models.fields.json import KeyTextTransform
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import defaults as default_views
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseStopPolling

from reviewapp.ingest.files import file_kind, new_upload_path
from reviewapp.ingest.models import IngestJob, Item
from reviewapp.ingest.parsing import BodyError
from reviewapp.ingest.services import ingest_job_create
from reviewapp.jobs import waiting_for_broker
from reviewapp.metrics.views import metrics_context
from reviewapp.queue import tallies
from reviewapp.security import lockout_response

from . import services
from .access import is_researcher, researcher_required, researcher_studies, researcher_study_or_404
from .devices import device_cookie_set, join_signals
from .forms import (
    ArmFormSet,
    EnrolForm,
    GoldForm,
    InvitationForm,
    ProbeRationaleForm,
    ReviewerSignupForm,
    StudyCreateForm,
    StudyForm,
    TokenForm,
    UploadForm,
)
from .models import AuditEvent, Enrolment, IngestToken, Invitation, Study
from .schema import decision_field, schema_errors

ITEMS_PER_PAGE = 50
JOBS_SHOWN = 10
AUDIT_PER_PAGE = 50


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
        counts = tallies.item_counts([study.pk for study in studies])
        for study in studies:
            study.item_count = counts[study.pk].items
        return render(request, "studies/home.html", {"studies": studies})
    enrolments = Enrolment.objects.filter(reviewer=request.user).select_related("study").order_by("-allocated_at")
    return render(request, "studies/reviewer_home.html", {"enrolments": enrolments})


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
    counts = tallies.item_counts([study.pk])[study.pk]
    context = {
        "study": study,
        "item_count": counts.items,
        "formats": [{"source_format": name, "n": n} for name, n in sorted(counts.formats.items(), key=lambda f: -f[1])],
        "gold_count": counts.gold,
        "probe_count": counts.probes,
        "arms": study.arms.all(),
        "jobs": jobs,
        "balance": arm_balance(study),
        "transitions": study.allowed_transitions().items(),
        "start_problems": services.start_problems(study) if study.status == Study.Status.DRAFT else [],
        "lock_reason": services.lock_reason(study),
        "upload_form": UploadForm(),
        "token_form": TokenForm(),
        "tokens": study.ingest_tokens.order_by("-created_at"),
        "metrics_panel": metrics_context(study),
    }
    return render(request, "studies/study_detail.html", context)


@researcher_required
@require_POST
def study_upload(request: HttpRequest, slug: str) -> HttpResponse:
    """Upload a transcript file; a Celery worker ingests it while the page shows progress."""
    study = researcher_study_or_404(request.user, slug)
    form = UploadForm(request.POST, request.FILES)
    if not form.is_valid():
        messages.error(request, "Choose a file to upload.")
        return redirect("study-detail", study.slug)
    upload = form.cleaned_data["file"]
    try:
        file_kind(upload.name)
    except BodyError as exc:
        messages.error(request, str(exc))
        return redirect("study-detail", study.slug)
    if upload.size > settings.INGEST_MAX_UPLOAD_BYTES:
        messages.error(request, f"{upload.name} is larger than the {settings.INGEST_MAX_UPLOAD_BYTES:,}-byte limit.")
        return redirect("study-detail", study.slug)
    stored = new_upload_path(upload.name)
    with open(stored, "wb") as out:
        for chunk in upload.chunks():
            out.write(chunk)
    job = ingest_job_create(
        study=study,
        stored_path=stored,
        filename=upload.name,
        format_hint=form.cleaned_data["format"],
        skip_invalid=form.cleaned_data["skip_invalid"],
        created_by=request.user,
    )
    if waiting_for_broker(job):
        messages.warning(request, f"{upload.name} uploaded; its ingest is queued and will run when the broker is back.")
    else:
        messages.success(request, f"{upload.name} uploaded; it is being ingested in the background.")
    return redirect("study-detail", study.slug)


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


def arm_balance(study: Study) -> dict:
    """Reviewers per arm and stratum, against each arm's target share."""
    arms, weights = study.arm_weights()
    total_weight = sum(weights) or 1
    counts = Counter(study.enrolments.values_list("stratum", "arm_id"))
    strata = sorted({stratum for stratum, _ in counts}) or [""]
    rows = []
    for arm, weight in zip(arms, weights, strict=True):
        cells = []
        for stratum in strata:
            in_stratum = sum(n for (s, _), n in counts.items() if s == stratum)
            cells.append({"n": counts[(stratum, arm.pk)], "target": round(in_stratum * weight / total_weight, 1)})
        rows.append({"arm": arm, "share": round(100 * weight / total_weight), "cells": cells})
    return {"strata": strata, "rows": rows, "total": sum(counts.values())}


@researcher_required
def study_settings(request: HttpRequest, slug: str) -> HttpResponse:
    study = researcher_study_or_404(request.user, slug)
    reason = services.lock_reason(study)
    form = StudyForm(request.POST or None, instance=study, locked_reason=reason)
    if request.method == "POST" and form.is_valid():
        changes = {name: form.cleaned_data[name] for name in form.changed_data if name in StudyForm.Meta.fields}
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
        services.study_transition(study=study, actor=request.user, to_status=request.POST.get("to", ""))
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
        "enrolments": study.enrolments.select_related("reviewer", "arm").order_by("allocated_at"),
        "invitations": study.invitations.all(),
        "enrol_form": enrol_form,
        "invite_form": invite_form,
        "balance": arm_balance(study),
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
        arm = enrolment.arm.name if enrolment.arm else "per assignment"
        verb = "enrolled in arm" if created else "was already in arm"
        messages.success(request, f"{user.get_username()} {verb} {arm}.")
    for problem in problems:
        messages.error(request, problem)
    return not problems


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


ITEM_FILTERS = {"gold": Q(gold_label__isnull=False), "probes": Q(is_probe=True), "no-gold": Q(gold_label__isnull=True)}


@researcher_required
def study_items(request: HttpRequest, slug: str) -> HttpResponse:
    study = researcher_study_or_404(request.user, slug)
    shown = request.GET.get("show", "all")
    shown = shown if shown in ITEM_FILTERS else "all"
    items = study.items.filter(ITEM_FILTERS[shown]) if shown in ITEM_FILTERS else study.items.all()
    # The title only, not whole payloads: a page of transcripts would be megabytes.
    items = items.annotate(title=KeyTextTransform("title", "payload")).defer("payload", "source_metadata")
    page = item_page(
        items, after=_item_cursor(request.GET.get("after")), before=_item_cursor(request.GET.get("before"))
    )
    counts = tallies.item_counts([study.pk])[study.pk]
    totals = {"all": counts.items, "gold": counts.gold, "no-gold": counts.items - counts.gold, "probes": counts.probes}
    context = {
        "study": study,
        "page": page,
        "shown": shown,
        "total": totals[shown],
        "choices": _decision_choices(study),
    }
    return render(request, "studies/items.html", context)


@dataclass
class ItemPage:
    """One page of items in queue order (priority high first, then oldest), found from the
    item before or after it (keyset pagination): a late page costs what the first does,
    where OFFSET would read and skip every item before it."""

    object_list: list
    has_next: bool
    has_previous: bool

    def _cursor(self, item: Item) -> str:
        return f"{item.priority}.{item.pk}"

    @property
    def next_cursor(self) -> str:
        return self._cursor(self.object_list[-1])

    @property
    def previous_cursor(self) -> str:
        return self._cursor(self.object_list[0])


ITEM_CURSOR = re.compile(r"(-?\d{1,7})\.(\d{1,19})")


def _item_cursor(value: str | None) -> tuple[int, int] | None:
    """(priority, id) from "<priority>.<id>"; anything else means no cursor."""
    match = ITEM_CURSOR.fullmatch(value or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def item_page(
    items: QuerySet[Item],
    *,
    after: tuple[int, int] | None = None,
    before: tuple[int, int] | None = None,
    size: int = ITEMS_PER_PAGE,
) -> ItemPage:
    """The ``size`` items after ``after`` (or before ``before``, or the first ones).

    Each query is one range of the (study, priority desc, id) index: the rest of the
    cursor's priority band first, then the bands below (above, going back), so the
    mixed sort directions never turn into a filtered scan.
    """
    if before is not None:
        priority, item_id = before
        rows = list(items.filter(priority=priority, id__lt=item_id).order_by("-id")[: size + 1])
        if len(rows) <= size:
            rows += items.filter(priority__gt=priority).order_by("priority", "-id")[: size + 1 - len(rows)]
        return ItemPage(object_list=rows[:size][::-1], has_next=True, has_previous=len(rows) > size)
    if after is None:
        rows = list(items.order_by("-priority", "id")[: size + 1])
    else:
        priority, item_id = after
        rows = list(items.filter(priority=priority, id__gt=item_id).order_by("id")[: size + 1])
        if len(rows) <= size:
            rows += items.filter(priority__lt=priority).order_by("-priority", "id")[: size + 1 - len(rows)]
    return ItemPage(object_list=rows[:size], has_next=len(rows) > size, has_previous=after is not None)


def _decision_choices(study: Study) -> list:
    if schema_errors(study.label_schema):
        return []
    return decision_field(study.label_schema).get("choices", [])


@researcher_required
@require_POST
def item_gold(request: HttpRequest, slug: str, item_id: int) -> HttpResponse:
    study = researcher_study_or_404(request.user, slug)
    item = get_object_or_404(Item, study=study, pk=item_id)
    form = GoldForm(request.POST)
    if form.is_valid():
        gold = form.cleaned_data["gold_label"] or None
        if gold is not None and decision_field(study.label_schema)["type"] == "interval":
            try:
                gold = float(gold)
            except ValueError:
                gold = form.cleaned_data["gold_label"]
        try:
            services.item_set_gold(item=item, gold=gold, actor=request.user)
        except services.StudyRuleError as exc:
            messages.error(request, f"{item.external_id}: {exc}")
        else:
            messages.success(request, f"{item.external_id}: gold label {'set to ' + str(gold) if gold else 'cleared'}.")
    return redirect(_local_url(request, request.POST.get("next")) or reverse("study-items", args=[study.slug]))


def _local_url(request: HttpRequest, url: str | None) -> str | None:
    """``url`` if it stays on this site; a form field must not send anyone elsewhere."""
    allowed = {request.get_host()}
    if url and url_has_allowed_host_and_scheme(url, allowed_hosts=allowed, require_https=request.is_secure()):
        return url
    return None


@researcher_required
@require_POST
def probes_generate(request: HttpRequest, slug: str) -> HttpResponse:
    study = researcher_study_or_404(request.user, slug)
    try:
        made = services.probes_generate(study=study, actor=request.user)
    except services.StudyRuleError as exc:
        messages.error(request, str(exc))
    else:
        if made:
            messages.success(request, f"{made} probes generated.")
            for tell in services.probe_tells(study):
                messages.warning(request, tell)
        else:
            messages.info(
                request,
                "No probes generated: the study already has its share of probes, or no unassigned gold items are "
                "left to turn into probes (mark gold labels first).",
            )
    return redirect("study-items", study.slug)


@researcher_required
@require_POST
def probe_rationale(request: HttpRequest, slug: str, item_id: int) -> HttpResponse:
    study = researcher_study_or_404(request.user, slug)
    item = get_object_or_404(Item, study=study, pk=item_id)
    form = ProbeRationaleForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"{item.external_id}: {' '.join(form.errors.get('rationale', []))}")
    else:
        try:
            services.probe_rationale_set(item=item, rationale=form.cleaned_data["rationale"], actor=request.user)
        except services.StudyRuleError as exc:
            messages.error(request, f"{item.external_id}: {exc}")
        else:
            messages.success(request, f"{item.external_id}: rationale saved.")
    return redirect(_local_url(request, request.POST.get("next")) or reverse("study-items", args=[study.slug]))


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
