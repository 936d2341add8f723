"""Bookkeeping rows (``ops.*``) written without Spark jobs on a local lake.

A task try's run-log row, a night's ingest audit, a gate's findings: a handful of rows that Python
already holds. Spark writes them with a MERGE of ~13 jobs (3-5 s; ~20 s more in a task process
that had no SparkSession); delta-rs (``deltalake``) writes the same Delta table in ~0.1 s, each
commit's ``userMetadata`` naming the contract version as Spark's writes do. On other lake roots
(``s3a://``) these rows go through Spark like every other table. Every writer of one of these
tables goes through this module, so on one lake a table has one kind of writer.

Predicates are written in the SQL both engines read (no backticks, ``DATE 'yyyy-mm-dd'``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from jobs.lake.commits import committed, retried_on_conflict
from jobs.lake.config import LakeConfig
from jobs.lake.contracts import load_contract
from jobs.lake.lock import commit_lock
from jobs.lake.tables import commit_metadata, refuse_orphaned_files

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def is_local_lake(config: LakeConfig) -> bool:
    """True when the lake root is a local path (delta-rs writes there without any settings)."""
    return "://" not in config.lake_root or config.lake_root.startswith("file:")


def sql_value(value: object) -> str:
    """A literal both Spark SQL and DataFusion (delta-rs) read: dates typed, strings quoted."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, bool | int | float):
        return str(value)
    text = str(value).replace("'", "''")
    return f"'{text}'"


def slice_predicate(where: Mapping[str, Sequence[object]], alias: str = "") -> str:
    """``col IN (v1, v2) AND ...`` for each column and its values (``alias.`` prefixes the columns)."""
    prefix = f"{alias}." if alias else ""
    return " AND ".join(
        f"{prefix}{col} IN ({', '.join(sql_value(v) for v in values)})" for col, values in where.items()
    )


def merge_small(
    config: LakeConfig,
    table: str,
    rows: list[dict[str, Any]],
    prune: Mapping[str, Sequence[object]] | None = None,
    spark: SparkSession | None = None,
) -> None:
    """Upsert ``rows`` on the contract's keys (a row with the keys of a stored one replaces it).

    Creates the table (partitioned as the contract says) on its first write.

    Args:
        prune: column -> the values the matching target rows have (e.g. the run dates): literals
            in the merge condition, so only those partitions are read.
        spark: the caller's session, used on lakes delta-rs does not write (``s3a://``).
    """
    if not rows:
        return
    contract = load_contract(table)
    if is_local_lake(config):
        retried_on_conflict(lambda: _merge_with_delta_rs(config, table, rows, prune or {}), table)
        return
    from jobs.lake.spark import get_spark
    from jobs.lake.tables import merge_rows

    spark = spark or get_spark(config)
    df = spark.createDataFrame(rows, contract.spark_schema())
    target_filter = slice_predicate(prune, alias="t") if prune else None
    with commit_lock(config, table):  # retried on a lost race inside, too
        merge_rows(
            spark, df, config, table, contract.keys, partition_by=contract.partition_by, target_filter=target_filter
        )


def replace_small(
    config: LakeConfig,
    table: str,
    rows: list[dict[str, Any]],
    where: Mapping[str, Sequence[object]],
    spark: SparkSession | None = None,
) -> bool:
    """Replace the rows matching ``where`` (column -> values) with ``rows``, which must match it too.

    Commits nothing when there are no rows to write and none stored in the slice (the usual clean
    night, where a commit would only say that nothing changed). Returns whether it committed.
    """
    contract = load_contract(table)
    predicate = slice_predicate(where)
    if is_local_lake(config):
        return retried_on_conflict(lambda: _replace_with_delta_rs(config, table, rows, predicate), table)
    from jobs.lake.spark import get_spark
    from jobs.lake.tables import read_table_or_empty, replace_where

    spark = spark or get_spark(config)
    if not rows and read_table_or_empty(spark, config, table, contract.spark_schema()).filter(predicate).isEmpty():
        return False
    df = spark.createDataFrame(rows, contract.spark_schema())
    with commit_lock(config, table):  # retried on a lost race inside, too
        replace_where(df, config, table, predicate, contract.partition_by)
    return True


