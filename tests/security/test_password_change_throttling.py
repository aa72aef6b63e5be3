"""Wrong old passwords on the password-change form count as failed logins and lock it out.

Someone at a logged-in screen (or holding a stolen session) must not be able to guess the
account's password through /accounts/password/ where the login form would stop them.
"""

from __future__ import annotations

import pytest
from django.test import Client

from tests.builders import PASSWORD, login_attempt, user

NEW_PASSWORD = "pw-brand-new-98765"
FORM = "/accounts/password/"


def change(client: Client, old: str):
    return client.post(FORM, {"old_password": old, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})


@pytest.fixture
def alice(db):
    return user("alice")


@pytest.mark.django_db
class TestPasswordChangeThrottling:
    def test_five_wrong_old_passwords_lock_the_form_even_for_the_right_one(self, client, alice):
        client.force_login(alice)
        assert [change(client, f"guess-{n}").status_code for n in range(4)] == [200] * 4
        fifth = change(client, "guess-5")
        assert fifth.status_code == 429

        right = change(client, PASSWORD)

        assert right.status_code == 429
        assert "Too many failed login attempts" in right.content.decode()
        alice.refresh_from_db()
        assert alice.check_password(PASSWORD) and not alice.check_password(NEW_PASSWORD)
        # The same lock as a login's: this username from this address.
        assert login_attempt(Client(), "alice", PASSWORD).status_code == 429

    def test_wrong_old_passwords_and_failed_logins_add_up(self, client, alice):
        for _ in range(3):
            login_attempt(Client(), "alice", "wrong-password")
        client.force_login(alice)
        assert change(client, "guess-1").status_code == 200
        assert change(client, "guess-2").status_code == 429

    def test_the_right_old_password_changes_it_and_a_wrong_one_is_reported(self, client, alice):
        """The control: the form still works, and says why it refused."""
        client.force_login(alice)
        wrong = change(client, "guess-1")
        assert wrong.status_code == 200
        assert "Your old password was entered incorrectly" in wrong.content.decode()

        response = change(client, PASSWORD)

        assert response.status_code == 302 and response["Location"] == "/accounts/password/done/"
        alice.refresh_from_db()
        assert alice.check_password(NEW_PASSWORD)

    def test_another_account_from_the_same_address_is_not_affected(self, client, alice):
        client.force_login(alice)
        for n in range(5):
            change(client, f"guess-{n}")
        bob = user("bob")
        other = Client()
        other.force_login(bob)
        assert change(other, PASSWORD).status_code == 302
