"""Turning raw lines into contract-typed rows or quarantine reasons, in Arrow batches.

Every line ends with either a typed row (``_reason`` null) or exactly one machine-readable
``_reason``, checked in this order: ``malformed_json``/``malformed_csv``,
``missing_required:<col>``, ``bad_type:<col>``, ``unknown_enum:<col>``, ``out_of_range:<col>``,
``too_late``, ``from_future``, ``duplicate``.

Values are read the same way in both formats: surrounding spaces are trimmed and a blank value is
null (an empty CSV field or a JSON ``""`` is the exporter's null, so a blank required value is
``missing_required``). Typing follows Spark's ``try_cast`` of that text (see ``values``).

The per-line work runs in Python inside Spark tasks (``mapInArrow``), so the Spark plan stays a
few nodes whatever the contract; only the duplicate check, which compares lines across tasks,
is a Spark aggregation. Besides its rows, each task emits one summary row per file it read
(``_summary``: line counts and each column's value evidence), which the job merges into the
per-file stats behind reconciliation and drift checks (:func:`merge_file_stats`).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyspark.sql.functions as F
from pyspark.sql import Column as SparkColumn
from pyspark.sql import DataFrame, Window

from jobs.ingest import values
from jobs.ingest.columnar import FUTURE_TOLERANCE_DAYS, ColumnarJsonTyper, ColumnarResult
from jobs.ingest.raw_files import INVALID_UTF8, Chunk, read_chunk_arrow
from jobs.lake.contracts import Contract, arrow_type, spark_type

ARRIVAL = "_ingest_date"
REASON = "_reason"
EXTRA = "_extra"
SUMMARY = "_summary"
_BATCH_LINES = 32768
_EPOCH = dt.date(1970, 1, 1)


# ---- one line's fields -----------------------------------------------------------------------


class _Number(str):
    """A JSON number, held as the text Spark gives it (``1.50`` -> ``1.5``, ``1e2`` -> ``100.0``)."""

    __slots__ = ()


class _RepeatedKeyError(ValueError):
    pass


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # A repeated key is refused: which copy is meant depends on the parser.
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _RepeatedKeyError
    return obj


def _json_int(token: str) -> _Number:
    return _Number(str(int(token)) if len(token) < 19 else values.json_number_text(token))


def _json_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # NaN, Infinity


_DECODER = json.JSONDecoder(
    object_pairs_hook=_json_object,
    parse_int=_json_int,
    parse_float=lambda token: _Number(values.json_number_text(token)),
    parse_constant=_json_constant,
)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_CONTROL_ESCAPE = re.compile(r"\\u00([0-9a-f]{2})")


def _has_lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(v) for v in value)
    return False


def _json_text(value: Any) -> str:
    """A parsed JSON value as Spark writes a variant: keys sorted, no spaces, numbers as Spark's."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, _Number):
        return str(value)
    if isinstance(value, str):
        # Jackson writes \\u escapes of control characters in upper case.
        return _CONTROL_ESCAPE.sub(lambda m: "\\u00" + m[1].upper(), json.dumps(value, ensure_ascii=False))
    if isinstance(value, dict):
        return "{" + ",".join(f"{_json_text(k)}:{_json_text(value[k])}" for k in sorted(value)) + "}"
    return "[" + ",".join(_json_text(v) for v in value) + "]"


@dataclass(frozen=True)
class LineFields:
    """A line split into its top-level fields (``None``: the line is malformed).

    Attributes:
        fields: field name -> text (JSON scalars as Spark's text, objects and arrays as JSON,
            JSON null and an empty CSV field as None), in line order.
        nested: names of the fields whose JSON value is an object or array.
    """

    fields: dict[str, str | None] | None
    nested: frozenset[str] = frozenset()


_MALFORMED = LineFields(None)


