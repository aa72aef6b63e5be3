"""Plain builders shared by the whole suite: people, enrolments, items, records, a labelled study.

Fixtures live in tests/conftest.py (the study, its token and the fixed cast of users); these are
the functions behind them and the ones a test calls with its own arguments. Test modules import
from here, never from each other.
"""

from __future__ import annotations

import csv
import io
import json
from itertools import count
from typing import Any

import orjson
from django.contrib.auth.models import User
from django.utils import timezone

from reviewapp.ingest.models import Item
from reviewapp.ingest.parsing import parse_jsonl
from reviewapp.ingest.services import items_ingest
from reviewapp.jobs import job_run
from reviewapp.metrics.models import MetricRun
from reviewapp.metrics.services import metric_run_request
from reviewapp.queue.services import claim_next, label_submit, quotas_sync
from reviewapp.studies.models import Arm, Enrolment, Study
from reviewapp.studies.services import enrolment_create

# Every account built here logs in with this password (the test settings hash with MD5: cheap).
PASSWORD = "pw-review-123"
APPROVE = {"decision": "approve"}
_numbers = count(1)


# --- people -------------------------------------------------------------------------------


def user(username: str, **fields) -> User:
    """An account that can log in with PASSWORD; ``is_staff=True`` makes it a researcher account."""
    return User.objects.create_user(username, password=PASSWORD, **fields)


def researcher_of(study: Study, username: str = "rosa") -> User:
    """A researcher of the study (staff, on its researchers list)."""
    researcher = user(username, is_staff=True)
    study.researchers.add(researcher)
    return researcher


def enrol(study: Study, who: str | User, arm_name: str) -> User:
    """Place a reviewer (a new account when given a username) in the named arm, as an admin would."""
    reviewer = user(who) if isinstance(who, str) else who
    arm = Arm.objects.get(study=study, name=arm_name)
    sequence = Enrolment.objects.filter(study=study).count()
    Enrolment.objects.create(
        study=study, reviewer=reviewer, arm=arm, seed=1, sequence=sequence, source="admin", allocated_at=timezone.now()
    )
    return reviewer


def enrol_allocated(study: Study, username: str | None = None) -> User:
    """A new reviewer whose arm the study's randomisation chooses (``enrolment_create``, as the app does)."""
    reviewer = user(username or f"reviewer-{next(_numbers)}")
    enrolment_create(study=study, reviewer=reviewer, source=Enrolment.Source.ADMIN)
    return reviewer


def reviewers_by_arm(study: Study, wanted: dict[str, int]) -> dict[str, list[User]]:
    """Enrol reviewers until each named arm has as many as wanted (allocation is the study's)."""
    by_arm: dict[str, list[User]] = {name: [] for name in wanted}
    for _ in range(60):
        if all(len(by_arm[name]) >= n for name, n in wanted.items()):
            return by_arm
        reviewer = enrol_allocated(study)
        arm = Enrolment.objects.get(study=study, reviewer=reviewer).arm.name
        if arm in by_arm and len(by_arm[arm]) < wanted[arm]:
            by_arm[arm].append(reviewer)
    raise AssertionError(f"allocation did not fill {wanted}")


# --- logging in ------------------------------------------------------------------------------

LOGIN = "/accounts/login/"


def login_attempt(client, username: str, password: str, **extra):
    """A POST of the login form (counted by django-axes like any other)."""
    return client.post(LOGIN, {"username": username, "password": password}, **extra)


def logged_in_as(client) -> str | None:
    """The username the client's session belongs to, or None."""
    user_id = client.session.get("_auth_user_id")
    return User.objects.get(pk=user_id).username if user_id else None


# --- items and records ----------------------------------------------------------------------

TRANSCRIPT = {
    "title": "Refund over the limit",
    "messages": [
        {"role": "system", "content": "You are a support agent. Refunds over $200 need a manager."},
        {"role": "user", "content": "Please refund order **A-1** ($240)."},
        {
            "role": "assistant",
            "content": "Looking it up.",
            "tool_calls": [{"id": "c1", "name": "lookup_order", "arguments": {"order_id": "A-1"}}],
        },
        {
            "role": "tool",
            "tool_call_id": "c1",
            "name": "lookup_order",
            "content": '{"total": 240, "status": "delivered"}',
        },
        {"role": "assistant", "content": "Refunding $240 now."},
    ],
}


