"""Delta table I/O at the edges of jobs: read, write one partition slice, merge, versions.

Every write here is idempotent by construction: ``replaceWhere`` on the slice a job owns, or a
``MERGE`` on declared keys. There is no blind append.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from jobs.lake import lineage
from jobs.lake.commits import committed, retried_on_conflict
from jobs.lake.config import LakeConfig

if TYPE_CHECKING:
    import datetime as dt

    from pyspark.sql import Column, DataFrame, DataFrameWriter, SparkSession

    from jobs.lake.contracts import Contract

_USER_METADATA_CONF = "spark.databricks.delta.commitInfo.userMetadata"


def _partitioned(writer: DataFrameWriter, partition_by: tuple[str, ...]) -> DataFrameWriter:
    """``writer`` partitioned by ``partition_by`` (none: unchanged), through Delta's optimized write.

    The rows are shuffled by partition before the write, so each partition gets a few files of a
    useful size instead of one per writing task (a history import of 60 days into
    silver.interactions, partitioned by day: ~4 files per partition otherwise). Every later scan
    pays per file (the large bench's last night read 1,055 files in its feature stage). Spark's
    MERGE repartitions by partition before writing already.
    """
    if not partition_by:
        return writer
    return writer.partitionBy(*partition_by).option("optimizeWrite", "true")


def arrived_between(column: Column, run_date: str, through: str | None = None) -> Column:
    """``column`` (an arrival date) is the night ``run_date``, or within ``[run_date, through]``."""
    import pyspark.sql.functions as F

    first = F.lit(run_date).cast("date")
    return column == first if through is None else column.between(first, F.lit(through).cast("date"))


def broadcast_if_one_night(df: DataFrame, through: str | None) -> DataFrame:
    """``df`` hinted for a broadcast join when it is one night's slice (``through`` None): the
    night's touched customers or re-linked devices, a few thousand rows that select from tables
    of millions.

    Spark cannot see that they are small: a local checkpoint keeps the size estimate of the scans
    it was computed from, and a filtered table is estimated at its full size, so without the hint
    both sides of such a join are shuffled and sorted (the large bench's last night: the touched
    customers' orders, 339 k, shuffled for 38 k customers). A history import's slices are the
    whole history: those are left to Spark.
    """
    import pyspark.sql.functions as F

    return F.broadcast(df) if through is None else df


def first_arrived(
    df: DataFrame,
    run_date: str,
    through: str | None = None,
    dated_since: dt.date | None = None,
    date_column: str = "event_date",
) -> DataFrame:
    """Rows of ``df`` whose ``first_ingest_date`` is the night ``run_date`` (or within ``[run_date, through]``).

    ``dated_since`` (:func:`jobs.domain.oldest_arrival_date` of ``run_date``): no such row is
    dated earlier (bronze quarantines older lines), so a table partitioned by ``date_column`` is
    read from there on instead of whole.
    """
    import pyspark.sql.functions as F

    arrived = arrived_between(F.col("first_ingest_date"), run_date, through)
    return df.filter(arrived if dated_since is None else (F.col(date_column) >= F.lit(dated_since)) & arrived)


def nights(first: str, last: str) -> list[str]:
    """Every date from ``first`` to ``last`` (``YYYY-MM-DD``), both included."""
    import datetime as dt

    start, end = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
    return [(start + dt.timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]


ORPHAN_RECHECK_SECONDS = (0.5, 1.0, 0.0)  # how long a concurrent first commit may take to appear


class OrphanedTableFilesError(RuntimeError):
    """A lake table's folder holds files but no Delta log: it cannot be read, nor created again."""


def refuse_orphaned_files(path: str, spark: SparkSession | None = None) -> None:
    """Raise :class:`OrphanedTableFilesError` when ``path``, which is not a Delta table, holds files.

    A table whose ``_delta_log`` went missing (moved, deleted, a backup restored without it) looks
    like no table at all. Writing it as a new one would keep only tonight's rows, leave the old
    files unreferenced and let the next VACUUM delete them, while the gates, which check the
    night's slice, pass (measured on a copy of the demo lake: ``silver.orders`` recreated with 24
    of its 2,699 rows). So a folder with any file in it is never taken for a new table: the night
    stops here and says how to recover. Local paths are listed with ``os``; other file systems
    (``s3a://``) through Spark's Hadoop client, which needs ``spark``.
    """
    import time

    for wait in ORPHAN_RECHECK_SECONDS:
        found = _some_files(path, spark)
        # Another process's first write puts its files down before its first commit: wait for
        # that commit a moment before calling the files orphans.
        if not found or _some_files(f"{path.rstrip('/')}/_delta_log", spark):
            return
        time.sleep(wait)
    raise OrphanedTableFilesError(
        f"{path} holds files but no Delta log (_delta_log), e.g. {', '.join(found)}. "
        "It is not created again over them: the old rows would be lost. Restore the folder's "
        "_delta_log from where it went (or a backup); if this folder is the leftover of a first "
        "write that never committed, move it away, then run again."
    )


def _some_files(path: str, spark: SparkSession | None, limit: int = 3) -> list[str]:
    """Up to ``limit`` files anywhere under ``path`` (none when it does not exist)."""
    import os
    from urllib.parse import urlparse

    scheme = urlparse(path).scheme
    if scheme in ("", "file"):
        found: list[str] = []
        for folder, _, files in os.walk(path.removeprefix("file:")):
            found += [os.path.join(folder, name) for name in files]
            if len(found) >= limit:
                break
        return sorted(found)[:limit]
    if spark is None:
        raise ValueError(f"listing {path} needs a SparkSession (Hadoop file system)")
    jvm = spark.sparkContext._jvm
    folder = jvm.org.apache.hadoop.fs.Path(path)
    fs = folder.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    if not fs.exists(folder):
        return []
    listing, found = fs.listFiles(folder, True), []
    while listing.hasNext() and len(found) < limit:
        found.append(listing.next().getPath().toString())
    return found


def table_exists(spark: SparkSession, path: str) -> bool:
    """Whether ``path`` is a Delta table; a folder with files but no log is an error, not "no"
    (:func:`refuse_orphaned_files`): every caller would go on to read it as empty or create it."""
    from delta.tables import DeltaTable

    if DeltaTable.isDeltaTable(spark, path):
        return True
    refuse_orphaned_files(path, spark)
    return False


def read_table(spark: SparkSession, config: LakeConfig, table: str) -> DataFrame:
    """Read a lake table by name (``layer.table``); the night step's lineage notes the read."""
    lineage.note_read(table)
    return spark.read.format("delta").load(config.table_path(table))


def read_table_or_empty(spark: SparkSession, config: LakeConfig, table: str, schema) -> DataFrame:
    """Read a lake table, or an empty frame of ``schema`` when it was never written."""
    path = config.table_path(table)
    if table_exists(spark, path):
        lineage.note_read(table)
        return spark.read.format("delta").load(path)
    return spark.createDataFrame([], schema)


def partition_values(spark: SparkSession, path: str, column: str) -> list:
    """The values of partition column ``column`` in the Delta table at ``path``, sorted.

    Partition values live in the table's file list: the query reads no data column.
    """
    rows = spark.read.format("delta").load(path).select(column).distinct().collect()
    return sorted(row[0] for row in rows)


def table_version(spark: SparkSession, config: LakeConfig, table: str) -> int | None:
    """Latest Delta version of a table (None when it does not exist)."""
    from delta.tables import DeltaTable

    path = config.table_path(table)
    if not table_exists(spark, path):
        return None
    return int(DeltaTable.forPath(spark, path).history(1).collect()[0]["version"])


def sql_literal(value: object) -> str:
    """``value`` as a quoted SQL string literal (for predicates built from dates, names)."""
    text = str(value).replace("'", "''")
    return f"'{text}'"


def sql_dates(dates: list) -> str:
    """``DATE'…', DATE'…'`` for an ``IN (...)`` list of dates (``date`` objects or ``YYYY-MM-DD``)."""
    return ", ".join(f"DATE{sql_literal(d.isoformat() if hasattr(d, 'isoformat') else d)}" for d in dates)


NIGHT_MARK = "; night "


def commit_metadata(table: str, night: str | None = None) -> str:
    """What each Delta commit records in ``userMetadata``: the contract version it was written with,
    and, for a write that a rerun must be able to find again, the night that made it.

    ``DESCRIBE HISTORY`` then tells, per version, which schema contract produced the data.
    """
    from jobs.lake.contracts import load_contract

    return f"contract {table} v{load_contract(table).version}" + (f"{NIGHT_MARK}{night}" if night else "")


@contextmanager
def commit_metadata_set(spark: SparkSession, table: str, night: str | None = None) -> Iterator[None]:
    """Tag the Delta commits made inside (MERGE, UPDATE: they have no writer option) with
    :func:`commit_metadata`; the session conf is read at commit time, then cleared."""
    spark.conf.set(_USER_METADATA_CONF, commit_metadata(table, night))
    try:
        yield
    finally:
        spark.conf.unset(_USER_METADATA_CONF)


def _overwrite_where(
    df: DataFrame, config: LakeConfig, table: str, predicate: str, partition_by: tuple[str, ...]
) -> None:
    from jobs.lake import local_merge
    from jobs.lake.contracts import ContractError, load_contract

    # Checked first: on a folder that lost its log, this overwrite would create a new table.
    exists = table_exists(df.sparkSession, config.table_path(table))
    try:
        contract = load_contract(table)
    except ContractError:  # a table no contract describes (a test's): Spark writes it
        contract = None
    if (
        exists
        and contract is not None
        and local_merge.applies(config, predicate)
        and retried_on_conflict(lambda: local_merge.overwrite_where(df, config, contract, predicate), table)
    ):
        return
    writer = (
        df.write.format("delta")
        .mode("overwrite")
        .option("replaceWhere", predicate)
        .option("userMetadata", commit_metadata(table))
    )
    writer = _partitioned(writer, partition_by)
    retried_on_conflict(lambda: writer.save(config.table_path(table)), table)
    committed(config.table_path(table))


def replace_slice(
    df: DataFrame,
    config: LakeConfig,
    table: str,
    where: dict[str, object],
    partition_by: tuple[str, ...] = (),
) -> None:
    """Overwrite exactly the rows matching ``where`` (column = value) with ``df``.

    Rows of ``df`` must all satisfy ``where`` (Delta checks it and fails otherwise), so a job can
    only ever replace the slice it owns; running it twice leaves the same table.
    """
    predicate = " AND ".join(f"`{col}` = {sql_literal(val)}" for col, val in where.items())
    _overwrite_where(df, config, table, predicate, partition_by)


def replace_range(
    df: DataFrame,
    config: LakeConfig,
    table: str,
    column: str,
    low: object,
    high: object,
    partition_by: tuple[str, ...] = (),
) -> None:
    """Overwrite the rows with ``low <= column <= high`` with ``df`` (an idempotent window write)."""
    predicate = f"`{column}` >= {sql_literal(low)} AND `{column}` <= {sql_literal(high)}"
    _overwrite_where(df, config, table, predicate, partition_by)


def replace_dates(
    df: DataFrame,
    config: LakeConfig,
    table: str,
    column: str,
    dates: list,
    partition_by: tuple[str, ...] = (),
) -> None:
    """Overwrite the rows whose ``column`` is one of ``dates`` with ``df`` (idempotent, any set of days)."""
    if not dates:
        raise ValueError(f"replace_dates on {table}: empty list of dates")
    _overwrite_where(df, config, table, f"`{column}` IN ({sql_dates(dates)})", partition_by)


def replace_where(
    df: DataFrame, config: LakeConfig, table: str, predicate: str, partition_by: tuple[str, ...] = ()
) -> None:
    """Overwrite the rows matching the SQL ``predicate`` with ``df`` (rows of ``df`` must match it too).

    For slices no single ``column = value`` describes, e.g. one date's rows of several suites.
    """
    _overwrite_where(df, config, table, predicate, partition_by)


def delete_where(spark: SparkSession, config: LakeConfig, table: str, predicate: str) -> None:
    """Delete ``table``'s rows matching the SQL ``predicate`` (retried after a lost commit race)."""
    from delta.tables import DeltaTable

    path = config.table_path(table)
    retried_on_conflict(lambda: DeltaTable.forPath(spark, path).delete(predicate), table)
    committed(path)


def merge_rows(
    spark: SparkSession,
    df: DataFrame,
    config: LakeConfig,
    table: str,
    keys: tuple[str, ...],
    update_condition: str | None = None,
    partition_by: tuple[str, ...] = (),
    target_filter: str | Column | None = None,
    night: str | None = None,
    delete_flag: str | None = None,
    delete_unmatched: str | None = None,
    update_columns: tuple[str, ...] | None = None,
    insert: bool = True,
    update: bool = True,
) -> None:
    """Upsert ``df`` into ``table`` on ``keys``; create the table from ``df`` on first write.

    Args:
        update_condition: SQL over ``t`` (target) and ``s`` (source) deciding whether a matched
            row is replaced, e.g. ``"s.as_of_date >= t.as_of_date"``. It must define a total
            order on versions of a row so that the end state does not depend on run order.
        target_filter: SQL over ``t`` alone that every matching target row satisfies, e.g.
            ``"t.run_date IN (DATE'2026-01-05')"`` (:func:`sql_dates`) or :func:`key_range_filter`'s
            range (or a ``Column``, which only Spark's MERGE takes): literals let Delta read only
            those partitions, or skip the files whose min/max statistics lie outside them, instead
            of the whole table.
        night: recorded in the commit's metadata, for :func:`night_commit` to find it again.
        delete_flag: a boolean column of ``df`` (not of the table): a row with it true deletes
            the stored row of its keys instead (its other columns are ignored), and is never inserted.
        delete_unmatched: SQL over ``t``: a stored row it holds for that no row of ``df`` matches
            is deleted (``df`` is the whole of that slice). Keep it within ``target_filter``.
        update_columns: the only columns a matched row takes from ``df`` (default all): the
            others belong to another writer of the table.
        insert: False: only update stored rows (and write nothing before the table exists).
        update: False: a stored row is left as it is (the caller knows ``update_condition`` holds
            for none): an insert-only MERGE, which Delta runs as an anti-join and an append. A
            matched row whose update is then skipped no longer marks its file as rewritten.

    On a local lake, a table without deletion vectors is merged by delta-rs
    (:mod:`jobs.lake.local_merge`: the same statement, without Spark's per-MERGE jobs).

    Another writer's commit to the table in the meantime (a lost race) makes the whole upsert
    start again from the new version (:func:`jobs.lake.commits.retried_on_conflict`): whether the
    table exists is checked again too, so a creation race ends in a MERGE, never an overwrite.
    """

    import pyspark.sql.functions as F
    from delta.tables import DeltaTable

    from jobs.lake import local_merge
    from jobs.lake.contracts import load_contract

    path = config.table_path(table)
    contract = load_contract(table)
    # What does not depend on the table's version is built once, outside the retried attempt.
    first_rows = df
    if delete_flag:
        # The source's flags are not columns of the table.
        names = set(contract.column_names)
        first_rows = df.filter(~F.col(delete_flag)).select(*[c for c in df.columns if c in names])
    on: str | Column = " AND ".join(
        [
            *([target_filter] if isinstance(target_filter, str) and target_filter else []),
            *(f"t.`{k}` <=> s.`{k}`" for k in keys),
        ]
    )
    if target_filter is not None and not isinstance(target_filter, str):
        on = target_filter & F.expr(on)
    properties = table_properties(contract, config)

    def one_attempt() -> None:
        if not table_exists(spark, path):
            if not insert:
                return
            writer = (
                first_rows.write.format("delta").mode("overwrite").option("userMetadata", commit_metadata(table, night))
            )
            for name, value in properties.items():
                writer = writer.option(name, value)
            _partitioned(writer, partition_by).save(path)
            committed(path)
            return
        if local_merge.applies(config, update_condition, target_filter, delete_unmatched) and local_merge.merge(
            df,
            config,
            contract,
            keys,
            night=night,
            update_condition=update_condition,
            target_filter=target_filter,  # type: ignore[arg-type]  # applies(): text or None
            delete_flag=delete_flag,
            delete_unmatched=delete_unmatched,
            update_columns=update_columns,
            insert=insert,
            update=update,
        ):
            return
        ensure_table_properties(spark, path, properties)
        target = DeltaTable.forPath(spark, path)
        merge = target.alias("t").merge(df.alias("s"), on)
        if delete_flag:
            # The table's own columns: the source may carry more flags than ``delete_flag``.
            stored_columns = set(target.toDF().columns)
            columns = {c: f"s.`{c}`" for c in df.columns if c in stored_columns}
            kept = f"NOT s.`{delete_flag}`"
            merge = (
                merge.whenMatchedDelete(condition=f"s.`{delete_flag}`")
                .whenMatchedUpdate(
                    condition=f"{kept} AND ({update_condition})" if update_condition else kept, set=columns
                )
                .whenNotMatchedInsert(condition=kept, values=columns)
            )
        elif update_columns is not None:
            merge = merge.whenMatchedUpdate(condition=update_condition, set={c: f"s.`{c}`" for c in update_columns})
        elif update:
            merge = merge.whenMatchedUpdateAll(condition=update_condition)
        if insert and not delete_flag:
            merge = merge.whenNotMatchedInsertAll()
        if delete_unmatched:
            merge = merge.whenNotMatchedBySourceDelete(condition=delete_unmatched)
        with commit_metadata_set(spark, table, night):
            merge.execute()
        committed(path)

    retried_on_conflict(one_attempt, table)


def night_commit(spark: SparkSession, path: str, night: str) -> int | None:
    """The newest version of the table at ``path`` whose commit ``night`` made (:func:`merge_rows`
    with ``night``), or None: what a rerun of that night, finding nothing left to write, reports."""
    import pyspark.sql.functions as F
    from delta.tables import DeltaTable

    mine = DeltaTable.forPath(spark, path).history().filter(F.col("userMetadata").endswith(f"{NIGHT_MARK}{night}"))
    newest = mine.agg(F.max("version")).first()[0]
    return None if newest is None else int(newest)


def partitions_written(spark: SparkSession, path: str, version: int, column: str) -> list[str]:
    """The values of partition ``column`` that commit ``version`` added files to, sorted."""
    import pyspark.sql.functions as F

    actions = spark.read.json(f"{path}/_delta_log/{version:020d}.json")
    if "add" not in actions.columns:
        return []
    values = actions.filter("add IS NOT NULL").select(F.col("add.partitionValues").getField(column)).distinct()
    return sorted(row[0] for row in values.collect() if row[0] is not None)


def key_range_filter(df: DataFrame, key: str) -> str | None:
    """``t.<key> BETWEEN <least> AND <greatest>`` of ``df``'s non-null ``key`` values (None when it
    has none), as SQL text that Spark's and delta-rs' MERGE both read.

    A MERGE target filter that cannot change what matches (every matching row's key is one of
    ``df``'s) and lets Delta skip each target file whose min/max statistics of ``key`` lie outside
    the range. It pays one aggregation of ``df``: worth it on a large table whose keys grow with
    time (the simulator's event ids; a night's arrivals span a few days of them), where the MERGE
    otherwise scans every file. With keys in no time order (random ids) nothing is skipped.
    """
    import pyspark.sql.functions as F

    least, greatest = df.agg(F.min(key), F.max(key)).first()
    if least is None:
        return None

    def literal(value: object) -> str:
        return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else sql_literal(value)

    return f"t.`{key}` BETWEEN {literal(least)} AND {literal(greatest)}"


CHANGE_DATA_FEED = "delta.enableChangeDataFeed"
DELETION_VECTORS = "delta.enableDeletionVectors"


def table_properties(contract: Contract, config: LakeConfig) -> dict[str, str]:
    """The Delta table properties a contract asks for (``change_data_feed``, ``deletion_vectors``).

    Deletion vectors only where Spark writes the table's nights (a cluster lake, or
    ``CXLAKE_MERGE_ENGINE=spark``): delta-rs writes none and does not write a table that has them
    (:mod:`jobs.lake.local_merge`), and its copy-on-write costs less than Spark's MERGE with them
    (the large bench's journey night, 190 k rows merged and 1.28 M copied: 2.0-2.3 s, against
    ~10 s of Spark jobs).
    """
    from jobs.lake import local_merge

    wanted = {
        CHANGE_DATA_FEED: contract.change_data_feed,
        DELETION_VECTORS: contract.deletion_vectors and not local_merge.writes_locally(config),
    }
    return {name: "true" for name, on in wanted.items() if on}


def _shown_properties(spark: SparkSession, path: str) -> dict[str, str]:
    """Every Delta table property of the table at ``path`` (a metadata lookup, no Spark job)."""
    return {row["key"]: row["value"] for row in spark.sql(f"SHOW TBLPROPERTIES delta.`{path}`").collect()}


def table_property(spark: SparkSession, path: str, name: str) -> str | None:
    """The Delta table property ``name`` of the table at ``path`` (None when unset)."""
    return _shown_properties(spark, path).get(name)


def ensure_table_properties(spark: SparkSession, path: str, properties: dict[str, str]) -> None:
    """Set ``properties`` on a table created before its contract asked for them (the change data
    feed, deletion vectors).

    A metadata lookup when they are set already (every night); one ALTER commit the first time.
    """
    if not properties:
        return
    shown = _shown_properties(spark, path)
    missing = {name: value for name, value in properties.items() if shown.get(name) != value}
    if missing:
        settings = ", ".join(f"'{name}' = '{value}'" for name, value in missing.items())
        spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ({settings})")
        committed(path)


def changed_rows_of_commit(
    spark: SparkSession,
    path: str,
    version: int,
    change_types: tuple[str, ...] = ("insert", "update_postimage"),
) -> DataFrame:
    """The rows commit ``version`` changed, from the change data feed: by default those it inserted
    or updated, with their new values.

    Needs the change data feed on at that version (``change_data_feed: true`` in the contract).
    ``change_types``: which of the feed's rows; add ``update_preimage`` and ``delete`` for the old
    values too (e.g. the customer a re-attributed row left).
    """
    import pyspark.sql.functions as F

    changes = (
        spark.read.format("delta")
        .option("readChangeFeed", "true")
        .option("startingVersion", version)
        .option("endingVersion", version)
        .load(path)
    )
    return changes.filter(F.col("_change_type").isin(*change_types)).drop(
        "_change_type", "_commit_version", "_commit_timestamp"
    )


def merge_changed_rows(
    spark: SparkSession,
    df: DataFrame,
    config: LakeConfig,
    table: str,
    keys: tuple[str, ...],
    partition_column: str,
    stored_since: object | None = None,
    scope: DataFrame | None = None,
) -> list:
    """Upsert only the rows of ``df`` that are new or differ from the stored row, into the
    partitions of ``partition_column`` they live in; return those partition values.

    ``scope`` (e.g. the ``order_id`` of the orders whose rows ``df`` recomputed): a stored row
    matching it whose keys are not in ``df`` is deleted (what it came from is gone).

    For a job that recomputes more rows than changed (every scan of an order that got one new
    scan): a MERGE of all of them rewrites every file holding any of them, though most are equal.
    Comparing first costs one read of the stored rows (from partition ``stored_since`` on, which
    must hold every stored row of ``df``'s keys) and writes only the partitions that changed.
    A key whose stored row sits in another partition is updated there (the partitions of both
    are listed to the MERGE).
    """
    import pyspark.sql.functions as F

    from jobs.lake.spark import persisted

    path = config.table_path(table)
    if not table_exists(spark, path):
        merge_rows(spark, df, config, table, keys, partition_by=(partition_column,))
        # Every partition is new: listed from the table written, not by computing ``df`` again.
        return partition_values(spark, path, partition_column)
    stored = read_table(spark, config, table)
    if stored_since is not None:
        stored = stored.filter(F.col(partition_column) >= F.lit(stored_since))
    # Computed once: the comparison and both joins on its keys below each read it, and a
    # recomputation (a window over days of visits or scans) costs more than a read of the result
    # (large bench's last night, ``silver.session_starts`` alone: 5.3-6.0 s -> 3.7-3.8 s warm).
    df = df.localCheckpoint()
    # Kept once: the comparison and the partitions of the changed keys' stored rows both need
    # them, and each use otherwise read every partition from ``stored_since`` again (large bench:
    # 48 days of ``silver.tracking_events`` for the night's ~40 k scans).
    with persisted(stored.join(df.select(*keys), list(keys), "left_semi").select(*df.columns)) as stored_of_keys:
        changed = df.exceptAll(stored_of_keys).withColumn("_deleted", F.lit(False))
        if scope is not None:
            removed = stored.join(scope, scope.columns, "left_semi").join(df.select(*keys), list(keys), "left_anti")
            changed = changed.unionByName(removed.select(*df.columns).withColumn("_deleted", F.lit(True)))
        changed = changed.localCheckpoint()
        # Partitions to rewrite: where the changed rows go, and where their keys' stored rows are.
        touched = changed.select(*keys, partition_column).unionByName(
            stored_of_keys.join(changed.select(*keys), list(keys), "left_semi").select(*keys, partition_column)
        )
        dates = sorted(r[0] for r in touched.select(partition_column).distinct().collect())
    if dates:
        merge_rows(
            spark,
            changed,
            config,
            table,
            keys,
            partition_by=(partition_column,),
            target_filter=f"t.`{partition_column}` IN ({sql_dates(dates)})",
            delete_flag="_deleted",
        )
    return dates


def later_as_of_dates(
    spark: SparkSession, config: LakeConfig, table: str, column: str, run_date: str, horizon_days: int | None
) -> list[str]:
    """As-of dates after ``run_date`` (within ``horizon_days``, or all) already written to ``table``.

    A run for date D that comes after runs for later dates (backfill, out-of-order rerun) must
    redo those later runs' results that D's arrivals can change; this lists them. In nightly
    order it is empty and costs one metadata-sized query (through delta-rs on a local lake).
    """
    import datetime as dt

    import pyspark.sql.functions as F

    from jobs.lake.small_tables import distinct_dates

    start = dt.date.fromisoformat(run_date)
    end = start + dt.timedelta(days=horizon_days) if horizon_days is not None else None
    # A local lake answers from the log and a few small files through delta-rs (no Spark job).
    dates = distinct_dates(config, table, column, start, end)
    if dates is None:
        path = config.table_path(table)
        if not table_exists(spark, path):
            return []
        later = F.col(column) > F.lit(start)
        if end is not None:
            later &= F.col(column) <= F.lit(end)
        dates = [
            row[0] for row in spark.read.format("delta").load(path).filter(later).select(column).distinct().collect()
        ]
    return sorted(day.isoformat() for day in dates)


def commit_partitions(spark: SparkSession, config: LakeConfig, table: str, version: int) -> dict[str, object]:
    """What one Delta commit wrote: its operation, metrics and the partitions it added files to.

    Read from the commit's JSON in ``_delta_log`` (through Spark, so it works on s3a:// too);
    used to show that an incremental night rewrites only the partitions that changed.
    """
    from delta.tables import DeltaTable

    path = config.table_path(table)
    log_file = f"{path}/_delta_log/{version:020d}.json"
    actions = spark.read.json(log_file)
    written: set[tuple] = set()
    if "add" in actions.columns:
        for row in actions.filter("add IS NOT NULL").select("add.partitionValues").collect():
            values = row[0].asDict() if row[0] is not None else {}
            written.add(tuple(sorted(values.items())))
    history = DeltaTable.forPath(spark, path).history().filter(f"version = {version}").first()
    all_partitions = spark.read.format("delta").load(path)
    contract_partitions = [c for c in all_partitions.columns if c in _partition_columns(table)]
    total = all_partitions.select(*contract_partitions).distinct().count() if contract_partitions else 1
    return {
        "version": version,
        "operation": history["operation"],
        "metrics": spark_metric_names(history["operationMetrics"] or {}),
        "partitions_written": sorted(written),
        "partitions_in_table": total,
    }


def spark_metric_names(metrics: dict[str, str]) -> dict[str, str]:
    """A commit's ``operationMetrics`` under Spark's names whichever engine wrote it: delta-rs
    (:mod:`jobs.lake.local_merge`) spells them ``num_target_rows_updated``, Spark
    ``numTargetRowsUpdated`` (a name without ``_`` is kept as it is)."""

    def camel(name: str) -> str:
        first, *rest = name.split("_")
        return first + "".join(part.capitalize() for part in rest)

    return {camel(name): value for name, value in metrics.items()}


def _partition_columns(table: str) -> tuple[str, ...]:
    from jobs.lake.contracts import load_contract

    return load_contract(table).partition_by


def latest_as_of(df: DataFrame, keys: tuple[str, ...] | list[str], column: str = "as_of_date") -> DataFrame:
    """Per key, the row of the latest ``column``: several runs' windows reduced to one MERGE source."""
    import pyspark.sql.functions as F
    from pyspark.sql import Window

    latest = Window.partitionBy(*keys).orderBy(F.col(column).desc())
    return df.withColumn("_as_of_rank", F.row_number().over(latest)).filter("_as_of_rank = 1").drop("_as_of_rank")
