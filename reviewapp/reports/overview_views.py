"""The pages that show a whole study at a glance: the study list and the study's overview.

They sum up every stage of the flow (items and ingest jobs, arms and reviewers, the queue),
so they live here at its end; the metrics panel loads from its own URL (metrics/views.py).
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django_htmx.http import HttpResponseStopPolling

from reviewapp.ingest.forms import UploadForm
from reviewapp.ingest.models import IngestJob
from reviewapp.ingest.tallies import item_counts
from reviewapp.queue.tallies import label_days
from reviewapp.studies import services as study_services
from reviewapp.studies.access import is_researcher, researcher_required, researcher_studies, researcher_study_or_404
from reviewapp.studies.forms import TokenForm
from reviewapp.studies.models import Enrolment, Study

JOBS_SHOWN = 10


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
        counts = item_counts([study.pk for study in studies])
        for study in studies:
            study.item_count = counts[study.pk].items
        return render(request, "studies/home.html", {"studies": studies})
    enrolments = Enrolment.objects.filter(reviewer=request.user).select_related("study").order_by("-joined_at")
    return render(request, "studies/reviewer_home.html", {"enrolments": enrolments})


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
    counts = item_counts([study.pk])[study.pk]
    arms = list(study.arms.all())
    transitions = study.allowed_transitions().items()
    context = {
        "study": study,
        "item_count": counts.items,
        "formats": [{"source_format": name, "n": n} for name, n in sorted(counts.formats.items(), key=lambda f: -f[1])],
        "gold_count": counts.gold,
        "probe_count": counts.probes,
        "arms": arms,
        "jobs": jobs,
        "balance": study_services.arm_balance(study),
        "quick_transitions": [(to, label) for to, label in transitions if to not in Study.CONFIRMED_TRANSITIONS],
        "confirmed_transitions": [(to, label) for to, label in transitions if to in Study.CONFIRMED_TRANSITIONS],
        # Within subjects the arm changes item by item, so only the study's quota applies.
        "quota_arms": [arm for arm in arms if arm.reviewer_quota and study.design == Study.Design.BETWEEN],
        "share_warning_percent": _percent(study.reviewer_share_warning),
        "share_warnings": share_warnings(study, arms, planned=counts.items * study.overlap_k),
        "start_problems": study_services.start_problems(study) if study.status == Study.Status.DRAFT else [],
        "lock_reason": study_services.lock_reason(study),
        "upload_form": UploadForm(),
        "token_form": TokenForm(),
        "tokens": study.ingest_tokens.order_by("-created_at"),
    }
    return render(request, "studies/study_detail.html", context)


def _percent(share: float) -> str:
    # One decimal where it matters: 25.4% must not read as "25%, more than 25%".
    return f"{100 * share:.1f}".removesuffix(".0")


def share_warnings(study: Study, arms: list, *, planned: int) -> list[dict]:
    """Reviewers who gave more than the study's warning share of an arm's labels, largest first.

    Read from the label tallies (a few rows per reviewer, arm and day), never by counting
    labels. ``planned`` is the labels the study asks for (items times k). The suggested quota
    keeps one reviewer under the share of them: between subjects each arm is planned k labels
    an item, and within subjects a reviewer's labels spread over the arms in the proportion
    each arm's are, so in both the reviewer's share of an arm is at most quota / planned."""
    totals: dict[tuple[int, int], int] = {}
    for row in label_days(study.pk):
        totals[(row.reviewer_id, row.arm_id)] = totals.get((row.reviewer_id, row.arm_id), 0) + row.n
    per_arm: dict[int, int] = {}
    for (_reviewer, arm_id), n in totals.items():
        per_arm[arm_id] = per_arm.get(arm_id, 0) + n
    limit = study.reviewer_share_warning
    over = [(reviewer_id, arm_id, n) for (reviewer_id, arm_id), n in totals.items() if n > limit * per_arm[arm_id]]
    if not over:
        return []
    names = dict(get_user_model().objects.filter(pk__in={r for r, _, _ in over}).values_list("pk", "username"))
    arms_by_id = {arm.pk: arm for arm in arms}
    within = study.design == Study.Design.WITHIN
    weight_sum = sum(arm.weight for arm in arms) or 1
    suggested = int(limit * planned)
    warnings = []
    for reviewer_id, arm_id, n in sorted(over, key=lambda o: -o[2] / per_arm[o[1]]):
        arm = arms_by_id.get(arm_id)
        arm_planned = round(planned * arm.weight / weight_sum) if within and arm else planned
        warnings.append(
            {
                "reviewer": names.get(reviewer_id, f"reviewer {reviewer_id}"),
                "arm": arm.name if arm else f"#{arm_id}",
                "n": n,
                "arm_total": per_arm[arm_id],
                "percent": _percent(n / per_arm[arm_id]),
                "planned": arm_planned,
                "suggested_quota": suggested if suggested >= 1 else None,
                "quota": arm.quota() if arm and not within else study.reviewer_quota,
            }
        )
    return warnings
