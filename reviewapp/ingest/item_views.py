"""The researcher's item pages: upload a file, list the items, set gold labels, make probes.

Thin views over the services in services.py; access through studies.access like every
researcher page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.conf import settings
from django.contrib import messages
from django.db.models import Q, QuerySet
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from reviewapp.jobs import waiting_for_broker
from reviewapp.studies.access import researcher_required, researcher_study_or_404
from reviewapp.studies.models import Study
from reviewapp.studies.schema import decision_field, schema_errors
from reviewapp.studies.services import StudyRuleError, probe_tells

from . import services, tallies
from .files import file_kind, new_upload_path
from .forms import GoldForm, ProbeRationaleForm, UploadForm
from .models import Item
from .parsing import BodyError

ITEMS_PER_PAGE = 50


@researcher_required
@require_POST
def study_upload(request: HttpRequest, slug: str) -> HttpResponse:
    """Upload a transcript file; a Celery worker ingests it while the page shows progress."""
    study = researcher_study_or_404(request.user, slug)
    if services.study_closed(study):
        messages.error(request, str(services.StudyClosed.of(study)))
        return redirect("study-detail", study.slug)
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
    job = services.ingest_job_create(
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


ITEM_FILTERS = {"gold": Q(gold_label__isnull=False), "probes": Q(is_probe=True), "no-gold": Q(gold_label__isnull=True)}


@researcher_required
def study_items(request: HttpRequest, slug: str) -> HttpResponse:
    study = researcher_study_or_404(request.user, slug)
    shown = request.GET.get("show", "all")
    shown = shown if shown in ITEM_FILTERS else "all"
    items = study.items.filter(ITEM_FILTERS[shown]) if shown in ITEM_FILTERS else study.items.all()
    # The title only, not whole payloads: a page of transcripts would be megabytes.
    items = items.annotate(
        title=KeyTextTransform("title", "payload"),
        # The run a transcript came from (Inspect logs): a few keys, not the whole metadata.
        run_task=KeyTextTransform("task", "source_metadata"),
        run_model=KeyTextTransform("model", "source_metadata"),
        run_target=KeyTextTransform("target", "source_metadata"),
        run_scores=KeyTransform("scores", "source_metadata"),
        run_error=KeyTextTransform("sample_error", "source_metadata"),
        run_warnings=KeyTransform("fidelity_warnings", "source_metadata"),
    ).defer("payload", "source_metadata")
    page = item_page(
        items, after=_item_cursor(request.GET.get("after")), before=_item_cursor(request.GET.get("before"))
    )
    for item in page.object_list:
        item.run_score_text = score_text(item.run_scores)
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


def score_text(scores) -> str:
    """``{"match": {"value": "C"}}`` as ``match: C``, for the items table."""
    if not isinstance(scores, dict):
        return ""
    return ", ".join(f"{name}: {score.get('value')}" for name, score in scores.items() if isinstance(score, dict))


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
        except StudyRuleError as exc:
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
    except StudyRuleError as exc:
        messages.error(request, str(exc))
    else:
        if made:
            messages.success(request, f"{made} probes generated.")
            for tell in probe_tells(study):
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
        except StudyRuleError as exc:
            messages.error(request, f"{item.external_id}: {exc}")
        else:
            messages.success(request, f"{item.external_id}: rationale saved.")
    return redirect(_local_url(request, request.POST.get("next")) or reverse("study-items", args=[study.slug]))
