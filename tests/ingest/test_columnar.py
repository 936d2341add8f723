"""The column-wise path for plain JSON lines gives exactly what the line-by-line path gives.

``jobs.ingest.columnar`` may only take lines whose outcome it can prove; everything else must
reach the line path. These tests run both paths over the bad-input corpus and over lines built
to sit on each edge the column-wise checks draw (timestamp shapes and impossible dates,
integers out of int32, escapes, NaN, extra fields, two objects on a line), and compare the
classified rows and the per-file summaries value for value. Plain Python: no Spark needed.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pytest

from jobs.ingest import columnar
from jobs.ingest.columnar import ColumnarJsonTyper
from jobs.ingest.parse import REASON, LineTyper, _BatchBuilder
from jobs.ingest.raw_files import decode_lines, plan_chunks, read_chunk_arrow, split_lines
from jobs.lake.contracts import load_contract

CORPUS = Path(__file__).parent / "corpus"
ARRIVAL_DAY = (dt.date(2026, 1, 10) - dt.date(1970, 1, 1)).days
LATENESS_DAYS = 7


def _classify(source: str, path: Path, use_columnar: bool, batch_lines: int = 5) -> tuple[pa.Table, dict[str, str]]:
    builder = _BatchBuilder(load_contract(f"raw.{source}"), LATENESS_DAYS, None, use_columnar=use_columnar)
    batches = []
    for chunk in plan_chunks(str(path)):
        first, lines, flags = read_chunk_arrow(chunk)
        # Small batches: a file spans several, as a big file does in production.
        for at in range(0, len(lines), batch_lines):
            part = lines.slice(at, batch_lines), flags.slice(at, batch_lines)
            batches += builder.classify("f", ARRIVAL_DAY, first + at, *part)
    table = pa.Table.from_batches(batches, schema=builder.schema).sort_by("line_number")
    typer = builder.typer
    return table, {name: s.to_json(typer.names, typer.tracked) for name, s in builder.summaries.items()}


def _edge_lines() -> list[str]:
    base = {"event_id": "E", "event_at": "2026-01-09T10:00:00Z", "event": "app_open", "channel": "app"}
    stamps = [
        "2026-02-30T10:00:00Z",  # no such day: strptime would roll it over to March 2
        "2026-01-05T24:00:00Z",
        "2026-01-05T10:60:00Z",
        "2026-01-05T10:00:60Z",  # a leap second: not a timestamp Spark takes either
        "2026-13-01T10:00:00Z",
        "2026-01-00T10:00:00Z",
        "2026-04-31T10:00:00Z",
        "2025-02-29T10:00:00Z",  # not a leap year
        "2024-02-29T10:00:00Z",  # a leap year: a real day (too_late, but typed)
        "1969-12-31T23:59:59Z",  # before 1970: day arithmetic must floor, so the line path takes it
        "0000-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "2026-01-09T10:00:00.5Z",
        "2026-01-09 10:00:00",
        "2026-01-09T10:00:00+03:00",
        " 2026-01-09T10:00:00Z ",
        "2026-01-02T23:59:59Z",  # 8 days before arrival: too_late
        "2026-01-03T00:00:00Z",  # 7 days before arrival: still on time
        "2026-1-09T10:00:00Z",
    ]
    lines = [json.dumps({**base, "event_id": f"T{i}", "event_at": s}) for i, s in enumerate(stamps)]
    ratings = [0, 1, 5, 6, -1, 2**31, "3", 3.0, None, True, {"a": 1}]
    lines += [json.dumps({**base, "event_id": f"R{i}", "rating": r}) for i, r in enumerate(ratings)]
    head = '{"event_id":"X","event_at":"2026-01-09T10:00:00Z","channel":"app",'
    lines += [
        head + '"event":"app_open","extra":null}',  # an extra key: null and absent differ in _extra
        head + '"event":"app_open","extra":"v"}',
        head + '"event":" app_open ","query":"  "}',  # trimmed enum; a blank optional value is null
        head + '"event":"App_open"}',
        '{"event_id":"","event_at":"2026-01-09T10:00:00Z","event":"app_open","channel":"app"}',
        head + '"event":"app_open","rating":NaN}',
        head + '"event":"app_open","query":"\\u00e9"}',
        head + '"event":"app_open"}{"a":1}',
        head + '"event":"app_open","query":"Infinity"}',
        head + '"event":"app_open","rating":-0}',
        head + '"event":"app_open","rating":1e0}',
        head + '"event":"app_open","rating":0005}',
        head + '"event":"app_open","event":"login"}',
        head + '"event":"app_open","query":["x"]}',
        head + '"event":"app_open","query":"tab\tin"}',
        head + '"event":"app_open","query":"a\\"b\\\\c\\/d\\n"}',
        "",
        "   ",
        head + '"event":"app_open"} ',
        head + '"event":"app_open"}',
    ]
    return lines


def _corpus_files() -> list[tuple[str, Path]]:
    return [(s, p) for s in ("interactions", "tracking_scans") for p in sorted((CORPUS / s).glob("*.jsonl"))]


@pytest.mark.parametrize(("source", "path"), _corpus_files(), ids=lambda v: getattr(v, "stem", v))
def test_corpus_files_classify_the_same_both_ways(source: str, path: Path) -> None:
    assert _classify(source, path, use_columnar=True) == _classify(source, path, use_columnar=False)


def test_edge_lines_classify_the_same_both_ways(tmp_path: Path) -> None:
    path = tmp_path / "edges.jsonl"
    path.write_bytes(("\n".join(_edge_lines()) + "\n").encode() + b'{"event_id":"\xff"}\n')
    fast, fast_summary = _classify("interactions", path, use_columnar=True, batch_lines=7)
    slow, slow_summary = _classify("interactions", path, use_columnar=False, batch_lines=7)
    assert fast.to_pylist() == slow.to_pylist()
    assert fast_summary == slow_summary


def test_batches_read_in_several_pieces_classify_the_same_both_ways(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Production reads 8,192 lines at a time from batches of 65,536; here 3 at a time from
    # batches of 40, so that one batch spans pieces whose reads fail (a string rating), pieces
    # with an extra field and pieces without (typed together as one table), and a last short piece.
    monkeypatch.setattr(columnar, "_READ_LINES", 3)
    path = tmp_path / "edges.jsonl"
    path.write_bytes(("\n".join(_edge_lines()) + "\n").encode())
    fast, fast_summary = _classify("interactions", path, use_columnar=True, batch_lines=40)
    slow, slow_summary = _classify("interactions", path, use_columnar=False, batch_lines=40)
    assert fast.num_rows == len(_edge_lines())
    assert fast.to_pylist() == slow.to_pylist()
    assert fast_summary == slow_summary


def test_null_where_not_nulls_without_copying_and_keeps_existing_nulls() -> None:
    values = pa.array(["a", None, "c", "d"])
    keep = pa.array([True, True, False, True])
    nulled = columnar._null_where_not(values, keep)
    nulled.validate(full=True)
    # "c" is refused; the existing null stays null.
    assert nulled.to_pylist() == ["a", None, None, "d"]
    assert nulled.buffers()[2].address == values.buffers()[2].address  # the same string data
    # A slice (an offset) falls back to if_else, with the same result.
    assert columnar._null_where_not(values.slice(1), keep.slice(1)).to_pylist() == [None, None, "d"]
    assert columnar._null_where_not(pa.array([1, 2], pa.int32()), pa.array([False, True])).to_pylist() == [None, 2]


def test_plain_lines_are_typed_column_wise_and_the_rest_is_handed_back() -> None:
    contract = load_contract("raw.interactions")
    typer = ColumnarJsonTyper(contract, LATENESS_DAYS)
    lines = [
        '{"event_id":"E1","event_at":"2026-01-09T10:00:00Z","event":"review","channel":"app","rating":5}',
        '{"event_id":"E2","event_at":"2026-01-09T10:00:00Z","event":"teleport","channel":"app"}',
        '{"event_id":"E3","event_at":"2026-01-01T10:00:00Z","event":"login","channel":"web"}',
        '{"event_id":"E4","event_at":"2026-01-09T10:00:00Z","event":"review","channel":"app","rating":9}',
        '{"event_id":"E5","event_at":"2026-01-09T10:00:00Z","channel":"app"}',
        '{"event_id":"E6","event_at":"yesterday","event":"login","channel":"web"}',  # Spark's cast rules
        '{"event_id":"E7",',  # broken
    ]
    result = typer.classify(pa.array(lines), pa.array([False] * len(lines)), ARRIVAL_DAY)
    # Lines 0-4 are plain; 5 needs the line path's timestamp rules, 6 is not JSON.
    assert result.positions.to_pylist() == [0, 1, 2, 3, 4]
    assert result.slow_positions == [5, 6]
    assert result.reasons.to_pylist() == [
        None,
        "unknown_enum:event",
        "too_late",  # 2026-01-01 is 9 days before the 2026-01-10 arrival (limit 7)
        "out_of_range:rating",  # ratings run 1..5
        "missing_required:event",
    ]
    names = [c.name for c in contract.columns]
    # Only the accepted line keeps typed values, as the line path leaves refused ones.
    assert result.typed[names.index("rating")].to_pylist() == [5, None, None, None, None]
    assert result.typed[names.index("event_at")].to_pylist()[0] == dt.datetime(2026, 1, 9, 10, tzinfo=dt.UTC)
    # Non-blank values per column: event_id in all 5 lines, event in 4 (E5 lacks it), rating in 2.
    assert result.values[names.index("event_id")] == 5
    assert result.values[names.index("event")] == 4
    assert result.values[names.index("rating")] == 2


def test_contracts_with_types_the_columnar_path_does_not_know_stay_on_the_line_path() -> None:
    # raw.orders is CSV with a decimal; raw.tracking_scans is plain strings and a timestamp.
    assert not ColumnarJsonTyper(load_contract("raw.orders"), LATENESS_DAYS).supported
    assert ColumnarJsonTyper(load_contract("raw.tracking_scans"), LATENESS_DAYS).supported
    assert LineTyper(load_contract("raw.orders"), LATENESS_DAYS, is_json=False)  # unchanged path
    assert REASON == "_reason"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"a",
        b"a\n",
        b"a\nb",
        b"a\r\nb\r\n",
        b"\n\n",
        b"a\r\r\n\rb\n",
        "\u00e9\n\u00fc".encode(),
        b"\xff\nok\n",
        b"\r",
        # Refused by Python's decoder, so by the split too (Arrow validates each line): a
        # surrogate, an overlong slash, a code point past U+10FFFF, a sequence a newline cuts,
        # and one the block's end cuts.
        b"ok\n\xed\xa0\x80\n",
        b"\xc0\xaf\nok",
        b"\xf4\x90\x80\x80\n",
        b"\xe2\x82\n\xac\n",
        "ok\n\u20ac".encode()[:-1],
    ],
)
def test_split_lines_matches_decode_lines(data: bytes) -> None:
    lines, flags = split_lines(data)
    assert (lines.to_pylist(), flags.to_pylist()) == decode_lines(data)
