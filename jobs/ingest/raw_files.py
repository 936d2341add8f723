"""Reading raw landing files into Arrow: the I/O edge of ingestion.

Spark's text reader cannot tell a line's number, which quarantine rows must carry, so files are
read here as bytes, split into lines with their numbers and handed to Spark as one Arrow table
(pyarrow moves them without a per-row Python round trip on the Spark side).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

LINES_SCHEMA = pa.schema(
    [
        pa.field("source_file", pa.string(), nullable=False),
        pa.field("line_number", pa.int64(), nullable=False),
        pa.field("raw", pa.string()),
    ]
)


class SchemaDriftError(ValueError):
    """A raw file no longer matches its contract in a way no single row can be blamed for."""


@dataclass(frozen=True)
class RawBatch:
    """The data lines of one source's files for one arrival date."""

    lines: pa.Table
    files: list[str]
    csv_headers: dict[str, list[str]]


def list_source_files(folder: str, suffix: str) -> list[str]:
    """Files of one arrival folder, sorted so line order is reproducible."""
    root = Path(folder)
    if not root.is_dir():
        return []
    return sorted(str(p) for p in root.iterdir() if p.is_file() and p.name.endswith(suffix))


def read_raw_batch(files: list[str], has_header: bool) -> RawBatch:
    """Read files into ``(source_file, line_number, raw)`` rows; CSV headers are kept aside.

    Line numbers are 1-based and count the header, so they match what an editor shows.
    Undecodable bytes are replaced (U+FFFD) rather than failing the file: the row then fails
    its contract checks and is quarantined with the raw text kept.
    """
    source_files: list[str] = []
    numbers: list[int] = []
    raws: list[str] = []
    headers: dict[str, list[str]] = {}
    for path in files:
        text = Path(path).read_bytes().decode("utf-8", errors="replace")
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()  # the final newline ends the last line; it does not start an empty one
        start = 0
        if has_header:
            if not lines:
                raise SchemaDriftError(f"{path}: empty file, expected a CSV header")
            headers[path] = next(csv.reader(io.StringIO(lines[0])))
            start = 1
        for index in range(start, len(lines)):
            source_files.append(path)
            numbers.append(index + 1)
            raws.append(lines[index].rstrip("\r"))
    table = pa.Table.from_arrays(
        [pa.array(source_files, pa.string()), pa.array(numbers, pa.int64()), pa.array(raws, pa.string())],
        schema=LINES_SCHEMA,
    )
    return RawBatch(lines=table, files=list(files), csv_headers=headers)