def make_item(study: Study, external_id: str = "i1", **fields) -> Item:
    """One item row written directly, outside the queue (for pages and constraints)."""
    defaults = {
        "source_format": "native",
        "payload": {"title": "t", "messages": [{"role": "user", "content": "hi"}]},
        "content_hash": "0" * 64,
        "ai_recommendation": "approve",
    }
    return Item.objects.create(study=study, external_id=external_id, **{**defaults, **fields})


def make_items(study: Study, count: int, *, prefix: str = "item", **fields) -> list[Item]:
    """``count`` items with a full transcript, in the study's queue."""
    defaults = {
        "source_format": "native",
        "payload": TRANSCRIPT,
        "content_hash": "0" * 64,
        "ai_recommendation": "approve",
        "ai_rationale": "The customer is **eligible**.",
        "ai_confidence": 0.9,
    }
    items = [
        Item.objects.create(study=study, external_id=f"{prefix}-{n}", **{**defaults, **fields}) for n in range(count)
    ]
    quotas_sync(study=study)
    return items


def ingest(study: Study, *external_ids: str, priority: int = 0) -> list[Item]:
    """Load items the way a pipeline does, in the given order (so ids grow with it)."""
    lines = (
        orjson.dumps(
            {
                "external_id": external_id,
                "messages": [{"role": "user", "content": f"Please refund order {external_id}."}],
                "ai_recommendation": "approve",
                "priority": priority,
            }
        )
        for external_id in external_ids
    )
    outcome = items_ingest(study=study, results=parse_jsonl(lines))
    assert outcome.committed and outcome.created == len(external_ids), outcome.summary()
    return list(Item.objects.filter(study=study, external_id__in=external_ids).order_by("id"))


def record(**overrides) -> dict:
    """A valid native ingest record (a refund over the limit); keyword arguments replace fields."""
    base = {
        "external_id": "run-1",
        "title": "Refund over limit",
        "messages": [
            {"role": "system", "content": "You are a support agent. Refunds above $200 need a manager."},
            {"role": "user", "content": "Please refund order A-1 ($240)."},
            {
                "role": "assistant",
                "content": "Looking up the order.",
                "tool_calls": [{"id": "c1", "name": "lookup_order", "arguments": {"order_id": "A-1"}}],
            },
            {"role": "tool", "tool_call_id": "c1", "name": "lookup_order", "content": '{"total": 240}'},
            {"role": "assistant", "content": "I will refund $240 now."},
        ],
        "ai_recommendation": "approve",
        "ai_rationale": "The customer is eligible.",
        "ai_confidence": 0.9,
        "gold_label": "reject",
    }
    base.update(overrides)
    return base


def jsonl_body(*records: dict) -> bytes:
    """Records as a JSON Lines body, one per line."""
    return b"".join(orjson.dumps(r) + b"\n" for r in records)


# --- the labelled study -----------------------------------------------------------------------
# A small study whose metrics the tests work out by hand (tests/metrics, tests/reports): the AI
# recommends "approve" on all four items; gold says it is right on the first two.

GOLD = {"i1": "approve", "i2": "approve", "i3": "reject", "i4": "reject"}


def load_items(study: Study) -> None:
    """Items i1..i4, with the gold labels above, through the ingest service."""
    lines = [
        orjson.dumps(
            {
                "external_id": external_id,
                "messages": [{"role": "user", "content": f"Refund order {external_id}?"}],
                "ai_recommendation": "approve",
                "gold_label": gold,
            }
        )
        for external_id, gold in GOLD.items()
    ]
    assert items_ingest(study=study, results=parse_jsonl(lines)).committed


def label_in_order(study: Study, reviewer: User, decisions: str) -> None:
    """The reviewer answers i1..i4 (served oldest first): a = approve, r = reject."""
    for letter in decisions:
        assignment = claim_next(study=study, reviewer=reviewer)
        value = {"a": "approve", "r": "reject"}[letter]
        label_submit(study=study, reviewer=reviewer, assignment_id=assignment.pk, values={"decision": value})


