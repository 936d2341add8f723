from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pytest
from delta.tables import DeltaTable

from jobs.lake.contracts import load_contract
from jobs.lake.maintenance import maintain_table
from jobs.lake.tables import (
    CHANGE_DATA_FEED,
    DELETION_VECTORS,
    broadcast_if_one_night,
    changed_rows_of_commit,
    key_range_filter,
    merge_changed_rows,
    merge_rows,
    read_table,
    spark_metric_names,
    table_properties,
    table_property,
)

D1, D2, D3 = dt.date(2026, 3, 1), dt.date(2026, 3, 2), dt.date(2026, 3, 3)
SCHEMA = "scan_id string, event_date date, seq int"
TABLE = "silver.tracking_events"  # any table name: the helper reads no contract


@pytest.fixture(params=["auto", "spark"])
def engine_config(request: pytest.FixtureRequest, lake_config):
    """The test's lake with each MERGE engine: ``auto`` (delta-rs on this local lake,
    :mod:`jobs.lake.local_merge`) and ``spark``; both must leave the same rows."""
    return replace(lake_config, merge_engine=request.param)


def _last_merge_metrics(spark, path: str) -> dict[str, int]:
    """The newest commit's MERGE row counts, under Spark's names whichever engine wrote it."""
    (merge,) = DeltaTable.forPath(spark, path).history(1).select("operationMetrics").collect()
    return {
        name: int(value) for name, value in spark_metric_names(merge.operationMetrics).items() if name.startswith("num")
    }


def test_merge_changed_rows_writes_only_the_rows_and_partitions_that_changed(spark, engine_config) -> None:
    first = spark.createDataFrame([("S1", D1, 1), ("S2", D2, 2), ("S3", D3, 3)], SCHEMA)
    # First write creates the table from every row, in every partition.
    assert merge_changed_rows(spark, first, engine_config, TABLE, ("scan_id",), "event_date") == [D1, D2, D3]
    path = engine_config.table_path(TABLE)
    created = DeltaTable.forPath(spark, path).history().count()

    recomputed = spark.createDataFrame(
        [
            ("S1", D1, 1),  # equal to the stored row: not written, D1 untouched
            ("S2", D2, 5),  # seq moved: updated in D2
            ("S3", D2, 3),  # stored in D3, now D2: both partitions are listed, the row moves
            ("S4", D3, 4),  # new
        ],
        SCHEMA,
    )
    dates = merge_changed_rows(spark, recomputed, engine_config, TABLE, ("scan_id",), "event_date", stored_since=D1)

    assert dates == [D2, D3]
    got = sorted(map(tuple, read_table(spark, engine_config, TABLE).collect()))
    assert got == [("S1", D1, 1), ("S2", D2, 5), ("S3", D2, 3), ("S4", D3, 4)]
    metrics = _last_merge_metrics(spark, path)
    assert (metrics["numTargetRowsUpdated"], metrics["numTargetRowsInserted"]) == (2, 1)
    assert metrics["numTargetRowsCopied"] == 0  # D1's file was not rewritten
    assert DeltaTable.forPath(spark, path).history().count() == created + 1

    # Nothing changed: no commit at all.
    assert merge_changed_rows(spark, recomputed, engine_config, TABLE, ("scan_id",), "event_date", D1) == []
    assert DeltaTable.forPath(spark, path).history().count() == created + 1


def test_a_key_range_filter_skips_the_files_outside_the_source_keys_and_matches_the_same_rows(
    spark, engine_config
) -> None:
    from deltalake import DeltaTable as RustTable

    schema = "event_id string, seq int"
    # Three files with disjoint id ranges (E1-E2, E3-E4, E5-E6), as nights write time-ordered ids.
    stored = spark.createDataFrame([(f"E{i}", i) for i in range(1, 7)], schema).repartitionByRange(3, "event_id")
    merge_rows(spark, stored, engine_config, TABLE, ("event_id",))
    path = Path(engine_config.table_path(TABLE))
    files = pa.table(RustTable(str(path)).get_add_actions(flatten=True)).to_pylist()
    assert sorted(f["min.event_id"] for f in files) == ["E1", "E3", "E5"]

    source = spark.createDataFrame([("E3", 30), ("E4", 40), ("E45", 45)], schema)
    range_filter = key_range_filter(source, "event_id")
    # The files the range excludes are moved away: a MERGE that read them would fail.
    outside = [path / f["path"] for f in files if f["min.event_id"] != "E3"]
    for file in outside:
        file.rename(file.with_suffix(".away"))
    merge_rows(spark, source, engine_config, TABLE, ("event_id",), target_filter=range_filter)
    for file in outside:
        file.with_suffix(".away").rename(file)

    got = sorted(map(tuple, read_table(spark, engine_config, TABLE).collect()))
    # E3, E4 updated, E45 inserted ("E45" sorts between "E4" and "E5"), the others untouched.
    assert got == [("E1", 1), ("E2", 2), ("E3", 30), ("E4", 40), ("E45", 45), ("E5", 5), ("E6", 6)]
    assert key_range_filter(source.filter("seq > 100"), "event_id") is None  # no keys: no filter


