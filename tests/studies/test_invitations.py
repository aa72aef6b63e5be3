"""Invitation links that keep one person in one arm: personal and single-use links, the same
browser refused a second account, look-alike sign-ups shown, and usernames that cannot pass
for one another."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from reviewapp.studies.devices import DEVICE_COOKIE
from reviewapp.studies.models import AuditEvent, Enrolment, Invitation
from tests.builders import user

pytestmark = pytest.mark.django_db

PASSWORD = "a-Long-pass-42"


def sign_up(client, invitation, username, **extra):
    form = {"username": username, "password1": PASSWORD, "password2": PASSWORD, **extra}
    return client.post(invitation.path, form)


def fresh_browser() -> Client:
    """Another browser: no cookies, no session."""
    return Client()


class TestOneBrowserOneAccount:
    def test_a_second_account_from_the_same_browser_is_refused_on_an_open_link(self, client, study):
        invitation = Invitation.objects.create(study=study)
        client.get(invitation.path)  # the join page gives the browser its device cookie
        assert client.cookies[DEVICE_COOKIE].value
        assert sign_up(client, invitation, "first").status_code == 302
        first_arm = Enrolment.objects.get(reviewer__username="first").arm
        client.post("/accounts/logout/")  # the real log-out: the browser keeps its other cookies
        assert client.cookies[DEVICE_COOKIE].value

        response = sign_up(client, invitation, "second")

        assert response.status_code == 410
        assert "This browser has already joined this study with another account" in response.content.decode()
        assert not User.objects.filter(username="second").exists()
        assert Enrolment.objects.filter(study=study).count() == 1
        assert Enrolment.objects.get(reviewer__username="first").arm == first_arm

    def test_another_browser_joins_through_the_same_open_link(self, client, study):
        """The control: a different browser (another person) is let in."""
        invitation = Invitation.objects.create(study=study)
        client.get(invitation.path)
        assert sign_up(client, invitation, "first").status_code == 302
        other = fresh_browser()
        other.get(invitation.path)
        assert sign_up(other, invitation, "second").status_code == 302
        assert Enrolment.objects.filter(study=study).count() == 2


class TestLinkKinds:
    def test_a_researcher_makes_one_personal_link_per_address(self, client, study, researcher):
        client.force_login(researcher)
        response = client.post(
            "/studies/refunds/reviewers/",
            {"invite-kind": "personal", "invite-emails": "ann@example.org\nBen@Example.org, ann@example.org"},
            follow=True,
        )
        assert "2 invitation links created." in response.content.decode()
        links = Invitation.objects.filter(study=study).order_by("email")
        assert [(i.email, i.max_uses, i.kind) for i in links] == [
            ("ann@example.org", 1, "personal"),
            ("ben@example.org", 1, "personal"),
        ]
        assert AuditEvent.objects.filter(study=study, action="invitation.create").count() == 2
        page = response.content.decode()
        assert all(i.path in page for i in links) and "ben@example.org" in page

    def test_it_names_what_is_not_an_address(self, client, study, researcher):
        client.force_login(researcher)
        response = client.post("/studies/refunds/reviewers/", {"invite-kind": "personal", "invite-emails": "ann@"})
        assert "Not email addresses: ann@." in response.content.decode()
        assert not Invitation.objects.exists()

    def test_a_personal_link_joins_its_address_once(self, client, study):
        invitation = Invitation.objects.create(study=study, email="ann@example.org", max_uses=1)
        page = client.get(invitation.path).content.decode()
        assert 'value="ann@example.org"' in page and "disabled" in page
        # A different address typed into the form is ignored: the link decides.
        assert sign_up(client, invitation, "ann", email="mallory@example.org").status_code == 302
        assert User.objects.get(username="ann").email == "ann@example.org"

        again = fresh_browser()
        response = sign_up(again, invitation, "ann2")
        assert response.status_code == 410
        assert "used as many times as it allows" in response.content.decode()
        assert not User.objects.filter(username="ann2").exists()

    def test_a_personal_link_refuses_a_logged_in_account_with_another_address(self, client, study):
        invitation = Invitation.objects.create(study=study, email="ann@example.org", max_uses=1)
        client.force_login(user("bob", email="bob@example.org"))
        response = client.post(invitation.path)
        assert response.status_code == 410
        assert "personal link for another email address" in response.content.decode()
        assert not Enrolment.objects.exists()

    def test_a_single_use_link_admits_one_account(self, client, study, researcher):
        client.force_login(researcher)
        client.post("/studies/refunds/reviewers/", {"invite-kind": "single-use"})
        invitation = Invitation.objects.get(study=study)
        assert (invitation.max_uses, invitation.kind) == (1, "single-use")
        first, second = fresh_browser(), fresh_browser()
        assert sign_up(first, invitation, "one").status_code == 302
        assert sign_up(second, invitation, "two").status_code == 410


class TestLookAlikeSignUps:
    def test_the_reviewers_page_shows_accounts_from_one_address_and_browser_type(self, client, study, researcher):
        invitation = Invitation.objects.create(study=study)
        agent = {"HTTP_USER_AGENT": "Mozilla/5.0 (X11; Linux x86_64) Chrome/156"}
        for name in ("kim", "kim2"):
            browser = fresh_browser()  # cookies cleared: the device cookie is new
            browser.post(invitation.path, {"username": name, "password1": PASSWORD, "password2": PASSWORD}, **agent)
        other = fresh_browser()
        other.post(
            invitation.path,
            {"username": "lee", "password1": PASSWORD, "password2": PASSWORD},
            HTTP_USER_AGENT="Mozilla/5.0 (Macintosh) Safari/18",
        )
        assert Enrolment.objects.filter(study=study).count() == 3

        client.force_login(researcher)
        page = client.get("/studies/refunds/reviewers/").content.decode()
        section = page[page.index("Sign-ups that look like one person") :]
        row = section[: section.index("</table>")]
        assert "same address and browser type" in row
        assert "kim (" in row and "kim2 (" in row and "lee (" not in row

    def test_nothing_is_shown_when_every_sign_up_differs(self, client, study, researcher):
        invitation = Invitation.objects.create(study=study)
        for name, agent in (("kim", "Chrome/156"), ("lee", "Safari/18")):
            fresh_browser().post(
                invitation.path,
                {"username": name, "password1": PASSWORD, "password2": PASSWORD},
                HTTP_USER_AGENT=agent,
            )
        client.force_login(researcher)
        assert "Sign-ups that look like one person" not in client.get("/studies/refunds/reviewers/").content.decode()

    def test_only_keyed_digests_are_stored(self, client, study):
        invitation = Invitation.objects.create(study=study)
        sign_up(client, invitation, "kim")
        enrolment = Enrolment.objects.get(reviewer__username="kim")
        assert len(enrolment.address_hash) == 64 and "127.0.0.1" not in enrolment.address_hash


class TestUsernames:
    @pytest.mark.parametrize("username", ["\u0430da", "ad\u0430", "ada\u200b", "ádá"])
    def test_it_refuses_a_username_that_could_pass_for_another(self, client, study, username):
        user("ada")
        invitation = Invitation.objects.create(study=study)
        response = sign_up(client, invitation, username)
        assert response.status_code == 200
        assert "Enter a valid username" in response.content.decode()
        assert not User.objects.filter(username=username).exists()

    def test_it_refuses_a_username_that_differs_only_in_case(self, client, study):
        user("ada")
        response = sign_up(client, Invitation.objects.create(study=study), "Ada")
        assert "already exists" in response.content.decode()

    def test_it_accepts_a_plain_username(self, client, study):
        """The control: the same form takes an ordinary name."""
        user("ada")
        assert sign_up(client, Invitation.objects.create(study=study), "ada.lovelace+1").status_code == 302


class TestUsernameProbing:
    """Sign-up has to say a username is taken; probing it for accounts is throttled like guessing
    passwords (django-axes' per-address limit)."""

    OFFICE = "203.0.113.9"

    def test_an_address_probing_usernames_is_locked_out_of_sign_up(self, study, settings):
        # Above the per-username limit (5), as in production (30): one try per name never reaches that.
        settings.AXES_IP_FAILURE_LIMIT = 6
        names = ["alice", "bob", "carol", "dan", "erin", "fay"]
        for name in names:
            user(name)
        invitation = Invitation.objects.create(study=study)
        prober = Client(REMOTE_ADDR=self.OFFICE)

        answers = [sign_up(prober, invitation, name).status_code for name in names]

        assert answers[:5] == [200] * 5  # each told the name is taken, below the limit
        refused = sign_up(prober, invitation, "a-fresh-name")
        assert refused.status_code == 429 and 0 < int(refused["Retry-After"])
        assert not User.objects.filter(username="a-fresh-name").exists()

    def test_typos_and_other_addresses_are_not_locked_out(self, study, settings):
        """The control: a person whose first choice is taken picks another; elsewhere, others join."""
        settings.AXES_IP_FAILURE_LIMIT = 6
        user("alice")
        invitation = Invitation.objects.create(study=study)
        person = Client(REMOTE_ADDR=self.OFFICE)
        assert sign_up(person, invitation, "alice").status_code == 200
        assert sign_up(person, invitation, "alice2").status_code == 302
        assert sign_up(Client(REMOTE_ADDR="198.51.100.7"), invitation, "zoe").status_code == 302
