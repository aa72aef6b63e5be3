"""Security the whole site shares: headers, login throttling and how refused logins are answered."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.forms import PasswordChangeForm
from django.contrib.auth.views import PasswordChangeView
from django.core.exceptions import ValidationError
from django.db.models import Max, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

# Strict by design: no inline script or style, no eval, nothing from other origins.
# Transcript text is untrusted; if anything ever slips past escaping and the
# sanitizer, this policy keeps it from running. htmx is configured through a
# <meta name="htmx-config"> tag so it needs neither inline script nor eval.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response


def client_ip_address(request: HttpRequest) -> str:
    """The address login failures are counted against (django-axes).

    Without proxies, the socket's peer. Behind TRUSTED_PROXY_COUNT proxies of ours, each of
    which appends the address it saw to X-Forwarded-For, the entry our outermost proxy
    wrote: entries to the left of it come from the client and could be anything.
    """
    remote = request.META.get("REMOTE_ADDR", "")
    count = settings.TRUSTED_PROXY_COUNT
    if not count:
        return remote
    hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    return hops[-count] if len(hops) >= count else remote


def address_failures(address: str) -> int:
    """Failed logins from ``address`` within the cool-off, whatever usernames they tried."""
    from axes.models import AccessAttempt

    since = timezone.now() - settings.AXES_COOLOFF_TIME
    recent = AccessAttempt.objects.filter(ip_address=address, attempt_time__gte=since)
    return recent.aggregate(n=Sum("failures_since_start"))["n"] or 0


def address_locked(address: str | None) -> bool:
    return bool(address) and address_failures(address) >= settings.AXES_IP_FAILURE_LIMIT


def lockout_parameters(request_or_attempt, credentials=None) -> list:
    """What django-axes counts failed logins by (AXES_LOCKOUT_PARAMETERS).

    Always a username from one address (AXES_FAILURE_LIMIT). The address alone joins once it
    has AXES_IP_FAILURE_LIMIT failures across all usernames within the cool-off, so one
    address cannot try a few passwords on each of many usernames (password spraying). Axes
    compares every parameter with the one AXES_FAILURE_LIMIT, so the address is only added
    past its own, higher limit: a team behind one address making the odd typo is not locked out.
    """
    address = getattr(request_or_attempt, "axes_ip_address", None) or getattr(request_or_attempt, "ip_address", None)
    parameters: list = [["username", "ip_address"]]
    if address_locked(address):
        parameters.append("ip_address")
    return parameters


def lockout_response(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    """django-axes' answer to a locked-out username+address, or address: 429, and when to come back."""
    from axes.helpers import get_client_username, get_cool_off
    from axes.models import AccessAttempt

    cool_off = get_cool_off(request) or timedelta(0)
    address = getattr(request, "axes_ip_address", None)
    whole_address = address_locked(address)
    attempts = AccessAttempt.objects.filter(ip_address=address)
    if not whole_address:
        attempts = attempts.filter(username=get_client_username(request, credentials))
    last_failure = attempts.aggregate(last=Max("attempt_time"))["last"]
    remaining = cool_off if last_failure is None else max(last_failure + cool_off - timezone.now(), timedelta(0))
    seconds = max(1, math.ceil(remaining.total_seconds()))
    context = {
        "minutes": math.ceil(seconds / 60),
        "failure_limit": settings.AXES_FAILURE_LIMIT,
        "whole_address": whole_address,
        "address_failure_limit": settings.AXES_IP_FAILURE_LIMIT,
    }
    response = render(request, "registration/locked_out.html", context, status=settings.AXES_HTTP_RESPONSE_CODE)
    response["Retry-After"] = str(seconds)
    return response


class ThrottledPasswordChangeForm(PasswordChangeForm):
    """The old password is checked by ``authenticate()``, as a login is: django-axes counts a
    wrong one as a failed login of this username from this address, and once the pair (or
    the address) is locked the form is refused with the lockout page, even with the right
    password. Django's own form compares the password directly, which nothing counts."""

    def __init__(self, user, *args, request: HttpRequest, **kwargs) -> None:
        self.request = request
        super().__init__(user, *args, **kwargs)

    def clean_old_password(self) -> str:
        old_password = self.cleaned_data["old_password"]
        user = authenticate(self.request, username=self.user.get_username(), password=old_password)
        if user is None or user.pk != self.user.pk:
            raise ValidationError(self.error_messages["password_incorrect"], code="password_incorrect")
        return old_password


class ThrottledPasswordChangeView(PasswordChangeView):
    form_class = ThrottledPasswordChangeForm

    def get_form_kwargs(self) -> dict:
        return {**super().get_form_kwargs(), "request": self.request}