def test_a_folder_with_files_but_no_delta_log_is_refused_unless_its_first_commit_appears(tmp_path) -> None:
    import threading

    import pytest

    from jobs.lake.tables import OrphanedTableFilesError, refuse_orphaned_files

    refuse_orphaned_files(str(tmp_path / "never_written"))  # no folder: a new table
    (tmp_path / "empty").mkdir()
    refuse_orphaned_files(str(tmp_path / "empty"))  # an empty folder holds nothing to lose

    lost = tmp_path / "lost" / "order_date=2026-03-01"
    lost.mkdir(parents=True)
    (lost / "part-0.parquet").write_bytes(b"rows")
    with pytest.raises(OrphanedTableFilesError, match=r"lost holds files but no Delta log.*part-0\.parquet"):
        refuse_orphaned_files(f"file:{tmp_path / 'lost'}")

    # Another process's first write: its files are down, its first commit lands a moment later.
    racing = tmp_path / "racing"
    racing.mkdir()
    (racing / "part-0.parquet").write_bytes(b"rows")

    def commit() -> None:
        (racing / "_delta_log").mkdir()
        (racing / "_delta_log" / "00000000000000000000.json").write_text("{}")

    timer = threading.Timer(0.2, commit)
    timer.start()
    refuse_orphaned_files(str(racing))  # no error: the log appeared within the wait
    timer.join()


def test_merge_changed_rows_deletes_the_rows_of_its_scope_that_the_recomputation_lacks(spark, engine_config) -> None:
    stored = spark.createDataFrame(
        [("S1", D1, 1, "O1"), ("S2", D2, 2, "O1"), ("S3", D2, 1, "O2")], f"{SCHEMA}, order_id string"
    )
    merge_changed_rows(spark, stored, engine_config, TABLE, ("scan_id",), "event_date")
    # Order O1 recomputed: its scan S2 is gone (retracted), S1 unchanged. O2 is out of scope.
    recomputed = spark.createDataFrame([("S1", D1, 1, "O1")], f"{SCHEMA}, order_id string")
    scope = spark.createDataFrame([("O1",)], "order_id string")
    dates = merge_changed_rows(spark, recomputed, engine_config, TABLE, ("scan_id",), "event_date", scope=scope)
    assert dates == [D2]
    got = sorted(map(tuple, read_table(spark, engine_config, TABLE).collect()))
    assert got == [("S1", D1, 1, "O1"), ("S3", D2, 1, "O2")]


def test_merge_rows_with_a_delete_flag_deletes_flagged_keys_and_never_inserts_them(spark, engine_config) -> None:
    schema = "scan_id string, event_date date, seq int"
    merge_rows(spark, spark.createDataFrame([("S1", D1, 1), ("S2", D1, 2)], schema), engine_config, TABLE, ("scan_id",))
    source = spark.createDataFrame(
        [("S1", None, None, True), ("S2", D1, 5, False), ("S3", None, None, True), ("S4", D2, 4, False)],
        f"{schema}, _gone boolean",
    )
    merge_rows(spark, source, engine_config, TABLE, ("scan_id",), delete_flag="_gone")
    got = read_table(spark, engine_config, TABLE)
    assert got.columns == ["scan_id", "event_date", "seq"]  # the flag is not a column of the table
    assert sorted(map(tuple, got.collect())) == [("S2", D1, 5), ("S4", D2, 4)]


def test_merge_rows_delete_unmatched_deletes_the_slice_rows_the_source_lacks(spark, engine_config) -> None:
    schema = "scan_id string, event_date date, seq int"
    rows = [("S1", D1, 1), ("S2", D2, 2), ("S3", D2, 3)]
    merge_rows(spark, spark.createDataFrame(rows, schema), engine_config, TABLE, ("scan_id",))
    # The source is the whole of D2's slice: S3 is gone from it; D1's S1 is outside the slice.
    source = spark.createDataFrame([("S2", D2, 2)], schema)
    merge_rows(spark, source, engine_config, TABLE, ("scan_id",), delete_unmatched=f"t.event_date = DATE'{D2}'")
    assert sorted(map(tuple, read_table(spark, engine_config, TABLE).collect())) == [("S1", D1, 1), ("S2", D2, 2)]


