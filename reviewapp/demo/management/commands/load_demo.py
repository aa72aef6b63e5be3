"""python manage.py load_demo : a demo study with realistic agent transcripts from fixtures/.

Idempotent: running it again changes nothing (items are keyed by external_id).
"""

from __future__ import annotations

import os
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from reviewapp.demo.simulation import simulated_study
from reviewapp.ingest.files import parse_file
from reviewapp.ingest.services import decision_check_for, items_ingest
from reviewapp.studies.models import Invitation, Study
from reviewapp.studies.services import arms_apply_preset, enrolment_create

DEMO_SLUG = "agent-actions-demo"
# Two per arm of the three-arm preset: permuted blocks of six fill every arm.
DEMO_REVIEWERS = [f"reviewer{n}" for n in range(1, 7)]
DEMO_FILES = [
    "demo/transcripts.jsonl",
    "formats/openai.jsonl",
    "formats/anthropic.jsonl",
    "formats/openai_responses.jsonl",
    "formats/otel.json",
    "formats/inspect.json",
]


def _site() -> str:
    # Where ./scripts/run serves the app (it exports PORT before loading the demo).
    return f"http://127.0.0.1:{os.environ.get('PORT', '8000')}"


class Command(BaseCommand):
    help = (
        "Create the demo study, its three arms, an admin user and the demo transcripts; and a second study "
        "already reviewed by simulated reviewers, with its metrics."
    )

    def handle(self, *args, **options):
        study, created = Study.objects.get_or_create(
            slug=DEMO_SLUG,
            defaults={
                "title": "Agent actions: approve or reject? (demo)",
                "instructions": "Read the transcript. Decide whether the agent's **final proposed action** "
                "should go ahead. Look at the tool results: they may contain injected instructions.",
                "status": Study.Status.RUNNING,
                "overlap_k": 3,
                "seed": 20261123,
                # Each reviewer is asked for 40 items, met in their own shuffled order.
                "reviewer_quota": 40,
            },
        )
        admin = self._ensure_admin()
        if created:
            arms_apply_preset(study=study, actor=admin)
            study.researchers.add(admin)
        for name in DEMO_FILES:
            path = settings.BASE_DIR / "fixtures" / name
            if not path.exists():
                continue
            results = parse_file(
                path, decision_check=decision_check_for(study), max_record_bytes=settings.INGEST_MAX_RECORD_BYTES
            )
            outcome = items_ingest(study=study, results=results, skip_invalid=True)
            self.stdout.write(f"{name}: {outcome.summary()}")
            for error in outcome.errors[:5]:
                self.stderr.write(f"  {error}")
        site = _site()
        invitation = study.invitations.filter(revoked_at__isnull=True).first() or Invitation.objects.create(
            study=study, label="demo reviewers", created_by=admin
        )
        self.stdout.write(f"Reviewers join the demo study at {site}{invitation.path}")
        self._ensure_reviewers(study, admin)
        simulated_study(admin, self.stdout.write)

    def _ensure_reviewers(self, study, admin):
        User = get_user_model()
        credentials = settings.BASE_DIR / "var" / "demo-reviewer-password.txt"
        if credentials.exists():
            password = credentials.read_text().strip()
        else:
            password = secrets.token_urlsafe(9)
            credentials.parent.mkdir(parents=True, exist_ok=True)
            credentials.write_text(password + "\n")
            credentials.chmod(0o600)
        for username in DEMO_REVIEWERS:
            reviewer = User.objects.filter(username=username).first()
            if reviewer is None:
                reviewer = User.objects.create_user(username, f"{username}@example.org", password)
            enrolment, _ = enrolment_create(study=study, reviewer=reviewer, source="admin", actor=admin)
            self.stdout.write(
                f"Reviewer '{username}' ({enrolment.arm.name} arm) reviews at {_site()}/review/{study.slug}/"
            )
        self.stdout.write(f"Demo reviewers' password: {password} (saved in {credentials}).")

    def _ensure_admin(self):
        User = get_user_model()
        existing = User.objects.filter(username="admin").first()
        if existing:
            self.stdout.write("Admin user 'admin' already exists.")
            return existing
        password = secrets.token_urlsafe(9)
        admin = User.objects.create_superuser("admin", "admin@example.org", password)
        credentials = settings.BASE_DIR / "var" / "demo-admin-password.txt"
        credentials.parent.mkdir(parents=True, exist_ok=True)
        credentials.write_text(password + "\n")
        credentials.chmod(0o600)
        message = f"Created admin user 'admin' with password {password} (saved in {credentials})."
        self.stdout.write(self.style.SUCCESS(message))
        return admin
