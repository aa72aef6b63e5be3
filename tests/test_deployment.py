"""The served deployment: docker-compose.yml and production settings."""

from __future__ import annotations

import os
import subprocess
import sys

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


class TestProductionSettings:
    def run_check(self, **env_overrides) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG")}
        env.update(env_overrides)
        return subprocess.run(
            [
                sys.executable,
                "-c",
                "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', "
                "'reviewapp.settings'); django.setup()",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def test_it_refuses_to_start_without_a_secret_key(self):
        result = self.run_check(DEBUG="false", SECRET_KEY="")
        assert result.returncode != 0
        assert "SECRET_KEY must be set" in result.stderr

    def test_it_refuses_the_development_placeholder_key(self):
        result = self.run_check(DEBUG="false", SECRET_KEY="development-only-not-secret")
        assert result.returncode != 0
        assert "SECRET_KEY must be set" in result.stderr

    def test_it_starts_with_a_real_key(self):
        result = self.run_check(DEBUG="false", SECRET_KEY="x" * 50)
        assert result.returncode == 0, result.stderr
