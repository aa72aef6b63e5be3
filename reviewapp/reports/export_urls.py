"""Export endpoints (filled in by the export work)."""

urlpatterns: list = []
