"""Reading raw landing files as numbered lines, a bounded chunk at a time: the I/O edge of ingestion.

A file is cut into byte ranges (chunks) that Spark tasks read on their own, so no process ever
holds more than a chunk and its last line, whatever the file's size. A line belongs to the chunk
holding its first byte: a task reads from one byte before its range to find where its first line
starts and reads past its end to finish its last line. Line numbers are 1-based and count a CSV
header (as an editor shows them); a chunk's first line number comes from the newlines before
it, counted once per chunk (:func:`count_newlines`), so every task knows its numbers up front.

Files are read with plain Python file I/O inside the tasks (local paths and ``file:`` URIs: the
landing zone is a local or mounted folder, as :func:`jobs.ingest.landing.list_landing_files` assumes). An
object-store landing (``s3a://``) would need a reader through Hadoop's file system here.

Lines end at ``\\n``; a ``\\r`` before it (Windows) is dropped. A UTF-8 byte order mark opening
a file is dropped. A line whose bytes are not UTF-8 keeps its text with U+FFFD replacements and
is flagged, so that the parser refuses it with the raw text kept.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

INVALID_UTF8 = "has_invalid_utf8"
CHUNK_BYTES = 16 * 1024 * 1024
_READ_BLOCK = 1024 * 1024


class SchemaDriftError(ValueError):
    """A raw file no longer matches its contract in a way no single row can be blamed for."""


@dataclass(frozen=True)
class Chunk:
    """A byte range ``[start, end)`` of one file and where its lines sit in the file.

    Attributes:
        path: the file to open.
        start: first byte of the range.
        end: end of the range (exclusive); the last line may run past it.
        newlines_before: newlines in ``[0, start)`` (0 for a file's first chunk).
        skip_header: the range opens the file and its first line is a CSV header, not data.
    """

    path: str
    start: int
    end: int
    newlines_before: int = 0
    skip_header: bool = False


@dataclass(frozen=True)
class NumberedLine:
    line_number: int
    raw: str
    has_invalid_utf8: bool


def local_path(path: str) -> str:
    """A ``file:`` URI as a plain path (other paths are returned unchanged)."""
    if path.startswith("file://"):
        return path[len("file://") :]
    if path.startswith("file:"):
        return path[len("file:") :]
    return path


def plan_chunks(path: str, chunk_bytes: int = CHUNK_BYTES, has_header: bool = False) -> list[Chunk]:
    """Cut a file into ranges of ``chunk_bytes`` (the last one shorter); ``newlines_before`` is
    left at 0 and filled in by the caller once the chunks' newlines are counted (a single chunk
    needs no count)."""
    size = Path(local_path(path)).stat().st_size
    starts = range(0, max(size, 1), chunk_bytes)
    return [Chunk(path, start, min(start + chunk_bytes, size), 0, has_header and start == 0) for start in starts]


def count_newlines(chunk: Chunk) -> int:
    """Newlines in the chunk's byte range (read in blocks; nothing past ``end``)."""
    count = 0
    with open(local_path(chunk.path), "rb") as file:
        file.seek(chunk.start)
        remaining = chunk.end - chunk.start
        while remaining > 0:
            block = file.read(min(_READ_BLOCK, remaining))
            if not block:
                break
            count += block.count(b"\n")
            remaining -= len(block)
    return count


def with_line_offsets(chunks: list[Chunk], newlines: list[int]) -> list[Chunk]:
    """The chunks of one file with ``newlines_before`` set from each chunk's newline count."""
    placed, before = [], 0
    for chunk, count in zip(chunks, newlines, strict=True):
        placed.append(Chunk(chunk.path, chunk.start, chunk.end, before, chunk.skip_header))
        before += count
    return placed


def _read_through_newline(file: BinaryIO) -> bytes:
    """From the file's position up to and including the next newline (or the end), in blocks."""
    parts = []
    while block := file.read(_READ_BLOCK):
        cut = block.find(b"\n")
        if cut >= 0:
            parts.append(block[: cut + 1])
            break
        parts.append(block)
    return b"".join(parts)


def _owned_bytes(chunk: Chunk) -> tuple[bytes, int, int]:
    """The bytes of the lines starting in the chunk, the number of the first of them, and the
    newlines in ``[start, end)`` (what :func:`count_newlines` counts, from the bytes read anyway)."""
    with open(local_path(chunk.path), "rb") as file:
        if chunk.start == 0:
            first_line = 1
            data = file.read(chunk.end)
            newlines = data.count(b"\n")
        else:
            # One byte before the range says whether a line starts exactly at ``start``.
            file.seek(chunk.start - 1)
            data = file.read(chunk.end - chunk.start + 1)
            newlines = data.count(b"\n", 1)
            first_newline = data.find(b"\n")
            if first_newline < 0 or first_newline >= len(data) - 1:
                return b"", 0, newlines  # no line starts in the range (a long line crosses it, or the file ends)
            # Lines before ours: those started before ``start - 1`` (one per newline before it
            # plus the file's first), and the one ending at this newline.
            first_line = chunk.newlines_before - (1 if data[0:1] == b"\n" else 0) + 2
            data = data[first_newline + 1 :]
        if not data.endswith(b"\n"):
            # Finish the last line, however far it runs past the range.
            data += _read_through_newline(file)
    return data, first_line, newlines


