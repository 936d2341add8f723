"""Exact outputs of the bronze parsing transforms, one small frame each."""

from __future__ import annotations

import datetime as dt

import pytest
from chispa import assert_df_equality

from jobs.ingest.parse import (
    build_bronze_rows,
    build_quarantine_rows,
    classify_lines,
    with_contract_columns,
    with_csv_fields,
    with_duplicate_check,
    with_json_fields,
    with_lateness_check,
)
from jobs.lake.contracts import Column, Contract

LINES_SCHEMA = "source_file string, line_number bigint, raw string"

# A small contract exercising every check: required, typed, enum, range, key, event time.
TINY = Contract(
    name="raw.tiny",
    version=1,
    columns=(
        Column("id", "string", nullable=False),
        Column("at", "timestamp", nullable=False),
        Column("kind", "string", nullable=False, allowed=("a", "b")),
        Column("n", "int", nullable=True, min=1, max=5),
    ),
    keys=("id",),
    event_time="at",
)


def test_with_json_fields_maps_keys_and_flags_broken_lines(spark) -> None:
    lines = spark.createDataFrame(
        [
            ("f", 1, '{"id":"x","n":3}'),
            ("f", 2, '{"id":"x","n":'),  # truncated
            ("f", 3, '{"id":"x"} trailing'),  # trailing garbage: from_json alone would accept it
            ("f", 4, None),  # a null line (cannot come from a file, but must not crash)
        ],
        LINES_SCHEMA,
    )
    got = with_json_fields(lines).select("line_number", "_fields", "_reason")
    expected = spark.createDataFrame(
        [
            (1, {"id": "x", "n": "3"}, None),
            (2, None, "malformed_json"),
            (3, None, "malformed_json"),
            (4, None, "malformed_json"),
        ],
        "line_number bigint, _fields map<string,string>, _reason string",
    )
    assert_df_equality(got.orderBy("line_number"), expected.orderBy("line_number"), ignore_nullable=True)


def test_with_csv_fields_splits_by_header_and_refuses_misfit_rows(spark) -> None:
    lines = spark.createDataFrame(
        [
            ("f", 2, 'x,"a, quoted",3'),
            ("f", 3, "x,,"),  # empty fields are the exporter's nulls
            ("f", 4, "x,b"),  # one field short
            ("f", 5, 'x,"unclosed,3'),  # broken quoting
        ],
        LINES_SCHEMA,
    )
    got = with_csv_fields(lines, ["id", "kind", "n"]).select("line_number", "_fields", "_reason")
    expected = spark.createDataFrame(
        [
            (2, {"id": "x", "kind": "a, quoted", "n": "3"}, None),
            (3, {"id": "x", "kind": None, "n": None}, None),
            (4, None, "malformed_csv"),
            (5, None, "malformed_csv"),
        ],
        "line_number bigint, _fields map<string,string>, _reason string",
    )
    assert_df_equality(got.orderBy("line_number"), expected.orderBy("line_number"), ignore_nullable=True)


def test_with_contract_columns_types_values_and_names_the_first_failure(spark) -> None:
    fields = spark.createDataFrame(
        [
            (1, {"id": "k1", "at": "2026-01-05T10:00:00Z", "kind": "a", "n": "2", "extra": "kept"}, None),
            (2, {"at": "2026-01-05T10:00:00Z", "kind": "a"}, None),  # id missing
            (3, {"id": "k3", "at": "yesterday", "kind": "a"}, None),
            (4, {"id": "k4", "at": "2026-01-05T10:00:00Z", "kind": "zz"}, None),
            (5, {"id": "k5", "at": "2026-01-05T10:00:00Z", "kind": "b", "n": "9"}, None),
            (6, None, "malformed_json"),  # an earlier reason is kept
        ],
        "line_number bigint, _fields map<string,string>, _reason string",
    )
    got = with_contract_columns(fields, TINY).select("line_number", "id", "at", "kind", "n", "_extra", "_reason")
    at = dt.datetime(2026, 1, 5, 10, 0)
    expected = spark.createDataFrame(
        [
            (1, "k1", at, "a", 2, {"extra": "kept"}, None),
            (2, None, at, "a", None, None, "missing_required:id"),
            (3, "k3", None, "a", None, None, "bad_type:at"),
            (4, "k4", at, "zz", None, None, "unknown_enum:kind"),
            (5, "k5", at, "b", 9, None, "out_of_range:n"),
            (6, None, None, None, None, None, "malformed_json"),
        ],
        "line_number bigint, id string, at timestamp, kind string, n int, _extra map<string,string>, _reason string",
    )
    assert_df_equality(got.orderBy("line_number"), expected.orderBy("line_number"), ignore_nullable=True)


