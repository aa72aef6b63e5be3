"""What a sign-up tells us about where it came from, kept as keyed hashes.

A participant of an open invitation link could join again under a new account and land in
another arm. The web cannot prove two accounts are one person, but three signals narrow it:
a long-lived random cookie this browser carries (the strongest: one browser), the client
address and the user agent (weaker: an office shares an address, a fleet shares an agent).
Only HMAC-SHA256 digests keyed with SECRET_KEY are stored, so the table holds no addresses,
and digests from another deployment cannot be matched against ours.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from reviewapp.security import client_ip_address

DEVICE_COOKIE = "rvw_device"
DEVICE_COOKIE_MAX_AGE = 2 * 365 * 24 * 3600


@dataclass(frozen=True)
class JoinSignals:
    device_hash: str = ""
    address_hash: str = ""
    agent_hash: str = ""


def _digest(kind: str, value: str) -> str:
    if not value:
        return ""
    key = settings.SECRET_KEY.encode()
    return hmac.new(key, f"reviewapp-join:{kind}:{value}".encode(), hashlib.sha256).hexdigest()


def join_signals(request: HttpRequest) -> JoinSignals:
    return JoinSignals(
        device_hash=_digest("device", request.COOKIES.get(DEVICE_COOKIE, "")),
        address_hash=_digest("address", client_ip_address(request)),
        agent_hash=_digest("agent", request.headers.get("User-Agent", "")),
    )


def device_cookie_set(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    """Give this browser its random device cookie if it has none yet (the join page does)."""
    if not request.COOKIES.get(DEVICE_COOKIE):
        response.set_cookie(
            DEVICE_COOKIE,
            secrets.token_urlsafe(24),
            max_age=DEVICE_COOKIE_MAX_AGE,
            httponly=True,
            samesite="Lax",
            secure=settings.SESSION_COOKIE_SECURE,
        )
    return response