def decode_lines(data: bytes) -> tuple[list[str], list[bool]]:
    """Split bytes into text lines and flag the lines that are not valid UTF-8.

    Lines are decoded one by one only when the whole block is not UTF-8, so one bad byte refuses
    one line, not its neighbours. The final newline ends the last line; it does not start an
    empty one. ``\\r`` at the end of a line is dropped.
    """
    try:
        lines = data.decode("utf-8").split("\n")
        flags = [False] * len(lines)
    except UnicodeDecodeError:
        lines, flags = [], []
        for piece in data.split(b"\n"):
            try:
                lines.append(piece.decode("utf-8"))
                flags.append(False)
            except UnicodeDecodeError:
                lines.append(piece.decode("utf-8", errors="replace"))
                flags.append(True)
    if lines and lines[-1] == "":
        lines.pop()
        flags.pop()
    return [line.rstrip("\r") for line in lines], flags


def read_chunk(chunk: Chunk) -> tuple[int, list[str], list[bool]]:
    """The chunk's data lines: the number of the first, their texts and invalid-UTF-8 flags.

    A CSV header is not returned (its line still counts), a file's opening byte order mark is
    dropped. Memory is the chunk plus its last line.
    """
    data, first_line, _ = _owned_bytes(chunk)
    if chunk.start == 0 and data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    lines, flags = decode_lines(data)
    if chunk.skip_header and lines:
        return first_line + 1, lines[1:], flags[1:]
    return first_line, lines, flags


def split_lines(data: bytes) -> tuple[pa.StringArray, pa.BooleanArray]:
    """:func:`decode_lines` into Arrow: lines as one string array over ``data`` (no copy, no
    Python string per line) and the invalid-UTF-8 flags.

    The zero-copy split is taken only when every line is UTF-8 (Arrow's full validation of the
    split array, in C); otherwise the lines are decoded one by one as :func:`decode_lines` does.
    A newline byte is never inside a UTF-8 sequence, so the lines are valid exactly when the
    whole block is: Python's ``bytes.decode`` said the same but built a string of the whole
    chunk to say it (29 of the 40 ms a 17 MB chunk took here; Arrow's check 2 ms).
    """
    if not data:
        return pa.array([], pa.string()), pa.array([], pa.bool_())
    ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10)
    # The final newline ends the last line; it does not start an empty one.
    stops = ends + 1 if len(ends) and ends[-1] == len(data) - 1 else np.append(ends + 1, len(data))
    offsets = np.concatenate(([0], stops)).astype(np.int64)
    with_newlines = pa.LargeStringArray.from_buffers(len(stops), pa.py_buffer(offsets), pa.py_buffer(data))
    try:
        with_newlines.validate(full=True)
    except pa.ArrowInvalid:
        lines, flags = decode_lines(data)
        return pa.array(lines, pa.string()), pa.array(flags, pa.bool_())
    lines = pc.utf8_rtrim(with_newlines, characters="\r\n").cast(pa.string())
    return lines, pa.nulls(len(lines), pa.bool_()).fill_null(False)


def read_chunk_arrow(chunk: Chunk) -> tuple[int, pa.StringArray, pa.BooleanArray]:
    """:func:`read_chunk` with the lines as Arrow arrays (:func:`split_lines`)."""
    first_line, lines, flags, _ = read_chunk_arrow_counted(chunk)
    return first_line, lines, flags


def read_chunk_arrow_counted(chunk: Chunk) -> tuple[int, pa.StringArray, pa.BooleanArray, int]:
    """:func:`read_chunk_arrow` and the chunk's :func:`count_newlines`, counted in the bytes it
    reads anyway: a reader that takes a file's chunks in order can number their lines as it goes
    (the first line number is relative to ``newlines_before``, which it then adds) instead of
    reading every file once more beforehand to count them."""
    data, first_line, newlines = _owned_bytes(chunk)
    if chunk.start == 0 and data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    lines, flags = split_lines(data)
    if chunk.skip_header and len(lines):
        return first_line + 1, lines[1:], flags[1:], newlines
    return first_line, lines, flags, newlines


def iter_numbered_lines(chunk: Chunk) -> Iterator[NumberedLine]:
    """:func:`read_chunk` line by line (for tests and tools)."""
    first, lines, flags = read_chunk(chunk)
    for offset, (raw, flag) in enumerate(zip(lines, flags, strict=True)):
        yield NumberedLine(first + offset, raw, flag)


def read_csv_header(path: str) -> list[str]:
    """The header of a CSV file: its first line, split (only that line is read).

    Raises:
        SchemaDriftError: the file is empty (has no header) or its header is not UTF-8.
    """
    with open(local_path(path), "rb") as file:
        data = _read_through_newline(file)
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    lines, flags = decode_lines(data)
    if not lines:
        raise SchemaDriftError(f"{path}: empty file, expected a CSV header")
    if flags[0]:
        raise SchemaDriftError(f"{path}: the CSV header is not valid UTF-8: {lines[0]!r}")
    return next(csv.reader(io.StringIO(lines[0])), [])
