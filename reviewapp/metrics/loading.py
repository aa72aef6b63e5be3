"""Load one study's labels for the stats core in one pass: a binary COPY straight into numpy.

Every column is fixed-width and never NULL (missing codes are -1, missing numbers NaN),
so PostgreSQL's binary COPY rows all have the same layout and parse as one numpy
structured array, with no Python object per label: a million labels load in about a
second. Format: PostgreSQL documentation, COPY, "Binary Format".
"""

from __future__ import annotations

import numpy as np
from django.db import connection
from psycopg import sql

from reviewapp.ingest.models import Item
from reviewapp.queue.models import Assignment, Label, LateSubmission
from reviewapp.studies.models import Study

from .compute import LabelData

COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
# What counts as evidence opened (the rubber-stamp indicator): a tool call or output expanded,
# the rationale opened behind "Why?", or the rationale seen. The review page shows the rationale
# expanded by default, where there is nothing to open ("rationale_opened" stays 0) and it records
# "rationale_seen" = 1 once the rationale was on screen long enough to read: without that key a
# reviewer who read every rationale would score as never looking at the evidence.
EVIDENCE_KEYS = ("tool_calls_expanded", "outputs_expanded", "rationale_opened", "rationale_seen")
UPTAKE_PARTS = ("rationale", "recommendation")


def _uptake(part: str) -> sql.Composed:
    # 1 seen, 0 not seen, -1 when the label has no record (stored before uptake was
    # recorded, or sent without JavaScript): unknown, never "not seen".
    return sql.SQL("coalesce(CASE l.interactions ->> {} WHEN '0' THEN 0 WHEN '1' THEN 1 END, -1)").format(
        sql.Literal(f"{part}_seen")
    )


def _choice_code(value_sql: sql.Composable, choices: list[str]) -> sql.Composed:
    # array_position is 1-based and NULL when absent: 0-based code, -1 when missing.
    return sql.SQL("coalesce(array_position({}::text[], {}), 0) - 1").format(sql.Literal(choices), value_sql)


def _columns(schema: dict) -> tuple[list[sql.Composable], list[tuple[str, str]], list[str]]:
    decision = next(f for f in schema["fields"] if f.get("decision"))
    choices = list(decision.get("choices", []))
    key = sql.Literal(decision["name"])
    # Counts are stored as JSON integers (validated on submit), so "opened" is any of them
    # other than 0: a text comparison, much cheaper than casting a million values.
    evidence = sql.SQL(" OR ").join(
        sql.SQL("coalesce(l.interactions ->> {}, '0') <> '0'").format(sql.Literal(k)) for k in EVIDENCE_KEYS
    )
    columns: list[tuple[str, str, sql.Composable]] = [
        ("label_id", ">i8", sql.SQL("l.id")),
        ("reviewer", ">i8", sql.SQL("l.reviewer_id::int8")),
        ("item", ">i8", sql.SQL("l.item_id::int8")),
        ("arm", ">i8", sql.SQL("l.arm_id::int8")),
        ("submitted", ">f8", sql.SQL("extract(epoch FROM l.submitted_at)::float8")),
        ("seconds", ">f8", sql.SQL("coalesce(extract(epoch FROM l.submitted_at - l.shown_at)::float8, 'NaN')")),
        ("decision", ">i4", _choice_code(sql.SQL("l.values ->> {}").format(key), choices)),
        ("initial", ">i4", _choice_code(sql.SQL("l.initial_values ->> {}").format(key), choices)),
        ("ai", ">i4", _choice_code(sql.SQL("i.ai_recommendation #>> '{}'"), choices)),
        ("gold", ">i4", _choice_code(sql.SQL("i.gold_label #>> '{}'"), choices)),
        ("is_probe", ">i4", sql.SQL("i.is_probe::int4")),
        ("word_count", ">i4", sql.SQL("i.word_count::int4")),
        ("evidence_opened", ">i4", sql.SQL("({})::int4").format(evidence)),
        *((f"{part}_seen", ">i4", _uptake(part)) for part in UPTAKE_PARTS),
    ]
    field_names = []
    for index, schema_field in enumerate(schema["fields"]):
        name = f"field_{index}"
        value = sql.SQL("l.values ->> {}").format(sql.Literal(schema_field["name"]))
        if schema_field["type"] == "interval":
            number = sql.SQL(
                "CASE WHEN jsonb_typeof(l.values -> {}) = 'number' THEN ({})::float8 ELSE 'NaN' END"
            ).format(sql.Literal(schema_field["name"]), value)
            columns.append((name, ">f8", number))
        else:
            columns.append((name, ">i4", _choice_code(value, list(schema_field["choices"]))))
        field_names.append(schema_field["name"])
    return [c[2] for c in columns], [(c[0], c[1]) for c in columns], field_names


