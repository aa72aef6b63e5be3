"""The answer to a request the database could not serve: 503, Retry-After, a page that needs no database.

With DEBUG off Django hands an unhandled exception to handler500; a database that cannot
be reached (psycopg's OperationalError or InterfaceError, wrapped by Django) is a 503 the
client may retry, anything else stays a 500. Here the session lookup fails, as it does
first on every logged-in request while PostgreSQL is down (test_database_restart.py
stops a real server).
"""

from __future__ import annotations

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.db import InterfaceError, OperationalError

pytestmark = pytest.mark.django_db


@pytest.fixture
def failing_sessions(client, admin_user, monkeypatch):
    client.force_login(admin_user)
    client.raise_request_exception = False

    def fail_with(exception: Exception) -> None:
        def load(self):
            raise exception

        monkeypatch.setattr(SessionStore, "load", load)

    return fail_with


class TestDatabaseUnavailablePage:
    @pytest.mark.parametrize(
        "exception",
        [
            OperationalError('connection to server on socket "/run/.s.PGSQL.5432" failed: No such file or directory'),
            InterfaceError("connection already closed"),
        ],
    )
    def test_it_answers_503_with_retry_after_when_the_database_is_unreachable(
        self, client, failing_sessions, exception
    ):
        failing_sessions(exception)

        response = client.get("/studies/new/")

        assert response.status_code == 503
        assert response["Retry-After"] == "5"
        assert b"The database cannot be reached right now" in response.content
        # Nothing of the exception reaches the client.
        assert b"PGSQL" not in response.content and b"closed" not in response.content

    def test_any_other_error_is_still_a_500(self, client, failing_sessions):
        failing_sessions(ValueError("a bug"))

        response = client.get("/studies/new/")

        assert response.status_code == 500
        assert not response.has_header("Retry-After")