def json_fields(raw: str | None, has_invalid_utf8: bool = False) -> LineFields:
    """The fields of a line that is exactly one strict JSON object, else malformed.

    Strict: no single quotes, ``NaN`` or ``Infinity``, no repeated key at any depth, nothing but
    whitespace around the object, no lone UTF-16 surrogate escape. A line whose bytes were not
    UTF-8 is malformed whatever its text.
    """
    if raw is None or has_invalid_utf8:
        return _MALFORMED
    try:
        obj = _DECODER.decode(raw)
    except (ValueError, RecursionError):
        return _MALFORMED
    if type(obj) is not dict:
        return _MALFORMED
    if "\\u" in raw and _SURROGATE_ESCAPE.search(raw) and _has_lone_surrogate(obj):
        return _MALFORMED
    for value in obj.values():
        if value is not None and type(value) is not str:
            break
    else:
        return LineFields(obj)  # the common line: strings and nulls only
    fields: dict[str, str | None] = {}
    nested = []
    for key, value in obj.items():
        if value is None or type(value) is str:
            fields[key] = value
        elif isinstance(value, _Number):
            fields[key] = str.__str__(value)
        elif value is True or value is False:
            fields[key] = "true" if value else "false"
        else:
            fields[key] = _json_text(value)
            nested.append(key)
    return LineFields(fields, frozenset(nested))


def csv_fields(raw: str | None, header: list[str], has_invalid_utf8: bool = False) -> LineFields:
    """The fields of a CSV line by ``header``; malformed unless it has exactly the header's width.

    Each line is judged alone with Python's strict csv reader (a quote left open, a short or a
    long row are malformed, never padded or cut). An empty field is the exporter's null.
    """
    try:
        row = next(csv.reader([raw], strict=True)) if raw and not has_invalid_utf8 else []
    except csv.Error:
        row = []
    if len(row) != len(header):
        return _MALFORMED
    return LineFields({name: (value if value != "" else None) for name, value in zip(header, row, strict=True)})


# ---- typing and checking a line ---------------------------------------------------------------


@dataclass(frozen=True)
class TypedLine:
    """A line's contract values (None where absent or not fitting), its ``_extra`` and reason."""

    values: tuple[Any, ...]
    extra: dict[str, str | None] | None
    reason: str | None
    texts: tuple[str | None, ...] = ()


