"""A night's MERGE (or slice overwrite) of a Delta table on a local lake, executed by delta-rs instead of Spark.

Spark computes the source (the night's rows, a few thousand to a few hundred thousand); Spark's
MERGE of it then costs 10-25 Spark jobs (materialize the source, scan for matches, write, rebuild
the snapshot), ~0.1 s each before any row moves. The same MERGE through delta-rs (``deltalake``),
from the source collected once as Arrow, measured on the quick bench's lake: 126 k source rows into
18 days of ``silver.interactions`` (966 k rows), 0.36-0.49 s against 3.8-4.7 s warm.

The statement is the one :func:`jobs.lake.tables.merge_rows` gives Spark (or the ``replaceWhere``
predicate of :func:`jobs.lake.tables.replace_dates` and its siblings): the same clauses in the same
order, the same condition, the contract version (and night) in the commit's ``userMetadata``, the
same retry after a lost commit race. A MERGE of a table with the change data feed records its
inserted and updated rows there as Spark's does (``_change_data`` files, which Spark's
``readChangeFeed`` reads: the gold gate validates ``gold.customer_journey``'s from them). delta-rs
writes no deletion vectors: a table created with them (by Spark, :func:`writes_locally` false) stays
Spark's to write, and a contract's ``deletion_vectors`` applies only where Spark writes. Only
conditions in SQL text go this way (a Spark ``Column`` has no text), and only a slice of at most
:data:`MAX_COLLECTED_ROWS` rows (a history import's stays in Spark). Elsewhere, on lakes delta-rs
does not write here (``s3a://``), and with ``CXLAKE_MERGE_ENGINE=spark``, Spark runs the write.

delta-rs checkpoints every 100 commits by default, Spark every 10: a table these merges write
would otherwise make each Spark read replay ever more JSON commits, so a checkpoint is written
here on Spark's schedule.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from jobs.lake.config import LakeConfig
from jobs.lake.contracts import Contract

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

# Spark's default delta.checkpointInterval.
CHECKPOINT_INTERVAL = 10
# A night's slices are ~10^5 rows at the large bench (the customers' 152 k feature rows, the
# interactions' 149 k arrivals); beyond this a history import's slice stays in Spark.
MAX_COLLECTED_ROWS = 2_000_000
_PLAIN_NAME = re.compile(r"[a-z_][a-z0-9_]*")


def writes_locally(config: LakeConfig) -> bool:
    """Whether a night's writes to the tables of this lake go through delta-rs where they can:
    ``CXLAKE_MERGE_ENGINE=auto`` and a local lake."""
    from jobs.lake.small_tables import is_local_lake

    return config.merge_engine == "auto" and is_local_lake(config)


def applies(config: LakeConfig, *conditions: object) -> bool:
    """Whether delta-rs runs this write (:func:`writes_locally`, every condition SQL text or
    absent); :func:`merge` and :func:`overwrite_where` may still hand a table back to Spark."""
    return writes_locally(config) and all(c is None or isinstance(c, str) for c in conditions)


def has_deletion_vectors(delta) -> bool:  # delta: deltalake.DeltaTable
    """Whether the table's protocol has deletion vectors (a table Spark created with them).

    delta-rs writes none, so such a table is left to Spark here rather than mixing the two ways
    of replacing rows; delta-rs' own dataset refuses to read it (:func:`jobs.analytics.catalog.arrow_dataset`).
    """
    return "deletionVectors" in (delta.protocol().reader_features or [])


def datafusion_sql(condition: str) -> str:
    """A Spark SQL condition as DataFusion reads it: backquoted names double-quoted, ``<=>`` spelled out.

    The conditions here are comparisons, ``IN`` lists and boolean logic over ``t.``/``s.``
    columns and typed literals, which both dialects write alike but for those two spellings.
    """
    return condition.replace("`", '"').replace("<=>", "IS NOT DISTINCT FROM")


def _name(column: str) -> str:
    return column if _PLAIN_NAME.fullmatch(column) else '"' + column.replace('"', '""') + '"'


def merge(
    df: DataFrame,
    config: LakeConfig,
    contract: Contract,
    keys: tuple[str, ...],
    *,
    night: str | None = None,
    update_condition: str | None = None,
    target_filter: str | None = None,
    delete_flag: str | None = None,
    delete_unmatched: str | None = None,
    update_columns: tuple[str, ...] | None = None,
    insert: bool = True,
    update: bool = True,
) -> bool:
    """Upsert ``df`` into the existing table of ``contract`` with the clauses
    :func:`jobs.lake.tables.merge_rows` documents (same arguments); one attempt, no retry.

    Returns False, having written nothing, when the source is too large to collect
    (:func:`collected`) or the table has deletion vectors: Spark merges it then.
    """
    import pyarrow as pa
    from deltalake import DeltaTable

    from jobs.lake.small_tables import _path, commit_properties

    path = _path(config, contract.name)
    # Opened before the source is computed, as Spark's MERGE reads its snapshot first: a writer
    # committing meanwhile where this one reads makes the commit fail (and the merge rerun).
    target = DeltaTable(path)
    if has_deletion_vectors(target):
        return False
    table_schema = pa.schema(target.schema().to_arrow())
    rows = collected(df)
    if rows is None:
        return False
    source = _in_table_types(rows, table_schema)
    nullable = {f.name for f in contract.columns if f.nullable} | {k for k in keys if k not in contract.column_names}
    on = " AND ".join(
        [
            *([datafusion_sql(target_filter)] if target_filter else []),
            *(f"t.{_name(k)} {'IS NOT DISTINCT FROM' if k in nullable else '='} s.{_name(k)}" for k in keys),
        ]
    )
    condition = datafusion_sql(update_condition) if update_condition else None
    # The table's own columns: the source may carry flags (``delete_flag``) that are not.
    columns = {_name(c): f"s.{_name(c)}" for c in source.column_names if c in table_schema.names}
    merger = target.merge(
        source,
        on,
        source_alias="s",
        target_alias="t",
        # The source is in memory: its partition values bound the target files read.
        streamed_exec=False,
        commit_properties=commit_properties(contract.name, night),
    )
    if delete_flag:
        kept = f"NOT s.{_name(delete_flag)}"
        merger = (
            merger.when_matched_delete(predicate=f"s.{_name(delete_flag)}")
            .when_matched_update(columns, predicate=f"{kept} AND ({condition})" if condition else kept)
            .when_not_matched_insert(columns, predicate=kept)
        )
    elif update_columns is not None:
        merger = merger.when_matched_update({_name(c): f"s.{_name(c)}" for c in update_columns}, predicate=condition)
    elif update:
        merger = merger.when_matched_update(columns, predicate=condition)
    if insert and not delete_flag:
        merger = merger.when_not_matched_insert(columns)
    if delete_unmatched:
        merger = merger.when_not_matched_by_source_delete(predicate=datafusion_sql(delete_unmatched))
    merger.execute()
    _after_commit(config, contract, target)
    return True


def overwrite_where(df: DataFrame, config: LakeConfig, contract: Contract, predicate: str) -> bool:
    """Replace the stored rows matching ``predicate`` (Spark SQL over the table's columns) with
    ``df``'s, which match it too, as Spark's ``replaceWhere`` overwrite does; one attempt.

    Returns False, having written nothing, when the source is too large to collect, the table has
    deletion vectors, or its contract the change data feed (which delta-rs' predicate overwrite is
    not relied on to record: no such table is overwritten by slice).
    """
    import pyarrow as pa
    from deltalake import DeltaTable, write_deltalake

    from jobs.lake.small_tables import _path, commit_properties

    if contract.change_data_feed:
        return False
    target = DeltaTable(_path(config, contract.name))
    if has_deletion_vectors(target):
        return False
    rows = collected(df)
    if rows is None:
        return False
    write_deltalake(
        target,
        _in_table_types(rows, pa.schema(target.schema().to_arrow())),
        mode="overwrite",
        predicate=datafusion_sql(predicate),
        commit_properties=commit_properties(contract.name),
    )
    _after_commit(config, contract, target)
    return True


def collected(df: DataFrame):  # -> pyarrow.Table | None
    """``df``'s rows as Arrow, or None when there are more than :data:`MAX_COLLECTED_ROWS` (a
    history import's or a long backfill's slice: the driver is not to hold it).

    The source is computed once into Spark's cache (a MERGE through Spark materializes it too),
    counted and collected from there, and dropped from the cache at once rather than left for
    Spark's cleaner (a night writes dozens of slices, a test process hundreds).
    """
    from jobs.lake.spark import persisted

    with persisted(df) as materialized:
        if materialized.count() > MAX_COLLECTED_ROWS:
            return None
        return materialized.toArrow()


def _after_commit(config: LakeConfig, contract: Contract, target) -> None:  # target: deltalake.DeltaTable
    from jobs.lake.commits import committed

    committed(config.table_path(contract.name))
    if target.version() % CHECKPOINT_INTERVAL == 0:
        target.create_checkpoint()


def _in_table_types(source, table_schema):  # (pyarrow.Table, pyarrow.Schema) -> pyarrow.Table
    """``source``'s columns of the table cast to the table's Arrow types (Spark may hand a wider
    or narrower type than stored, e.g. a literal's); other columns (flags) as they are."""
    import pyarrow as pa

    # Nullable all: a deletion row (delete_flag) is null but for its keys.
    fields = [
        (table_schema.field(name) if name in table_schema.names else source.schema.field(name)).with_nullable(True)
        for name in source.column_names
    ]
    return source.cast(pa.schema(fields))
