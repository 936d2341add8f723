"""StageMeter's files read: what each stage's Spark scans read after partition pruning."""

from __future__ import annotations

from pathlib import Path

import pyspark.sql.functions as F

from jobs.devtools.meter import StageMeter


def test_files_read_counts_the_data_files_a_stage_scans_after_partition_pruning(spark, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    path = str(lake / "silver" / "events")
    # Four days, one file each (repartitioned by the partition column): 0..11 by id % 4.
    rows = spark.range(12).withColumn("day", (F.col("id") % 4).cast("int"))
    rows.repartition("day").write.format("delta").partitionBy("day").save(path)
    meter = StageMeter(spark, lake, progress=False)

    with meter.stage("two days"):
        # Days 1 and 2 only: their two files, the other two pruned by the partition filter.
        assert spark.read.format("delta").load(path).filter(F.col("day").isin(1, 2)).count() == 6
    with meter.stage("every day"):
        # Rows, not a count: Delta answers a bare count from its log's statistics, reading no file.
        assert sorted(r.id for r in spark.read.format("delta").load(path).collect()) == list(range(12))
    with meter.stage("a count"):
        assert spark.read.format("delta").load(path).count() == 12
    with meter.stage("no Spark"):
        pass

    two_days, every_day, a_count, no_spark = meter.stages
    assert (two_days.files_read, every_day.files_read, a_count.files_read, no_spark.files_read) == (2, 4, 0, 0)
    assert {s.delta_commits for s in meter.stages} == {0}
    assert no_spark.log_files_read == 0
    assert meter.stages[0].as_dict()["files_read"] == 2
    assert "log read" in meter.table()