@dataclass
class FileSummary:
    """What one task saw of one file: line outcomes and, per checked column, its values' fit.

    ``values``/``unparsable``/``lows``/``highs`` are indexed by contract column.
    """

    width: int
    raw_lines: int = 0
    accepted_rows: int = 0
    quarantined_rows: int = 0
    parsed_rows: int = 0
    values: list[int] = field(default_factory=list)
    unparsable: list[int] = field(default_factory=list)
    lows: list[str | None] = field(default_factory=list)
    highs: list[str | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.values = [0] * self.width
        self.unparsable = [0] * self.width
        self.lows = [None] * self.width
        self.highs = [None] * self.width

    def to_json(self, names: tuple[str, ...], tracked: tuple[int, ...]) -> str:
        return json.dumps(
            {
                "raw_lines": self.raw_lines,
                "accepted_rows": self.accepted_rows,
                "quarantined_rows": self.quarantined_rows,
                "parsed_rows": self.parsed_rows,
                "columns": {
                    names[i]: {
                        "values": self.values[i],
                        "unparsable": self.unparsable[i],
                        "example_low": self.lows[i],
                        "example_high": self.highs[i],
                    }
                    for i in tracked
                },
            }
        )


class LineTyper:
    """Types the fields of lines by a contract and names each line's first failing check.

    Args:
        contract: the raw contract.
        lateness_days: a line whose event day is more than this many days before its arrival
            day is ``too_late``; one dated after it is ``from_future`` (a device clock or a typo,
            not an event that happened; :data:`jobs.ingest.columnar.FUTURE_TOLERANCE_DAYS`).
        is_json: JSON lines (every column's values are drift evidence; in CSV a string column
            always fits, so only the other columns are).
    """

    def __init__(self, contract: Contract, lateness_days: int, is_json: bool) -> None:
        self.contract = contract
        self.lateness_days = lateness_days
        self.names = tuple(c.name for c in contract.columns)
        self.width = len(self.names)
        self.known = frozenset(self.names)
        casts = tuple(values.caster(c.type) for c in contract.columns)
        is_string = tuple(c.type.strip().lower() == "string" for c in contract.columns)
        # A string column takes the trimmed text as it is (cast None).
        self._columns = tuple(
            (i, name, None if string else cast)
            for i, (name, cast, string) in enumerate(zip(self.names, casts, is_string, strict=True))
        )
        self._is_required = tuple(not c.nullable for c in contract.columns)
        self._enums = tuple(
            (i, frozenset(casts[i](str(a)) for a in c.allowed))
            for i, c in enumerate(contract.columns)
            if c.allowed is not None
        )
        self._ranges = tuple(
            (i, c.min, c.max) for i, c in enumerate(contract.columns) if c.min is not None or c.max is not None
        )
        self.tracked = tuple(i for i in range(self.width) if is_json or not is_string[i])
        self._is_tracked = tuple(i in self.tracked for i in range(self.width))
        self.malformed = "malformed_json" if is_json else "malformed_csv"
        event = contract.event_time
        self._event_index = self.names.index(event) if event else None
        self._event_is_date = event is not None and contract.column(event).type.strip().lower() == "date"

    def type_line(
        self, line: LineFields, arrival_day: int | None = None, summary: FileSummary | None = None
    ) -> TypedLine:
        """Type one line; ``arrival_day`` (epoch days) enables the lateness check, ``summary``
        (the line's file) counts the line and its values' fit."""
        fields = line.fields
        if fields is None:
            if summary is not None:
                summary.raw_lines += 1
                summary.quarantined_rows += 1
            return TypedLine((None,) * self.width, None, self.malformed, (None,) * self.width)
        nested = line.nested
        get = fields.get
        texts: list[str | None] = [None] * self.width
        typed: list[Any] = [None] * self.width
        missing = bad = None
        for i, name, cast in self._columns:
            text = get(name)
            if text is not None:
                text = text.strip(" ")
            if not text:
                if missing is None and self._is_required[i]:
                    missing = name
                continue
            texts[i] = text
            if nested and name in nested:
                value = None  # an object or array where a scalar is expected
            else:
                value = text if cast is None else cast(text)
            if value is None:
                if bad is None:
                    bad = name
            else:
                typed[i] = value
            if summary is not None and self._is_tracked[i]:
                summary.values[i] += 1
                if value is None:
                    summary.unparsable[i] += 1
                    low, high = summary.lows[i], summary.highs[i]
                    if low is None or text < low:
                        summary.lows[i] = text
                    if high is None or text > high:
                        summary.highs[i] = text
        if missing is not None:
            reason: str | None = f"missing_required:{missing}"
        elif bad is not None:
            reason = f"bad_type:{bad}"
        else:
            reason = self._value_reason(typed, arrival_day)
        extra = None
        if len(fields) > self.width or not self.known.issuperset(fields):
            extra = {k: v for k, v in fields.items() if k not in self.known} or None
        if summary is not None:
            summary.raw_lines += 1
            summary.parsed_rows += 1
            if reason is None:
                summary.accepted_rows += 1
            else:
                summary.quarantined_rows += 1
        return TypedLine(tuple(typed), extra, reason, tuple(texts))

    def _value_reason(self, typed: list[Any], arrival_day: int | None) -> str | None:
        for i, allowed in self._enums:
            if typed[i] is not None and typed[i] not in allowed:
                return f"unknown_enum:{self.names[i]}"
        for i, low, high in self._ranges:
            value = typed[i]
            if value is not None and ((low is not None and value < low) or (high is not None and value > high)):
                return f"out_of_range:{self.names[i]}"
        if self._event_index is not None and arrival_day is not None:
            event = typed[self._event_index]
            if event is not None:
                event_day = event if self._event_is_date else event // 86_400_000_000
                if event_day < arrival_day - self.lateness_days:
                    return "too_late"
                if event_day > arrival_day + FUTURE_TOLERANCE_DAYS:
                    return "from_future"
        return None


# ---- Arrow batches in, Arrow batches out -------------------------------------------------------


def classified_schema(contract: Contract) -> str:
    """The Spark schema (DDL) of classified lines: position, raw text, typed values, outcome."""
    typed = ", ".join(f"`{c.name}` {spark_type(c.type).simpleString()}" for c in contract.columns)
    return (
        f"source_file string, line_number bigint, raw string, {ARRIVAL} date, {typed}, "
        f"{EXTRA} map<string,string>, {REASON} string, {SUMMARY} string"
    )


def _arrow_schema(contract: Contract) -> pa.Schema:
    return pa.schema(
        [
            ("source_file", pa.string()),
            ("line_number", pa.int64()),
            ("raw", pa.string()),
            (ARRIVAL, pa.date32()),
            *[(c.name, arrow_type(c.type)) for c in contract.columns],
            (EXTRA, pa.map_(pa.string(), pa.string())),
            (REASON, pa.string()),
            (SUMMARY, pa.string()),
        ]
    )


class _BatchBuilder:
    """Classifies lines of files into Arrow batches and keeps each file's summary."""

    def __init__(
        self, contract: Contract, lateness_days: int, csv_header: list[str] | None, use_columnar: bool = True
    ) -> None:
        self.typer = LineTyper(contract, lateness_days, is_json=csv_header is None)
        self.header = csv_header
        self.schema = _arrow_schema(contract)
        self.width = len(contract.columns)
        self.summaries: dict[str, FileSummary] = {}
        columnar = ColumnarJsonTyper(contract, lateness_days) if csv_header is None and use_columnar else None
        self.columnar = columnar if columnar is not None and columnar.supported else None

    def _summary(self, source_file: str) -> FileSummary:
        summary = self.summaries.get(source_file)
        if summary is None:
            summary = self.summaries[source_file] = FileSummary(self.width)
        return summary

    def fields(self, raw: str | None, has_invalid_utf8: bool) -> LineFields:
        if self.header is None:
            return json_fields(raw, has_invalid_utf8)
        return csv_fields(raw, self.header, has_invalid_utf8)

    def classify(
        self,
        source_file: str,
        arrival_day: int | None,
        first_number: int,
        raws: pa.StringArray,
        invalid: pa.BooleanArray,
    ) -> Iterator[pa.RecordBatch]:
        """Batches of the lines ``raws`` (numbered from ``first_number``): the plain JSON lines
        column-wise (:mod:`jobs.ingest.columnar`), the others line by line."""
        if self.columnar is None:
            numbers = range(first_number, first_number + len(raws))
            yield self.batch(source_file, arrival_day, numbers, raws.to_pylist(), invalid.to_pylist())
            return
        result = self.columnar.classify(raws, invalid, arrival_day)
        if len(result.positions):
            yield self._columnar_batch(source_file, arrival_day, first_number, raws, result)
        slow = result.slow_positions
        if slow:
            taken = pa.array(slow, pa.int64())
            yield self.batch(
                source_file,
                arrival_day,
                [first_number + i for i in slow],
                raws.take(taken).to_pylist(),
                invalid.take(taken).to_pylist(),
            )

    def _columnar_batch(
        self, source_file: str, arrival_day: int | None, first_number: int, raws: pa.StringArray, result: ColumnarResult
    ) -> pa.RecordBatch:
        summary = self._summary(source_file)
        count = len(result.positions)
        accepted = result.reasons.null_count
        summary.raw_lines += count
        summary.parsed_rows += count
        summary.accepted_rows += accepted
        summary.quarantined_rows += count - accepted
        for i in self.typer.tracked:
            summary.values[i] += result.values[i]
        fields = self.schema
        arrays = [
            pa.repeat(pa.scalar(source_file, pa.string()), count),
            pc.add(result.positions, first_number),
            raws.take(result.positions),
            pa.repeat(pa.scalar(arrival_day, pa.date32()), count),
            *[result.typed[i].cast(fields.field(4 + i).type) for i in range(self.width)],
            pa.nulls(count, fields.field(4 + self.width).type),
            result.reasons,
            pa.nulls(count, pa.string()),
        ]
        return pa.RecordBatch.from_arrays(arrays, schema=fields)

    def batch(
        self,
        source_file: str,
        arrival_day: int | None,
        numbers: Iterable[int],
        raws: Iterable[str | None],
        invalid: Iterable[bool],
    ) -> pa.RecordBatch:
        summary = self._summary(source_file)
        typer = self.typer
        rows = []
        blanks = (None,) * self.width
        for number, raw, is_invalid in zip(numbers, raws, invalid, strict=True):
            line = self.fields(raw, bool(is_invalid))
            typed = typer.type_line(line, arrival_day, summary)
            if typed.reason is None:
                extra = list(typed.extra.items()) if typed.extra else None
                # The raw text stays: a later duplicate check may still refuse the line.
                rows.append((number, raw, *typed.values, extra, None))
            else:
                rows.append((number, raw, *blanks, None, typed.reason))
        return self._to_batch(source_file, arrival_day, rows)

    def _to_batch(self, source_file: str, arrival_day: int | None, rows: list[tuple]) -> pa.RecordBatch:
        count = len(rows)
        columns = list(zip(*rows, strict=True)) if rows else [()] * (self.width + 4)
        fields = self.schema
        arrays = [
            pa.array([source_file] * count, pa.string()),
            pa.array(columns[0], pa.int64()),
            pa.array(columns[1], pa.string()),
            pa.array([arrival_day] * count, pa.date32()),
            *[pa.array(columns[2 + i], fields.field(4 + i).type) for i in range(self.width)],
            pa.array(columns[2 + self.width], fields.field(4 + self.width).type),
            pa.array(columns[3 + self.width], pa.string()),
            pa.nulls(count, pa.string()),
        ]
        return pa.RecordBatch.from_arrays(arrays, schema=fields)

    def summary_batch(self) -> pa.RecordBatch:
        """One row per file seen: only ``source_file`` and ``_summary`` are set."""
        names = list(self.summaries)
        count = len(names)
        arrays = [pa.array(names, pa.string())]
        arrays += [pa.nulls(count, f.type) for f in list(self.schema)[1:-1]]
        typer = self.typer
        arrays.append(pa.array([self.summaries[n].to_json(typer.names, typer.tracked) for n in names], pa.string()))
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)


