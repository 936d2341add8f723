"""The local (Spark-free) ingest's classification pass: line numbers across chunk cuts."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from jobs.ingest.local_engine import _copy_mask, classify_files, copies_by_file, duplicate_copies
from jobs.ingest.raw_files import plan_chunks
from jobs.lake.contracts import load_contract


def _event(n: int) -> str:
    return json.dumps(
        {
            "event_id": f"E{n}",
            "event_at": "2026-03-01T10:00:00Z",
            "event": "app_open",
            "channel": "app",
            "device_id": f"D{n}",
        }
    )


def _classified(path: Path, chunk_bytes: int, work: Path) -> list[tuple]:
    work.mkdir()
    chunks = [(c, path.name, "2026-03-01") for c in plan_chunks(str(path), chunk_bytes)]
    result = classify_files(load_contract("raw.interactions"), 7, None, chunks, work)
    with pa.memory_map(str(result.staging)) as source:
        table = pa.ipc.open_file(source).read_all()
    return sorted(
        zip(table["line_number"].to_pylist(), table["raw"].to_pylist(), table["_reason"].to_pylist(), strict=True)
    )


@pytest.mark.parametrize("chunk_bytes", [1, 7, 100, 1000])
def test_lines_keep_their_file_numbers_whatever_the_chunk_cuts(tmp_path: Path, chunk_bytes: int) -> None:
    # Chunks are classified two at a time and numbered from the newlines of the chunks before
    # them, counted as each is read: the numbers must be those of the file read as one chunk.
    lines = [_event(n) for n in range(40)]
    lines[5] = "{not json"  # quarantined lines keep their number too
    lines[17] = ""
    lines[30] = _event(29)  # a repeated key (the duplicate check reads these numbers)
    path = tmp_path / "interactions.jsonl"
    path.write_text("\r\n".join(lines[:20]) + "\n" + "\n".join(lines[20:]) + "\n", encoding="utf-8")

    whole = _classified(path, 1 << 20, tmp_path / "whole")
    assert [number for number, *_ in whole] == list(range(1, 41))  # every line, numbered as an editor shows
    assert whole[5][2] == "malformed_json"
    assert _classified(path, chunk_bytes, tmp_path / "cut") == whole


def test_later_copies_are_found_per_file_and_line() -> None:
    """duplicate_copies keeps the first copy of a key per arrival day by (file, line); the mask
    marks exactly the later copies, also in a batch that spans two files."""
    keys = pa.table(
        {
            "_ingest_date": pa.array([1, 1, 1, 1, 2], pa.int32()),
            "event_id": ["E1", "E1", "E2", "E1", "E1"],
            "source_file": ["a", "a", "b", "b", "c"],
            "line_number": pa.array([3, 9, 1, 2, 1], pa.int64()),
        }
    )
    # E1 on day 1: a:3 first, a:9 and b:2 later copies; E2 once; E1 on day 2 is another day's first.
    copies = copies_by_file(duplicate_copies([keys], ("event_id",)))
    assert {name: lines.tolist() for name, lines in copies.items()} == {"a": [9], "b": [2]}
    batch = pa.record_batch(
        {"source_file": ["a", "a", "b", "b", "c"], "line_number": pa.array([3, 9, 1, 2, 9], pa.int64())}
    )
    assert _copy_mask(batch, copies).tolist() == [False, True, False, True, False]
    one_file = pa.record_batch({"source_file": ["a", "a"], "line_number": pa.array([9, 10], pa.int64())})
    assert _copy_mask(one_file, copies).tolist() == [True, False]
    assert _copy_mask(pa.record_batch({"source_file": ["c"], "line_number": pa.array([9], pa.int64())}), copies) is None
