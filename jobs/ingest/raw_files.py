"""Reading raw landing files into Arrow: the I/O edge of ingestion.

Spark's text reader cannot tell a line's number, which quarantine rows must carry, so files are
read here as bytes, split into lines with their numbers and handed to Spark as one Arrow table
(pyarrow moves them without a per-row Python round trip on the Spark side).
"""

from __future__ import annotations

import codecs
import csv
import io
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

INVALID_UTF8 = "has_invalid_utf8"

LINES_SCHEMA = pa.schema(
    [
        pa.field("source_file", pa.string(), nullable=False),
        pa.field("line_number", pa.int64(), nullable=False),
        pa.field("raw", pa.string()),
        # The line's bytes were not UTF-8; ``raw`` then holds them with U+FFFD replacements.
        pa.field(INVALID_UTF8, pa.bool_(), nullable=False),
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


def _decode_lines(data: bytes) -> tuple[list[str], list[bool]]:
    """Split a file's bytes into text lines and flag the lines that are not valid UTF-8.

    A UTF-8 byte order mark opening the file is dropped (Excel writes one before a CSV header,
    where it would otherwise glue itself to the first column name). Lines are decoded one by one
    only when the whole file is not UTF-8, so one bad byte refuses one line, not its neighbours.
    """
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        lines = data.decode("utf-8").split("\n")
        flags = [False] * len(lines)
    except UnicodeDecodeError:
        lines, flags = [], []
        for chunk in data.split(b"\n"):
            try:
                lines.append(chunk.decode("utf-8"))
                flags.append(False)
            except UnicodeDecodeError:
                lines.append(chunk.decode("utf-8", errors="replace"))
                flags.append(True)
    if lines and lines[-1] == "":
        # The final newline ends the last line; it does not start an empty one.
        lines.pop()
        flags.pop()
    return lines, flags


def read_raw_batch(files: list[str], has_header: bool) -> RawBatch:
    """Read files into ``(source_file, line_number, raw, has_invalid_utf8)`` rows.

    Line numbers are 1-based and count the header, so they match what an editor shows; CSV
    headers are kept aside. Undecodable bytes are replaced (U+FFFD) rather than failing the file,
    and the line is flagged so that the parser refuses it as malformed with the raw text kept.
    Line endings may be ``\\n`` or ``\\r\\n``.

    Raises:
        SchemaDriftError: a CSV file is empty (has no header) or its header is not UTF-8.
    """
    source_files: list[str] = []
    numbers: list[int] = []
    raws: list[str] = []
    invalid: list[bool] = []
    headers: dict[str, list[str]] = {}
    for path in files:
        lines, flags = _decode_lines(Path(path).read_bytes())
        start = 0
        if has_header:
            if not lines:
                raise SchemaDriftError(f"{path}: empty file, expected a CSV header")
            if flags[0]:
                raise SchemaDriftError(f"{path}: the CSV header is not valid UTF-8: {lines[0]!r}")
            headers[path] = next(csv.reader(io.StringIO(lines[0].rstrip("\r"))), [])
            start = 1
        for index in range(start, len(lines)):
            source_files.append(path)
            numbers.append(index + 1)
            raws.append(lines[index].rstrip("\r"))
            invalid.append(flags[index])
    table = pa.Table.from_arrays(
        [
            pa.array(source_files, pa.string()),
            pa.array(numbers, pa.int64()),
            pa.array(raws, pa.string()),
            pa.array(invalid, pa.bool_()),
        ],
        schema=LINES_SCHEMA,
    )
    return RawBatch(lines=table, files=list(files), csv_headers=headers)
