"""The published reference values (fixtures/reference/agreement_reference.json, a copy of
the team's shared reference file, so the tests run from a fresh clone)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

PATH = Path(__file__).resolve().parents[2] / "fixtures" / "reference" / "agreement_reference.json"


@cache
def _reference() -> dict:
    return json.loads(PATH.read_text())


def reference(name: str) -> dict:
    """A dataset from "references" (reliability data, tables)."""
    return next(case for case in _reference()["references"] if case["name"] == name)


def vector(name: str) -> dict:
    """A case from "vectors" (proportions, differences, reliance metrics)."""
    return next(case for case in _reference()["vectors"] if case["name"] == name)
