"""Label schemas: pure functions, no Django.

A study's label schema is JSON::

    {
      "fields": [
        {"name": "decision", "type": "nominal", "choices": ["approve", "reject"],
         "decision": true, "block_value": "reject",
         "label": "Should the agent's action be approved?"},
        {"name": "severity", "type": "ordinal", "choices": ["none", "low", "high"]},
        {"name": "clarity", "type": "interval", "min": 1, "max": 7}
      ],
      "confidence": true,     # ask the reviewer for their confidence (optional)
      "comment": true         # free-text comment (optional)
    }

Exactly one field is the *decision*: the one the AI recommends on, and the one the
deference metrics compare. Its type is the level of measurement passed to
Krippendorff's alpha, so it is always explicit.

The decision field may name the choice that blocks the agent's action (``"block_value"``):
the decision-quality metrics (catch rate, block precision, false-block rate) count that
answer as a block and every other answer as letting the action go ahead.
"""

from __future__ import annotations

import math
from typing import Any

FIELD_TYPES = ("nominal", "ordinal", "interval")

# A study's rubber-stamp thresholds when it sets none of its own (Study.flag_thresholds): the
# study form offers them, and the metrics' stats core (reviewapp/metrics/stats/rubber_stamp.py)
# applies them; each indicator is explained there, with its source.
DEFAULT_FLAG_THRESHOLDS: dict[str, float] = {
    "probe_agree_max": 0.5,
    "discrimination_gap_min": 0.1,
    "fast_share_max": 0.3,
    "streak_ratio_max": 2.0,
    "entropy_min": 0.3,
    "evidence_opened_min": 0.2,
    "drift_max": 0.25,
}
MAX_FIELDS = 20
MAX_CHOICES = 50

DEFAULT_LABEL_SCHEMA: dict[str, Any] = {
    "fields": [
        {
            "name": "decision",
            "type": "nominal",
            "choices": ["approve", "reject"],
            "decision": True,
            "block_value": "reject",
            "label": "Should the agent's proposed action go ahead?",
        }
    ],
    "confidence": True,
    "comment": True,
}


def schema_errors(schema: Any) -> list[str]:
    """Every problem with a schema, as sentences a study admin can act on."""
    if not isinstance(schema, dict):
        return ["The label schema must be a JSON object with a 'fields' list."]
    fields = schema.get("fields")
    if not isinstance(fields, list) or not fields:
        return ["The label schema needs a non-empty 'fields' list."]
    if len(fields) > MAX_FIELDS:
        return [f"The label schema has {len(fields)} fields; at most {MAX_FIELDS} are allowed."]
    errors: list[str] = []
    names: set[str] = set()
    decisions = 0
    for i, field in enumerate(fields):
        where = f"fields[{i}]"
        if not isinstance(field, dict):
            errors.append(f"{where} must be an object.")
            continue
        name = field.get("name")
        if not isinstance(name, str) or not name.isidentifier():
            errors.append(f"{where}.name must be a short identifier (letters, digits, underscore).")
        elif name in names:
            errors.append(f"{where}.name '{name}' is used twice.")
        else:
            names.add(name)
        kind = field.get("type")
        if kind not in FIELD_TYPES:
            errors.append(f"{where}.type must be one of {', '.join(FIELD_TYPES)}.")
        elif kind in ("nominal", "ordinal"):
            errors.extend(_choice_errors(field.get("choices"), where))
        else:
            errors.extend(_range_errors(field, where))
        if field.get("decision") is True:
            decisions += 1
        if "block_value" in field:
            errors.extend(_block_value_errors(field, where))
    if decisions != 1:
        errors.append(f'Exactly one field must have "decision": true; found {decisions}.')
    return errors


def _choice_errors(choices: Any, where: str) -> list[str]:
    if not isinstance(choices, list) or len(choices) < 2:
        return [f"{where}.choices must list at least two choices."]
    if len(choices) > MAX_CHOICES:
        return [f"{where}.choices has {len(choices)} entries; at most {MAX_CHOICES}."]
    if not all(isinstance(c, str) and c for c in choices):
        return [f"{where}.choices must be non-empty strings."]
    if len(set(choices)) != len(choices):
        return [f"{where}.choices has duplicates."]
    return []


def _block_value_errors(field: dict, where: str) -> list[str]:
    """The "block_value" names the decision answer that blocks the action: only on the decision
    field, only with choices, and one of them exactly."""
    value = field["block_value"]
    if field.get("decision") is not True:
        return [f'{where}.block_value: only the decision field (the one with "decision": true) can mark a block value.']
    choices = field.get("choices")
    if field.get("type") not in ("nominal", "ordinal") or not isinstance(choices, list):
        return [f"{where}.block_value needs a nominal or ordinal decision field with choices."]
    if not isinstance(value, str) or value not in choices:
        listed = ", ".join(repr(c) for c in choices if isinstance(c, str))
        return [f"{where}.block_value {value!r} is not one of the field's choices ({listed})."]
    return []


def without_block_value(schema: dict) -> dict:
    """The schema as reviewers meet it: the block value is analysis only (which answer
    decision quality counts as a block), so marking it changes nobody's labelling and may
    change after the design is locked (migration studies/0008 holds the same rule)."""
    fields = [{k: v for k, v in f.items() if k != "block_value"} for f in schema.get("fields", [])]
    return {**schema, "fields": fields}


def with_block_value(schema: dict, value: str | None) -> dict:
    """The schema with its decision field's block value set (None or "": removed)."""
    fields = []
    for field in schema.get("fields", []):
        field = {k: v for k, v in field.items() if k != "block_value"}
        if field.get("decision") is True and value:
            field["block_value"] = value
        fields.append(field)
    return {**schema, "fields": fields}


def block_value(schema: dict) -> str | None:
    """The decision answer that blocks the agent's action, or None when the schema marks none."""
    return decision_field(schema).get("block_value")


def _range_errors(field: dict, where: str) -> list[str]:
    low, high = field.get("min"), field.get("max")
    if not all(_is_number(v) for v in (low, high)):
        return [f"{where} (interval) needs numeric 'min' and 'max'."]
    if low >= high:
        return [f"{where}: 'min' must be below 'max'."]
    return []


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def decision_field(schema: dict) -> dict:
    """The one field the AI recommends on (the schema must be valid)."""
    return next(f for f in schema["fields"] if f.get("decision") is True)


def value_error(field: dict, value: Any) -> str | None:
    """Why ``value`` is not a valid answer for ``field``, or None when it is."""
    if field["type"] in ("nominal", "ordinal"):
        if value not in field["choices"] or not isinstance(value, str):
            return f"{value!r} is not one of {', '.join(field['choices'])}"
        return None
    if not _is_number(value):
        return f"{value!r} is not a number"
    if not field["min"] <= value <= field["max"]:
        return f"{value} is outside {field['min']}..{field['max']}"
    return None
