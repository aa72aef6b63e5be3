"""Transcript format converters: pure functions, no Django.

Every converter turns one source format into the app's *native* message list
(see ``native.py`` and docs/ingest.md, "Formats"). A converter raises
``FieldError`` naming the offending field path and the reason; the caller adds
the record's location (line / index / trace / sample).
"""

from __future__ import annotations


class FieldError(ValueError):
    """A record field is missing, mistyped or out of range."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
