"""Silver forgets what a corrected landing file no longer says (table ``ops.silver_retractions``).

A silver row is *owned* by the night its record first arrived (``first_ingest_date``). Rerunning
night D rebuilds D's rows from bronze as the landing files now are, so a row D owns that D's
arrivals no longer give (the line was removed, or is now quarantined) is *retracted*: replaced by
the next arrival of the same key, a later night's copy, when there is one, else deleted. Rows
D's arrivals still give are replaced by tonight's version (a corrected value). Rows owned by other
nights are left alone: an earlier copy stays the record, a later one yields to tonight's.

Each retraction is recorded before the write that makes it (``ops.silver_retractions``, never
cleared), with the customer and the date it fed, so that the tables built from silver
(``silver.customers``, ``gold.customer_journey``) recompute those customers from that date, in
this run or in a rerun after a kill.

On the usual night nothing is retracted: the search reads only the stored rows of tonight's
arrival dates (Delta skips the files whose ``first_ingest_date`` statistics exclude them) and
writes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pyspark.sql.functions as F
from pyspark.sql import DataFrame, SparkSession

from jobs.lake.config import LakeConfig
from jobs.lake.contracts import load_contract
from jobs.lake.small_tables import _open, is_local_lake, merge_small
from jobs.lake.tables import merge_rows, read_table_or_empty

TABLE = "ops.silver_retractions"
DELETE_FLAG = "_retracted"  # a merge source row that deletes its key (jobs.lake.tables.merge_rows)


def owned_by(run_date: str) -> str:
    """Update condition of a night's merge: tonight's row replaces a stored row unless that row
    arrived before tonight (an earlier copy stays the record; one of tonight's own arrival dates,
    or a later one, yields to what the files now say)."""
    return f"t.first_ingest_date >= DATE'{run_date}'"


def orphans(owned_df: DataFrame, arrived_keys_df: DataFrame, key: str) -> DataFrame:
    """Stored rows owned by tonight's arrival dates whose key tonight's arrivals no longer carry."""
    return owned_df.join(arrived_keys_df.select(key).distinct(), key, "left_anti")


def record(spark: SparkSession, config: LakeConfig, table: str, retracted: list[dict[str, object]]) -> None:
    """Append ``retracted`` (``ops.silver_retractions`` rows without ``table_name``) for ``table``."""
    rows = [{**row, "table_name": table} for row in retracted]
    merge_small(config, TABLE, rows, prune={"table_name": [table]}, spark=spark)


def of_nights(spark: SparkSession, config: LakeConfig, run_date: str, through: str | None = None) -> DataFrame:
    """The retractions recorded by the nights ``run_date`` to ``through`` (an empty frame when none).

    On a local lake they are read with delta-rs into a small local frame: the usual night has
    none, and the steps joining them then run no Spark job for it.
    """
    contract = load_contract(TABLE)
    first, last = dt.date.fromisoformat(run_date), dt.date.fromisoformat(through or run_date)
    if is_local_lake(config):
        table = _open(config, TABLE)
        rows = []
        if table is not None:
            stored = table.to_pyarrow_table(filters=[("night", ">=", first), ("night", "<=", last)])
            rows = [tuple(row[c] for c in contract.column_names) for row in stored.to_pylist()]
        return spark.createDataFrame(rows, contract.spark_schema())
    stored = read_table_or_empty(spark, config, TABLE, contract.spark_schema())
    return stored.filter(F.col("night").between(F.lit(first), F.lit(last)))


LAST_DATE = "9999-12-31"  # "and any later night" for may_hold


def may_hold(config: LakeConfig, table: str, column: str, run_date: str, through: str | None = None) -> bool:
    """Whether ``table`` may hold rows whose ``column`` (a date) is within ``[run_date, through]``,
    from its files' min/max statistics in the Delta log: no Spark job.

    On the usual night no stored row arrived tonight yet, so the search for orphans is skipped.
    True when unsure: a lake delta-rs does not read here, a file without statistics.
    """
    if not is_local_lake(config):
        return True
    table_files = _open(config, table)
    if table_files is None:
        return False
    import pyarrow as pa

    files = pa.table(table_files.get_add_actions(flatten=True))
    low, high = f"min.{column}", f"max.{column}"
    if not files.num_rows:
        return False
    if low not in files.column_names or high not in files.column_names:
        return True
    first, last = dt.date.fromisoformat(run_date), dt.date.fromisoformat(through or run_date)
    return any(
        lo is None or hi is None or (lo <= last and hi >= first)
        for lo, hi in zip(files.column(low).to_pylist(), files.column(high).to_pylist(), strict=True)
    )


def deletions(keys_df: DataFrame, table: str) -> DataFrame:
    """Merge-source rows (``table``'s columns, all null but the key, ``DELETE_FLAG`` true) that
    delete the stored rows of ``keys_df``'s keys."""
    contract = load_contract(table)
    (key,) = contract.keys
    return keys_df.select(
        *[(F.col(key) if c.name == key else F.lit(None).cast(c.type)).alias(c.name) for c in contract.columns],
        F.lit(True).alias(DELETE_FLAG),
    )


def merge_deleting_the_rest(
    spark: SparkSession, config: LakeConfig, table: str, rows: DataFrame, scope: DataFrame
) -> None:
    """Upsert ``rows`` into ``table`` and delete the stored rows of ``scope``'s keys that ``rows``
    has none for (what they were built from was retracted)."""
    keys = load_contract(table).keys
    gone = scope.join(rows.select(*keys), list(keys), "left_anti")
    source = rows.withColumn(DELETE_FLAG, F.lit(False)).unionByName(deletions(gone, table))
    merge_rows(spark, source, config, table, keys, delete_flag=DELETE_FLAG)


def merge_night(
    spark: SparkSession,
    config: LakeConfig,
    table: str,
    fresh: DataFrame,
    owned: DataFrame,
    arrived_keys: DataFrame,
    describe: Callable[[DataFrame], DataFrame],
    replacements: Callable[[DataFrame], DataFrame],
    run_date: str,
    through: str | None = None,
    **merge_options: object,
) -> list[dict[str, object]]:
    """Merge a night's silver rows ``fresh`` into ``table``, retracting what it no longer gives.

    Args:
        fresh: tonight's rows (contract columns), built from tonight's arrivals.
        owned: the stored rows whose ``first_ingest_date`` is one of tonight's arrival dates
            (filtered so that Delta can skip the other files).
        arrived_keys: the keys of tonight's arrivals (bronze rows: cheaper than ``fresh``).
        describe: orphans -> ``ops.silver_retractions`` columns but ``table_name``.
        replacements: the orphans' keys -> their rows from later arrivals (contract columns;
            none for a key no later night brought).
        merge_options: passed to :func:`jobs.lake.tables.merge_rows` (``partition_by``, ...).

    Returns:
        The retractions recorded (empty on the usual night).
    """
    contract = load_contract(table)
    (key,) = contract.keys
    retracted = []
    # In nightly order no stored row arrived tonight or later: owned_by then holds for none (an
    # insert-only MERGE: a stored copy of an arrival no longer marks its file as rewritten), and
    # no row of tonight's can be an orphan. One look at the log's statistics says both.
    replaces = may_hold(config, table, "first_ingest_date", run_date, LAST_DATE)
    if replaces and may_hold(config, table, "first_ingest_date", run_date, through):
        retracted = [row.asDict() for row in describe(orphans(owned, arrived_keys, key)).collect()]
    if not retracted:  # the usual night
        merge_rows(
            spark,
            fresh,
            config,
            table,
            contract.keys,
            update_condition=owned_by(run_date),
            update=replaces,
            **merge_options,
        )
        return retracted
    record(spark, config, table, retracted)  # before the write that retracts (a kill between)
    keys = spark.createDataFrame([(str(r["row_key"]),) for r in retracted], f"{key} string")
    later = replacements(keys).withColumn(DELETE_FLAG, F.lit(False))
    deleted = deletions(keys.join(later.select(key), key, "left_anti"), table)
    source = fresh.withColumn(DELETE_FLAG, F.lit(False)).unionByName(later).unionByName(deleted)
    # The retracted keys may lie outside tonight's: a filter bounding the keys to tonight's
    # would hide their stored rows (a rare night: the whole table is read).
    merge_options = {k: v for k, v in merge_options.items() if k != "target_filter"}
    merge_rows(
        spark,
        source,
        config,
        table,
        contract.keys,
        update_condition=owned_by(run_date),
        delete_flag=DELETE_FLAG,
        **merge_options,
    )
    return retracted
