"""What researchers look at (the dashboard) and take away (exports)."""

from __future__ import annotations

from .dashboard_urls import urlpatterns as dashboard_urlpatterns
from .export_urls import urlpatterns as export_urlpatterns

urlpatterns = dashboard_urlpatterns + export_urlpatterns