def update_small(
    config: LakeConfig,
    table: str,
    rows: list[dict[str, Any]],
    columns: Sequence[str],
    spark: SparkSession | None = None,
) -> None:
    """Set ``columns`` of the stored rows with the keys of ``rows`` (the table's other columns
    belong to another writer); a row no stored row matches is dropped, and nothing is written
    before the table exists."""
    if not rows:
        return
    contract = load_contract(table)
    if is_local_lake(config):
        retried_on_conflict(lambda: _update_with_delta_rs(config, table, rows, columns), table)
        return
    from jobs.lake.spark import get_spark
    from jobs.lake.tables import merge_rows

    spark = spark or get_spark(config)
    schema = contract.spark_schema()
    df = spark.createDataFrame([{c: row.get(c) for c in schema.fieldNames()} for row in rows], schema)
    with commit_lock(config, table):
        merge_rows(spark, df, config, table, contract.keys, update_columns=tuple(columns), insert=False)


def read_small(
    config: LakeConfig,
    table: str,
    where: Mapping[str, Sequence[object]],
    columns: Sequence[str],
    spark: SparkSession | None = None,
) -> list[dict[str, Any]]:
    """``columns`` of the stored rows matching ``where`` (none before the table exists)."""
    predicate = slice_predicate(where)
    if is_local_lake(config):
        import pyarrow as pa
        from deltalake import QueryBuilder

        target = _open(config, table)
        if target is None:
            return []
        query = f"SELECT {', '.join(columns)} FROM stored WHERE {predicate}"
        return pa.table(QueryBuilder().register("stored", target).execute(query).read_all()).to_pylist()
    from jobs.lake.spark import get_spark
    from jobs.lake.tables import read_table_or_empty

    spark = spark or get_spark(config)
    stored = read_table_or_empty(spark, config, table, load_contract(table).spark_schema())
    return [row.asDict() for row in stored.filter(predicate).select(*columns).collect()]


def add_new_columns(config: LakeConfig, table: str, spark: SparkSession | None = None) -> list[str]:
    """Add the contract's columns the stored table lacks (a table written under an earlier
    contract version: they are null on its rows); returns them. Nothing before the table exists."""
    from jobs.lake.spark import get_spark

    contract = load_contract(table)
    if is_local_lake(config):
        target = _open(config, table)
        if target is None:
            return []
        stored = {field.name for field in target.schema().fields}
    else:
        from jobs.lake.tables import table_exists

        spark = spark or get_spark(config)
        if not table_exists(spark, config.table_path(table)):
            return []
        stored = set(spark.read.format("delta").load(config.table_path(table)).columns)
    missing = [c for c in contract.columns if c.name not in stored]
    if missing:
        spark = spark or get_spark(config)
        columns = ", ".join(f"`{c.name}` {c.type}" for c in missing)
        spark.sql(f"ALTER TABLE delta.`{config.table_path(table)}` ADD COLUMNS ({columns})")
        committed(config.table_path(table))
    return [c.name for c in missing]


def _arrow_rows(table: str, rows: list[dict[str, Any]]):  # -> pyarrow.Table
    import pyarrow as pa

    contract = load_contract(table)
    # Naive timestamps in these rows are UTC wall clock (as Spark, in the lake's UTC session, reads them).
    stamped = [
        {k: v.replace(tzinfo=dt.UTC) if isinstance(v, dt.datetime) and v.tzinfo is None else v for k, v in r.items()}
        for r in rows
    ]
    return pa.Table.from_pylist(stamped, schema=contract.arrow_schema())


def _path(config: LakeConfig, table: str) -> str:
    return config.table_path(table).removeprefix("file:")


def commit_properties(table: str, night: str | None = None):  # -> deltalake.CommitProperties
    """A delta-rs commit's properties: ``userMetadata`` names the contract version (and the night,
    :func:`jobs.lake.tables.commit_metadata`), as Spark's writes do."""
    from deltalake import CommitProperties

    return CommitProperties(custom_metadata={"userMetadata": commit_metadata(table, night)})


