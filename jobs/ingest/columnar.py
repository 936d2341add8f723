"""The common JSON line, parsed and checked a column at a time (pyarrow), not a line at a time.

Nearly every line of a feed is plain: one flat JSON object, strings where the contract says
string, an integer where it says int, timestamps written ``YYYY-MM-DDTHH:MM:SSZ``. For those
lines the Python checks of :class:`jobs.ingest.parse.LineTyper` are replaced by pyarrow's
JSON reader and compute kernels over whole batches; everything else — broken lines, escapes,
other value shapes, extra fields, invalid UTF-8 — is handed back to the line-by-line path,
which alone knows Spark's ``try_cast`` rules and the strict-JSON rules in full.

The split is safe by construction: this module accepts a line only when it can prove the exact
outcome the line-by-line path would give (``tests/ingest/test_columnar.py`` compares the two on
the bad-input corpus and on simulated nights); when in doubt a line goes the slow way. So the
cost follows the dirt: clean lines cost a few hundred nanoseconds, dirty ones the Python path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from jobs.lake.contracts import Contract

# An event dated after the day its line arrived (UTC, as every event time) had not happened when it
# arrived: a device clock or a typo. Quarantined (``from_future``) before it can reach silver, whose
# gate holds that no event arrives before it happened, and where it would sit in a far-future
# partition every later night reads.
FUTURE_TOLERANCE_DAYS = 0

_MICROS_PER_DAY = 86_400_000_000
# A line this module may take: one object, nothing around it, no \u escape (lone surrogates
# and escaped key names are the line path's). NaN and Infinity tokens (strict JSON refuses them)
# need no search of their own: pyarrow refuses them in the declared columns (a string column
# "changed from string to number"; an int64 one "couldn't parse:NaN"), and takes them only into a
# field the contract does not name, whose lines :meth:`ColumnarJsonTyper._type_table` hands to
# the line path. Searching every batch's bytes for them cost ~16 ms per 65,536 lines, a tenth
# of the classification.
_MAX_READS = 256
# Lines per read: pyarrow's error names one bad line, and the lines before it are read again; a
# read of a whole batch (65,536 lines) read its good lines ~1.7 times over on the large bench's
# nights (a string in an int column every few thousand lines), while a read of 8,192 costs the
# same per line as one of 65,536 (measured: 70-72 ms per 65,398 lines either way).
_READ_LINES = 8192
_ERROR_ROW = re.compile(r" in row (\d+)$")
# The timestamp shape taken here, every field in its range; any other (offsets, fractions, a space,
# hour 24, second 60) is the line path's. Only a day past its month's end (2026-02-30) still
# parses, rolled over by strptime, so the day is checked against the parsed timestamp.
_CANONICAL_TIMESTAMP = r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\dZ$"
_DAY_FIELD = (8, 10)
_INT32 = (-(2**31), 2**31 - 1)


def _bytes_of(texts: pa.StringArray) -> bytes:
    """The bytes of the array's strings, back to back (a copy of its slice of the data buffer)."""
    if not len(texts):
        return b""
    offsets = np.frombuffer(texts.buffers()[1], dtype=np.int32)
    start, end = offsets[texts.offset], offsets[texts.offset + len(texts)]
    return texts.buffers()[2][start:end].to_pybytes()


def _null_where_not(values: pa.Array, mask: pa.BooleanArray) -> pa.Array:
    """``values`` with nulls where ``mask`` (no nulls) is false: a new validity bitmap over the
    same data buffers, where ``if_else`` copied every string."""
    if values.offset or mask.offset or mask.null_count:
        return pc.if_else(mask, values, None)
    validity = pc.and_(pc.is_valid(values), mask)
    return pa.Array.from_buffers(values.type, len(values), [validity.buffers()[1], *values.buffers()[1:]])


@dataclass(frozen=True)
class _Column:
    index: int
    name: str
    kind: str  # "string", "timestamp" or "int"
    required: bool
    allowed: pa.Array | None
    low: int | None
    high: int | None


@dataclass
class ColumnarResult:
    """Lines classified here and the positions (into the input) left to the line-by-line path.

    ``typed`` holds the contract columns (null on refused lines, as the line path leaves them),
    ``reasons`` the first failing check or null; ``values`` counts, per contract column, the
    non-blank values seen (the drift evidence; none of them is unparsable by construction).
    """

    positions: pa.Array
    typed: list[pa.Array]
    reasons: pa.Array
    values: list[int]
    slow_positions: list[int]

    @classmethod
    def all_slow(cls, width: int, slow_positions: list[int]) -> ColumnarResult:
        """Nothing classified here: every line of ``slow_positions`` is the line path's."""
        return cls(pa.array([], pa.int64()), [], pa.array([], pa.string()), [0] * width, slow_positions)


