"""Every advisory-lock namespace is used by one thing only.

PostgreSQL advisory locks are (namespace, key) pairs shared by the whole database: two users
of one namespace with the same key block or skip each other (an ingest job once shared its
namespace with the tallies' fold, keyed by job id and study id alike). The namespaces are
the job kinds' ``LOCK`` and the module constants named ``..._LOCK``.
"""

from __future__ import annotations

import ast
from collections import Counter

from reviewapp.jobs import job_kinds
from tests.conftest import ROOT


def module_lock_constants() -> dict[str, int]:
    """``NAME_LOCK = <int>`` at module level and ``LOCK = <int>`` in classes, by where they stand."""
    found = {}
    for path in sorted((ROOT / "reviewapp").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
                for target in node.targets:
                    if isinstance(target, ast.Name) and (target.id == "LOCK" or target.id.endswith("_LOCK")):
                        if isinstance(node.value.value, int):
                            found[f"{path.relative_to(ROOT)}:{node.lineno} {target.id}"] = node.value.value
    return found


def shared(namespaces: dict[str, int]) -> dict[int, list[str]]:
    counts = Counter(namespaces.values())
    return {value: sorted(k for k, v in namespaces.items() if v == value) for value, n in counts.items() if n > 1}


class TestLockNamespaces:
    def test_no_two_users_share_a_namespace(self):
        namespaces = module_lock_constants()
        assert {f"{m.KIND} job" for m in job_kinds().values()} and len(namespaces) >= len(job_kinds())
        assert shared(namespaces) == {}

    def test_every_job_kind_declares_its_namespace_in_source(self):
        constants = set(module_lock_constants().values())
        assert {model.LOCK for model in job_kinds().values()} <= constants

    def test_the_check_finds_a_shared_namespace(self):
        """The control: the collision this test was written for is reported."""
        assert shared({"ingest job": 7_341_003, "tally fold": 7_341_003, "export job": 7_341_006}) == {
            7_341_003: ["ingest job", "tally fold"]
        }