JOURNEY = "gold.customer_journey"  # its contract asks for the change data feed and deletion vectors
JOURNEY_SCHEMA = "touchpoint_id string, touchpoint_date date, v int"  # merge_rows writes the columns given
JOURNEY_KEYS = ("touchpoint_date", "touchpoint_id")


def test_a_table_created_by_merge_rows_has_the_properties_its_contract_asks_for(spark, engine_config) -> None:
    merge_rows(spark, spark.createDataFrame([("a", D1, 1)], JOURNEY_SCHEMA), engine_config, JOURNEY, JOURNEY_KEYS)

    path = engine_config.table_path(JOURNEY)
    # Deletion vectors only where Spark writes the nights: delta-rs (auto, on this local lake)
    # writes none and leaves a table that has them to Spark.
    with_deletion_vectors = engine_config.merge_engine == "spark"
    expected = {CHANGE_DATA_FEED: "true"} | ({DELETION_VECTORS: "true"} if with_deletion_vectors else {})
    assert table_properties(load_contract(JOURNEY), engine_config) == expected
    assert table_property(spark, path, CHANGE_DATA_FEED) == "true"
    assert table_property(spark, path, DELETION_VECTORS) == ("true" if with_deletion_vectors else None)


def test_a_partitioned_first_write_leaves_one_file_per_partition_whatever_the_tasks(spark, lake_config) -> None:
    from deltalake import DeltaTable as RustTable

    from jobs.lake.tables import replace_dates

    # Four Spark partitions, each holding rows of both days: a plain partitioned write leaves a
    # file per (task, day), up to 8 here (7 measured without the option); the optimized write
    # shuffles each day's rows to one writer. Both Spark paths: a MERGE's first write, and a slice
    # overwrite creating its table (another table name; the helpers read no contract columns).
    rows = spark.createDataFrame([(f"S{i}", (D1, D2)[i % 2], i) for i in range(16)], SCHEMA).repartition(4)
    assert rows.rdd.getNumPartitions() == 4
    merge_rows(spark, rows, lake_config, TABLE, ("scan_id",), partition_by=("event_date",))
    replace_dates(
        rows.filter("event_date = DATE'2026-03-01'"),
        lake_config,
        "silver.session_starts",
        "event_date",
        [D1],
        ("event_date",),
    )

    for table, days in ((TABLE, 2), ("silver.session_starts", 1)):
        files = pa.table(RustTable(lake_config.table_path(table)).get_add_actions(flatten=True)).to_pylist()
        assert len(files) == days, table
    assert read_table(spark, lake_config, TABLE).count() == 16


def test_one_nights_slice_is_broadcast_to_its_join_and_a_history_imports_is_left_to_spark(spark) -> None:
    # 200 rows of 50 customers (n % 50), 4 each; the night touched C1 and C2: 8 rows, n = 1, 51,
    # 101, 151 and 2, 52, 102, 152, whichever join Spark picks.
    rows = spark.createDataFrame([(f"C{n % 50}", n) for n in range(200)], "customer_key string, n int")
    touched = spark.createDataFrame([("C1",), ("C2",)], "customer_key string")
    threshold = spark.conf.get("spark.sql.autoBroadcastJoinThreshold")
    # Spark's own size rule off (these frames are tiny): only the hint can make a broadcast join.
    spark.conf.set("spark.sql.autoBroadcastJoinThreshold", "-1")
    try:
        plans, found = {}, {}
        for through in (None, "2026-03-02"):
            joined = rows.join(broadcast_if_one_night(touched, through), "customer_key", "left_semi")
            plans[through] = joined._jdf.queryExecution().executedPlan().toString()
            found[through] = sorted(row.n for row in joined.collect())
    finally:
        spark.conf.set("spark.sql.autoBroadcastJoinThreshold", threshold)
    assert "BroadcastHashJoin" in plans[None] and "SortMergeJoin" not in plans[None]
    assert "SortMergeJoin" in plans["2026-03-02"] and "BroadcastHashJoin" not in plans["2026-03-02"]
    assert found[None] == found["2026-03-02"] == [1, 2, 51, 52, 101, 102, 151, 152]


