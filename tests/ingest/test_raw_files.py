"""Reading landing files into numbered lines: byte order marks, line endings, undecodable bytes.

Every case is read whole and cut into chunks of a few bytes: a line belongs to the chunk holding
its first byte, so the lines and their numbers must not depend on where the cuts fall.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.ingest.raw_files import (
    SchemaDriftError,
    count_newlines,
    iter_numbered_lines,
    plan_chunks,
    read_chunk_arrow_counted,
    read_csv_header,
    with_line_offsets,
)

CHUNK_SIZES = [1, 2, 3, 7, 1 << 20]


def _rows(path: Path, has_header: bool, chunk_bytes: int) -> list[tuple]:
    planned = plan_chunks(str(path), chunk_bytes, has_header)
    chunks = with_line_offsets(planned, [count_newlines(c) for c in planned])
    rows = [(line.line_number, line.raw, line.has_invalid_utf8) for c in chunks for line in iter_numbered_lines(c)]
    # The local ingest reads the chunks in order without counting first: each chunk's own count
    # numbers the next one's lines. Both ways must give the same lines and numbers.
    counted, newlines_before = [], 0
    for chunk in planned:
        first, lines, flags, newlines = read_chunk_arrow_counted(chunk)
        counted += [
            (newlines_before + first + i, raw, flag)
            for i, (raw, flag) in enumerate(zip(lines.to_pylist(), flags.to_pylist(), strict=True))
        ]
        newlines_before += newlines
    assert counted == rows
    return rows


@pytest.mark.parametrize("chunk_bytes", CHUNK_SIZES)
def test_csv_header_after_a_byte_order_mark_and_crlf_lines(tmp_path: Path, chunk_bytes: int) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(b"\xef\xbb\xbfid,name\r\n1,a\r\n2,b\r\n")
    # The BOM is not part of the first column name; \r is not part of the last value.
    assert read_csv_header(str(path)) == ["id", "name"]
    # The header is line 1: data lines are numbered as an editor shows them.
    assert _rows(path, True, chunk_bytes) == [(2, "1,a", False), (3, "2,b", False)]


@pytest.mark.parametrize("chunk_bytes", CHUNK_SIZES)
def test_undecodable_bytes_flag_their_line_only(tmp_path: Path, chunk_bytes: int) -> None:
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'{"a":"ok"}\n{"a":"caf\xe9"}\n\n{"a":"\xc3\xa9"}')
    assert _rows(path, False, chunk_bytes) == [
        (1, '{"a":"ok"}', False),
        (2, '{"a":"caf\ufffd"}', True),  # raw text kept, the bad byte replaced
        (3, "", False),  # an empty line is a line (the parser refuses it)
        (4, '{"a":"é"}', False),  # no final newline: the last line still counts
    ]


@pytest.mark.parametrize("chunk_bytes", CHUNK_SIZES)
def test_a_byte_order_mark_opens_only_the_file(tmp_path: Path, chunk_bytes: int) -> None:
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"a":1}\n\xef\xbb\xbf{"a":2}\n')
    # A BOM inside the file (two files concatenated) stays, and the parser refuses that line.
    assert _rows(path, False, chunk_bytes) == [(1, '{"a":1}', False), (2, '\ufeff{"a":2}', False)]


def test_chunks_are_bounded_and_cover_the_file(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_bytes(b"".join(b'{"n":%d}\n' % i for i in range(1000)))
    chunks = plan_chunks(str(path), 1000)
    # 9890 bytes (10 lines of 8 bytes, 90 of 9, 900 of 10) in ranges of 1000: ten chunks, the last one shorter, no gap and no overlap.
    assert [(c.start, c.end) for c in chunks] == [(i * 1000, min(i * 1000 + 1000, 9890)) for i in range(10)]
    rows = _rows(path, False, 1000)
    assert [r[0] for r in rows] == list(range(1, 1001))
    assert rows[-1] == (1000, '{"n":999}', False)


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "empty file, expected a CSV header"), (b"id,n\xe4me\n1,a\n", "the CSV header is not valid UTF-8")],
)
def test_a_csv_without_a_readable_header_fails(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(content)
    with pytest.raises(SchemaDriftError, match=message):
        read_csv_header(str(path))