def test_with_lateness_check_refuses_events_older_than_the_bound(spark) -> None:
    rows = spark.createDataFrame(
        [
            (1, dt.datetime(2026, 1, 7, 23, 0), None),  # 3 days before arrival: still accepted
            (2, dt.datetime(2026, 1, 6, 23, 59), None),  # 4 days: too late
            (3, None, "bad_type:at"),
        ],
        "line_number bigint, at timestamp, _reason string",
    )
    got = with_lateness_check(rows, "at", "2026-01-10", 3).select("line_number", "_reason")
    expected = spark.createDataFrame(
        [(1, None), (2, "too_late"), (3, "bad_type:at")], "line_number bigint, _reason string"
    )
    assert_df_equality(got.orderBy("line_number"), expected.orderBy("line_number"), ignore_nullable=True)


def test_with_duplicate_check_keeps_the_first_valid_copy(spark) -> None:
    rows = spark.createDataFrame(
        [
            ("f", 1, "k", "bad_type:at"),  # broken copy: does not shadow the good one
            ("f", 2, "k", None),
            ("f", 3, "k", None),
            ("f", 4, "j", None),
        ],
        "source_file string, line_number bigint, id string, _reason string",
    )
    got = with_duplicate_check(rows, ("id",)).select("line_number", "_reason")
    expected = spark.createDataFrame(
        [(1, "bad_type:at"), (2, None), (3, "duplicate"), (4, None)], "line_number bigint, _reason string"
    )
    assert_df_equality(got.orderBy("line_number"), expected.orderBy("line_number"), ignore_nullable=True)


@pytest.mark.parametrize("csv", [False, True])
def test_classify_then_split_loses_no_line(spark, csv: bool) -> None:
    if csv:
        raws = [
            "k1,2026-01-05T10:00:00Z,a,1",
            "k1,2026-01-05T10:00:00Z,a,1",
            "k2,2026-01-05",
            "k3,2026-01-05T10:00:00Z,b,",
        ]
    else:
        raws = [
            '{"id":"k1","at":"2026-01-05T10:00:00Z","kind":"a","n":1}',
            '{"id":"k1","at":"2026-01-05T10:00:00Z","kind":"a","n":1}',
            '{"id":"k2"',
            '{"id":"k3","at":"2026-01-05T10:00:00Z","kind":"b"}',
        ]
    lines = spark.createDataFrame([("f", i + 2, raw) for i, raw in enumerate(raws)], LINES_SCHEMA)
    classified = classify_lines(lines, TINY, "2026-01-05", 3, ["id", "at", "kind", "n"] if csv else None)
    bronze_like = Contract(
        "bronze.tiny",
        1,
        TINY.columns
        + (
            Column("_extra", "map<string,string>"),
            Column("_source_file", "string"),
            Column("_line_number", "bigint"),
            Column("_ingest_date", "date"),
        ),
    )
    quarantine_like = Contract(
        "quarantine.tiny",
        1,
        (
            Column("source_file", "string"),
            Column("line_number", "bigint"),
            Column("raw", "string"),
            Column("reason", "string"),
            Column("_ingest_date", "date"),
        ),
    )
    accepted = build_bronze_rows(classified, bronze_like, "2026-01-05")
    refused = build_quarantine_rows(classified, quarantine_like, "2026-01-05")
    assert sorted(r.id for r in accepted.collect()) == ["k1", "k3"]
    assert sorted((r.line_number, r.reason) for r in refused.collect()) == [
        (3, "duplicate"),
        (4, "malformed_csv" if csv else "malformed_json"),
    ]
    assert accepted.count() + refused.count() == len(raws)
