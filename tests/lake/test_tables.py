from __future__ import annotations

import datetime as dt

from delta.tables import DeltaTable

from jobs.lake.tables import merge_changed_rows, merge_rows, read_table

D1, D2, D3 = dt.date(2026, 3, 1), dt.date(2026, 3, 2), dt.date(2026, 3, 3)
SCHEMA = "scan_id string, event_date date, seq int"
TABLE = "silver.tracking_events"  # any table name: the helper reads no contract


def test_merge_changed_rows_writes_only_the_rows_and_partitions_that_changed(spark, lake_config) -> None:
    first = spark.createDataFrame([("S1", D1, 1), ("S2", D2, 2), ("S3", D3, 3)], SCHEMA)
    # First write creates the table from every row, in every partition.
    assert merge_changed_rows(spark, first, lake_config, TABLE, ("scan_id",), "event_date") == [D1, D2, D3]
    path = lake_config.table_path(TABLE)
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
    dates = merge_changed_rows(spark, recomputed, lake_config, TABLE, ("scan_id",), "event_date", stored_since=D1)

    assert dates == [D2, D3]
    got = sorted(map(tuple, read_table(spark, lake_config, TABLE).collect()))
    assert got == [("S1", D1, 1), ("S2", D2, 5), ("S3", D2, 3), ("S4", D3, 4)]
    (merge,) = DeltaTable.forPath(spark, path).history(1).select("operationMetrics").collect()
    metrics = merge.operationMetrics
    assert (metrics["numTargetRowsUpdated"], metrics["numTargetRowsInserted"]) == ("2", "1")
    assert metrics["numTargetRowsCopied"] == "0"  # D1's file was not rewritten
    assert DeltaTable.forPath(spark, path).history().count() == created + 1

    # Nothing changed: no commit at all.
    assert merge_changed_rows(spark, recomputed, lake_config, TABLE, ("scan_id",), "event_date", D1) == []
    assert DeltaTable.forPath(spark, path).history().count() == created + 1


def _properties(spark, path: str) -> dict[str, str]:
    return {row["key"]: row["value"] for row in spark.sql(f"SHOW TBLPROPERTIES delta.`{path}`").collect()}


def test_a_contract_with_deletion_vectors_gets_merges_that_copy_no_row(spark, lake_config) -> None:
    table = "gold.journey_daily"  # its contract asks for deletion vectors; the helper reads no columns
    schema = "device_id string, n int"
    path = lake_config.table_path(table)
    # A table created before the contract asked for them: the next MERGE turns them on first.
    spark.createDataFrame([(f"d{i:03d}", i) for i in range(100)], schema).coalesce(1).write.format("delta").save(path)
    assert "delta.enableDeletionVectors" not in _properties(spark, path)

    changes = spark.createDataFrame([("d007", -7), ("d100", 100)], schema)  # one update, one insert
    merge_rows(spark, changes, lake_config, table, ("device_id",))

    assert _properties(spark, path)["delta.enableDeletionVectors"] == "true"
    (merge,) = DeltaTable.forPath(spark, path).history(1).select("operation", "operationMetrics").collect()
    metrics = merge.operationMetrics
    assert merge.operation == "MERGE"
    assert (metrics["numTargetRowsUpdated"], metrics["numTargetRowsInserted"]) == ("1", "1")
    # The other 99 rows of the one file stay where they are: d007's old copy is marked deleted.
    assert metrics["numTargetRowsCopied"] == "0"
    assert metrics["numTargetDeletionVectorsAdded"] == "1"
    got = dict(map(tuple, read_table(spark, lake_config, table).collect()))
    assert len(got) == 101
    assert (got["d007"], got["d100"], got["d099"]) == (-7, 100, 99)


def test_a_table_created_by_merge_rows_has_its_contract_properties(spark, lake_config) -> None:
    rows = spark.createDataFrame([("t1", D1)], "touchpoint_id string, touchpoint_date date")
    merge_rows(spark, rows, lake_config, "gold.customer_journey", ("touchpoint_id",), partition_by=("touchpoint_date",))
    properties = _properties(spark, lake_config.table_path("gold.customer_journey"))
    assert (properties["delta.enableChangeDataFeed"], properties["delta.enableDeletionVectors"]) == ("true", "true")
    # A contract without them gets neither.
    merge_rows(spark, rows, lake_config, "features.order_eta", ("touchpoint_id",))
    plain = _properties(spark, lake_config.table_path("features.order_eta"))
    assert "delta.enableChangeDataFeed" not in plain and "delta.enableDeletionVectors" not in plain
