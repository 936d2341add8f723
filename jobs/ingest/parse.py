"""Pure transforms that turn raw lines into contract-typed rows or quarantine reasons.

Input frames carry ``source_file``, ``line_number``, ``raw`` and optionally ``has_invalid_utf8``
(see ``raw_files``). Every line ends with either a typed row (``_reason`` null) or exactly one
machine-readable ``_reason``, checked in this order: ``malformed_json``/``malformed_csv``,
``missing_required:<col>``, ``bad_type:<col>``, ``unknown_enum:<col>``, ``out_of_range:<col>``,
``too_late``, ``duplicate``.

Values are read the same way in both formats: surrounding spaces are trimmed and a blank value is
null (an empty CSV field or a JSON ``""`` is the exporter's null, so a blank required value is
``missing_required``).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator

import pandas as pd
import pyspark.sql.functions as F
from pyspark.sql import Column as SparkColumn
from pyspark.sql import DataFrame, Window
from pyspark.sql.types import DecimalType, MapType, StringType, StructField, StructType

from jobs.ingest.raw_files import INVALID_UTF8
from jobs.lake.contracts import Column, Contract, spark_type

FIELDS = "_fields"
# Set on the lines of a multi-night batch (history import): each line's own arrival date.
ARRIVAL = "_arrival_date"
NESTED = "_nested_keys"
REASON = "_reason"
_TEXTS = "_texts"


def _invalid_utf8_flags(batch: pd.DataFrame) -> list[bool]:
    # Frames built without the reader's flag (tests, other readers) hold decoded text only.
    if INVALID_UTF8 not in batch.columns:
        return [False] * len(batch)
    return [bool(flag) for flag in batch[INVALID_UTF8]]


def _is_flagged_invalid_utf8(lines_df: DataFrame) -> SparkColumn:
    # Frames built without the reader's flag (tests, other readers) hold decoded text only.
    if INVALID_UTF8 not in lines_df.columns:
        return F.lit(False)
    return F.coalesce(F.col(INVALID_UTF8), F.lit(False))


def _is_one_json_value(raw: SparkColumn) -> SparkColumn:
    """True when nothing but whitespace follows the first JSON value of ``raw``.

    Spark's JSON functions stop after the first value and ignore the rest, so ``{"a":1}}`` or
    ``{"a":1} {"a":2}`` would parse. Making the line the value of a key followed by a sentinel key
    brings any rest into view: the wrapper then fails to parse, or its keys are no longer exactly
    the two expected. Two sentinels, because a line may itself end in one (``..},"a":0} junk``)
    but never in both.
    """
    checks = []
    for sentinel in ("a", "b"):
        keys = F.json_object_keys(F.concat(F.lit('{"_":'), raw, F.lit(f',"{sentinel}":0}}')))
        checks.append(F.coalesce(keys == F.array(F.lit("_"), F.lit(sentinel)), F.lit(False)))
    return checks[0] & checks[1]


def with_json_fields(lines_df: DataFrame) -> DataFrame:
    """Add ``_fields`` (map of the line's top-level JSON keys to their text) or a malformed reason.

    Scalars keep their JSON text (``3`` -> ``"3"``), nested values keep their JSON, so a wrong
    type shows up later as ``bad_type`` rather than being silently coerced; ``_nested_keys`` lists
    the keys whose value is an object or array (a scalar column refuses them).

    A line is ``malformed_json`` unless it is exactly one strict JSON object: ``parse_json``
    refuses single quotes, ``NaN`` and repeated keys (whose winner would be parser-dependent),
    and text after the object is refused too (see ``_is_one_json_value``). Lines whose bytes were
    not UTF-8 are malformed whatever their text.
    """
    # Each step is its own column so that the parse and the checks run once per line.
    parsed_df = lines_df.withColumn("_json", F.try_parse_json(F.col("raw"))).withColumn(
        # A variant object casts to a map; arrays, bare scalars and null do not.
        "_map",
        F.try_variant_get(F.col("_json"), "$", "map<string,string>"),
    )
    is_object = F.col("_map").isNotNull() & _is_one_json_value(F.col("raw")) & ~_is_flagged_invalid_utf8(lines_df)
    # Only a value whose text opens like JSON can be nested; asking the variant for the kind of
    # every value is the slow path, taken only by those lines.
    may_nest = F.exists(F.map_values(F.col("_map")), lambda v: v.startswith("{") | v.startswith("["))
    values = F.try_variant_get(F.col("_json"), "$", "map<string,variant>")
    nested = F.map_keys(F.map_filter(values, lambda _k, v: F.schema_of_variant(v).rlike("^(OBJECT|ARRAY)")))
    return (
        parsed_df.withColumn("_is_object", is_object)
        .withColumn(FIELDS, F.when(F.col("_is_object"), F.col("_map")))
        .withColumn(NESTED, F.when(F.col("_is_object"), F.when(may_nest, nested).otherwise(F.array())))
        .withColumn(REASON, F.when(~F.col("_is_object"), F.lit("malformed_json")))
        .drop("_json", "_map", "_is_object")
    )


def _split_csv(header: list[str]):
    width = len(header)

    def split(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            fields: list[dict[str, str | None] | None] = []
            for raw, is_invalid in zip(batch["raw"], _invalid_utf8_flags(batch), strict=True):
                try:
                    values = next(csv.reader([raw], strict=True)) if raw and not is_invalid else []
                except csv.Error:
                    values = []
                if len(values) != width:
                    fields.append(None)  # wrong field count, broken quoting or undecodable bytes
                else:
                    # An empty CSV field is the exporter's null.
                    fields.append(
                        {name: (value if value != "" else None) for name, value in zip(header, values, strict=True)}
                    )
            yield batch.assign(**{FIELDS: fields})

    return split


def with_csv_fields(lines_df: DataFrame, header: list[str]) -> DataFrame:
    """Split CSV lines by ``header`` into ``_fields``; rows that don't fit get ``malformed_csv``.

    Python's csv module (in Arrow batches on the executors) is used because a row must be judged
    alone: Spark's CSV reader would silently pad or drop fields of a short or long row.
    """
    out_schema = StructType([*lines_df.schema.fields, StructField(FIELDS, MapType(StringType(), StringType()))])
    split_df = lines_df.mapInPandas(_split_csv(list(header)), out_schema)
    return split_df.withColumn(REASON, F.when(F.col(FIELDS).isNull(), F.lit("malformed_csv")))


def _trimmed_values(fields: SparkColumn) -> SparkColumn:
    """The fields map with surrounding spaces trimmed off its values and blank values null."""
    return F.transform_values(fields, lambda _k, v: F.when(F.trim(v) != "", F.trim(v)))


def _typed_value(text: SparkColumn, col: Column, nested: SparkColumn | None) -> SparkColumn:
    """The value in the contract type; null when ``text`` is null or does not fit the type."""
    dtype = spark_type(col.type)
    value = text if isinstance(dtype, StringType) else text.try_cast(dtype)
    fits: SparkColumn | None = None
    if isinstance(dtype, DecimalType):
        # A cast rounds extra decimals away (10.505 -> 10.51); a value the type cannot hold
        # exactly is a wrong value, not one to alter silently.
        exact = text.try_cast(DecimalType(38, max(dtype.scale, 18)))
        fits = value == exact
    if nested is not None:
        is_scalar = ~F.coalesce(F.array_contains(nested, col.name), F.lit(False))
        fits = is_scalar if fits is None else fits & is_scalar
    return value if fits is None else F.when(fits, value)


def with_contract_columns(fields_df: DataFrame, contract: Contract) -> DataFrame:
    """Add one typed column per contract column and the first failing check as ``_reason``.

    A value that does not fit its column's type (unparsable, an object or array where a scalar is
    expected, more decimals than the type holds) is ``bad_type`` and its typed column is null.
    Also adds ``_extra``: fields present in the line but unknown to the contract (kept, not
    refused: an added optional column is schema evolution, not an error).
    """
    fields = F.col(FIELDS)
    nested = F.col(NESTED) if NESTED in fields_df.columns else None
    # Values are trimmed once per line into a map, and typed once into columns that the checks
    # then read by name: inlining the expressions into every check made the job several times slower.
    texts_df = fields_df.withColumn(_TEXTS, _trimmed_values(fields))
    texts = {col.name: F.col(_TEXTS).getItem(col.name) for col in contract.columns}
    known = F.array(*[F.lit(name) for name in contract.column_names])
    extra = F.map_filter(fields, lambda k, _v: ~F.array_contains(known, k))
    typed_df = texts_df.select(
        "*",
        *[_typed_value(texts[col.name], col, nested).alias(col.name) for col in contract.columns],
        F.when(F.size(extra) > 0, extra).alias("_extra"),
    )
    typed = {col.name: F.col(col.name) for col in contract.columns}
    checks: list[SparkColumn] = []
    for col in contract.columns:
        if not col.nullable:
            checks.append(F.when(texts[col.name].isNull(), F.lit(f"missing_required:{col.name}")))
    for col in contract.columns:
        is_bad = texts[col.name].isNotNull() & typed[col.name].isNull()
        checks.append(F.when(is_bad, F.lit(f"bad_type:{col.name}")))
    for col in contract.columns:
        if col.allowed is not None:
            checks.append(
                F.when(
                    typed[col.name].isNotNull() & ~typed[col.name].isin(list(col.allowed)),
                    F.lit(f"unknown_enum:{col.name}"),
                )
            )
    for col in contract.columns:
        bounds = []
        if col.min is not None:
            bounds.append(typed[col.name] < F.lit(col.min))
        if col.max is not None:
            bounds.append(typed[col.name] > F.lit(col.max))
        for bound in bounds:
            checks.append(F.when(bound, F.lit(f"out_of_range:{col.name}")))
    return typed_df.withColumn(REASON, F.coalesce(F.col(REASON), *checks)).drop(_TEXTS)


def _arrival(ingest_date: str | SparkColumn) -> SparkColumn:
    """The arrival date of a line: one night's date, or a per-line column in a multi-night batch."""
    return ingest_date if isinstance(ingest_date, SparkColumn) else F.to_date(F.lit(ingest_date))


