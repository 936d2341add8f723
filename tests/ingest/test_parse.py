"""Exact outputs of the bronze parsing steps: fields of a line, typed values and reasons, the
duplicate check, and classified lines split into bronze and quarantine rows.

The per-line steps are plain Python (they run inside Arrow tasks); the checks across lines
run on a small Spark frame.
"""

from __future__ import annotations

import datetime as dt

import pytest
from chispa import assert_df_equality

from jobs.ingest.parse import (
    LineFields,
    LineTyper,
    build_bronze_rows,
    build_quarantine_rows,
    classify_lines,
    csv_fields,
    json_fields,
    with_duplicate_check,
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


def micros(value: dt.datetime) -> int:
    """A UTC timestamp as Arrow and Spark hold it: microseconds since the epoch."""
    return int((value - dt.datetime(1970, 1, 1)).total_seconds()) * 1_000_000


def epoch_day(value: str) -> int:
    return (dt.date.fromisoformat(value) - dt.date(1970, 1, 1)).days


def test_json_fields_maps_keys_and_flags_broken_lines() -> None:
    # Scalars keep their JSON text (3 -> "3"); a broken line has no fields (malformed_json).
    assert json_fields('{"id":"x","n":3}').fields == {"id": "x", "n": "3"}
    assert json_fields('{"id":"x","n":').fields is None  # truncated
    assert json_fields('{"id":"x"} trailing').fields is None  # trailing garbage
    assert json_fields(None).fields is None  # a null line (cannot come from a file, but must not crash)
    assert LineTyper(TINY, 3, is_json=True).type_line(json_fields("{broken")).reason == "malformed_json"


def test_csv_fields_splits_by_header_and_refuses_misfit_rows() -> None:
    header = ["id", "kind", "n"]
    assert csv_fields('x,"a, quoted",3', header).fields == {"id": "x", "kind": "a, quoted", "n": "3"}
    assert csv_fields("x,,", header).fields == {"id": "x", "kind": None, "n": None}  # empty = exporter's null
    assert csv_fields("x,b", header).fields is None  # one field short
    assert csv_fields('x,"unclosed,3', header).fields is None  # broken quoting
    assert LineTyper(TINY, 3, is_json=False).type_line(csv_fields("x,b", header)).reason == "malformed_csv"


def test_line_typer_types_values_and_names_the_first_failure() -> None:
    typer = LineTyper(TINY, 3, is_json=True)
    at = micros(dt.datetime(2026, 1, 5, 10, 0))
    lines = [
        {"id": "k1", "at": "2026-01-05T10:00:00Z", "kind": "a", "n": "2", "extra": "kept"},
        {"at": "2026-01-05T10:00:00Z", "kind": "a"},  # id missing
        {"id": "k3", "at": "yesterday", "kind": "a"},
        {"id": "k4", "at": "2026-01-05T10:00:00Z", "kind": "zz"},
        {"id": "k5", "at": "2026-01-05T10:00:00Z", "kind": "b", "n": "9"},
        None,  # an earlier reason is kept
    ]
    got = [(t.values, t.extra, t.reason) for t in (typer.type_line(LineFields(f)) for f in lines)]
    assert got == [
        (("k1", at, "a", 2), {"extra": "kept"}, None),
        ((None, at, "a", None), None, "missing_required:id"),
        (("k3", None, "a", None), None, "bad_type:at"),
        (("k4", at, "zz", None), None, "unknown_enum:kind"),
        (("k5", at, "b", 9), None, "out_of_range:n"),
        ((None, None, None, None), None, "malformed_json"),
    ]


def test_lateness_check_refuses_events_older_than_the_bound() -> None:
    typer = LineTyper(TINY, 3, is_json=True)
    arrival = epoch_day("2026-01-10")

    def reason(at: str) -> str | None:
        return typer.type_line(LineFields({"id": "k", "at": at, "kind": "a"}), arrival).reason

    assert reason("2026-01-07T23:00:00") is None  # 3 days before arrival: still accepted
    assert reason("2026-01-06T23:59:00") == "too_late"  # 4 days: too late
    assert reason("yesterday") == "bad_type:at"  # no time, no lateness: the type fails first


def test_with_duplicate_check_keeps_the_first_valid_copy(spark) -> None:
    rows = spark.createDataFrame(
        [
            ("f", 1, "k", "bad_type:at"),  # broken copy: does not shadow the good one
            ("f", 2, "k", None),
            ("f", 3, "k", None),
            ("f", 4, "j", None),
        ],
        "source_file string, line_number bigint, id string, _reason string",
    ).selectExpr("*", "DATE'2026-01-05' AS _ingest_date", "CAST(NULL AS STRING) AS _summary")
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
    accepted = build_bronze_rows(classified, bronze_like)
    refused = build_quarantine_rows(classified, quarantine_like)
    assert sorted(r.id for r in accepted.collect()) == ["k1", "k3"]
    assert sorted((r.line_number, r.reason) for r in refused.collect()) == [
        (3, "duplicate"),
        (4, "malformed_csv" if csv else "malformed_json"),
    ]
    assert accepted.count() + refused.count() == len(raws)
    # The duplicate keeps its raw text in quarantine, like any refused line.
    assert {r.line_number: r.raw for r in refused.collect()}[3] == raws[1]
