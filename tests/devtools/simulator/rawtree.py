"""A reader of a simulator output tree for the tests.

It re-parses the files the way a consumer would and re-detects dirt independently of the
simulator's own bookkeeping, so the manifest can be reconciled against it.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from jobs.devtools.simulator import SimulationConfig
from jobs.lake.contracts import Contract, load_contract

SOURCES = {
    "orders": ("raw.orders", "csv", "placed_at"),
    "tracking_scans": ("raw.tracking_scans", "jsonl", "scan_at"),
    "interactions": ("raw.interactions", "jsonl", "event_at"),
}
TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
KINDS = ("duplicate", "late", "malformed", "missing_required", "unknown_enum", "bad_type")


def parse_ts(value: Any) -> dt.datetime | None:
    """A contract timestamp, or ``None`` when the text is not one."""
    if not isinstance(value, str) or not TS_RE.match(value):
        return None
    try:
        return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return None


def _valid(contract_type: str, value: Any, is_csv: bool) -> bool:
    if contract_type == "string":
        return isinstance(value, str)
    if contract_type == "timestamp":
        return parse_ts(value) is not None
    if contract_type == "date":
        try:
            return isinstance(value, str) and dt.date.fromisoformat(value).isoformat() == value
        except ValueError:
            return False
    if contract_type == "int":
        if is_csv:
            return isinstance(value, str) and re.fullmatch(r"-?\d+", value) is not None
        return isinstance(value, int) and not isinstance(value, bool)
    if contract_type.startswith("decimal"):
        if not (isinstance(value, str) and re.fullmatch(r"-?\d+\.\d{2}", value)):
            return False
        try:
            Decimal(value)
        except InvalidOperation:
            return False
        return True
    raise AssertionError(f"unhandled contract type {contract_type}")


@dataclass
class ParsedLine:
    """One raw line as a consumer sees it."""

    text: str
    row: dict[str, Any] | None  # None when malformed
    kinds: list[str]  # dirt detected (never more than one, asserted by the tests)


@dataclass
class RawFile:
    source: str
    day: dt.date
    path: Path
    header: list[str] | None
    lines: list[ParsedLine] = field(default_factory=list)

    def counts(self) -> Counter:
        return Counter(k for line in self.lines for k in line.kinds)


def classify(contract: Contract, fmt: str, event_col: str, text: str, file_day: dt.date) -> ParsedLine:
    """Parse a line and list every kind of dirt it shows (duplicates are found by the tree)."""
    names = contract.column_names
    if fmt == "csv":
        try:
            fields = next(csv.reader([text]))
        except csv.Error:
            return ParsedLine(text, None, ["malformed"])
        if len(fields) != len(names):
            return ParsedLine(text, None, ["malformed"])
        row: dict[str, Any] = {n: (v if v != "" else None) for n, v in zip(names, fields, strict=True)}
    else:
        try:
            obj = json.loads(text)
        except json.JSONDecodeError:
            return ParsedLine(text, None, ["malformed"])
        if not isinstance(obj, dict):
            return ParsedLine(text, None, ["malformed"])
        row = obj
    kinds = []
    if any(row.get(c.name) is None for c in contract.columns if not c.nullable):
        kinds.append("missing_required")
    if any(
        c.allowed is not None and row.get(c.name) is not None and row[c.name] not in c.allowed for c in contract.columns
    ):
        kinds.append("unknown_enum")
    if any(row.get(c.name) is not None and not _valid(c.type, row[c.name], fmt == "csv") for c in contract.columns):
        kinds.append("bad_type")
    event_at = parse_ts(row.get(event_col))
    if event_at is not None and event_at.date() < file_day:
        kinds.append("late")
    return ParsedLine(text, row, kinds)


@dataclass
class Tree:
    """A parsed simulator output tree."""

    root: Path
    config: SimulationConfig
    files: dict[tuple[str, dt.date], RawFile]
    manifests: dict[dt.date, dict[str, Any]]

    def rows(self, source: str, *, clean_only: bool = True) -> list[dict[str, Any]]:
        """Parsed rows of a source over all days (dirty lines skipped by default)."""
        out = []
        for (src, _), f in sorted(self.files.items(), key=lambda kv: (kv[0][0], kv[0][1])):
            if src != source:
                continue
            out.extend(ln.row for ln in f.lines if ln.row is not None and (not clean_only or not ln.kinds))
        return out


def read_tree(root: Path, config: SimulationConfig) -> Tree:
    """Read every data file and manifest, detecting dirt line by line."""
    files: dict[tuple[str, dt.date], RawFile] = {}
    seen: dict[str, set[str]] = {s: set() for s in SOURCES}
    for day in config.dates:
        d = day.isoformat()
        for source, (contract_name, fmt, event_col) in SOURCES.items():
            contract = load_contract(contract_name)
            path = root / source / d / f"{source}_{d}.{fmt}"
            raw = path.read_bytes()
            text = raw.decode("utf-8")
            assert "\r" not in text, path
            assert text == "" or text.endswith("\n"), path
            lines = text.split("\n")[:-1] if text else []
            header = None
            if fmt == "csv":
                header, lines = next(csv.reader([lines[0]])), lines[1:]
            f = RawFile(source, day, path, header)
            for line in lines:
                # A repeat of a line already delivered (this file or an earlier one) is a
                # duplicate; the first occurrence is classified on its own merits.
                if line in seen[source]:
                    f.lines.append(ParsedLine(line, None, ["duplicate"]))
                    continue
                seen[source].add(line)
                f.lines.append(classify(contract, fmt, event_col, line, day))
            files[(source, day)] = f
    manifests = {
        day: json.loads((root / "_manifest" / f"{day.isoformat()}.json").read_text(encoding="utf-8"))
        for day in config.dates
    }
    return Tree(root, config, files, manifests)
