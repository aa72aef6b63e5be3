"""Security the whole site shares: headers, and how refused logins are answered."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db.models import Max
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


def lockout_response(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    """django-axes' answer to a locked-out username+address: 429, and when to come back."""
    from axes.helpers import get_client_username, get_cool_off
    from axes.models import AccessAttempt

    cool_off = get_cool_off(request) or timedelta(0)
    last_failure = AccessAttempt.objects.filter(
        username=get_client_username(request, credentials), ip_address=getattr(request, "axes_ip_address", None)
    ).aggregate(last=Max("attempt_time"))["last"]
    remaining = cool_off if last_failure is None else max(last_failure + cool_off - timezone.now(), timedelta(0))
    seconds = max(1, math.ceil(remaining.total_seconds()))
    context = {"minutes": math.ceil(seconds / 60), "failure_limit": settings.AXES_FAILURE_LIMIT}
    response = render(request, "registration/locked_out.html", context, status=settings.AXES_HTTP_RESPONSE_CODE)
    response["Retry-After"] = str(seconds)
    return response
