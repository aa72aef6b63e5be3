"""One address trying a few passwords on each of many usernames is locked as a whole.

django-axes locks a username from one address after AXES_FAILURE_LIMIT (5) wrong passwords;
an address that stays under that for every username (password spraying) is locked once it
has AXES_IP_FAILURE_LIMIT (30) failures across all usernames within the cool-off. A team
behind one address making the odd typo stays well below that.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.test import Client

from tests.builders import PASSWORD, logged_in_as, login_attempt, user
from tests.conftest import ROOT

OFFICE = "203.0.113.9"
ELSEWHERE = "198.51.100.7"


def spray(client: Client, usernames: list[str], each: int) -> list[int]:
    """``each`` wrong passwords for every username, round-robin, as a sprayer does."""
    return [login_attempt(client, name, f"guess-{n}").status_code for n in range(each) for name in usernames]


@pytest.fixture
def staff(db):
    return {name: user(name) for name in ("alice", "bob", "carol", "dan")}


@pytest.mark.django_db
class TestAddressThrottling:
    def test_an_address_spraying_passwords_over_many_usernames_is_locked_after_the_address_limit(self, staff):
        sprayer = Client(REMOTE_ADDR=OFFICE)
        targets = [f"user{n}" for n in range(6)] + list(staff)  # ten names, some real

        statuses = spray(sprayer, targets, each=3)  # 30 failures, at most 3 per username

        assert statuses[:29] == [200] * 29  # below every per-username limit, below the address limit
        assert statuses[29] == 429
        # Now the whole address is refused, even a right password for an account it never tried.
        user("erin")
        refused = login_attempt(Client(REMOTE_ADDR=OFFICE), "erin", PASSWORD)
        assert refused.status_code == 429
        assert "Too many failed login attempts from your address." in refused.content.decode()
        assert 0 < int(refused["Retry-After"]) <= 15 * 60
        # Another address is not affected.
        elsewhere = Client(REMOTE_ADDR=ELSEWHERE)
        assert login_attempt(elsewhere, "erin", PASSWORD).status_code == 302
        assert logged_in_as(elsewhere) == "erin"

    def test_an_office_making_the_odd_typo_is_not_locked_out(self, staff):
        """The control: many failures from one address, each user below the limit, the address
        below its own: everyone still logs in."""
        colleagues = {name: Client(REMOTE_ADDR=OFFICE) for name in staff}
        for name, client in colleagues.items():
            assert [login_attempt(client, name, "typo").status_code for _ in range(4)] == [200] * 4  # 16 in all

        for name, client in colleagues.items():
            assert login_attempt(client, name, PASSWORD).status_code == 302
            assert logged_in_as(client) == name

    def test_the_per_username_lock_still_comes_first(self, staff):
        client = Client(REMOTE_ADDR=OFFICE)
        assert [login_attempt(client, "alice", "wrong").status_code for _ in range(5)] == [200] * 4 + [429]
        page = login_attempt(client, "alice", PASSWORD).content.decode()
        assert "Too many failed login attempts for this account from your address." in page
        assert login_attempt(Client(REMOTE_ADDR=OFFICE), "bob", PASSWORD).status_code == 302


class TestAddressLimitSettings:
    def run(self, **env: str) -> subprocess.CompletedProcess:
        code = (
            "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'reviewapp.settings'); django.setup();"
            "from django.conf import settings as s; print(s.AXES_FAILURE_LIMIT, s.AXES_IP_FAILURE_LIMIT)"
        )
        environment = {**os.environ, "DEBUG": "true", **env}
        return subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60
        )

    def test_the_address_limit_comes_from_the_environment(self):
        result = self.run(AXES_IP_FAILURE_LIMIT="50")
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == ["5", "50"]

    def test_an_address_limit_not_above_the_per_username_limit_is_refused(self):
        result = self.run(AXES_FAILURE_LIMIT="5", AXES_IP_FAILURE_LIMIT="5")
        assert result.returncode != 0
        assert "AXES_IP_FAILURE_LIMIT must be higher than AXES_FAILURE_LIMIT" in result.stderr
