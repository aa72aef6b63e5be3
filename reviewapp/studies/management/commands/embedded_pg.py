"""python manage.py embedded_pg status|stop|url : the private PostgreSQL used without DATABASE_URL."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand

from reviewapp.embedded_db import stop_embedded_server


class Command(BaseCommand):
    help = "Show or stop the embedded PostgreSQL server (only used when DATABASE_URL is unset)."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["status", "stop", "url"])

    def handle(self, *args, **options):
        data_dir = settings.EMBEDDED_PG_DIR
        if options["action"] == "stop":
            stopped = stop_embedded_server(data_dir)
            self.stdout.write("stopped" if stopped else "not running")
        elif options["action"] == "url":
            self.stdout.write(str(settings.DATABASES["default"].get("HOST")))
        else:
            self.stdout.write(f"data directory: {data_dir} (exists: {data_dir.exists()})")
