"""Imports follow the flow: studies -> ingest -> queue -> review -> metrics -> reports -> demo.

An app may import from the apps before it in the flow and from the shared modules (the job
kernel, rendering, security), never from an app after it: a dependency that runs against
the flow, even a lazy import inside a function, fails this test. Later stages act on what
earlier ones did through the signals the earlier apps define (e.g. reviewapp/ingest/signals.py),
which the later apps subscribe to.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

FLOW = ["studies", "ingest", "queue", "review", "metrics", "reports", "demo"]
# Modules of the project package itself that any app may use; they import no app.
SHARED = {"jobs", "rendering", "security"}
# The project's wiring, which must see every app.
WIRING = {"urls", "settings", "celery", "wsgi", "asgi", "embedded_db", "__init__"}
PACKAGE = ROOT / "reviewapp"


def imported_modules(source: str) -> list[tuple[int, str]]:
    """(line, absolute module) of every import in ``source``, at any depth."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def against_the_flow(owner: str, source: str) -> list[str]:
    """The imports of a module of ``owner`` (an app, or a shared module) that run against the flow."""
    problems = []
    for line, module in imported_modules(source):
        parts = module.split(".")
        if parts[0] != "reviewapp" or len(parts) < 2:
            continue
        target = parts[1]
        if target in SHARED or target == owner:
            continue
        if owner in SHARED:
            if target not in WIRING or target == "urls":
                problems.append(f"line {line}: shared module imports {module}")
        elif target in FLOW and FLOW.index(target) > FLOW.index(owner):
            problems.append(f"line {line}: {owner} imports {module}, which comes later in the flow")
        elif target not in FLOW and target not in WIRING:
            problems.append(f"line {line}: {module} is not an app of the flow nor a shared module")
    return problems


def modules() -> list[tuple[str, Path]]:
    owned = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).parts
        owner = parts[0].removesuffix(".py")
        if owner in WIRING:
            continue
        owned.append((owner, path))
    return owned


class TestImportDirection:
    def test_every_app_is_in_the_flow_or_shared(self):
        owners = {owner for owner, _ in modules()}
        assert owners <= set(FLOW) | SHARED, owners - set(FLOW) - SHARED

    @pytest.mark.parametrize("owner", FLOW + sorted(SHARED))
    def test_no_import_runs_against_the_flow(self, owner):
        problems = [
            f"{path.relative_to(ROOT)} {problem}"
            for module_owner, path in modules()
            if module_owner == owner
            for problem in against_the_flow(owner, path.read_text())
        ]
        assert problems == []

    def test_the_check_finds_an_import_against_the_flow(self):
        """The control: a base-app module importing a later app, at the top or lazily, is caught."""
        top = "from reviewapp.queue.services import quotas_sync\n"
        lazy = "def start():\n    from reviewapp.metrics import views\n"
        assert against_the_flow("studies", top) == [
            "line 1: studies imports reviewapp.queue.services, which comes later in the flow",
            "line 1: studies imports reviewapp.queue.services.quotas_sync, which comes later in the flow",
        ]
        assert len(against_the_flow("studies", lazy)) == 2
        assert against_the_flow("reports", top) == []  # later apps may import earlier ones
        assert against_the_flow("jobs", "from reviewapp.ingest.models import Item\n") != []