def _epoch_day(value: dt.date | None) -> int | None:
    return None if value is None else (value - _EPOCH).days


def _classify_chunks(contract: Contract, lateness_days: int, csv_header: list[str] | None):
    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        builder = _BatchBuilder(contract, lateness_days, csv_header)
        for batch in batches:
            for row in batch.to_pylist():
                chunk = Chunk(row["path"], row["start"], row["end"], row["newlines_before"], row["skip_header"])
                first, lines, flags = read_chunk_arrow(chunk)
                arrival = _epoch_day(row["arrival_date"])
                for at in range(0, len(lines), _BATCH_LINES):
                    part = lines.slice(at, _BATCH_LINES), flags.slice(at, _BATCH_LINES)
                    yield from builder.classify(row["source_file"], arrival, first + at, *part)
                builder._summary(row["source_file"])  # a file without data lines is still seen
        yield builder.summary_batch()

    return run


def _classify_line_batches(contract: Contract, lateness_days: int, csv_header: list[str] | None):
    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        builder = _BatchBuilder(contract, lateness_days, csv_header)
        for batch in batches:
            columns = batch.to_pydict()
            flags = columns.get(INVALID_UTF8) or [False] * batch.num_rows
            # One Arrow batch per (file, arrival) run of lines.
            start = 0
            for end in range(1, batch.num_rows + 1):
                if end == batch.num_rows or (columns["source_file"][end], columns[ARRIVAL][end]) != (
                    columns["source_file"][start],
                    columns[ARRIVAL][start],
                ):
                    numbers = columns["line_number"][start:end]
                    source_file, arrival = columns["source_file"][start], _epoch_day(columns[ARRIVAL][start])
                    if numbers == list(range(numbers[0], numbers[0] + len(numbers))):
                        yield from builder.classify(
                            source_file,
                            arrival,
                            numbers[0],
                            pa.array(columns["raw"][start:end], pa.string()),
                            pa.array(flags[start:end], pa.bool_()),
                        )
                    else:
                        yield builder.batch(source_file, arrival, numbers, columns["raw"][start:end], flags[start:end])
                    start = end
        yield builder.summary_batch()

    return run


