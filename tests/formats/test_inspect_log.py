"""Inspect AI logs: a real log written by the installed inspect-ai (offline, mockllm) is converted.

Regenerate fixtures/formats/inspect.json with:
    .venv/bin/python -m tests.formats.test_inspect_log fixtures/formats/inspect.json
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest

from reviewapp.ingest.formats import FieldError, inspect_log
from tests.formats import mutated_copies

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "fixtures" / "formats" / "inspect.json"

ORDERS = {
    "A-1042": {
        "order_id": "A-1042",
        "total": 240.0,
        "currency": "USD",
        "status": "delivered",
        "days_since": 12,
    },
    "B-7731": {
        "order_id": "B-7731",
        "total": 35.5,
        "currency": "USD",
        "status": "delivered late",
        "days_since": 3,
    },
}
SAMPLES = [
    {
        "id": "refund-1042",
        "input": "Hi, I'd like a refund for order A-1042. The blender stopped working.",
        "target": "reject",
        "metadata": {
            "ai_recommendation": "approve",
            "ai_rationale": "Order is delivered and within the 30-day window; the customer reports a defect.",
            "ai_confidence": 0.82,
            "gold_label": "reject",
            "customer_tier": "standard",
        },
    },
    {
        "id": "refund-7731",
        "input": "My order B-7731 arrived three days late. Can I get my money back?",
        "target": "approve",
        "metadata": {
            "ai_recommendation": "approve",
            "ai_rationale": "Late delivery qualifies for a refund under $50 without manager sign-off.",
            "ai_confidence": 0.91,
            "customer_tier": "gold",
        },
    },
    {
        "id": "refund-9999",
        "input": "Refund order Z-9999 please, it never came.",
        "target": "reject",
        "metadata": {
            "ai_recommendation": "reject",
            "ai_rationale": "The order id does not exist, so there is nothing to refund.",
            "ai_confidence": 0.64,
            "customer_tier": "standard",
        },
    },
]
# tenacity deprecation inside inspect-ai's retry setup; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:The 'initial' parameter is deprecated:DeprecationWarning")
SYSTEM_PROMPT = "You handle refund requests. Refunds above $200 need a manager's approval. Look orders up first."


def generate_log(log_dir: Path, *, model_name: str = "mockllm/model", log_format: str = "json") -> Path:
    """Run a tiny agent eval with mockllm and return the path of its log (``.json`` or ``.eval``)."""
    from inspect_ai import Task
    from inspect_ai import eval as inspect_eval
    from inspect_ai.dataset import Sample
    from inspect_ai.model import ModelOutput, ModelUsage, get_model
    from inspect_ai.solver import generate, system_message, use_tools
    from inspect_ai.tool import ToolError, tool

    @tool
    def lookup_order():
        async def execute(order_id: str) -> str:
            """Look up an order by id.

            Args:
                order_id: The order id, like A-1042.
            """
            if order_id not in ORDERS:
                raise ToolError(f"No order with id {order_id}")
            return json.dumps(ORDERS[order_id])

        return execute

    def script(messages, tools, tool_choice, config):
        # Decide from the conversation, not from call order: samples run concurrently.
        last = messages[-1]
        if last.role == "tool":
            if last.error is not None:
                text = "I could not find that order, so I can't issue a refund. Recommend: reject."
            else:
                order = json.loads(last.text)
                summary = f"{order['status']}, ${order['total']:.2f}"
                text = f"Order {order['order_id']} ({summary}). Recommend: approve."
            output = ModelOutput.from_content("mockllm/model", text)
        else:
            order_id = re.search(r"[A-Z]-\d+", last.text).group(0)
            output = ModelOutput.for_tool_call(
                "mockllm/model",
                "lookup_order",
                {"order_id": order_id},
                tool_call_id=f"call_{order_id}",
                content=f"Let me look up order {order_id}.",
            )
        # Setting usage stops mockllm from counting tokens with tiktoken, which
        # downloads its vocabulary on first use (no network here).
        output.usage = ModelUsage(input_tokens=40, output_tokens=12, total_tokens=52)
        return output

    task = Task(
        name="refund_review",
        dataset=[Sample(**sample) for sample in SAMPLES],
        solver=[system_message(SYSTEM_PROMPT), use_tools(lookup_order()), generate()],
    )
    model = get_model(model_name, custom_outputs=script)
    (log,) = inspect_eval(task, model=model, log_format=log_format, log_dir=str(log_dir), display="none")
    assert log.status == "success", log.error
    return Path(log.location)


def generate_logs(base: Path, runs: list[tuple[str, str]]) -> list[Path]:
    """One real log per ``(model, log_format)``, offline; Inspect's own files stay under ``base``."""
    with pytest.MonkeyPatch.context() as mp:
        for var in ("XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "INSPECT_LOG_DIR"):
            path = base / var.lower()
            path.mkdir(exist_ok=True)
            mp.setenv(var, str(path))
        mp.setenv("INSPECT_TELEMETRY", "")
        return [
            generate_log(base / f"logs{n}", model_name=model, log_format=fmt) for n, (model, fmt) in enumerate(runs)
        ]


@pytest.fixture(scope="module")
def inspect_doc(tmp_path_factory) -> dict:
    (log_path,) = generate_logs(tmp_path_factory.mktemp("inspect"), [("mockllm/model", "json")])
    return json.loads(log_path.read_text())


@pytest.fixture(scope="module")
def records(inspect_doc) -> dict[str, dict]:
    out = {}
    for location, record in inspect_log.iter_records(inspect_doc):
        assert not isinstance(record, FieldError), f"{location}: {record}"
        out[record["metadata"]["sample_id"]] = (location, record)
    return out


def test_it_recognises_a_real_log_and_yields_one_record_per_sample(inspect_doc, records):
    assert inspect_log.looks_like_inspect_log(inspect_doc)
    assert set(records) == {"refund-1042", "refund-7731", "refund-9999"}
    location, record = records["refund-1042"]
    assert location == "sample refund-1042 epoch 1"
    eval_id = inspect_doc["eval"]["eval_id"]
    assert record["external_id"] == f"refund_review/{eval_id}/refund-1042/1"
    assert "refund_review" in record["title"] and "refund-1042" in record["title"]


def test_it_keeps_task_model_run_target_scores_and_counts_as_metadata(inspect_doc, records):
    _, record = records["refund-1042"]
    metadata = record["metadata"]
    assert metadata["eval_id"] == inspect_doc["eval"]["eval_id"]
    assert metadata["run_id"] == inspect_doc["eval"]["run_id"]
    assert metadata["target"] == "reject"
    assert metadata["fidelity"] == {"messages": 5, "tool_calls": 1, "tool_results": 1}
    assert "sample_error" not in metadata


def test_it_keeps_an_errored_sample_and_marks_it():
    sample = _sample([{"role": "user", "content": "q"}], error={"message": "RuntimeError: boom", "traceback": "t"})
    sample["scores"] = {"match": {"value": "I", "answer": "x", "explanation": None}}
    _, record = _only(_log(sample))
    assert record["metadata"]["sample_error"] == "RuntimeError: boom"
    assert record["metadata"]["scores"] == {"match": {"value": "I", "answer": "x"}}
    _, fine = _only(_log(_sample([{"role": "user", "content": "q"}])))
    assert "sample_error" not in fine["metadata"]  # the positive control


def test_it_names_what_conversion_would_lose(monkeypatch):
    # The converter maps one message to one; a regression that drops a tool result is refused.
    real = inspect_log.native.normalize_messages
    monkeypatch.setattr(inspect_log.native, "normalize_messages", lambda m: real([x for x in m if x["role"] != "tool"]))
    messages = [
        {"role": "assistant", "content": "", "tool_calls": [{"id": "1", "function": "f", "arguments": {}}]},
        {"role": "tool", "tool_call_id": "1", "content": "r"},
    ]
    _, result = _only(_log(_sample(messages)))
    assert isinstance(result, FieldError) and result.field == "messages"
    assert "1 of 2 messages" in result.reason and "1 of 1 tool results" in result.reason


def test_it_carries_the_tool_call_and_its_result(records):
    _, record = records["refund-1042"]
    roles = [m["role"] for m in record["messages"]]
    assert roles == ["system", "user", "assistant", "tool", "assistant"]
    system, user, call, result, answer = record["messages"]
    assert system["content"] == SYSTEM_PROMPT
    assert "blender stopped working" in user["content"]
    assert call["content"] == "Let me look up order A-1042."
    assert call["tool_calls"] == [{"id": "call_A-1042", "name": "lookup_order", "arguments": {"order_id": "A-1042"}}]
    assert result["tool_call_id"] == "call_A-1042"
    assert result["name"] == "lookup_order"
    assert json.loads(result["content"])["total"] == 240.0
    assert "is_error" not in result
    assert "Recommend: approve" in answer["content"]


def test_it_marks_a_failed_tool_call_as_an_error_with_its_message(records):
    _, record = records["refund-9999"]
    result = next(m for m in record["messages"] if m["role"] == "tool")
    assert result["is_error"] is True
    assert "No order with id Z-9999" in result["content"]


def test_it_takes_review_fields_out_of_sample_metadata(records):
    _, record = records["refund-1042"]
    assert record["ai_recommendation"] == "approve"
    assert record["ai_confidence"] == 0.82
    assert record["gold_label"] == "reject"
    assert record["ai_rationale"].startswith("Order is delivered")
    metadata = record["metadata"]
    assert metadata["customer_tier"] == "standard"
    assert metadata["task"] == "refund_review" and metadata["model"] == "mockllm/model"
    assert metadata["epoch"] == 1
    assert not set(metadata) & {"ai_recommendation", "ai_rationale", "ai_confidence", "gold_label"}
    _, other = records["refund-7731"]
    assert "gold_label" not in other


def test_it_converts_the_shipped_fixture():
    doc = json.loads(FIXTURE.read_text())
    results = list(inspect_log.iter_records(doc))
    assert len(results) == 3
    for location, record in results:
        assert not isinstance(record, FieldError), f"{location}: {record}"
        assert any(m.get("tool_calls") for m in record["messages"])
        assert any(m["role"] == "tool" for m in record["messages"])
        assert record["ai_recommendation"] in ("approve", "reject")
    assert sum("gold_label" in r for _, r in results) == 1


# --- hand-written logs: content kinds and malformed input ---------------------------------


def _log(*samples, task="demo") -> dict:
    return {
        "version": 2,
        "status": "success",
        "eval": {"task": task, "model": "m/x"},
        "samples": list(samples),
    }


def _sample(messages, sample_id=1, epoch=1, **extra) -> dict:
    return {"id": sample_id, "epoch": epoch, "input": "x", "target": "y", "messages": messages, **extra}


def _only(doc):
    ((location, record),) = list(inspect_log.iter_records(doc))
    return location, record


def test_it_renders_reasoning_images_and_server_tools_as_text():
    content = [
        {"type": "reasoning", "reasoning": "The user wants X."},
        {"type": "text", "text": "Here you go."},
        {"type": "image", "image": "data:image/png;base64,AAAA"},
        {
            "type": "tool_use",
            "tool_type": "web_search",
            "id": "ws1",
            "name": "search",
            "arguments": "q",
            "result": "r",
        },
        {"type": "reasoning", "reasoning": "gAAAA-encrypted", "redacted": True},
    ]
    _, record = _only(_log(_sample([{"role": "user", "content": "hi"}, {"role": "assistant", "content": content}])))
    text = record["messages"][1]["content"]
    assert text.startswith("[reasoning]\nThe user wants X.")
    assert "Here you go." in text and "[image]" in text and "base64" not in text
    assert "[web_search: search] q" in text
    assert "gAAAA" not in text and "[redacted reasoning]" in text
    # What is lost by design is said on the item, never silent.
    assert record["metadata"]["fidelity_warnings"] == [
        "1 image part shown as a placeholder",
        "1 redacted reasoning part shown as a placeholder",
    ]
    _, plain = _only(_log(_sample([{"role": "user", "content": "hi"}])))
    assert "fidelity_warnings" not in plain["metadata"]


def test_it_resolves_attachment_references():
    sample = _sample([{"role": "user", "content": "attachment://abc"}], attachments={"abc": "long text"})
    _, record = _only(_log(sample))
    assert record["messages"][0]["content"] == "long text"


def test_it_uses_external_id_from_metadata_and_passes_probe_fields():
    metadata = {
        "external_id": "ext-9",
        "is_probe": True,
        "priority": 3,
        "gold_label": "a",
        "ai_recommendation": "b",
    }
    _, record = _only(_log(_sample([{"role": "user", "content": "q"}], metadata=metadata)))
    assert record["external_id"] == "ext-9"
    assert record["is_probe"] is True and record["priority"] == 3
    assert "external_id" not in record["metadata"]


def test_it_titles_later_epochs_distinctly():
    location, record = _only(_log(_sample([{"role": "user", "content": "q"}], sample_id="s", epoch=2)))
    assert location == "sample s epoch 2"
    assert record["external_id"] == "demo/s/2"  # a log without an eval id: task, sample, epoch
    assert "epoch 2" in record["title"]


@pytest.mark.parametrize(
    ("messages", "field"),
    [
        ("nope", "messages"),
        ([], "messages"),
        ([None], "messages[0]"),
        ([{"role": "robot", "content": "x"}], "messages[0].role"),
        ([{"role": "user", "content": 5}], "messages[0].content"),
        ([{"role": "user", "content": [{"type": "text"}]}], "messages[0].content[0].text"),
        ([{"role": "user", "content": [{"text": "x"}]}], "messages[0].content[0].type"),
        ([{"role": "user", "content": [7]}], "messages[0].content[0]"),
        ([{"role": "assistant", "content": "", "tool_calls": {}}], "messages[0].tool_calls"),
        (
            [{"role": "assistant", "content": "", "tool_calls": [{"id": "1"}]}],
            "messages[0].tool_calls[0].function",
        ),
        ([{"role": "tool", "content": "x", "error": "boom"}], "messages[0].error"),
        ([{"role": "tool", "content": "x", "function": 3}], "messages[0].function"),
    ],
)
def test_it_reports_the_exact_field_of_a_malformed_sample(messages, field):
    location, result = _only(_log(_sample(messages, sample_id=7)))
    assert location == "sample 7 epoch 1"
    assert isinstance(result, FieldError)
    assert result.field == field


def test_it_rejects_deeply_nested_tool_arguments():
    deep: list = []
    for _ in range(200):
        deep = [deep]
    messages = [{"role": "assistant", "content": "", "tool_calls": [{"function": "f", "arguments": {"a": deep}}]}]
    _, result = _only(_log(_sample(messages)))
    assert isinstance(result, FieldError)
    assert result.field == "messages[0].tool_calls[0].arguments"


def test_it_keeps_going_after_a_bad_sample():
    good = _sample([{"role": "user", "content": "fine"}], sample_id="ok")
    results = list(inspect_log.iter_records(_log("junk", {"id": True}, good)))
    assert [loc for loc, _ in results] == ["samples[0]", "samples[1]", "sample ok epoch 1"]
    assert isinstance(results[0][1], FieldError) and isinstance(results[1][1], FieldError)
    assert results[1][1].field == "id"
    assert results[2][1]["messages"] == [{"role": "user", "content": "fine"}]


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ([], "(document)"),
        ({"version": 2}, "eval"),
        ({"version": 2, "eval": {"task": 5}}, "eval.task"),
        ({"version": 2, "eval": {"task": "t"}}, "samples"),
        ({"version": 2, "eval": {"task": "t"}, "samples": {"a": 1}}, "samples"),
    ],
)
def test_it_raises_for_a_log_that_is_malformed_as_a_whole(doc, field):
    with pytest.raises(FieldError) as exc:
        list(inspect_log.iter_records(doc))
    assert exc.value.field == field


