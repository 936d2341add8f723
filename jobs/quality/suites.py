"""Expectation suites built from contracts: one definition of a column, checked everywhere.

Besides the contract's own rules (:func:`contract_expectations`), the gates check what a contract
cannot say on one table: referential integrity (a flag column added by a join, then an
expectation on it, so failing rows show their keys), freshness of the run date, row counts against
the ingest audit and event-before-arrival. Each expectation carries ``meta.severity`` (``critical``
stops the night, ``warning`` is recorded and reported) and, when its arguments do not say it,
``meta.check``: what it means, quoted in error messages and findings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import great_expectations.expectations as gxe

from jobs.lake.contracts import Contract

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

CRITICAL = "critical"
WARNING = "warning"


def contract_expectations(contract: Contract, expected_rows: int | None = None) -> list[Any]:
    """Expectations that follow from a contract: not-null, enum sets, ranges, key uniqueness.

    Each carries ``meta.severity`` (``critical`` stops the pipeline, ``warning`` is reported).
    """
    critical = {"severity": CRITICAL}
    expectations: list[Any] = []
    if expected_rows is not None:
        expectations.append(gxe.ExpectTableRowCountToEqual(value=expected_rows, meta=critical))
    for col in contract.columns:
        if not col.nullable:
            expectations.append(gxe.ExpectColumnValuesToNotBeNull(column=col.name, meta=critical))
        if col.allowed is not None:
            expectations.append(
                gxe.ExpectColumnValuesToBeInSet(column=col.name, value_set=list(col.allowed), meta=critical)
            )
        if col.min is not None or col.max is not None:
            expectations.append(
                gxe.ExpectColumnValuesToBeBetween(column=col.name, min_value=col.min, max_value=col.max, meta=critical)
            )
    if len(contract.keys) == 1:
        expectations.append(gxe.ExpectColumnValuesToBeUnique(column=contract.keys[0], meta=critical))
    elif contract.keys:
        expectations.append(gxe.ExpectCompoundColumnsToBeUnique(column_list=list(contract.keys), meta=critical))
    return expectations


def _meta(severity: str, check: str | None) -> dict[str, str]:
    return {"severity": severity, **({"check": check} if check else {})}


def reference_flag_column(column: str, table: str) -> str:
    """Name of the boolean column :func:`with_reference_flag` adds: readable in an error message."""
    return f"{column}_in_{table.replace('.', '_')}"


def with_reference_flag(
    df: DataFrame, column: str, reference: DataFrame, reference_column: str, flag: str
) -> DataFrame:
    """Add ``flag``: the row's ``column`` value exists in ``reference.reference_column`` (null keys pass).

    A left join on the distinct reference keys keeps every row of ``df`` exactly once, so the
    expectation on ``flag`` reports the failing rows with their own key columns.
    """
    import pyspark.sql.functions as F

    keys = reference.select(F.col(reference_column).alias("_ref_key")).distinct().withColumn("_ref_hit", F.lit(True))
    joined = df.join(keys, df[column] == F.col("_ref_key"), "left")
    return joined.withColumn(flag, F.col(column).isNull() | F.col("_ref_hit").isNotNull()).drop("_ref_key", "_ref_hit")


def reference_expectation(flag: str, check: str, severity: str = CRITICAL) -> Any:
    """Every row's flag from :func:`with_reference_flag` is true (referential integrity)."""
    return gxe.ExpectColumnValuesToBeInSet(column=flag, value_set=[True], meta=_meta(severity, check))


def with_date_flag(df: DataFrame, column: str, run_date: str, flag: str) -> DataFrame:
    """Add ``flag``: the row's ``column`` is ``run_date`` (for freshness on a slice of several days)."""
    import pyspark.sql.functions as F

    return df.withColumn(flag, F.coalesce(F.col(column) == F.lit(run_date).cast("date"), F.lit(False)))


def freshness_expectation(flag: str, check: str, severity: str = WARNING) -> Any:
    """At least one row has ``flag`` true: the run date's rows exist (see :func:`with_date_flag`)."""
    return gxe.ExpectColumnDistinctValuesToContainSet(column=flag, value_set=[True], meta=_meta(severity, check))


def has_rows_expectation(check: str, severity: str = WARNING) -> Any:
    """The slice is not empty (freshness of a slice that is the run date's by construction)."""
    return gxe.ExpectTableRowCountToBeBetween(min_value=1, max_value=None, meta=_meta(severity, check))


def at_most_rows_expectation(max_rows: int, check: str, severity: str = CRITICAL) -> Any:
    """The slice has at most ``max_rows`` rows (e.g. silver rows first arrived tonight <= bronze accepted)."""
    return gxe.ExpectTableRowCountToBeBetween(min_value=0, max_value=max_rows, meta=_meta(severity, check))


def not_before_expectation(later: str, earlier: str, check: str, severity: str = CRITICAL) -> Any:
    """``later >= earlier`` on every row, e.g. an event cannot arrive before it happened."""
    return gxe.ExpectColumnPairValuesAToBeGreaterThanB(
        column_A=later, column_B=earlier, or_equal=True, meta=_meta(severity, check)
    )
