"""Every URL the app serves, walked from reviewapp.urls, with its parameters filled in."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse


@dataclass
class Route:
    route: str  # as written in urls.py, e.g. "studies/<slug:slug>/items/<int:item_id>/gold/"
    name: str
    callback: Callable
    parameters: list[str]

    def url(self, values: dict[str, Any] | Callable[[Route, str], Any]) -> str:
        kwargs = {}
        for parameter in self.parameters:
            value = values(self, parameter) if callable(values) else values.get(parameter)
            if value is None:
                pytest.fail(f"{self.route}: no value for <{parameter}>; add one to this test so the route is checked.")
            kwargs[parameter] = value
        return reverse(self.name, kwargs=kwargs)


def patterns(resolver_patterns=None, prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    for pattern in get_resolver().url_patterns if resolver_patterns is None else resolver_patterns:
        if isinstance(pattern, URLResolver):
            yield from patterns(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            yield prefix + str(pattern.pattern), pattern


def app_routes() -> list[Route]:
    """The app's own routes (Django's admin is checked separately)."""
    return [
        Route(route, pattern.name, pattern.callback, list(pattern.pattern.converters))
        for route, pattern in patterns()
        if not route.startswith("admin/")
    ]
