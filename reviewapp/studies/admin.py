import json

from django import forms
from django.contrib import admin, messages
from django.db import transaction

from reviewapp.rendering import reveal_hidden_characters

from . import services
from .models import Arm, AuditEvent, Enrolment, IngestToken, Invitation, ReviewerProfile, Study


class ArmInline(admin.TabularInline):
    """Shown, never edited here: the study's Arms page edits arms through the service that
    checks the locks and rebuilds the queue of a started study (the database refuses a
    locked change from anywhere, and records every change)."""

    model = Arm
    extra = 0
    can_delete = False
    fields = [
        "name",
        "weight",
        "shows_ai_recommendation",
        "shows_ai_rationale",
        "rationale_display",
        "shows_ai_confidence",
        "reveal",
        "reviewer_quota",
    ]
    readonly_fields = fields
    verbose_name_plural = "arms (edit them on the study's Arms page)"

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class StudyAdminForm(forms.ModelForm):
    class Meta:
        model = Study
        fields = "__all__"  # noqa: DJ007 (the admin narrows it to its own fieldsets)

    def clean(self):
        cleaned = super().clean()
        # The fields are read-only once locked; this catches a lock taken while the form was open.
        locked = [name for name in self.changed_data if name in services.DESIGN_FIELDS]
        if locked and self.instance.pk and (reason := services.lock_reason(self.instance)):
            raise forms.ValidationError(f"{reason} Not changed: {', '.join(locked)}.")
        return cleaned


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):
    """Edits go through the same services as the study pages: locks checked, the queue
    rebuilt when k or the design changes before anyone joined, every change audited with
    the admin named. The lifecycle (which opens the queue) is only on the study page."""

    form = StudyAdminForm
    list_display = ["slug", "title", "status", "design", "overlap_k", "created_at"]
    list_filter = ["status", "design"]
    search_fields = ["slug", "title"]
    prepopulated_fields = {"slug": ["title"]}
    # Researchers of a study: staff accounts who configure it and see its results.
    filter_horizontal = ["researchers"]
    inlines = [ArmInline]

    def get_readonly_fields(self, request, obj=None):
        fields = ["status", "created_at"]
        if obj is not None:
            fields.append("slug")
            if services.lock_reason(obj):
                fields.extend(services.DESIGN_FIELDS)
        return fields

    def get_prepopulated_fields(self, request, obj=None):
        return {} if obj is not None else self.prepopulated_fields

    def save_model(self, request, obj, form, change):
        if not change:
            with transaction.atomic():
                super().save_model(request, obj, form, change)
                services.audit(obj, request.user, "study.create", fields=sorted(form.changed_data), via="admin")
            return
        editable = {f.name for f in Study._meta.concrete_fields}
        changes = {name: form.cleaned_data[name] for name in form.changed_data if name in editable}
        stored = Study.objects.get(pk=obj.pk)
        services.study_update(study=stored, actor=request.user, changes=changes, via="admin")

    def save_related(self, request, form, formsets, change):
        before = set(form.instance.researchers.values_list("username", flat=True)) if change else set()
        super().save_related(request, form, formsets, change)
        after = set(form.instance.researchers.values_list("username", flat=True))
        if change and before != after:
            services.audit(
                form.instance,
                request.user,
                "study.researchers",
                before=sorted(before),
                after=sorted(after),
                via="admin",
            )


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
    # Ids and the stored name, not the related rows: the study or account may be gone.
    list_display = ["created_at", "action", "study_id", "actor_name"]
    list_filter = ["action"]
    fields = readonly_fields = ["study_id", "actor_id", "actor_name", "action", "detail_shown", "created_at"]

    @admin.display(description="detail")
    def detail_shown(self, event: AuditEvent) -> str:
        # Details name items by external id, which come from transcripts: hidden characters show.
        return reveal_hidden_characters(json.dumps(event.detail, ensure_ascii=False, indent=2))

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Enrolment)
class EnrolmentAdmin(admin.ModelAdmin):
    # Allocations are made by the server once; the admin shows them, never edits them.
    list_display = [
        "reviewer",
        "study",
        "arm",
        "stratum",
        "sequence",
        "block_index",
        "source",
        "joined_at",
        "allocated_at",
    ]
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