CHUNKS_SCHEMA = (
    "path string, start bigint, `end` bigint, newlines_before bigint, skip_header boolean, "
    "source_file string, arrival_date date"
)


def with_chunks_classified(
    chunks_df: DataFrame, contract: Contract, lateness_days: int, csv_header: list[str] | None = None
) -> DataFrame:
    """Read each chunk of ``chunks_df`` (:data:`CHUNKS_SCHEMA`) in its task and classify its lines.

    Returns classified lines (:func:`classified_schema`) without the duplicate check, plus one
    ``_summary`` row per file and task. ``csv_header`` set means CSV lines split by it.
    """
    return chunks_df.mapInArrow(_classify_chunks(contract, lateness_days, csv_header), classified_schema(contract))


def _arrival(ingest_date: str | SparkColumn) -> SparkColumn:
    """One night's date, or a per-line date column in a multi-night batch."""
    return ingest_date if isinstance(ingest_date, SparkColumn) else F.to_date(F.lit(ingest_date))


def with_lines_classified(
    lines_df: DataFrame,
    contract: Contract,
    ingest_date: str | SparkColumn,
    lateness_days: int,
    csv_header: list[str] | None = None,
) -> DataFrame:
    """:func:`with_chunks_classified` for lines already in a frame (``source_file``,
    ``line_number``, ``raw`` and optionally ``has_invalid_utf8``)."""
    columns = ["source_file", "line_number", "raw", *([INVALID_UTF8] if INVALID_UTF8 in lines_df.columns else [])]
    framed = lines_df.select(*columns, _arrival(ingest_date).alias(ARRIVAL))
    run = _classify_line_batches(contract, lateness_days, csv_header)
    return framed.mapInArrow(run, classified_schema(contract))