class ColumnarJsonTyper:
    """Classifies the plain JSON lines of a contract column-wise (see the module docstring).

    Args:
        contract: the raw contract (JSON lines).
        lateness_days: as :class:`jobs.ingest.parse.LineTyper`.
    """

    def __init__(self, contract: Contract, lateness_days: int) -> None:
        self.lateness_days = lateness_days
        self.names = tuple(c.name for c in contract.columns)
        columns = []
        explicit = []
        self.supported = True
        for i, c in enumerate(contract.columns):
            text = c.type.strip().lower()
            kind = {"string": "string", "timestamp": "timestamp", "int": "int"}.get(text)
            if kind is None:
                # Other types (decimal, double, date, ...) keep Spark's exact text rules: the
                # whole contract stays on the line path.
                self.supported = False
                kind = "string"
            allowed = None
            if c.allowed is not None:
                allowed = pa.array([str(a) for a in c.allowed], pa.string()) if kind == "string" else None
                if kind != "string":
                    self.supported = False
            if (c.min is not None or c.max is not None) and kind != "int":
                self.supported = False
            columns.append(_Column(i, c.name, kind, not c.nullable, allowed, c.min, c.max))
            explicit.append((c.name, pa.int64() if kind == "int" else pa.string()))
        self.columns = tuple(columns)
        self.schema = pa.schema(explicit)
        event = contract.event_time
        self.event_index = self.names.index(event) if event else None
        if event and self.columns[self.event_index].kind != "timestamp":
            self.supported = False
        self._parse_options = pj.ParseOptions(explicit_schema=self.schema, unexpected_field_behavior="infer")
        self._read_options = pj.ReadOptions(use_threads=False, block_size=1 << 30)

    # ---- parsing: plain lines through pyarrow, each failing line out to the line path --------

    def _read(self, lines: pa.StringArray) -> pa.Table | Exception | None:
        """The lines as a table; or pyarrow's error when it names a row; or None."""
        listed = pa.ListArray.from_arrays(pa.array([0, len(lines)], pa.int32()), lines)
        joined = pc.binary_join(listed, "\n")[0].as_buffer()
        try:
            return pj.read_json(
                pa.BufferReader(joined), read_options=self._read_options, parse_options=self._parse_options
            )
        except (pa.ArrowInvalid, UnicodeError) as error:
            return error if _ERROR_ROW.search(str(error)) else None

    def _parse(self, lines: pa.StringArray) -> tuple[list[tuple[int, pa.Table]], list[int]]:
        """Tables (with the index of their first line) of the runs of lines pyarrow reads one row
        per line, and the indices of the lines it refused."""
        done: list[tuple[int, pa.Table]] = []
        slow: list[int] = []
        # Popped from the end: the first piece first.
        pending = [(start, min(start + _READ_LINES, len(lines))) for start in range(0, len(lines), _READ_LINES)][::-1]
        reads = 0
        while pending:
            start, end = pending.pop()
            if start >= end:
                continue
            reads += 1
            if reads > _MAX_READS:
                # A batch this dirty (a value shape pyarrow refuses on most lines) is cheaper on
                # the line path than split into ever smaller reads.
                slow.extend(range(start, end))
                continue
            result = self._read(lines.slice(start, end - start))
            if isinstance(result, pa.Table):
                if result.num_rows == end - start:
                    done.append((start, result))
                    continue
                result = None  # rows do not line up with lines (two objects on a line): split
            if isinstance(result, Exception):
                # pyarrow names the row it stopped at; with blank lines kept out, row = line.
                bad = start + int(_ERROR_ROW.search(str(result)).group(1))
                if start <= bad < end:
                    slow.append(bad)
                    pending += [(start, bad), (bad + 1, end)]
                    continue
            if end - start == 1:
                slow.append(start)
            else:
                middle = (start + end) // 2
                pending += [(start, middle), (middle, end)]
        return done, slow

    # ---- typing and checks, a column at a time -----------------------------------------------

    def classify(self, texts: pa.StringArray, invalid_utf8: pa.BooleanArray, arrival_day: int | None) -> ColumnarResult:
        """Classify what can be proven here; return the rest's positions for the line path."""
        width = len(self.columns)
        if not self.supported or not len(texts):
            return ColumnarResult.all_slow(width, list(range(len(texts))))
        plain = pc.and_(pc.starts_with(texts, "{"), pc.ends_with(texts, "}"))
        # The per-line searches run only when the batch's bytes hold the pattern at all.
        text_bytes = _bytes_of(texts)
        # A one-byte search is a memchr (~0.4 ms per 10 MB batch, against ~11 ms for "\\u").
        if b"\\" in text_bytes and b"\\u" in text_bytes:
            plain = pc.and_(plain, pc.invert(pc.match_substring(texts, "\\u")))
        plain = pc.and_(pc.fill_null(plain, False), pc.invert(invalid_utf8))
        mask = plain.to_numpy(zero_copy_only=False)
        candidates = np.flatnonzero(mask)
        slow = np.flatnonzero(~mask).tolist()
        done, refused = self._parse(texts.filter(plain))
        slow += candidates[refused].tolist()
        if not done:
            return ColumnarResult.all_slow(width, sorted(slow))
        # The pieces typed as one table (the per-call cost of some forty kernels, once a batch):
        # the declared columns have the same types in every piece; the fields the contract does
        # not name are looked for in every line of the batch.
        extras = sorted({name for _, table in done for name in table.column_names if name not in self.names})
        positions = pa.array(np.concatenate([candidates[first : first + t.num_rows] for first, t in done]), pa.int64())
        table = pa.concat_tables([t.select(list(self.names)) for _, t in done])
        kept, typed, reasons, typed_slow, values = self._type_table(positions, table, texts, arrival_day, extras)
        return ColumnarResult(kept, typed, reasons, values, sorted(slow + typed_slow))

    def _type_table(
        self, positions: pa.Array, table: pa.Table, texts: pa.Array, arrival_day: int | None, extras: list[str]
    ) -> tuple[pa.Array, list[pa.Array], pa.Array, list[int], list[int]]:
        count = table.num_rows
        to_slow = pa.repeat(pa.scalar(False), count)
        if extras:
            # An extra field goes to ``_extra`` with its JSON text, and null and absent differ
            # there: lines that may hold one are the line path's.
            line_texts = pc.take(texts, positions)
            for name in extras:
                to_slow = pc.or_(to_slow, pc.match_substring(line_texts, '"' + name.replace('"', "") + '"'))
        typed: list[pa.Array] = []
        present: list[pa.Array] = []
        for column in self.columns:
            values = table.column(column.name).combine_chunks()
            if column.kind == "int":
                is_present = pc.is_valid(values)
                fits = pc.and_(pc.greater_equal(values, _INT32[0]), pc.less_equal(values, _INT32[1]))
                to_slow = pc.or_(to_slow, pc.and_(is_present, pc.invert(pc.fill_null(fits, False))))
                value = pc.cast(pc.if_else(pc.fill_null(fits, False), values, None), pa.int32())
            else:
                trimmed = pc.utf8_trim(values, characters=" ")
                # Bytes, not characters: the same emptiness, without decoding UTF-8.
                is_present = pc.fill_null(pc.greater(pc.binary_length(trimmed), 0), False)
                value = pc.if_else(is_present, trimmed, None)
                if column.kind == "timestamp":
                    shaped = pc.fill_null(pc.match_substring_regex(value, _CANONICAL_TIMESTAMP), False)
                    canonical = pc.if_else(shaped, value, None)
                    stamp = pc.strptime(canonical, format="%Y-%m-%dT%H:%M:%SZ", unit="us", error_is_null=True)
                    # strptime rolls 2026-02-30 over to 2026-03-02: the day must come back.
                    written_day = pc.cast(pc.utf8_slice_codeunits(canonical, *_DAY_FIELD), pa.int64())
                    same = pc.and_(shaped, pc.fill_null(pc.equal(pc.day(stamp), written_day), False))
                    micros = pc.cast(stamp, pa.int64())
                    # Day arithmetic below truncates; before 1970 it would have to floor.
                    ok = pc.and_(same, pc.fill_null(pc.greater_equal(micros, 0), False))
                    to_slow = pc.or_(to_slow, pc.and_(is_present, pc.invert(ok)))
                    value = pc.cast(pc.if_else(ok, stamp, None), pa.timestamp("us", tz="UTC"))
            typed.append(value)
            present.append(is_present)
        reason = pa.nulls(count, pa.string())
        # Later checks are applied first so that the earliest failing check wins.
        if self.event_index is not None and arrival_day is not None:
            stamp = pc.cast(pc.cast(typed[self.event_index], pa.timestamp("us")), pa.int64())
            day = pc.divide(stamp, _MICROS_PER_DAY)
            future = pc.greater(day, arrival_day + FUTURE_TOLERANCE_DAYS)
            reason = pc.if_else(pc.fill_null(future, False), "from_future", reason)
            late = pc.less(day, arrival_day - self.lateness_days)
            reason = pc.if_else(pc.fill_null(late, False), "too_late", reason)
        for column in reversed(self.columns):
            if column.low is not None or column.high is not None:
                outside = pa.repeat(pa.scalar(False), count)
                if column.low is not None:
                    outside = pc.or_(outside, pc.less(typed[column.index], column.low))
                if column.high is not None:
                    outside = pc.or_(outside, pc.greater(typed[column.index], column.high))
                reason = pc.if_else(pc.fill_null(outside, False), f"out_of_range:{column.name}", reason)
        for column in reversed(self.columns):
            if column.allowed is not None:
                unknown = pc.and_(present[column.index], pc.invert(pc.is_in(typed[column.index], column.allowed)))
                reason = pc.if_else(pc.fill_null(unknown, False), f"unknown_enum:{column.name}", reason)
        for column in reversed(self.columns):
            if column.required:
                reason = pc.if_else(present[column.index], reason, f"missing_required:{column.name}")
        accepted = pc.is_null(reason)
        typed = [_null_where_not(t, accepted) for t in typed]
        if not to_slow.true_count:
            # Every line stays (the common batch): no filter copies its columns.
            return positions, typed, reason, [], [p.true_count for p in present]
        keep = pc.invert(to_slow)
        slow_positions = pc.filter(positions, to_slow).to_pylist()
        kept_typed = [pc.filter(t, keep) for t in typed]
        values = [pc.and_(p, keep).true_count for p in present]
        return pc.filter(positions, keep), kept_typed, pc.filter(reason, keep), slow_positions, values