def table_opened(config: LakeConfig, table: str) -> bool:
    """Whether delta-rs finds ``table`` on this local lake (a folder that lost its log raises)."""
    return _open(config, table) is not None


def _open(config: LakeConfig, table: str):  # -> deltalake.DeltaTable | None
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        return DeltaTable(_path(config, table))
    except TableNotFoundError:
        refuse_orphaned_files(_path(config, table))  # a folder that lost its log is not "no table"
        return None


def _create(config: LakeConfig, table: str, source) -> None:
    """The first write: a concurrent creator makes this fail with a commit conflict (then retried)."""
    from deltalake import write_deltalake

    partition_by = list(load_contract(table).partition_by) or None
    write_deltalake(
        _path(config, table),
        source,
        mode="error",
        partition_by=partition_by,
        commit_properties=commit_properties(table),
    )
    committed(_path(config, table))


def _merge_with_delta_rs(
    config: LakeConfig, table: str, rows: list[dict[str, Any]], prune: Mapping[str, Sequence[object]]
) -> None:
    source = _arrow_rows(table, rows)
    target = _open(config, table)
    if target is None:
        _create(config, table, source)
        return
    keys = load_contract(table).keys
    on = " AND ".join([*([slice_predicate(prune, alias="t")] if prune else []), *(f"t.{k} = s.{k}" for k in keys)])
    (
        target.merge(source, on, source_alias="s", target_alias="t", commit_properties=commit_properties(table))
        .when_matched_update_all()
        .when_not_matched_insert_all()
        .execute()
    )
    committed(_path(config, table))


def _update_with_delta_rs(config: LakeConfig, table: str, rows: list[dict[str, Any]], columns: Sequence[str]) -> None:
    target = _open(config, table)
    if target is None:
        return
    import pyarrow as pa

    contract = load_contract(table)
    keys, schema = contract.keys, contract.arrow_schema()
    fields = [schema.field(c) for c in (*keys, *[c for c in columns if c not in keys])]
    source = pa.Table.from_pylist([{f.name: row.get(f.name) for f in fields} for row in rows], schema=pa.schema(fields))
    (
        target.merge(
            source,
            " AND ".join(f"t.{k} = s.{k}" for k in keys),
            source_alias="s",
            target_alias="t",
            commit_properties=commit_properties(table),
        )
        .when_matched_update({c: f"s.{c}" for c in columns})
        .execute()
    )
    committed(_path(config, table))


def _replace_with_delta_rs(config: LakeConfig, table: str, rows: list[dict[str, Any]], predicate: str) -> bool:
    from deltalake import QueryBuilder, write_deltalake

    source = _arrow_rows(table, rows)
    target = _open(config, table)
    if target is None:
        if not rows:
            return False
        _create(config, table, source)
        return True
    if not rows:
        query = f"SELECT 1 FROM stored WHERE {predicate} LIMIT 1"
        if not QueryBuilder().register("stored", target).execute(query).read_all().num_rows:
            return False
    write_deltalake(target, source, mode="overwrite", predicate=predicate, commit_properties=commit_properties(table))
    committed(_path(config, table))
    return True


def distinct_dates(
    config: LakeConfig, table: str, column: str, after: dt.date, until: dt.date | None
) -> list[dt.date] | None:
    """The distinct dates in ``column`` after ``after`` (to ``until``, or all) stored in ``table``,
    read through delta-rs without a Spark job: ``None`` on a lake delta-rs does not read here
    (``s3a://``), ``[]`` before the table exists."""
    if not is_local_lake(config):
        return None
    import pyarrow as pa
    from deltalake import QueryBuilder

    target = _open(config, table)
    if target is None:
        return []
    window = f"{column} > {sql_value(after)}" + (f" AND {column} <= {sql_value(until)}" if until is not None else "")
    query = f"SELECT DISTINCT {column} FROM stored WHERE {window}"
    return pa.table(QueryBuilder().register("stored", target).execute(query).read_all()).column(column).to_pylist()
