"""Whole-file rules for the landing zone: what a file must be before any of its lines is read.

Row-level dirt is quarantined line by line (:mod:`jobs.ingest.parse`); these rules catch what no
single line can be blamed for, and each names the file and the rule (:data:`RULES`):

* the folder's entries: a symbolic link is refused, not followed (a link to ``pii.key`` would land
  the key in the quarantine table); a file name that is not UTF-8 is refused with its bytes shown
  (it could not be recorded as ``source_file``);
* completeness: an exporter marks a finished folder with an empty ``_SUCCESS`` file (Hadoop's
  convention; the simulator writes one). With the marker, a file changed after it is still being
  written. Without it, a file modified less than ``landing_settle_seconds`` ago may still be
  growing. Either way the landing sensor waits, and an ingest refuses (:class:`LandingIncompleteError`);
* encoding: a UTF-16/32 file, a compressed or binary file, or a file whose sampled lines are
  mostly not UTF-8 (Latin-1, Windows-1251) is refused whole instead of quarantining every line;
* emptiness: a 0-byte file or a CSV with a header and no data line is refused unless the folder
  has its ``_SUCCESS`` marker: only the exporter can say that a day really had no rows.

A refused file stays in the landing folder untouched and nothing of its night is written, so
nothing is lost: fix or replace the file (or add the marker) and rerun the ingest.
"""

from __future__ import annotations

import codecs
import datetime as dt
import os
from collections.abc import Iterable
from pathlib import Path

from jobs.ingest.raw_files import SchemaDriftError, local_path

MARKER = "_SUCCESS"
SAMPLE_BYTES = 64 * 1024

RULES = {
    "symlink": "a symbolic link in the landing folder is refused, never followed",
    "file_name_not_utf8": "a file name must be UTF-8 (it is recorded as source_file)",
    "changed_after_marker": "a file modified after the folder's _SUCCESS marker is still being written",
    "not_settled": "without a _SUCCESS marker, a file modified less than landing_settle_seconds ago may still grow",
    "not_utf8": "a file must be UTF-8 text (UTF-16/32, compressed, binary or mostly non-UTF-8 lines are refused)",
    "empty_file": "a file with no data line (0 bytes, or a CSV header alone) needs the folder's _SUCCESS marker",
}

_UTF16_32_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32 little-endian"),
    (codecs.BOM_UTF32_BE, "UTF-32 big-endian"),
    (codecs.BOM_UTF16_LE, "UTF-16 little-endian"),
    (codecs.BOM_UTF16_BE, "UTF-16 big-endian"),
)
_COMPRESSED_MAGIC = ((b"\x1f\x8b", "gzip"), (b"PK\x03\x04", "zip"), (b"BZh", "bzip2"), (b"\x28\xb5\x2f\xfd", "zstd"))


class LandingFileError(SchemaDriftError):
    """A landing file breaks a whole-file rule: ``rule`` (a key of :data:`RULES`) and ``path``."""

    def __init__(self, path: str, rule: str, detail: str) -> None:
        self.path, self.rule = path, rule
        super().__init__(f"{path}: {detail} [landing rule {rule}: {RULES[rule]}]")


class LandingIncompleteError(LandingFileError):
    """A landing file may still be being written: the sensor waits, an ingest refuses."""


def _shown(name: str) -> str:
    """A file name as text whatever its bytes (undecodable bytes as ``\\xNN``)."""
    return os.fsencode(name).decode("utf-8", errors="backslashreplace")


def list_landing_files(folder: str, suffix: str) -> list[str]:
    """The data files of one arrival folder (names ending in ``suffix``), sorted.

    Raises:
        LandingFileError: an entry with the suffix is a symbolic link, or a name is not UTF-8.
    """
    root = Path(local_path(folder))
    if not root.is_dir():
        return []
    files = []
    for entry in sorted(os.scandir(root), key=lambda e: os.fsencode(e.name)):
        shown = f"{root}/{_shown(entry.name)}"
        try:
            entry.name.encode("utf-8")
        except UnicodeEncodeError:
            raise LandingFileError(shown, "file_name_not_utf8", "the file name is not UTF-8") from None
        if not entry.name.endswith(suffix):
            continue
        if entry.is_symlink():
            raise LandingFileError(shown, "symlink", "a symbolic link (not followed; copy the file in instead)")
        if entry.is_file(follow_symlinks=False):
            files.append(entry.path)
    return files


