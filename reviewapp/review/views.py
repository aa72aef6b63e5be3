"""The reviewer's pages: one labelling page whose work area htmx swaps item by item.

Every response here is built from the presenters' dicts (blinding), sent with
Cache-Control: no-store, and scoped to the requesting reviewer's enrolment.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from reviewapp.queue import services as queue
from reviewapp.queue.models import Assignment, ReviewerCursor
from reviewapp.studies.models import Enrolment, Study

from . import presenters

SKIP_REASONS = [
    "I cannot judge this without more context",
    "The transcript is broken or unreadable",
    "I have a conflict of interest",
]


def reviewer_view(view):
    """Logged in, enrolled in the study; anything else is a 404 that reveals nothing."""

    @login_required
    @never_cache
    def wrapped(request: HttpRequest, slug: str, *args, **kwargs) -> HttpResponse:
        enrolment = (
            Enrolment.objects.filter(study__slug=slug, reviewer=request.user).select_related("study", "arm").first()
        )
        if enrolment is None:
            raise Http404("You are not enrolled in a study at this address.")
        request.enrolment = enrolment
        return view(request, enrolment.study, *args, **kwargs)

    wrapped.__name__ = view.__name__
    wrapped.__doc__ = view.__doc__
    return wrapped


@require_GET
@reviewer_view
def review_page(request: HttpRequest, study: Study) -> HttpResponse:
    """The current item (the live lease, or the next one claimed now)."""
    return _render_work(request, study, _claim(request, study))


@require_POST
@reviewer_view
def answer_submit(request: HttpRequest, study: Study, assignment_id: int) -> HttpResponse:
    values, confidence, comment = presenters.answer_from_post(study.label_schema, request.POST)
    try:
        interactions = presenters.client_measurements(
            request.POST.get("interactions", ""), presenters.INTERACTION_FIELDS, "interactions"
        )
        timings = presenters.client_measurements(
            request.POST.get("client_timings", ""), presenters.TIMING_FIELDS, "client_timings"
        )
        label, created = queue.label_submit(
            study=study,
            reviewer=request.user,
            assignment_id=assignment_id,
            values=values,
            confidence=confidence,
            comment=comment,
            client_timings=timings,
            interactions=interactions,
        )
    except ValueError as exc:
        return _render_problem(request, study, assignment_id, {"(page)": str(exc)}, values, confidence, comment)
    except queue.InvalidLabel as exc:
        return _render_problem(request, study, assignment_id, exc.errors, values, confidence, comment)
    except queue.QueueError as exc:
        return _render_notice(request, study, str(exc), exc.status)
    if not created and (label.values, label.confidence, label.comment) != (values, confidence, comment or ""):
        # A second tab (or a late retry) sent another answer: the first one counts, and says so.
        # Only the reviewer's own answer is named, never anything their arm hides.
        first = presenters.answer_summary(study.label_schema, label.values)
        return _next(
            request,
            study,
            warning=f"This item was already answered (in another tab?); your first answer stands: {first}.",
        )
    return _next(request, study, notice="Saved.")


@require_POST
@reviewer_view
def blind_answer(request: HttpRequest, study: Study, assignment_id: int) -> HttpResponse:
    """Reveal mode: store the reviewer's own answer, then show the AI with the final form."""
    values, _confidence, _comment = presenters.answer_from_post(study.label_schema, request.POST)
    try:
        assignment = queue.blind_answer_record(
            study=study, reviewer=request.user, assignment_id=assignment_id, values=values
        )
    except queue.InvalidLabel as exc:
        return _render_problem(request, study, assignment_id, exc.errors, values, None, "")
    except queue.QueueError as exc:
        return _render_notice(request, study, str(exc), exc.status)
    if assignment.initial_values != values:
        first = presenters.answer_summary(study.label_schema, assignment.initial_values)
        return _next(
            request, study, warning=f"Your own answer was already saved (in another tab?); it stands: {first}."
        )
    return _next(request, study)


@require_POST
@reviewer_view
def skip(request: HttpRequest, study: Study, assignment_id: int) -> HttpResponse:
    chosen = request.POST.get("reason", "").strip()
    other = request.POST.get("other_reason", "")
    reason = other.strip() if chosen == "other" else chosen
    try:
        queue.assignment_skip(study=study, reviewer=request.user, assignment_id=assignment_id, reason=reason)
    except queue.InvalidLabel as exc:
        field = "Other reason" if chosen == "other" else "Reason"
        skip_form = presenters.skip_view(
            SKIP_REASONS, chosen=chosen, other=other, error=f"{field} {exc.errors['reason']}."
        )
        return _render_problem(request, study, assignment_id, {}, {}, None, "", skip_form=skip_form)
    except queue.QueueError as exc:
        return _render_notice(request, study, str(exc), exc.status)
    return _next(request, study, notice="Skipped; you will not see this item again.")