# ---- across lines: duplicates, output shapes, stats ------------------------------------------


def _is_line() -> SparkColumn:
    return F.col(SUMMARY).isNull()


def build_duplicate_copies(classified_df: DataFrame, keys: tuple[str, ...]) -> DataFrame:
    """``(source_file, line_number)`` of every valid line that repeats an earlier valid line's key.

    Earlier is by (file, line), among the lines of the same arrival date: the first copy is
    accepted, the others are ``duplicate``. Refused lines never compete, so a broken copy never
    shadows a good one. Repeated keys are found by a count per key (only keys are shuffled,
    partially aggregated); only their copies are then ranked, so the cost of ordering is the
    duplicates', not the night's.
    """
    valid = classified_df.where(_is_line() & F.col(REASON).isNull())
    group = [ARRIVAL, *keys]
    repeated = valid.groupBy(*group).count().where(F.col("count") > 1).drop("count")
    same_key = [valid[c].eqNullSafe(repeated[c]) for c in group]
    copies = valid.join(F.broadcast(repeated), same_key, "left_semi")
    order = Window.partitionBy(*[F.col(c) for c in group]).orderBy("source_file", "line_number")
    ranked = copies.select("source_file", "line_number", F.row_number().over(order).alias("_copy"))
    return ranked.where(F.col("_copy") > 1).drop("_copy")


def with_duplicate_check(
    classified_df: DataFrame, keys: tuple[str, ...], duplicates_df: DataFrame | None = None
) -> DataFrame:
    """Mark the later copies of a key as ``duplicate`` (see :func:`build_duplicate_copies`).

    Args:
        duplicates_df: the copies, when already computed (a small frame: it is broadcast).
    """
    copies = build_duplicate_copies(classified_df, keys) if duplicates_df is None else duplicates_df
    marked = copies.select("source_file", "line_number", F.lit(True).alias("_is_duplicate"))
    joined = classified_df.join(F.broadcast(marked), ["source_file", "line_number"], "left")
    reason = F.coalesce(F.col(REASON), F.when(F.col("_is_duplicate") & _is_line(), F.lit("duplicate")))
    return joined.withColumn(REASON, reason).drop("_is_duplicate")