def test_delta_rs_records_a_merge_in_the_change_data_feed_the_gold_gate_reads(spark, lake_config) -> None:
    stored = spark.createDataFrame([("a", D1, 1), ("b", D1, 2), ("c", D2, 3)], JOURNEY_SCHEMA)
    merge_rows(spark, stored, lake_config, JOURNEY, JOURNEY_KEYS)  # created by Spark: a first write
    path = lake_config.table_path(JOURNEY)

    changes = spark.createDataFrame([("b", D1, 20), ("d", D2, 4)], JOURNEY_SCHEMA)
    merge_rows(
        spark,
        changes,
        lake_config,
        JOURNEY,
        JOURNEY_KEYS,
        target_filter=f"t.touchpoint_date IN (DATE'{D1}', DATE'{D2}')",
    )

    (commit,) = DeltaTable.forPath(spark, path).history(1).select("version", "engineInfo").collect()
    assert commit.engineInfo.startswith("delta-rs")
    # Exactly the rows the MERGE updated (b) and inserted (d), new values: not a and c, which
    # the rewrite of their files copied.
    changed = changed_rows_of_commit(spark, path, commit.version)
    assert sorted(map(tuple, changed.select(*stored.columns).collect())) == [("b", D1, 20), ("d", D2, 4)]
    assert sorted(map(tuple, read_table(spark, lake_config, JOURNEY).collect())) == [
        ("a", D1, 1),
        ("b", D1, 20),
        ("c", D2, 3),
        ("d", D2, 4),
    ]


def test_deletion_vectors_mark_the_rows_a_merge_replaces_instead_of_copying_the_rest_of_their_file(
    spark, lake_config
) -> None:
    from deltalake import DeltaTable as RustTable

    from jobs.analytics.catalog import arrow_dataset

    spark_config = replace(lake_config, merge_engine="spark")
    path = lake_config.table_path(JOURNEY)
    # Made before its contract asked for deletion vectors: three rows in one file, no property.
    stored = spark.createDataFrame([("a", D1, 1), ("b", D1, 2), ("c", D1, 3)], JOURNEY_SCHEMA)
    stored.coalesce(1).write.format("delta").save(path)
    assert table_property(spark, path, DELETION_VECTORS) is None

    changes = spark.createDataFrame([("b", D1, 20), ("d", D1, 4)], JOURNEY_SCHEMA)
    merge_rows(spark, changes, spark_config, JOURNEY, JOURNEY_KEYS)

    # Spark's first MERGE turned them on (one ALTER commit before it).
    assert table_property(spark, path, DELETION_VECTORS) == "true"
    (merge,) = DeltaTable.forPath(spark, path).history(1).select("operationMetrics").collect()
    metrics = merge.operationMetrics
    # b updated, d inserted; a and c stay where they are and b's old copy is marked deleted in
    # their file: nothing copied (without deletion vectors the file is rewritten: 2 rows copied).
    assert (metrics["numTargetRowsUpdated"], metrics["numTargetRowsInserted"]) == ("1", "1")
    assert metrics["numTargetRowsCopied"] == "0"
    assert metrics["numTargetDeletionVectorsAdded"] == "1"
    expected = [("a", D1, 1), ("b", D1, 20), ("c", D1, 3), ("d", D1, 4)]
    assert sorted(map(tuple, read_table(spark, lake_config, JOURNEY).collect())) == expected

    # With the default engine too, a table with deletion vectors stays Spark's (delta-rs writes
    # none): c's update marks its old copy as well.
    merge_rows(spark, spark.createDataFrame([("c", D1, 30)], JOURNEY_SCHEMA), lake_config, JOURNEY, JOURNEY_KEYS)
    (merge,) = DeltaTable.forPath(spark, path).history(1).select("engineInfo", "operationMetrics").collect()
    assert merge.engineInfo.startswith("Apache-Spark")
    assert merge.operationMetrics["numTargetDeletionVectorsUpdated"] == "1"
    expected = [("a", D1, 1), ("b", D1, 20), ("c", D1, 30), ("d", D1, 4)]
    assert sorted(map(tuple, read_table(spark, lake_config, JOURNEY).collect())) == expected
    # Without Spark (cxlake sql, the morning report, the tests' lake comparisons) the same rows.
    rows = arrow_dataset(RustTable(path.removeprefix("file:"))).to_table().to_pylist()
    assert sorted((r["touchpoint_id"], r["touchpoint_date"], r["v"]) for r in rows) == expected

    # The weekly OPTIMIZE (delta-rs on a local lake) folds the marks away without bringing b's
    # old copy back.
    assert maintain_table(spark, lake_config, JOURNEY, retention=0).files_added == 1
    assert len(RustTable(path.removeprefix("file:")).deletion_vectors().read_all()) == 0
    assert sorted(map(tuple, read_table(spark, lake_config, JOURNEY).collect())) == expected
