from __future__ import annotations

import datetime as dt

from delta.tables import DeltaTable

from jobs.lake.tables import merge_changed_rows, read_table

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