def _next(request: HttpRequest, study: Study, notice: str = "", warning: str = "") -> HttpResponse:
    if not request.htmx:
        # Without JavaScript: post, redirect, get (a reload does not post twice).
        if warning:
            messages.warning(request, warning)
        response = HttpResponseRedirect(reverse("review", args=[study.slug]))
        response.status_code = 303
        return response
    return _render_work(request, study, _claim(request, study), notice=notice, warning=warning)


def _claim(request: HttpRequest, study: Study) -> Assignment | str | None:
    try:
        return queue.claim_next(study=study, reviewer=request.user, enrolment=request.enrolment)
    except queue.StudyNotRunning as exc:
        return str(exc)


def _render_work(
    request: HttpRequest,
    study: Study,
    claimed: Assignment | str | None,
    *,
    notice: str = "",
    warning: str = "",
    errors: dict | None = None,
    values: dict | None = None,
    skip_form: dict | None = None,
    status: int = 200,
) -> HttpResponse:
    context = {"study": _study_view(study), "notice": notice, "warning": warning, "progress": _progress(request, study)}
    if isinstance(claimed, str):
        context["closed_message"] = claimed
    elif claimed is not None:
        context["work"] = _work_view(study, claimed, errors or {}, values, skip_form)
    template = "review/review.html#work" if request.htmx else "review/review.html"
    return render(request, template, context, status=status)


def _study_view(study: Study) -> dict:
    return {"slug": study.slug, "title": study.title, "instructions": study.instructions}


def _work_view(
    study: Study, assignment: Assignment, errors: dict, values: dict | None, skip_form: dict | None = None
) -> dict:
    arm = assignment.arm
    item = assignment.item
    blind_stage = arm.reveal and assignment.initial_values is None
    if values is None:
        # Reveal mode starts the final answer from the blind one: changing it is a choice.
        values = dict(assignment.initial_values or {})
    item_ai = {
        "recommendation": item.ai_recommendation,
        "rationale": item.ai_rationale,
        "confidence": item.ai_confidence,
    }
    arm_shows = {
        "recommendation": arm.shows_ai_recommendation,
        "rationale": arm.shows_ai_rationale,
        "rationale_display": arm.rationale_display,
        "confidence": arm.shows_ai_confidence,
    }
    # A hidden title never leaves the server: the reviewer reads the item's place in their sequence.
    hidden_title = presenters.item_heading(assignment.position) if study.hide_item_titles else None
    return {
        "assignment_id": assignment.pk,
        "lease_expires_at": assignment.lease_expires_at,
        "stage": "blind" if blind_stage else "final",
        "reveal": arm.reveal,
        "transcript": presenters.transcript_view(item.payload, hidden_title=hidden_title),
        # Only that the source run crashed (its transcript shows it anyway), never the metadata itself.
        "run_errored": bool((item.source_metadata or {}).get("sample_error")),
        "ai": presenters.ai_view(item_ai, arm_shows, blind_stage=blind_stage),
        "form": presenters.form_view(study.label_schema, values, errors, ask_extras=not blind_stage),
        "skip": skip_form or presenters.skip_view(SKIP_REASONS),
    }


def _render_problem(request, study, assignment_id, errors, values, confidence, comment, skip_form=None) -> HttpResponse:
    """The same item again with the answer (or the skip) kept and each problem next to its field."""
    assignment = (
        Assignment.objects.filter(pk=assignment_id, study=study, reviewer=request.user, state="leased")
        .select_related("item", "arm")
        .first()
    )
    if assignment is None:
        return _render_notice(request, study, "This item is no longer yours to answer. Load the next item.", 409)
    kept = {**values, "__confidence": confidence, "__comment": comment}
    return _render_work(request, study, assignment, errors=errors, values=kept, skip_form=skip_form, status=400)


def _render_notice(request: HttpRequest, study: Study, message: str, status: int) -> HttpResponse:
    context = {"study": _study_view(study), "problem": message, "progress": _progress(request, study)}
    template = "review/review.html#work" if request.htmx else "review/review.html"
    return render(request, template, context, status=status)


def _progress(request: HttpRequest, study: Study) -> dict:
    """The progress line: labels given (of the quota, when one applies) and the queue's totals.

    ``quota_reached`` tells the end page apart from "nothing left": the claim gives nothing
    both when the queue is empty and when the reviewer has done their quota."""
    done = ReviewerCursor.objects.filter(study=study, reviewer=request.user).values_list("labels_done", flat=True)
    done = done.first() or 0
    enrolment = request.enrolment
    # The queue's own rule, so the page counts to the number the claim stops at.
    quota = queue.reviewer_quota(study, enrolment)
    progress = {"done": done, "quota": quota, "quota_reached": quota is not None and done >= quota}
    if study.design == Study.Design.WITHIN:
        return {**progress, **queue.progress_totals(study=study, arm_key=0)}
    if enrolment.arm_id is None:
        # Joined a draft study: no arm (and so no queue) until the study starts.
        return {**progress, "open_items": 0, "percent": 0}
    return {**progress, **queue.progress_totals(study=study, arm_key=enrolment.arm_id)}
