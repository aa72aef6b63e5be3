"""python manage.py create_ingest_token --study SLUG --name NAME : print a new token once."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from reviewapp.studies.models import AuditEvent, IngestToken, Study


class Command(BaseCommand):
    help = "Issue a write-only ingest token for one study. The token is printed once; only its hash is stored."

    def add_arguments(self, parser):
        parser.add_argument("--study", required=True)
        parser.add_argument("--name", default="cli")

    def handle(self, *args, **options):
        study = Study.objects.filter(slug=options["study"]).first()
        if study is None:
            raise CommandError(f"No study with slug {options['study']!r}.")
        token, plaintext = IngestToken.issue(study=study, name=options["name"])
        AuditEvent.objects.create(study=study, action="token.issue", detail={"token": token.display_prefix})
        self.stdout.write(plaintext)
