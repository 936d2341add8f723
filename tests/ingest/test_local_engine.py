"""The local (Spark-free) ingest's classification pass: line numbers across chunk cuts."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from jobs.ingest.local_engine import classify_files
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