def with_lateness_check(
    typed_df: DataFrame, event_time_col: str, ingest_date: str | SparkColumn, lateness_days: int
) -> DataFrame:
    """Refuse rows whose event is more than ``lateness_days`` before their arrival (``too_late``).

    A fixed lateness bound is what lets downstream windows be final after ``lateness_days``: no
    run can later change a day that is already closed.
    """
    too_late = F.to_date(F.col(event_time_col)) < F.date_sub(_arrival(ingest_date), lateness_days)
    return typed_df.withColumn(REASON, F.coalesce(F.col(REASON), F.when(too_late, F.lit("too_late"))))


def with_duplicate_check(typed_df: DataFrame, keys: tuple[str, ...]) -> DataFrame:
    """Mark all but the first (by file, line) of rows sharing a natural key as ``duplicate``.

    Only otherwise valid rows compete, so a broken copy never shadows a good one. Copies arriving
    on different dates are all kept in bronze (it is the raw history); silver keeps the first.
    """
    # Valid and refused rows rank separately, so refused copies never take the first place.
    # "The same night's files": a multi-night batch compares copies within each arrival date.
    nights = [F.col(ARRIVAL)] if ARRIVAL in typed_df.columns else []
    order = Window.partitionBy(F.col(REASON).isNull(), *nights, *[F.col(k) for k in keys]).orderBy(
        "source_file", "line_number"
    )
    rank = F.when(F.col(REASON).isNull(), F.row_number().over(order))
    return typed_df.withColumn(REASON, F.coalesce(F.col(REASON), F.when(rank > 1, F.lit("duplicate"))))


