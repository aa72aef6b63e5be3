from django.contrib import admin

from .models import IngestJob, Item


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ["external_id", "study", "source_format", "word_count", "is_probe", "priority", "created_at"]
    list_filter = ["study", "source_format", "is_probe"]
    search_fields = ["external_id"]
    readonly_fields = ["content_hash", "created_at", "ingest_job"]
    list_select_related = ["study"]


@admin.register(IngestJob)
class IngestJobAdmin(admin.ModelAdmin):
    list_display = ["filename", "study", "status", "created_count", "duplicate_count", "error_count", "created_at"]
    list_filter = ["status", "study"]
    readonly_fields = [f.name for f in IngestJob._meta.fields]

    def has_add_permission(self, request):
        return False
