"""CSRF on every form and htmx request; only the bearer-token ingest API is exempt, by design."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest
from django.contrib.auth.models import User
from django.test import Client

from reviewapp.studies.models import Enrolment, IngestToken

from .routes import app_routes, patterns

HX = {"HTTP_HX_REQUEST": "true"}
API = {"api-items-create", "api-uploads-create", "api-upload-detail"}
# Django's admin is CSRF-protected by Django; a few of its POST addresses are tried as well.
ADMIN_URLS = ["/admin/login/", "/admin/logout/", "/admin/auth/user/add/", "/admin/studies/study/add/"]


def values_for(side, other_reviewer=None):
    def value(route, parameter):
        if parameter == "job_id" and route.name.startswith("study-export"):
            return 1  # refused before the view runs: any id does
        return {
            "slug": side.study.slug,
            "assignment_id": side.assignment.pk,
            "token_id": side.token.pk,
            "invitation_id": side.invitation.pk,
            "item_id": side.item.pk,
            "job_id": side.job.pk,
            "reviewer_id": side.reviewer.pk,
            "enrolment_id": Enrolment.objects.get(study=side.study, reviewer=side.reviewer).pk,
            "report": "labels",
            "token": side.invitation.token,
        }.get(parameter)

    return value


def client_for(route: str, side, superuser: User) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(side.reviewer if route.startswith("review/") else superuser)
    return client


def csrf_refused(response) -> bool:
    return response.status_code == 403 and b"CSRF verification failed" in response.content


@pytest.fixture
def superuser(admin, ours):
    ours.study.researchers.add(admin)
    return admin


@pytest.mark.django_db
class TestCsrf:
    def test_only_the_token_authenticated_ingest_api_is_exempt(self):
        exempt = {pattern.name for _route, pattern in patterns() if getattr(pattern.callback, "csrf_exempt", False)}
        assert exempt == API

    def test_every_route_refuses_a_post_without_the_token_and_accepts_one_with_it(self, ours, superuser):
        checked = []
        urls = [(r.route, r.url(values_for(ours))) for r in app_routes() if r.name not in API]
        for route, url in urls + [(url, url) for url in ADMIN_URLS]:
            client = client_for(route, ours, superuser)
            form_post = client.post(url, {"to": "paused"})
            htmx_post = client.post(url, {"to": "paused"}, **HX)
            assert csrf_refused(form_post), (url, form_post.status_code)
            assert csrf_refused(htmx_post), (url, htmx_post.status_code)
            # The positive control: the same request with the token (as htmx sends it) gets past CSRF.
            client.get("/")  # renders {{ csrf_token }}, which sets the cookie
            token = client.cookies["csrftoken"].value
            with_token = client.post(url, {"to": "paused"}, HTTP_X_CSRFTOKEN=token, **HX)
            assert not csrf_refused(with_token), url
            checked.append(url)
        assert len(checked) == len(app_routes()) - len(API) + len(ADMIN_URLS)

    def test_every_post_form_on_every_page_carries_the_token(self, ours, superuser):
        pages = 0
        for route in app_routes():
            if route.name in API:
                continue
            client = client_for(route.route, ours, superuser)
            response = client.get(route.url(values_for(ours)))
            if response.status_code != 200 or not response["Content-Type"].startswith("text/html"):
                continue
            pages += 1
            forms = FormScanner.scan(response.content.decode())
            if route.name in {"study-detail", "review", "study-items", "study-reviewers"}:
                assert forms.post_forms, f"{route.route}: no POST form found; is the scanner still right?"
            missing = [action for action, has_token in forms.post_forms if not has_token]
            assert missing == [], f"{route.route}: POST forms without csrfmiddlewaretoken: {missing}"
            # A fragment (an htmx partial) is swapped into a page whose <body> carries the header.
            if forms.htmx_writes and forms.has_body:
                assert forms.hx_csrf_header, f"{route.route}: hx-post without the x-csrftoken header on <body>"
        assert pages >= 15

    def test_the_ingest_api_wants_its_bearer_token_not_a_session(self, ours, theirs, superuser):
        client = Client(enforce_csrf_checks=True)
        client.force_login(superuser)
        slug = ours.study.slug
        body = json.dumps({"external_id": "csrf-1", "messages": [{"role": "user", "content": "hi"}]})
        assert client.post(f"/api/studies/{slug}/items", body, content_type="application/json").status_code == 401
        assert client.post(f"/api/studies/{slug}/uploads", body, content_type="application/json").status_code == 401
        assert client.get(f"/api/studies/{slug}/uploads/{ours.job.pk}").status_code == 401
        _token, theirs_secret = IngestToken.issue(study=theirs.study, name="theirs")
        wrong = client.post(
            f"/api/studies/{slug}/items",
            body,
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {theirs_secret}",
        )
        assert wrong.status_code == 403
        _token, secret = IngestToken.issue(study=ours.study, name="ours")
        right = Client(enforce_csrf_checks=True).post(
            f"/api/studies/{slug}/items", body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {secret}"
        )
        assert right.status_code == 201


class FormScanner(HTMLParser):
    """POST forms (and whether each holds a csrfmiddlewaretoken), hx-post and friends, and <body hx-headers>."""

    def __init__(self) -> None:
        super().__init__()
        self.post_forms: list[tuple[str, bool]] = []
        self.htmx_writes = 0
        self.hx_csrf_header = False
        self.has_body = False
        self._open: list[list] = []

    @classmethod
    def scan(cls, html: str) -> FormScanner:
        scanner = cls()
        scanner.feed(html)
        scanner.close()
        return scanner

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self._open.append([attrs.get("action", ""), (attrs.get("method") or "get").lower() == "post", False])
        if tag == "input" and attrs.get("name") == "csrfmiddlewaretoken" and attrs.get("value") and self._open:
            self._open[-1][2] = True
        if any(name in attrs for name in ("hx-post", "hx-put", "hx-patch", "hx-delete")):
            self.htmx_writes += 1
        self.has_body = self.has_body or tag == "body"
        if tag == "body" and "x-csrftoken" in (attrs.get("hx-headers") or "").lower():
            self.hx_csrf_header = bool(json.loads(attrs["hx-headers"]).get("x-csrftoken"))

    def handle_endtag(self, tag):
        if tag == "form" and self._open:
            action, is_post, has_token = self._open.pop()
            if is_post:
                self.post_forms.append((action, has_token))