def classify_lines(
    lines_df: DataFrame,
    contract: Contract,
    ingest_date: str | SparkColumn,
    lateness_days: int,
    csv_header: list[str] | None = None,
) -> DataFrame:
    """Run every check of a raw source's contract over its lines (see the module docstring).

    Returns the lines with typed contract columns, ``_extra`` and ``_reason`` (null = accepted).
    """
    fields_df = with_csv_fields(lines_df, csv_header) if csv_header is not None else with_json_fields(lines_df)
    typed_df = with_contract_columns(fields_df, contract)
    if contract.event_time:
        typed_df = with_lateness_check(typed_df, contract.event_time, ingest_date, lateness_days)
    return with_duplicate_check(typed_df, contract.keys)


def build_bronze_rows(classified_df: DataFrame, bronze: Contract, ingest_date: str | SparkColumn) -> DataFrame:
    """Accepted lines in the bronze contract's shape."""
    accepted = classified_df.filter(F.col(REASON).isNull())
    renamed = accepted.withColumnRenamed("source_file", "_source_file").withColumnRenamed("line_number", "_line_number")
    return renamed.withColumn("_ingest_date", _arrival(ingest_date)).select(
        *[F.col(c.name).cast(c.type).alias(c.name) for c in bronze.columns]
    )


