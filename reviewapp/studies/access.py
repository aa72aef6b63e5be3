"""Who may see what. Every researcher page goes through these helpers."""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404
from django.utils.cache import add_never_cache_headers

from .models import Study


def is_researcher(user) -> bool:
    return user.is_authenticated and user.is_staff


def researcher_required(view):
    """Logged in and a researcher account; reviewers get 403. What a researcher page sends
    is research data: never stored by the browser or a shared cache (Cache-Control:
    private, no-store, as the reviewer pages' never_cache)."""

    @login_required
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not is_researcher(request.user):
            raise PermissionDenied("Researcher pages are not open to reviewer accounts.")
        response = view(request, *args, **kwargs)
        add_never_cache_headers(response)
        return response

    wrapped.researcher_only = True  # tests find every researcher page by it
    return wrapped


def researcher_studies(user) -> QuerySet[Study]:
    if user.is_superuser:
        return Study.objects.all()
    return Study.objects.filter(researchers=user)


def researcher_study_or_404(user, slug: str, *, for_update: bool = False) -> Study:
    """The study, if this researcher works on it; 404 otherwise (existence is not revealed)."""
    studies = researcher_studies(user)
    if for_update:
        studies = studies.select_for_update()
    study = studies.filter(slug=slug).first()
    if study is None:
        raise Http404("No such study among yours.")
    return study