def classify_lines(
    lines_df: DataFrame,
    contract: Contract,
    ingest_date: str | SparkColumn,
    lateness_days: int,
    csv_header: list[str] | None = None,
) -> DataFrame:
    """Run every check of a raw source's contract over lines in a frame (see the module docstring).

    Returns the lines with ``raw``, typed contract columns and ``_extra`` (set on lines accepted
    before the duplicate check) and ``_reason`` (null = accepted), plus the ``_summary`` rows.
    """
    classified = with_lines_classified(lines_df, contract, ingest_date, lateness_days, csv_header)
    return with_duplicate_check(classified, contract.keys) if contract.keys else classified


def build_bronze_rows(classified_df: DataFrame, bronze: Contract) -> DataFrame:
    """Accepted lines in the bronze contract's shape."""
    accepted = classified_df.where(_is_line() & F.col(REASON).isNull())
    renamed = accepted.withColumnRenamed("source_file", "_source_file").withColumnRenamed("line_number", "_line_number")
    return renamed.select(*[F.col(c.name).cast(c.type).alias(c.name) for c in bronze.columns])


def build_quarantine_rows(classified_df: DataFrame, quarantine: Contract) -> DataFrame:
    """Refused lines in the quarantine contract's shape (raw text kept verbatim)."""
    refused = classified_df.where(_is_line() & F.col(REASON).isNotNull()).withColumnRenamed(REASON, "reason")
    return refused.select(*[F.col(c.name).cast(c.type).alias(c.name) for c in quarantine.columns])


def build_file_summaries(classified_df: DataFrame) -> DataFrame:
    """Per file: the rows that reached Spark by outcome, and the tasks' summaries of it.

    ``accepted_rows``/``quarantined_rows`` count the rows Spark holds (before the duplicate
    check); ``summaries`` are the JSON summaries the tasks wrote while reading the file.
    Reconciliation compares the two, so a row lost between the tasks and Spark is caught.
    """
    is_line = _is_line()
    return classified_df.groupBy("source_file").agg(
        F.count(F.when(is_line & F.col(REASON).isNull(), True)).alias("accepted_rows"),
        F.count(F.when(is_line & F.col(REASON).isNotNull(), True)).alias("quarantined_rows"),
        F.collect_list(F.col(SUMMARY)).alias("summaries"),
    )


def merge_file_stats(summaries: Iterable[str], contract: Contract, is_json: bool) -> dict[str, Any]:
    """Merge one file's task summaries into its stats for reconciliation and drift checks.

    Returns ``raw_lines``, ``accepted_rows``, ``quarantined_rows`` (before the duplicate
    check), ``parsed_rows`` (lines that parsed into fields, whatever their reason) and, per
    contract column that can hold an unparsable value (in JSON lines: every column; in CSV the
    non-string ones), ``values`` (non-blank values in parsed lines), ``unparsable`` (those not
    fitting the type) and ``example_low``/``example_high`` (the smallest and largest
    unparsable text).
    """
    merged: dict[str, Any] = {"raw_lines": 0, "accepted_rows": 0, "quarantined_rows": 0, "parsed_rows": 0}
    columns = [c.name for c in contract.columns if c.type.strip().lower() != "string" or is_json]
    evidence = {name: {"values": 0, "unparsable": 0, "example_low": None, "example_high": None} for name in columns}
    for text in summaries:
        part = json.loads(text)
        for key in ("raw_lines", "accepted_rows", "quarantined_rows", "parsed_rows"):
            merged[key] += part[key]
        for name, found in part["columns"].items():
            if name not in evidence:
                continue
            total = evidence[name]
            total["values"] += found["values"]
            total["unparsable"] += found["unparsable"]
            for example in (found["example_low"], found["example_high"]):
                if example is not None:
                    low, high = total["example_low"], total["example_high"]
                    total["example_low"] = example if low is None else min(low, example)
                    total["example_high"] = example if high is None else max(high, example)
    merged.update(evidence)
    return merged
