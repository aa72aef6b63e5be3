"""Items and ingest jobs in the Django admin.

Transcript text is untrusted. Invisible direction overrides and zero-width spaces (the
characters of reviewapp.rendering.HIDDEN_CHARACTERS) are shown as markers such as
⟦U+202E⟧ here, as on the review page, so an admin sees "invoice⟦U+202E⟧fdp.exe" where the
raw text would display as "invoiceexe.pdf". The fields that hold transcript text are
read-only: items are immutable once ingested, and an edit box would show the raw characters
(and save the markers back).
"""

from __future__ import annotations

import json

from django.contrib import admin
from django.utils.html import format_html

from reviewapp.rendering import reveal_hidden_characters as shown

from .models import IngestJob, Item

# A payload larger than this is clipped on the admin page (the JSON export has it whole).
SHOWN_JSON_CHARS = 200_000


def shown_json(value) -> str:
    text = json.dumps(value, indent=2, ensure_ascii=False)
    if len(text) > SHOWN_JSON_CHARS:
        text = text[:SHOWN_JSON_CHARS] + f"\n… ({len(text) - SHOWN_JSON_CHARS:,} more characters)"
    return format_html("<pre>{}</pre>", shown(text))


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = [
        "shown_external_id",
        "shown_title",
        "study",
        "source_format",
        "word_count",
        "is_probe",
        "priority",
        "created_at",
    ]
    list_filter = ["study", "source_format", "is_probe"]
    search_fields = ["external_id"]
    fields = [
        "study",
        "shown_external_id",
        "source_format",
        "shown_title",
        "shown_payload",
        "shown_source_metadata",
        "word_count",
        "shown_ai_recommendation",
        "shown_ai_rationale",
        "ai_confidence",
        "gold_label",
        "is_probe",
        "priority",
        "ingest_job",
        "content_hash",
        "created_at",
    ]
    readonly_fields = [
        "shown_external_id",
        "shown_title",
        "shown_payload",
        "shown_source_metadata",
        "shown_ai_recommendation",
        "shown_ai_rationale",
        "content_hash",
        "created_at",
        "ingest_job",
    ]
    list_select_related = ["study"]

    def has_add_permission(self, request):
        return False  # items enter through ingest (the API, uploads, manage.py ingest)

    @admin.display(description="external id", ordering="external_id")
    def shown_external_id(self, item: Item) -> str:
        return shown(item.external_id)

    @admin.display(description="title")
    def shown_title(self, item: Item) -> str:
        title = item.payload.get("title") if isinstance(item.payload, dict) else None
        return shown(str(title)) if title else ""

    @admin.display(description="payload")
    def shown_payload(self, item: Item) -> str:
        return shown_json(item.payload)

    @admin.display(description="source metadata")
    def shown_source_metadata(self, item: Item) -> str:
        return shown_json(item.source_metadata)

    @admin.display(description="AI recommendation")
    def shown_ai_recommendation(self, item: Item) -> str:
        return "" if item.ai_recommendation is None else shown(json.dumps(item.ai_recommendation, ensure_ascii=False))

    @admin.display(description="AI rationale")
    def shown_ai_rationale(self, item: Item) -> str:
        return shown(item.ai_rationale)


# Fields of an ingest job that hold what the uploader sent (a file name, its records' errors).
JOB_SHOWN = {"filename": "shown_filename", "errors": "shown_errors", "message": "shown_message"}


@admin.register(IngestJob)
class IngestJobAdmin(admin.ModelAdmin):
    list_display = [
        "shown_filename",
        "study",
        "status",
        "created_count",
        "duplicate_count",
        "error_count",
        "created_at",
    ]
    list_filter = ["status", "study"]
    fields = readonly_fields = [JOB_SHOWN.get(f.name, f.name) for f in IngestJob._meta.fields]

    def has_add_permission(self, request):
        return False

    @admin.display(description="filename", ordering="filename")
    def shown_filename(self, job: IngestJob) -> str:
        return shown(job.filename)

    @admin.display(description="errors")
    def shown_errors(self, job: IngestJob) -> str:
        return shown_json(job.errors)

    @admin.display(description="message")
    def shown_message(self, job: IngestJob) -> str:
        return shown(job.message)
