"""Strict JSON lines, trimmed values, exact decimals and the per-file stats behind drift checks."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from jobs.ingest.parse import LineFields, LineTyper, build_file_summaries, classify_lines, json_fields, merge_file_stats
from jobs.lake.contracts import Column, Contract

LINES_SCHEMA = "source_file string, line_number bigint, raw string, has_invalid_utf8 boolean"

TINY = Contract(
    name="raw.tiny",
    version=1,
    columns=(
        Column("id", "string", nullable=False),
        Column("at", "timestamp", nullable=False),
        Column("kind", "string", nullable=False, allowed=("a", "b")),
        Column("amt", "decimal(6,2)", nullable=True, min=0),
    ),
    keys=("id",),
    event_time="at",
)


def test_json_fields_accepts_one_strict_object_per_line_only() -> None:
    lines = [
        ('{"id":"x","n":3,"o":{"k":1},"s":"{text}"}', False),
        (' {"id":"x"}\t', False),  # whitespace around the object is fine
        ('{"id":"x"}}', False),  # from_json alone reads the first object
        ('{"id":"x"}{"id":"y"}', False),  # two objects glued: neither is the line
        ('{"id":"x"},"b":0} rest', False),  # ends like one sentinel wrapper, not both
        ('{"id":"x","id":"y"}', False),  # a repeated key: which one is meant?
        ("{'id':'x'}", False),
        ('{"n":NaN}', False),
        ('{"id":"caf\ufffd"}', True),  # the reader saw bytes that were not UTF-8
        (None, False),  # a null line (cannot come from a file, but must not crash)
    ]
    got = [json_fields(raw, flag) for raw, flag in lines]
    # Scalars keep their JSON text; an object keeps its JSON and is listed as nested, while a
    # string that merely looks like JSON is not.
    assert got[0] == LineFields({"id": "x", "n": "3", "o": '{"k":1}', "s": "{text}"}, frozenset({"o"}))
    assert got[1] == LineFields({"id": "x"}, frozenset())
    assert [g.fields for g in got[2:]] == [None] * 8  # each is malformed_json


def test_line_typer_trims_values_and_refuses_inexact_or_nested_ones() -> None:
    at = "2026-01-05T10:00:00Z"
    typer = LineTyper(TINY, 3, is_json=True)
    lines = [
        LineFields({"id": " k1 ", "at": f" {at} ", "kind": " a", "amt": "1.5", "x": " kept "}),
        LineFields({"id": "   ", "at": at, "kind": "a"}),  # blank is as missing as absent
        LineFields({"id": "k3", "at": at, "kind": "a", "amt": "1.505"}),  # would round to 1.51
        LineFields({"id": '{"x":1}', "at": at, "kind": "a"}, frozenset({"id"})),  # an object, not a string
        LineFields({"id": "k5", "at": at, "kind": "b", "amt": "-0.01"}),
        LineFields(None),
    ]
    ts = int((dt.datetime(2026, 1, 5, 10, 0) - dt.datetime(1970, 1, 1)).total_seconds()) * 1_000_000
    got = [(t.values, t.extra, t.reason) for t in map(typer.type_line, lines)]
    assert got == [
        (("k1", ts, "a", Decimal("1.50")), {"x": " kept "}, None),  # _extra keeps the raw text
        ((None, ts, "a", None), None, "missing_required:id"),
        (("k3", ts, "a", None), None, "bad_type:amt"),
        ((None, ts, "a", None), None, "bad_type:id"),
        (("k5", ts, "b", Decimal("-0.01")), None, "out_of_range:amt"),
        ((None, None, None, None), None, "malformed_json"),
    ]


def test_file_stats_count_outcomes_and_unparsable_values_per_file(spark) -> None:
    lines = spark.createDataFrame(
        [
            ("a.jsonl", 1, '{"id":"k1","at":"2026-01-05T10:00:00Z","kind":"a","amt":"x"}', False),
            ("a.jsonl", 2, '{"id":"k2","at":"soon","kind":"a","amt":"1"}', False),
            ("a.jsonl", 3, '{"id":"k3","at":"later","kind":"a"}', False),
            ("a.jsonl", 4, "{broken", False),
            ("b.jsonl", 1, '{"id":"k4","at":"2026-01-05T11:00:00Z","kind":"b","amt":null}', False),
        ],
        LINES_SCHEMA,
    )
    classified = classify_lines(lines, TINY, "2026-01-05", 3)
    stats = {
        row.source_file: merge_file_stats(row.summaries, TINY, is_json=True)
        | {"accepted_rows": row.accepted_rows, "quarantined_rows": row.quarantined_rows}
        for row in build_file_summaries(classified).collect()
    }

    a, b = stats["a.jsonl"], stats["b.jsonl"]
    # a: every line refused (bad amt, bad at twice, malformed); the broken line parsed no fields.
    assert (a["raw_lines"], a["accepted_rows"], a["quarantined_rows"], a["parsed_rows"]) == (4, 0, 4, 3)
    assert a["at"] == {"values": 3, "unparsable": 2, "example_low": "later", "example_high": "soon"}
    assert a["amt"] == {"values": 2, "unparsable": 1, "example_low": "x", "example_high": "x"}
    assert a["id"] == {"values": 3, "unparsable": 0, "example_low": None, "example_high": None}
    # b: one clean line; a null amt is no value at all.
    assert (b["raw_lines"], b["accepted_rows"], b["quarantined_rows"], b["parsed_rows"]) == (1, 1, 0, 1)
    assert b["amt"] == {"values": 0, "unparsable": 0, "example_low": None, "example_high": None}