def build_quarantine_rows(classified_df: DataFrame, quarantine: Contract, ingest_date: str | SparkColumn) -> DataFrame:
    """Refused lines in the quarantine contract's shape (raw text kept verbatim)."""
    refused = classified_df.filter(F.col(REASON).isNotNull()).withColumnRenamed(REASON, "reason")
    return refused.withColumn("_ingest_date", _arrival(ingest_date)).select(
        *[F.col(c.name).cast(c.type).alias(c.name) for c in quarantine.columns]
    )


def build_file_stats(classified_df: DataFrame, contract: Contract) -> DataFrame:
    """One row per source file: its lines by outcome and, per contract column, its values' fit.

    Columns: ``source_file``, ``accepted_rows``, ``quarantined_rows``, ``parsed_rows`` (lines that
    parsed into fields, whatever their reason) and, per contract column that can hold an
    unparsable value (in JSON lines: every column), a struct of ``values`` (non-blank values in
    parsed lines), ``unparsable`` (those that do not fit the type) and ``example_low`` /
    ``example_high`` (the smallest and largest unparsable text). It is a single aggregation over
    :func:`classify_lines`' output, so the reconciliation counts and the drift evidence of every
    column cost one job.
    """
    # Any column of a JSON line may hold an object or array (or be absent, which is the JSON
    # missing-column check); a CSV string column always fits and its absence is the header's.
    is_json = NESTED in classified_df.columns
    columns = [c for c in contract.columns if c.type != "string" or is_json]
    texts_df = classified_df.withColumn(_TEXTS, _trimmed_values(F.col(FIELDS)))
    per_column = []
    for col in columns:
        text = F.col(_TEXTS).getItem(col.name)
        # with_contract_columns nulls the typed column exactly when the text does not fit.
        unparsable = F.when(F.col(col.name).isNull(), text)
        per_column.append(
            F.struct(
                F.count(text).alias("values"),
                F.count(unparsable).alias("unparsable"),
                F.min(unparsable).alias("example_low"),
                F.max(unparsable).alias("example_high"),
            ).alias(col.name)
        )
    return texts_df.groupBy("source_file").agg(
        F.count(F.when(F.col(REASON).isNull(), True)).alias("accepted_rows"),
        F.count(F.when(F.col(REASON).isNotNull(), True)).alias("quarantined_rows"),
        F.count(FIELDS).alias("parsed_rows"),
        *per_column,
    )
