"""Reading landing files into numbered lines: byte order marks, line endings, undecodable bytes."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.ingest.raw_files import INVALID_UTF8, SchemaDriftError, read_raw_batch


def _rows(path: Path, has_header: bool) -> tuple[list[tuple], dict[str, list[str]]]:
    batch = read_raw_batch([str(path)], has_header=has_header)
    rows = [(r["line_number"], r["raw"], r[INVALID_UTF8]) for r in batch.lines.to_pylist()]
    return rows, batch.csv_headers


def test_csv_header_after_a_byte_order_mark_and_crlf_lines(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(b"\xef\xbb\xbfid,name\r\n1,a\r\n2,b\r\n")
    rows, headers = _rows(path, has_header=True)
    # The BOM is not part of the first column name; \r is not part of the last value.
    assert headers == {str(path): ["id", "name"]}
    assert rows == [(2, "1,a", False), (3, "2,b", False)]


def test_undecodable_bytes_flag_their_line_only(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'{"a":"ok"}\n{"a":"caf\xe9"}\n\n{"a":"\xc3\xa9"}')
    rows, _ = _rows(path, has_header=False)
    assert rows == [
        (1, '{"a":"ok"}', False),
        (2, '{"a":"caf\ufffd"}', True),  # raw text kept, the bad byte replaced
        (3, "", False),  # an empty line is a line (the parser refuses it)
        (4, '{"a":"é"}', False),  # no final newline: the last line still counts
    ]


def test_a_byte_order_mark_opens_only_the_file(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"a":1}\n\xef\xbb\xbf{"a":2}\n')
    rows, _ = _rows(path, has_header=False)
    # A BOM inside the file (two files concatenated) stays, and the parser refuses that line.
    assert rows == [(1, '{"a":1}', False), (2, '\ufeff{"a":2}', False)]


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "empty file, expected a CSV header"), (b"id,n\xe4me\n1,a\n", "the CSV header is not valid UTF-8")],
)
def test_a_csv_without_a_readable_header_fails(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(content)
    with pytest.raises(SchemaDriftError, match=message):
        read_raw_batch([str(path)], has_header=True)
