"""Assignments, labels and late answers in the Django admin, read-only.

Items appear by their study and external id (Item.__str__), with invisible direction
overrides and zero-width spaces shown as markers (⟦U+202E⟧), as everywhere in the admin;
so is what a reviewer typed (a comment, a skip reason).
"""

from __future__ import annotations

from django.contrib import admin

from reviewapp.rendering import reveal_hidden_characters as shown

from .models import Assignment, Label, LateSubmission


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ["item", "reviewer", "arm", "state", "leased_at", "submitted_at"]
    list_filter = ["study", "state", "arm"]
    fields = readonly_fields = [
        "shown_skip_reason" if f.name == "skip_reason" else f.name for f in Assignment._meta.fields
    ]

    def has_add_permission(self, request):
        return False

    @admin.display(description="skip reason")
    def shown_skip_reason(self, assignment: Assignment) -> str:
        return shown(assignment.skip_reason or "")


@admin.register(Label)
class LabelAdmin(admin.ModelAdmin):
    # Labels are append-only: visible here, never edited or deleted.
    list_display = ["item", "reviewer", "arm", "values", "submitted_at"]
    list_filter = ["study", "arm"]
    fields = readonly_fields = ["shown_comment" if f.name == "comment" else f.name for f in Label._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="comment")
    def shown_comment(self, label: Label) -> str:
        return shown(label.comment)


@admin.register(LateSubmission)
class LateSubmissionAdmin(admin.ModelAdmin):
    # Kept for audit: answers that came after their slot was taken. Never counted, never edited.
    list_display = ["assignment", "reason", "received_at"]
    readonly_fields = [f.name for f in LateSubmission._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
