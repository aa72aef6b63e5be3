from django.contrib import admin, messages

from .models import Arm, AuditEvent, Enrolment, IngestToken, Invitation, ReviewerProfile, Study


class ArmInline(admin.TabularInline):
    model = Arm
    extra = 0


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):
    list_display = ["slug", "title", "status", "design", "overlap_k", "created_at"]
    list_filter = ["status", "design"]
    search_fields = ["slug", "title"]
    prepopulated_fields = {"slug": ["title"]}
    # Researchers of a study: staff accounts who configure it and see its results.
    filter_horizontal = ["researchers"]
    inlines = [ArmInline]


@admin.register(IngestToken)
class IngestTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "study", "display_prefix", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["study"]
    readonly_fields = ["display_prefix", "created_at", "last_used_at", "revoked_at"]
    fields = ["study", "name", "display_prefix", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def save_model(self, request, obj, form, change):
        if not change:
            # Only the hash is stored; the secret is shown once, now.
            plaintext = obj.set_new_secret()
            obj.created_by = request.user
            messages.warning(request, f"Ingest token (shown once, copy it now): {plaintext}")
        super().save_model(request, obj, form, change)

    @admin.action(description="Revoke selected tokens")
    def revoke(self, request, queryset):
        for token in queryset.filter(revoked_at__isnull=True):
            token.revoke()


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "action", "study", "actor"]
    list_filter = ["action"]
    readonly_fields = ["study", "actor", "action", "detail", "created_at"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Enrolment)
class EnrolmentAdmin(admin.ModelAdmin):
    # Allocations are made by the server once; the admin shows them, never edits them.
    list_display = ["reviewer", "study", "arm", "stratum", "sequence", "block_index", "source", "allocated_at"]
    list_filter = ["study", "arm", "source"]
    readonly_fields = [f.name for f in Enrolment._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ["study", "label", "uses", "max_uses", "expires_at", "revoked_at", "created_at"]
    list_filter = ["study"]
    readonly_fields = ["token", "uses", "created_at"]


@admin.register(ReviewerProfile)
class ReviewerProfileAdmin(admin.ModelAdmin):
    list_display = ["user", "attributes"]
    search_fields = ["user__username"]
