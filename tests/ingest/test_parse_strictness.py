"""Strict JSON lines, trimmed values, exact decimals and the per-file stats behind drift checks."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from chispa import assert_df_equality

from jobs.ingest.parse import build_file_stats, classify_lines, with_contract_columns, with_json_fields
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


def test_with_json_fields_accepts_one_strict_object_per_line_only(spark) -> None:
    lines = spark.createDataFrame(
        [
            ("f", 1, '{"id":"x","n":3,"o":{"k":1},"s":"{text}"}', False),
            ("f", 2, ' {"id":"x"}\t', False),  # whitespace around the object is fine
            ("f", 3, '{"id":"x"}}', False),  # from_json alone reads the first object
            ("f", 4, '{"id":"x"}{"id":"y"}', False),  # two objects glued: neither is the line
            ("f", 5, '{"id":"x"},"b":0} rest', False),  # ends like one sentinel wrapper, not both
            ("f", 6, '{"id":"x","id":"y"}', False),  # a repeated key: which one is meant?
            ("f", 7, "{'id':'x'}", False),
            ("f", 8, '{"n":NaN}', False),
            ("f", 9, '{"id":"caf\ufffd"}', True),  # the reader saw bytes that were not UTF-8
            ("f", 10, None, None),  # a null line (cannot come from a file, but must not crash)
        ],
        LINES_SCHEMA,
    )
    got = with_json_fields(lines).select("line_number", "_fields", "_nested_keys", "_reason")
    # Scalars keep their JSON text; an object keeps its JSON and is listed as nested, while a
    # string that merely looks like JSON is not.
    expected = spark.createDataFrame(
        [
            (1, {"id": "x", "n": "3", "o": '{"k":1}', "s": "{text}"}, ["o"], None),
            (2, {"id": "x"}, [], None),
            *[(n, None, None, "malformed_json") for n in range(3, 11)],
        ],
        "line_number bigint, _fields map<string,string>, _nested_keys array<string>, _reason string",
    )
    assert_df_equality(got.orderBy("line_number"), expected.orderBy("line_number"), ignore_nullable=True)


def test_with_contract_columns_trims_values_and_refuses_inexact_or_nested_ones(spark) -> None:
    at = "2026-01-05T10:00:00Z"
    fields = spark.createDataFrame(
        [
            (1, {"id": " k1 ", "at": f" {at} ", "kind": " a", "amt": "1.5", "x": " kept "}, [], None),
            (2, {"id": "   ", "at": at, "kind": "a"}, [], None),  # blank is as missing as absent
            (3, {"id": "k3", "at": at, "kind": "a", "amt": "1.505"}, [], None),  # would round to 1.51
            (4, {"id": '{"x":1}', "at": at, "kind": "a"}, ["id"], None),  # an object, not a string
            (5, {"id": "k5", "at": at, "kind": "b", "amt": "-0.01"}, [], None),
            (6, None, None, "malformed_json"),
        ],
        "line_number bigint, _fields map<string,string>, _nested_keys array<string>, _reason string",
    )
    got = with_contract_columns(fields, TINY).select("line_number", "id", "at", "kind", "amt", "_extra", "_reason")
    ts = dt.datetime(2026, 1, 5, 10, 0)
    expected = spark.createDataFrame(
        [
            (1, "k1", ts, "a", Decimal("1.50"), {"x": " kept "}, None),  # _extra keeps the raw text
            (2, None, ts, "a", None, None, "missing_required:id"),
            (3, "k3", ts, "a", None, None, "bad_type:amt"),
            (4, None, ts, "a", None, None, "bad_type:id"),
            (5, "k5", ts, "b", Decimal("-0.01"), None, "out_of_range:amt"),
            (6, None, None, None, None, None, "malformed_json"),
        ],
        "line_number bigint, id string, at timestamp, kind string, amt decimal(6,2), "
        "_extra map<string,string>, _reason string",
    )
    assert_df_equality(got.orderBy("line_number"), expected.orderBy("line_number"), ignore_nullable=True)


def test_build_file_stats_counts_outcomes_and_unparsable_values_per_file(spark) -> None:
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
    stats = {row.source_file: row.asDict(recursive=True) for row in build_file_stats(classified, TINY).collect()}

    a, b = stats["a.jsonl"], stats["b.jsonl"]
    # a: every line refused (bad amt, bad at twice, malformed); the broken line parsed no fields.
    assert (a["accepted_rows"], a["quarantined_rows"], a["parsed_rows"]) == (0, 4, 3)
    assert a["at"] == {"values": 3, "unparsable": 2, "example_low": "later", "example_high": "soon"}
    assert a["amt"] == {"values": 2, "unparsable": 1, "example_low": "x", "example_high": "x"}
    assert a["id"] == {"values": 3, "unparsable": 0, "example_low": None, "example_high": None}
    # b: one clean line; a null amt is no value at all.
    assert (b["accepted_rows"], b["quarantined_rows"], b["parsed_rows"]) == (1, 0, 1)
    assert b["amt"] == {"values": 0, "unparsable": 0, "example_low": None, "example_high": None}
