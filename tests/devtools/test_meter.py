"""StageMeter: the files each stage's Spark scans read after partition pruning, and the CPU each process spent."""

from __future__ import annotations

import hashlib
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


def test_cpu_seconds_are_those_of_the_process_that_did_the_work(spark, tmp_path: Path) -> None:
    meter = StageMeter(spark, tmp_path / "lake", progress=False)

    with meter.stage("Spark works"):
        # A hash per row keeps the JVM's task threads busy; the Python driver only waits.
        spark.range(2_000_000).selectExpr("count_if(sha2(cast(id as string), 256) > 'a')").collect()
    with meter.stage("Python works"):
        # Hashing in the driver: no Spark job at all.
        digest = b""
        for i in range(200_000):
            digest = hashlib.sha256(digest + str(i).encode()).digest()
    with meter.stage("nothing"):
        pass

    spark_works, python_works, nothing = meter.stages
    # Each stage's CPU lands on the process that did the work, and an empty stage has next to
    # none (the JVM's own threads, e.g. heartbeats, may tick while it runs).
    assert spark_works.jvm_cpu_seconds > max(spark_works.driver_cpu_seconds, nothing.jvm_cpu_seconds)
    assert python_works.driver_cpu_seconds > max(python_works.jvm_cpu_seconds, nothing.driver_cpu_seconds)
    assert spark_works.as_dict()["cpu_seconds"] == round(spark_works.cpu_seconds, 2)
    assert "CPU s" in meter.table()