def _parse_binary_copy(payload: bytes | bytearray, layout: list[tuple[str, str]]) -> np.ndarray:
    if not payload.startswith(COPY_SIGNATURE):
        raise ValueError("not a PostgreSQL binary COPY stream")
    extension = int.from_bytes(payload[15:19], "big")
    body = memoryview(payload)[19 + extension : len(payload) - 2]  # the trailer is int16 -1
    row = [("field_count", ">i2")]
    for name, kind in layout:
        row += [(f"{name}__length", ">i4"), (name, kind)]
    rows = np.frombuffer(body, dtype=np.dtype(row))
    if len(rows) and (rows["field_count"] != len(layout)).any():
        raise ValueError("unexpected row layout in the COPY stream")
    return rows


def labels_load(study: Study) -> LabelData:
    """Every current label of the study with its item's AI output, gold and size."""
    expressions, layout, field_names = _columns(study.label_schema)
    query = sql.SQL(
        "COPY (SELECT {columns} FROM {label} l JOIN {item} i ON i.id = l.item_id "
        "WHERE l.study_id = {study} "
        # Corrections supersede: only the newest label of a chain counts.
        "AND NOT EXISTS (SELECT 1 FROM {label} s WHERE s.supersedes_id = l.id) "
        "ORDER BY l.id) TO STDOUT (FORMAT BINARY)"
    ).format(
        columns=sql.SQL(", ").join(expressions),
        label=sql.Identifier(Label._meta.db_table),
        item=sql.Identifier(Item._meta.db_table),
        study=sql.Literal(study.pk),
    )
    # One growing buffer rather than a list of a million row messages joined at the end:
    # half the peak memory.
    payload = bytearray()
    with connection.cursor() as cursor, cursor.cursor.copy(query) as copy:
        for chunk in copy:
            payload += chunk
    rows = _parse_binary_copy(payload, layout)

    def column(name: str, dtype) -> np.ndarray:
        return rows[name].astype(dtype)

    return LabelData(
        label_id=column("label_id", np.int64),
        reviewer=column("reviewer", np.int64),
        item=column("item", np.int64),
        arm=column("arm", np.int64),
        submitted=column("submitted", np.float64),
        seconds=column("seconds", np.float64),
        decision=column("decision", np.int32),
        initial=column("initial", np.int32),
        ai=column("ai", np.int32),
        gold=column("gold", np.int32),
        is_probe=column("is_probe", np.int32).astype(bool),
        word_count=column("word_count", np.int32),
        evidence_opened=column("evidence_opened", np.int32).astype(bool),
        rationale_seen=column("rationale_seen", np.int32),
        recommendation_seen=column("recommendation_seen", np.int32),
        fields={
            name: column(f"field_{i}", np.float64 if rows.dtype[f"field_{i}"].kind == "f" else np.int32)
            for i, name in enumerate(field_names)
        },
    )


def data_watermark(study: Study) -> dict:
    """What a run's numbers depend on: labels (append-only, so the newest id and the
    count say whether any arrived), the study's settings, and the items' gold and probes
    (gold can be set after ingest)."""
    with connection.cursor() as cursor:
        cursor.execute(
            sql.SQL("SELECT coalesce(max(id), 0), count(*) FROM {label} WHERE study_id = %s").format(
                label=sql.Identifier(Label._meta.db_table)
            ),
            [study.pk],
        )
        max_label_id, label_count = cursor.fetchone()
        # A fingerprint of gold labels, probes and AI recommendations: setting gold or
        # generating probes after ingest changes the AI-right / AI-wrong split.
        cursor.execute(
            sql.SQL(
                "SELECT count(*) FILTER (WHERE gold_label IS NOT NULL), count(*) FILTER (WHERE is_probe), "
                "coalesce(sum(hashtext(id::text || coalesce(gold_label::text, '') || "
                "coalesce(ai_recommendation::text, '') || is_probe::text)::int8) "
                "FILTER (WHERE gold_label IS NOT NULL OR is_probe), 0)::text "
                "FROM {item} WHERE study_id = %s"
            ).format(item=sql.Identifier(Item._meta.db_table)),
            [study.pk],
        )
        gold_count, probe_count, gold_fingerprint = cursor.fetchone()
    return {
        "max_label_id": max_label_id,
        "label_count": label_count,
        "gold_items": gold_count,
        "probe_items": probe_count,
        "gold_fingerprint": gold_fingerprint,
        "study_updated_at": study.updated_at.isoformat(),
    }


def exclusion_counts(study: Study) -> dict:
    """What the metrics leave out, counted when a run loads its labels (so the methods
    paragraph describes the data the run used, without a pass over the tables per page view):
    skipped assignments, late answers kept for the record, and superseded (corrected) labels."""
    return {
        "skipped": Assignment.objects.filter(study=study, state=Assignment.State.SKIPPED).count(),
        "late": LateSubmission.objects.filter(assignment__study=study).count(),
        "corrections": Label.objects.filter(study=study, superseded_by__isnull=False).count(),
    }
