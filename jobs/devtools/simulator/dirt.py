"""Dirt injection and arrival: turns clean records into the lines each daily file receives.

Every record gets one uniform draw mapped onto the dirt kinds (``config.DIRT_KINDS``), so a line
carries at most one kind and the manifest counts are exact. A ``duplicate`` copies a line that is
otherwise clean. All choices come from the source's own random stream in record order, so the
output is byte-deterministic.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

import numpy as np

from jobs.lake.contracts import Contract

from .config import DIRT_KINDS, MANIFEST_KINDS, DirtRates
from .writers import NULL, CsvRenderer, JsonRenderer

# Values outside the contract enums, per (contract, column); checked against the contract.
UNKNOWN_ENUM: dict[tuple[str, str], tuple[str, ...]] = {
    ("raw.orders", "carrier"): ("dhl", "pony_express", "yandex_delivery"),
    ("raw.orders", "payment_method"): ("crypto", "installments"),
    ("raw.orders", "channel"): ("tv", "kiosk"),
    ("raw.tracking_scans", "event"): ("parcel_locker_drop", "customs_hold"),
    ("raw.tracking_scans", "carrier"): ("dhl", "pony_express"),
    ("raw.interactions", "event"): ("wishlist_add", "share_product"),
    ("raw.interactions", "channel"): ("tv", "telegram"),
    ("raw.interactions", "contact_reason"): ("warranty", "complaint_general"),
}

# Unparsable values per contract type (including impossible calendar values, which pass a
# naive regex but not a real parser).
BAD_VALUES: dict[str, tuple[str, ...]] = {
    "timestamp": ("yesterday", "not-a-time", "2026-02-30T10:00:00Z"),
    "date": ("next week", "2026-02-30"),
    "int": ("two", "five", "many"),
    "decimal": ("twelve", "1O0.50"),
}


def _type_family(spark_type: str) -> str:
    return "decimal" if spark_type.startswith("decimal") else spark_type


@dataclass(frozen=True)
class Source:
    """A raw source as the dirt layer and writers see it.

    Attributes:
        name: folder and file stem (``orders``).
        contract: its raw contract.
        shuffle: write lines in a shuffled order (carrier feeds are not time-sorted).
        resend_next_day: a duplicate may arrive in the next day's file (carrier resend).
    """

    name: str
    contract: Contract
    shuffle: bool = False
    resend_next_day: bool = False

    @property
    def is_csv(self) -> bool:
        return self.contract.format == "csv"

    @property
    def extension(self) -> str:
        return "csv" if self.is_csv else "jsonl"


@dataclass(slots=True)
class Record:
    """A clean record: event day (= natural arrival day), event time, contract-ordered values."""

    day: int
    t: int
    values: Sequence[Any]


@dataclass(slots=True)
class Line:
    """A rendered line bound for one file."""

    key: tuple[int, int, int]
    text: str
    kind: str | None = None
    resent: bool = False


@dataclass
class DayFile:
    """All lines of one source landing on one arrival day, plus their dirt counts."""

    lines: list[Line] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """The file's manifest entry: ``lines``, one count per dirt kind, ``duplicate_resent``.

        ``duplicate_resent`` is the part of ``duplicate`` that repeats a line of an earlier file
        (carrier resends), so lines with an event date before the file date = late + resent.
        """
        c = Counter(line.kind for line in self.lines if line.kind)
        out = {"lines": len(self.lines)}
        out.update({k: c.get(k, 0) for k in MANIFEST_KINDS})
        out["duplicate_resent"] = sum(1 for line in self.lines if line.resent)
        return out


class _Corrupter:
    """Applies the per-line corruptions of one source."""

    def __init__(self, source: Source, rng: np.random.Generator) -> None:
        self.source = source
        self.rng = rng
        contract = source.contract
        self.names = contract.column_names
        self.required = [i for i, c in enumerate(contract.columns) if not c.nullable]
        self.enums: list[tuple[int, tuple[str, ...]]] = []
        for i, c in enumerate(contract.columns):
            if c.allowed is None:
                continue
            bad = UNKNOWN_ENUM.get((contract.name, c.name))
            if not bad or any(v in c.allowed for v in bad):
                raise RuntimeError(f"no unknown-enum values outside the contract for {contract.name}.{c.name}")
            self.enums.append((i, bad))
        self.typed = [
            (i, BAD_VALUES[_type_family(c.type)])
            for i, c in enumerate(contract.columns)
            if _type_family(c.type) in BAD_VALUES
        ]
        self.csv = CsvRenderer()
        #: Renders a clean line of this source.
        self.render: Callable[[Sequence[Any]], str] = self.csv if source.is_csv else JsonRenderer(self.names)

    def _pick(self, options: list[Any]) -> Any:
        return options[int(self.rng.integers(len(options)))]

    def missing_required(self, values: Sequence[Any]) -> list[Any]:
        out = list(values)
        i = self._pick(self.required)
        # JSON: the key is either absent or explicitly null; CSV: an empty field either way.
        out[i] = None if self.rng.random() < 0.5 else NULL
        return out

    def unknown_enum(self, values: Sequence[Any]) -> list[Any]:
        out = list(values)
        i, bad = self._pick([e for e in self.enums if values[e[0]] is not None])
        out[i] = self._pick(list(bad))
        return out

    def bad_type(self, values: Sequence[Any]) -> list[Any]:
        out = list(values)
        i, bad = self._pick([e for e in self.typed if values[e[0]] is not None])
        out[i] = self._pick(list(bad))
        return out

    def malformed(self, values: Sequence[Any]) -> str:
        text = self.render(values)
        if not self.source.is_csv:
            # Truncated mid-object; cut in the second half so the id survives and two broken
            # lines cannot collide. No proper prefix of a JSON object parses.
            return text[: int(self.rng.integers(len(text) // 2, len(text) - 1))]
        fields = ["" if v is None else str(v) for v in values]
        variant = int(self.rng.integers(3))
        if variant == 0:  # a field lost
            del fields[int(self.rng.integers(1, len(fields)))]
            return self.csv(fields)
        if variant == 1:  # a stray extra field
            fields.insert(int(self.rng.integers(1, len(fields))), "x")
            return self.csv(fields)
        # An opening quote never closed: the line still ends at the newline, but a CSV parser
        # reading it alone merges the remaining fields into one. (Simulated values never need
        # quoting, so splitting on commas recovers the fields.)
        parts = self.csv(fields).split(",")
        j = int(self.rng.integers(1, len(parts) - 1))
        parts[j] = '"' + parts[j]
        return ",".join(parts)


_line_key = attrgetter("key")


def arrange(
    records: list[Record],
    source: Source,
    rates: DirtRates,
    rng: np.random.Generator,
    last_day: int,
) -> dict[int, DayFile]:
    """Inject dirt and distribute lines over arrival days.

    Args:
        records: clean records in id order.
        source: the source they belong to.
        rates: dirt rates.
        rng: this source's stream.
        last_day: last simulated epoch day; lines arriving later are not written.

    Returns:
        Arrival epoch day -> its file's lines, in final write order.
    """
    n = len(records)
    cum = np.cumsum([rates.rate(k) for k in DIRT_KINDS])
    kinds = np.searchsorted(cum, rng.random(n), side="right").tolist()
    delays = rng.integers(1, 4, n).tolist()
    dup_offsets = rng.integers(1, 3600, n).tolist()  # seconds later in the same export
    resend = (rng.random(n) < 0.5).tolist()
    corrupt = _Corrupter(source, rng)
    render = corrupt.render
    clean = len(DIRT_KINDS)
    files: dict[int, DayFile] = {}

    def put(day: int, line: Line) -> None:
        if day <= last_day:
            files.setdefault(day, DayFile()).lines.append(line)

    # Records come in time order, so clean lines (the vast majority) go to the same day's list
    # run after run; only a dirty record takes the general path. Rendering draws nothing from
    # ``rng``, so a clean line that would land after ``last_day`` is simply not rendered.
    cur_day: int | None = None
    cur: list[Line] | None = None
    for i, rec in enumerate(records):
        k = kinds[i]
        if k == clean:
            if rec.day != cur_day:
                cur_day = rec.day
                cur = files.setdefault(cur_day, DayFile()).lines if cur_day <= last_day else None
            if cur is not None:
                cur.append(Line((rec.t, i, 0), render(rec.values)))
            continue
        kind = DIRT_KINDS[k]
        key = (rec.t, i, 0)
        if kind == "duplicate":
            text = render(rec.values)
            put(rec.day, Line(key, text))
            if source.resend_next_day and resend[i]:
                put(rec.day + 1, Line((rec.t + dup_offsets[i], i, 1), text, kind, resent=True))
            else:
                put(rec.day, Line((rec.t + dup_offsets[i], i, 1), text, kind))
        elif kind == "late":
            put(rec.day + delays[i], Line(key, render(rec.values), kind))
        elif kind == "malformed":
            put(rec.day, Line(key, corrupt.malformed(rec.values), kind))
        else:
            fn: Callable[[Sequence[Any]], list[Any]] = getattr(corrupt, kind)
            put(rec.day, Line(key, render(fn(rec.values)), kind))

    for day in sorted(files):
        lines = files[day].lines
        lines.sort(key=_line_key)
        if source.shuffle:
            # A carrier feed arrives in no particular order.
            files[day].lines = [lines[j] for j in rng.permutation(len(lines)).tolist()]
    return files