def make_labelled(study: Study) -> Study:
    """Two control and two rationale reviewers with known answers: 16 labels."""
    load_items(study)
    people = reviewers_by_arm(study, {"control": 2, "rationale": 2})
    c1, c2 = people["control"]
    r1, r2 = people["rationale"]
    label_in_order(study, c1, "arrr")  # agrees with the (hidden) AI on i1 only
    label_in_order(study, c2, "aara")  # agrees on i1, i2, i4
    label_in_order(study, r1, "aaaa")  # agrees on all four
    label_in_order(study, r2, "aara")  # agrees on i1, i2, i4
    return study


def compute_metrics(study: Study) -> MetricRun:
    """Request a metrics run and run it here, as the worker would; the finished run."""
    run, created = metric_run_request(study=study)
    assert created
    return job_run(MetricRun, run.pk)


# --- reading responses -----------------------------------------------------------------------


def body(response) -> bytes:
    """The bytes of a response, streamed or not."""
    return b"".join(response.streaming_content) if response.streaming else response.content


def csv_rows(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body(response).decode("utf-8"), newline="")))


def csv_dicts(response) -> list[dict[str, str]]:
    header, *rows = csv_rows(response)
    return [dict(zip(header, row, strict=True)) for row in rows]


# --- OTLP JSON documents (OpenTelemetry GenAI spans) -----------------------------------------

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def any_value(value: Any) -> dict:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}  # int64 is a string in OTLP JSON
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, list):
        return {"arrayValue": {"values": [any_value(v) for v in value]}}
    if isinstance(value, dict):
        return {"kvlistValue": {"values": [{"key": k, "value": any_value(v)} for k, v in value.items()]}}
    return {"stringValue": value}


def attributes(values: dict) -> list[dict]:
    return [{"key": key, "value": any_value(value)} for key, value in values.items()]


def span(
    span_id: str,
    start: int,
    attrs: dict,
    *,
    parent: str = "root",
    name: str = "",
    trace: str = TRACE,
    **extra,
) -> dict:
    out = {
        "traceId": trace,
        "spanId": span_id,
        "parentSpanId": "" if span_id == "root" else parent,
        "name": name or span_id,
        "startTimeUnixNano": str(1_700_000_000_000_000_000 + start),
        "endTimeUnixNano": str(1_700_000_000_000_000_000 + start + 1),
        "attributes": attributes(attrs),
    }
    out.update(extra)
    return out


def root(start: int = 0, trace: str = TRACE, **attrs) -> dict:
    return span(
        "root",
        start,
        {"gen_ai.operation.name": "invoke_agent", **attrs},
        name="invoke_agent shop",
        trace=trace,
    )


def document(*spans: dict, service: str = "shop-agent") -> dict:
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": attributes({"service.name": service})},
                "scopeSpans": [{"scope": {"name": "test"}, "spans": list(spans)}],
            }
        ]
    }


def chat(span_id: str, start: int, inputs: list | None = None, outputs: list | None = None, **attrs) -> dict:
    values: dict[str, Any] = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4.1", **attrs}
    if inputs is not None:
        values["gen_ai.input.messages"] = json.dumps(inputs)
    if outputs is not None:
        values["gen_ai.output.messages"] = json.dumps(outputs)
    return span(span_id, start, values, name="chat gpt-4.1")


def tool_span(
    span_id: str, start: int, call_id: str, name: str, result: Any = None, arguments: Any = None, **extra
) -> dict:
    values: dict[str, Any] = {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": name,
        "gen_ai.tool.call.id": call_id,
    }
    if result is not None:
        values["gen_ai.tool.call.result"] = result
    if arguments is not None:
        values["gen_ai.tool.call.arguments"] = arguments
    return span(span_id, start, values, name=f"execute_tool {name}", **extra)


def text(role: str, content: str) -> dict:
    return {"role": role, "parts": [{"type": "text", "content": content}]}


def call(call_id: str, name: str, arguments: Any) -> dict:
    return {
        "role": "assistant",
        "parts": [{"type": "tool_call", "id": call_id, "name": name, "arguments": arguments}],
    }


def response(call_id: str, value: Any) -> dict:
    return {"role": "tool", "parts": [{"type": "tool_call_response", "id": call_id, "response": value}]}
