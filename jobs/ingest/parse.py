"""Pure transforms that turn raw lines into contract-typed rows or quarantine reasons.

Input frames carry ``source_file``, ``line_number`` and ``raw``. Every line ends with either a
typed row (``_reason`` null) or exactly one machine-readable ``_reason``, checked in this order:
``malformed_json``/``malformed_csv``, ``missing_required:<col>``, ``bad_type:<col>``,
``unknown_enum:<col>``, ``out_of_range:<col>``, ``too_late``, ``duplicate``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator

import pandas as pd
import pyspark.sql.functions as F
from pyspark.sql import Column as SparkColumn
from pyspark.sql import DataFrame, Window
from pyspark.sql.types import MapType, StringType, StructField, StructType

from jobs.contracts import Contract

FIELDS = "_fields"
REASON = "_reason"


def with_json_fields(lines_df: DataFrame) -> DataFrame:
    """Add ``_fields`` (map of the line's top-level JSON keys to their text) or a malformed reason.

    Scalars keep their JSON text (``3`` -> ``"3"``), nested values keep their JSON, so a wrong
    type shows up later as ``bad_type`` rather than being silently coerced.
    """
    parsed = F.from_json(F.col("raw"), "map<string,string>")
    # from_json tolerates trailing garbage after the object; a real JSON line ends with '}'.
    is_object = F.rtrim(F.col("raw")).endswith("}") & parsed.isNotNull()
    return lines_df.withColumn(FIELDS, F.when(is_object, parsed)).withColumn(
        REASON, F.when(~is_object, F.lit("malformed_json"))
    )


def _split_csv(header: list[str]):
    width = len(header)

    def split(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            fields: list[dict[str, str | None] | None] = []
            for raw in batch["raw"]:
                try:
                    values = next(csv.reader([raw], strict=True)) if raw else []
                except csv.Error:
                    values = []
                if len(values) != width:
                    fields.append(None)  # wrong field count or broken quoting
                else:
                    # An empty CSV field is the exporter's null.
                    fields.append({name: (value if value != "" else None) for name, value in zip(header, values)})
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


def with_contract_columns(fields_df: DataFrame, contract: Contract) -> DataFrame:
    """Add one typed column per contract column and the first failing check as ``_reason``.

    Also adds ``_extra``: fields present in the line but unknown to the contract (kept, not
    refused: an added optional column is schema evolution, not an error).
    """
    fields = F.col(FIELDS)
    checks: list[SparkColumn] = []
    typed: dict[str, SparkColumn] = {}
    for col in contract.columns:
        raw_value = fields.getItem(col.name)
        value = raw_value if col.type == "string" else F.trim(raw_value).try_cast(col.type)
        typed[col.name] = value
        if not col.nullable:
            checks.append(F.when(raw_value.isNull(), F.lit(f"missing_required:{col.name}")))
    for col in contract.columns:
        if col.type != "string":
            raw_value = fields.getItem(col.name)
            checks.append(F.when(raw_value.isNotNull() & typed[col.name].isNull(), F.lit(f"bad_type:{col.name}")))
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
    known = F.array(*[F.lit(name) for name in contract.column_names])
    extra = F.map_filter(fields, lambda k, _v: ~F.array_contains(known, k))
    return fields_df.select(
        "*",
        *[value.alias(name) for name, value in typed.items()],
        F.when(F.size(extra) > 0, extra).alias("_extra"),
    ).withColumn(REASON, F.coalesce(F.col(REASON), *checks))


def with_lateness_check(typed_df: DataFrame, event_time_col: str, ingest_date: str, lateness_days: int) -> DataFrame:
    """Refuse rows whose event is more than ``lateness_days`` before their arrival (``too_late``).

    A fixed lateness bound is what lets downstream windows be final after ``lateness_days``: no
    run can later change a day that is already closed.
    """
    too_late = F.to_date(F.col(event_time_col)) < F.date_sub(F.to_date(F.lit(ingest_date)), lateness_days)
    return typed_df.withColumn(REASON, F.coalesce(F.col(REASON), F.when(too_late, F.lit("too_late"))))


def with_duplicate_check(typed_df: DataFrame, keys: tuple[str, ...]) -> DataFrame:
    """Mark all but the first (by file, line) of rows sharing a natural key as ``duplicate``.

    Only otherwise valid rows compete, so a broken copy never shadows a good one. Copies arriving
    on different dates are all kept in bronze (it is the raw history); silver keeps the first.
    """
    # Valid and refused rows rank separately, so refused copies never take the first place.
    order = Window.partitionBy(F.col(REASON).isNull(), *[F.col(k) for k in keys]).orderBy("source_file", "line_number")
    rank = F.when(F.col(REASON).isNull(), F.row_number().over(order))
    return typed_df.withColumn(REASON, F.coalesce(F.col(REASON), F.when(rank > 1, F.lit("duplicate"))))


def classify_lines(
    lines_df: DataFrame,
    contract: Contract,
    ingest_date: str,
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


def build_bronze_rows(classified_df: DataFrame, bronze: Contract, ingest_date: str) -> DataFrame:
    """Accepted lines in the bronze contract's shape."""
    accepted = classified_df.filter(F.col(REASON).isNull())
    renamed = accepted.withColumnRenamed("source_file", "_source_file").withColumnRenamed(
        "line_number", "_line_number"
    )
    return renamed.withColumn("_ingest_date", F.to_date(F.lit(ingest_date))).select(
        *[F.col(c.name).cast(c.type).alias(c.name) for c in bronze.columns]
    )


def build_quarantine_rows(classified_df: DataFrame, quarantine: Contract, ingest_date: str) -> DataFrame:
    """Refused lines in the quarantine contract's shape (raw text kept verbatim)."""
    refused = classified_df.filter(F.col(REASON).isNotNull()).withColumnRenamed(REASON, "reason")
    return refused.withColumn("_ingest_date", F.to_date(F.lit(ingest_date))).select(
        *[F.col(c.name).cast(c.type).alias(c.name) for c in quarantine.columns]
    )