def test_it_only_claims_documents_that_look_like_inspect_logs():
    assert inspect_log.looks_like_inspect_log(_log())
    assert not inspect_log.looks_like_inspect_log({"messages": []})
    assert not inspect_log.looks_like_inspect_log({"version": 1, "eval": "x"})
    assert not inspect_log.looks_like_inspect_log([1])
    assert not inspect_log.looks_like_inspect_log(None)


def test_it_survives_arbitrary_damage_to_a_real_log():
    # Each sample comes out as a record or a FieldError; only a broken top level raises.
    doc = json.loads(FIXTURE.read_text())
    for sample in doc["samples"]:
        sample["events"] = []  # the converter never reads events: spend the damage on the rest
    for damaged in mutated_copies(doc, seed=3, count=400):
        try:
            for _, record in inspect_log.iter_records(damaged):
                assert isinstance(record, (dict, FieldError))
        except FieldError:
            pass


if __name__ == "__main__":
    import tempfile

    target = Path(sys.argv[1]) if len(sys.argv) > 1 else FIXTURE
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("INSPECT_LOG_DIR", tmp)
        path = generate_log(Path(tmp))
        doc = json.loads(path.read_text())
    target.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    sys.stdout.write(f"wrote {target} ({target.stat().st_size} bytes)\n")
