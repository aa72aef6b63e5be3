"""The served deployment: docker-compose.yml and production settings."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

import pytest
import yaml

from tests.conftest import ROOT


class TestCompose:
    def load(self) -> dict:
        return yaml.safe_load((ROOT / "docker-compose.yml").read_text())

    def test_it_runs_postgres_redis_web_worker_and_beat(self):
        services = self.load()["services"]
        assert set(services) == {"postgres", "redis", "web", "worker", "beat"}
        assert services["postgres"]["image"].startswith("postgres:")
        assert services["redis"]["image"].startswith("redis:")

    def test_it_serves_web_with_gunicorn_and_reuses_the_image_for_worker_and_beat(self):
        services = self.load()["services"]
        assert "gunicorn reviewapp.wsgi" in services["web"]["command"]
        assert services["worker"]["command"].startswith("celery -A reviewapp worker")
        assert services["beat"]["command"].startswith("celery -A reviewapp beat")
        assert services["web"]["image"] == services["worker"]["image"] == services["beat"]["image"]

    def test_it_points_the_app_at_postgres_and_redis_and_demands_a_secret(self):
        services = self.load()["services"]
        for name in ("web", "worker", "beat"):
            environment = services[name]["environment"]
            assert environment["DATABASE_URL"].startswith("postgres://") and "@postgres:" in environment["DATABASE_URL"]
            assert environment["CELERY_BROKER_URL"].startswith("redis://redis:")
            assert environment["SECRET_KEY"].startswith("${SECRET_KEY:?")
            assert set(services[name]["depends_on"]) == {"postgres", "redis"}


def unshared_folders(compose: dict) -> list[str]:
    """The folders one app container writes and another reads that are not a volume mounted
    at the same path in every app container (web, worker, beat)."""
    problems = []
    services = compose["services"]
    for name in ("web", "worker", "beat"):
        environment = services[name]["environment"]
        mounts = {volume.split(":", 1)[1] for volume in services[name].get("volumes", [])}
        for setting in ("UPLOAD_DIR", "EXPORT_DIR"):
            folder = environment.get(setting)
            if folder is None or folder not in mounts:
                problems.append(f"{name}: {setting} ({folder}) is not on a shared volume")
    return problems


class TestSharedFolders:
    def test_uploads_and_exports_are_on_volumes_every_app_container_mounts(self):
        compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
        assert unshared_folders(compose) == []

    def test_the_image_creates_them_for_the_app_user(self):
        dockerfile = (ROOT / "Dockerfile").read_text()
        run = next(line for line in dockerfile.splitlines() if "useradd" in line)
        assert "/app/var/uploads" in run and "/app/var/exports" in run and "chown -R app /app/var" in run

    def test_the_check_finds_a_folder_left_in_one_container(self):
        """The control: an export folder without a volume (the worker writes the file where web
        cannot read it) is reported."""
        compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
        for name in ("web", "worker", "beat"):
            compose["services"][name]["volumes"] = ["uploads:/app/var/uploads"]
        assert unshared_folders(compose) == [
            f"{n}: EXPORT_DIR (/app/var/exports) is not on a shared volume" for n in ("web", "worker", "beat")
        ]


# Production settings for a deployment at https://review.example.org behind a TLS proxy.
PRODUCTION = {
    "DEBUG": "false",
    "ALLOWED_HOSTS": "review.example.org",
    "CSRF_TRUSTED_ORIGINS": "https://review.example.org",
}
# Variables that would change the production defaults; the tests start from a clean slate.
LOOSENERS = (
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "AXES_FAILURE_LIMIT",
    "AXES_COOLOFF_MINUTES",
)


def a_real_key() -> str:
    return secrets.token_urlsafe(50)


class TestProductionSettings:
    def run_python(self, code: str, **env_overrides) -> subprocess.CompletedProcess:
        # DJANGO_ALLOW_ASYNC_UNSAFE is set for the browser tests (tests/browser/conftest.py); never in production.
        dropped = ("SECRET_KEY", "DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE", *LOOSENERS)
        env = {k: v for k, v in os.environ.items() if k not in dropped}
        env.update(env_overrides)
        return subprocess.run([sys.executable, *code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)

    def run_check(self, **env_overrides) -> subprocess.CompletedProcess:
        # Importing the WSGI module is what gunicorn does at start-up.
        return self.run_python(["-c", "import reviewapp.wsgi"], **env_overrides)

    def test_check_deploy_is_clean_with_production_settings(self):
        result = self.run_python(
            ["manage.py", "check", "--deploy", "--fail-level", "WARNING"], **PRODUCTION, SECRET_KEY=a_real_key()
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "System check identified no issues (0 silenced)." in result.stdout

    def test_check_deploy_does_report_a_loosened_setting(self):
        """The control: the check above would see a warning if there were one."""
        result = self.run_python(
            ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
            **PRODUCTION,
            SECRET_KEY=a_real_key(),
            SECURE_SSL_REDIRECT="false",
        )
        assert result.returncode != 0
        assert "security.W008" in result.stderr

    def test_it_refuses_to_start_without_a_secret_key(self):
        result = self.run_check(**PRODUCTION, SECRET_KEY="")
        assert result.returncode != 0
        assert "SECRET_KEY must be set" in result.stderr

    @pytest.mark.parametrize(
        "key",
        [
            "development-only-not-secret",  # our own development placeholder
            "django-insecure-" + "k3y" * 20,  # what startproject writes
            "changeme",
            "secret",
            "x" * 64,  # long but one character
            "test-worker-secret",
        ],
    )
    def test_it_refuses_a_placeholder_or_weak_key(self, key):
        result = self.run_check(**PRODUCTION, SECRET_KEY=key)
        assert result.returncode != 0
        assert "SECRET_KEY must be set to a long random value" in result.stderr

    def test_it_starts_with_a_real_key(self):
        result = self.run_check(**PRODUCTION, SECRET_KEY=a_real_key())
        assert result.returncode == 0, result.stderr

    @pytest.mark.parametrize(
        "overrides",
        [
            {"UPLOAD_DIR": "static/uploads"},
            {"UPLOAD_DIR": "var/staticfiles/uploads"},
            {"EXPORT_DIR": "static"},
            {"STATIC_ROOT": "var"},  # would hold var/uploads and var/exports
        ],
    )
    def test_it_refuses_to_keep_uploads_or_exports_where_static_files_are_served(self, overrides):
        overrides = {k: str(ROOT / v) for k, v in overrides.items()}
        result = self.run_check(**PRODUCTION, SECRET_KEY=a_real_key(), **overrides)
        assert result.returncode != 0
        assert "must not be inside or around" in result.stderr

    def test_redis_redelivers_an_unacknowledged_task_only_after_the_longest_task_could_have_run(self):
        """Kombu's visibility timeout: shorter than the hard time limit, a task still running
        would be handed to a second worker. A worker that died is found sooner by the sweep."""
        code = (
            "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'reviewapp.settings'); django.setup();"
            "from django.conf import settings as s;"
            "print(s.CELERY_BROKER_TRANSPORT_OPTIONS['visibility_timeout'], s.CELERY_TASK_TIME_LIMIT, "
            "s.JOBS_RECOVER_SECONDS, s.JOBS_REQUEUE_AFTER_SECONDS)"
        )
        result = self.run_python(
            ["-c", code], **PRODUCTION, SECRET_KEY=a_real_key(), CELERY_BROKER_URL="redis://redis:6379/0"
        )
        assert result.returncode == 0, result.stderr
        visibility, hard_limit, sweep_every, requeue_after = (float(v) for v in result.stdout.split())
        assert visibility > hard_limit
        assert sweep_every < requeue_after < hard_limit

    def test_login_throttling_and_secure_cookies_are_on_in_production(self):
        code = (
            "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'reviewapp.settings'); django.setup();"
            "from django.conf import settings as s;"
            "print(s.AXES_ENABLED, s.AXES_FAILURE_LIMIT, s.AXES_COOLOFF_TIME.total_seconds(), "
            "s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS)"
        )
        result = self.run_python(["-c", code], **PRODUCTION, SECRET_KEY=a_real_key())
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == ["True", "5", "900.0", "True", "True", "True", "31536000"]
