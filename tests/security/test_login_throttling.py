"""Login throttling (django-axes): a username+address pair is locked after 5 wrong passwords."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import User
from django.test import Client, override_settings
from django.utils import timezone

from tests.builders import PASSWORD, logged_in_as, login_attempt, user
from tests.conftest import ROOT


def fail(client: Client, username: str, times: int, **extra) -> list[int]:
    return [login_attempt(client, username, "wrong-password", **extra).status_code for _ in range(times)]


@pytest.fixture
def users(db):
    return {name: user(name) for name in ("alice", "bob")}


@pytest.mark.django_db
class TestLoginThrottling:
    def test_it_refuses_even_the_right_password_after_five_failures_with_a_429_page(self, client, users):
        assert fail(client, "alice", 4) == [200, 200, 200, 200]  # the form again, with its error
        fifth = login_attempt(client, "alice", "wrong-password")
        assert fifth.status_code == 429

        right = login_attempt(client, "alice", PASSWORD)

        assert right.status_code == 429
        assert logged_in_as(client) is None
        page = right.content.decode()
        assert "Too many failed login attempts" in page
        assert "Try again in 15 minutes." in page
        assert 14 * 60 < int(right["Retry-After"]) <= 15 * 60
        assert "script-src 'self'" in right["Content-Security-Policy"]

    def test_another_user_from_the_same_address_is_not_affected(self, client, users):
        fail(client, "alice", 5)
        response = login_attempt(client, "bob", PASSWORD)
        assert response.status_code == 302
        assert logged_in_as(client) == "bob"

    def test_the_same_user_from_another_address_is_not_affected(self, users):
        fail(Client(REMOTE_ADDR="203.0.113.5"), "alice", 5)
        elsewhere = Client(REMOTE_ADDR="198.51.100.7")
        assert login_attempt(elsewhere, "alice", PASSWORD).status_code == 302
        assert logged_in_as(elsewhere) == "alice"

    def test_it_lets_the_user_in_once_the_cool_off_has_passed(self, client, users):
        fail(client, "alice", 5)
        # Time travel: the last failure was 14 minutes ago, then 15 minutes and a second ago.
        AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=14))
        still = login_attempt(client, "alice", PASSWORD)
        assert still.status_code == 429
        assert "Try again in 1 minute." in still.content.decode()
        AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=15, seconds=1))

        response = login_attempt(client, "alice", PASSWORD)

        assert response.status_code == 302
        assert logged_in_as(client) == "alice"

    def test_trying_during_the_lockout_does_not_restart_the_clock(self, client, users):
        fail(client, "alice", 5)
        AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=10))
        assert fail(client, "alice", 3) == [429, 429, 429]
        assert "Try again in 5 minutes." in login_attempt(client, "alice", PASSWORD).content.decode()

    def test_a_successful_login_clears_the_count(self, client, users):
        fail(client, "alice", 4)
        assert login_attempt(client, "alice", PASSWORD).status_code == 302
        client.post("/accounts/logout/")
        assert fail(client, "alice", 4) == [200, 200, 200, 200]
        assert login_attempt(client, "alice", PASSWORD).status_code == 302

    def test_the_admin_login_is_throttled_too(self, client, users):
        User.objects.filter(username="alice").update(is_staff=True)
        for _ in range(5):
            client.post("/admin/login/", {"username": "alice", "password": "wrong-password"})
        response = client.post("/admin/login/?next=/admin/", {"username": "alice", "password": PASSWORD})
        assert response.status_code == 429
        assert logged_in_as(client) is None

    def test_force_login_in_tests_is_not_throttled(self, client, users):
        fail(client, "alice", 5)
        client.force_login(users["alice"])
        assert client.get("/").status_code == 200

    @override_settings(TRUSTED_PROXY_COUNT=1)
    def test_behind_a_proxy_it_counts_the_address_the_proxy_saw_not_what_the_client_wrote(self, client, users):
        # The proxy appends the address it saw; whatever the client put before it is ignored.
        for n in range(5):
            login_attempt(client, "alice", "wrong-password", HTTP_X_FORWARDED_FOR=f"10.9.9.{n}, 203.0.113.5")
        spoofed = login_attempt(client, "alice", PASSWORD, HTTP_X_FORWARDED_FOR="10.0.0.1, 203.0.113.5")
        assert spoofed.status_code == 429
        colleague = Client()
        assert login_attempt(colleague, "alice", PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.7").status_code == 302


class TestThrottlingSettings:
    def test_the_limit_and_cool_off_come_from_the_environment(self):
        code = (
            "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'reviewapp.settings'); django.setup();"
            "from django.conf import settings as s;"
            "print(s.AXES_FAILURE_LIMIT, s.AXES_COOLOFF_TIME.total_seconds(), s.AXES_LOCKOUT_PARAMETERS)"
        )
        env = {**os.environ, "AXES_FAILURE_LIMIT": "3", "AXES_COOLOFF_MINUTES": "2.5", "DEBUG": "true"}
        result = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip().split(maxsplit=2) == ["3", "150.0", "reviewapp.security.lockout_parameters"]
