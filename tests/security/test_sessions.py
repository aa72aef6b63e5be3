"""Session fixation: the session key changes at every login, and logout ends the session."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.sessions.backends.db import SessionStore
from django.test import Client

from reviewapp.studies.models import Invitation
from tests.builders import PASSWORD, user


def planted_session(client: Client) -> str:
    """An anonymous session the visitor did not choose (as an attacker would plant it)."""
    session = SessionStore()
    session["planted"] = True
    session.create()
    client.cookies[settings.SESSION_COOKIE_NAME] = session.session_key
    return session.session_key


def session_key(client: Client) -> str:
    return client.cookies[settings.SESSION_COOKIE_NAME].value


@pytest.mark.django_db
class TestSessionRotation:
    def test_it_issues_a_new_session_key_at_login(self, client):
        user("alice")
        before = planted_session(client)

        response = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})

        assert response.status_code == 302
        after = session_key(client)
        assert after != before
        assert not SessionStore().exists(before)
        # Whoever kept the old cookie is not logged in.
        attacker = Client()
        attacker.cookies[settings.SESSION_COOKIE_NAME] = before
        assert attacker.get("/")["Location"] == "/accounts/login/"
        assert client.get("/").status_code == 200

    def test_it_issues_a_new_session_key_when_an_invitation_signs_someone_up(self, client, study):
        invitation = Invitation.objects.create(study=study, label="cohort")
        client.get(f"/join/{invitation.token}/")
        before = planted_session(client)

        response = client.post(
            f"/join/{invitation.token}/",
            {"username": "newcomer", "password1": "a-long-passphrase-42", "password2": "a-long-passphrase-42"},
        )

        assert response.status_code == 302
        assert session_key(client) != before
        assert not SessionStore().exists(before)
        assert client.session["_auth_user_id"] == str(User.objects.get(username="newcomer").pk)

    def test_logout_ends_the_session_on_the_server(self, client):
        user("alice")
        client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
        key = session_key(client)

        client.post("/accounts/logout/")

        assert not SessionStore().exists(key)

    def test_the_session_cookie_is_http_only_and_same_site(self, client):
        user("alice")
        client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
        cookie = client.cookies[settings.SESSION_COOKIE_NAME]
        assert cookie["httponly"] is True
        assert cookie["samesite"] == "Lax"