def marker_time(folder: str) -> float | None:
    """The ``_SUCCESS`` marker's modification time (seconds), or None without one."""
    try:
        return os.stat(Path(local_path(folder)) / MARKER, follow_symlinks=False).st_mtime
    except FileNotFoundError:
        return None


def check_complete(folder: str, files: Iterable[str], settle_seconds: int, now: dt.datetime | None = None) -> None:
    """Refuse a file that may still be being written (see the module docstring).

    Args:
        now: the clock that decides whether a file settled (wall time; never table content).

    Raises:
        LandingIncompleteError: naming the file and how long ago it changed.
    """
    marker = marker_time(folder)
    clock = (now or dt.datetime.now(dt.UTC)).timestamp()
    for path in files:
        modified = os.stat(local_path(path)).st_mtime
        if marker is not None:
            if modified > marker:
                raise LandingIncompleteError(
                    path, "changed_after_marker", f"modified {modified - marker:.1f} s after the folder's {MARKER}"
                )
        elif clock - modified < settle_seconds:
            raise LandingIncompleteError(
                path,
                "not_settled",
                f"modified {max(clock - modified, 0):.0f} s ago, under the {settle_seconds} s settle time "
                f"and the folder has no {MARKER} marker",
            )


def _encoding_problem(sample: bytes, whole_file: bool, skip_header: bool) -> str | None:
    """Why ``sample`` (a file's first bytes) is not UTF-8 text, or None (more than half of its
    non-blank lines, past a CSV header, failing to decode)."""
    for bom, name in _UTF16_32_BOMS:
        if sample.startswith(bom):
            return f"{name} text (byte order mark {bom.hex(' ')}); convert it to UTF-8"
    for magic, name in _COMPRESSED_MAGIC:
        if sample.startswith(magic):
            return f"a {name}-compressed file; decompress it into the landing folder"
    if b"\x00" in sample:
        return "NUL bytes: UTF-16/32 without a byte order mark, or a binary file"
    lines = sample.split(b"\n")
    if not whole_file:
        lines = lines[:-1]  # the sample may cut its last line (and a character) short
    if skip_header:
        lines = lines[1:]
    lines = [line for line in lines if line.strip()]
    bad = 0
    for line in lines:
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            bad += 1
    if lines and bad * 2 > len(lines):
        return (
            f"{bad} of the {len(lines)} lines in its first {SAMPLE_BYTES // 1024} KiB are not UTF-8 "
            "(Latin-1 or Windows-1251?); convert it to UTF-8"
        )
    return None


def _has_data_line(sample: bytes, whole_file: bool, is_csv: bool) -> bool:
    """Whether the file holds a data line (for a CSV: anything after the header)."""
    if not whole_file:
        return True  # 64 KiB of a header alone is no CSV we read
    body = sample.split(b"\n", 1)[1] if is_csv and b"\n" in sample else (b"" if is_csv else sample)
    return bool(body.strip())


def _sample(path: str) -> tuple[bytes, bool]:
    """A file's first :data:`SAMPLE_BYTES`, and whether that is the whole file."""
    with open(local_path(path), "rb") as file:
        sample = file.read(SAMPLE_BYTES + 1)
    return sample[:SAMPLE_BYTES], len(sample) <= SAMPLE_BYTES


def check_encoding(files: Iterable[str], skip_header: bool = False) -> None:
    """Refuse files that are not UTF-8 text (only each file's first :data:`SAMPLE_BYTES` are read;
    ``skip_header``: a CSV's header line is not counted among the lines sampled).

    Raises:
        LandingFileError: rule ``not_utf8``, naming the file and what it looks like instead.
    """
    for path in files:
        problem = _encoding_problem(*_sample(path), skip_header)
        if problem:
            raise LandingFileError(path, "not_utf8", problem)


def check_not_empty(folder: str, files: Iterable[str], is_csv: bool) -> None:
    """Refuse a file with no data line unless the folder has its ``_SUCCESS`` marker.

    Raises:
        LandingFileError: rule ``empty_file``, naming the file.
    """
    if marker_time(folder) is not None:
        return
    for path in files:
        sample, whole_file = _sample(path)
        if not _has_data_line(sample, whole_file, is_csv):
            what = "0 bytes" if not sample else ("a CSV header and no data line" if is_csv else "blank lines only")
            raise LandingFileError(
                path, "empty_file", f"{what}; if the day really had no rows, the exporter writes {MARKER} beside it"
            )
