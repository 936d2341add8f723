"""Test helper: small DataFrames shaped by a contract from a few named values per row."""

from __future__ import annotations

from typing import Any

import pyspark.sql.types as T

from jobs.lake.contracts import load_contract


def contract_frame(spark, table: str, rows: list[dict[str, Any]], **defaults: Any):
    """A DataFrame of ``table``'s contract schema; columns not given are ``defaults`` or null."""
    contract = load_contract(table)
    unknown = {k for row in rows for k in row} - set(contract.column_names)
    assert not unknown, f"{table} has no column(s) {sorted(unknown)}"
    data = [tuple({**defaults, **row}.get(name) for name in contract.column_names) for row in rows]
    # Nullable: a test states only the columns its transform reads.
    schema = T.StructType([T.StructField(f.name, f.dataType, True) for f in contract.spark_schema().fields])
    return spark.createDataFrame(data, schema)
