from django.contrib import admin

from .models import Assignment, Label, LateSubmission


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ["item", "reviewer", "arm", "state", "leased_at", "submitted_at"]
    list_filter = ["study", "state", "arm"]
    readonly_fields = [f.name for f in Assignment._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(Label)
class LabelAdmin(admin.ModelAdmin):
    # Labels are append-only: visible here, never edited or deleted.
    list_display = ["item", "reviewer", "arm", "values", "submitted_at"]
    list_filter = ["study", "arm"]
    readonly_fields = [f.name for f in Label._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


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
