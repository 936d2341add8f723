"""Bookkeeping rows written through delta-rs: one predicate text for both engines, Spark reads the result."""

from __future__ import annotations

import datetime as dt

from jobs.lake.contracts import load_contract
from jobs.lake.small_tables import (
    add_new_columns,
    distinct_dates,
    merge_small,
    read_small,
    replace_small,
    slice_predicate,
    sql_value,
    update_small,
)
from jobs.lake.tables import later_as_of_dates, read_table, table_version


def test_literals_and_slices_read_the_same_in_spark_sql_and_datafusion() -> None:
    assert sql_value(dt.date(2026, 3, 3)) == "DATE '2026-03-03'"
    assert sql_value("it's") == "'it''s'"  # a quote doubled, as both dialects escape it
    assert sql_value(7) == "7"
    assert slice_predicate({"run_date": [dt.date(2026, 3, 3)], "suite": ["a", "b"]}, alias="t") == (
        "t.run_date IN (DATE '2026-03-03') AND t.suite IN ('a', 'b')"
    )


def _audit(source: str, run_date: dt.date, raw: int) -> dict:
    return {
        "source": source,
        "run_date": run_date,
        "files": 1,
        "raw_rows": raw,
        "accepted_rows": raw,
        "quarantined_rows": 0,
        "recorded_at": dt.datetime(2026, 3, 4, 1, 0, 0),
    }


def test_merge_and_replace_write_delta_that_spark_reads(spark, lake_config) -> None:
    day, other = dt.date(2026, 3, 3), dt.date(2026, 3, 4)
    merge_small(lake_config, "ops.ingest_audit", [_audit("orders", day, 5), _audit("interactions", day, 9)])
    merge_small(lake_config, "ops.ingest_audit", [_audit("orders", day, 6), _audit("orders", other, 1)])
    rows = sorted(
        (r.source, r.run_date, r.raw_rows, r.recorded_at)
        for r in read_table(spark, lake_config, "ops.ingest_audit").collect()
    )
    # orders on `day` replaced (5 -> 6), interactions kept, the other day added; naive UTC wall clock back as written
    assert rows == [
        ("interactions", day, 9, dt.datetime(2026, 3, 4, 1, 0)),
        ("orders", day, 6, dt.datetime(2026, 3, 4, 1, 0)),
        ("orders", other, 1, dt.datetime(2026, 3, 4, 1, 0)),
    ]
    # replace: the slice's rows go, others stay; an empty slice replaced by nothing commits nothing
    assert replace_small(lake_config, "ops.ingest_audit", [], {"run_date": [day], "source": ["orders"]}) is True
    version = table_version(spark, lake_config, "ops.ingest_audit")
    assert replace_small(lake_config, "ops.ingest_audit", [], {"run_date": [day], "source": ["orders"]}) is False
    assert table_version(spark, lake_config, "ops.ingest_audit") == version
    left = sorted((r.source, r.run_date) for r in read_table(spark, lake_config, "ops.ingest_audit").collect())
    assert left == [("interactions", day), ("orders", other)]
    # The predicate text means the same rows to Spark.
    predicate = slice_predicate({"run_date": [day, other], "source": ["orders"]})
    assert read_table(spark, lake_config, "ops.ingest_audit").filter(predicate).count() == 1


def test_update_sets_only_its_columns_of_stored_rows_and_a_table_of_an_older_contract_gains_columns(
    spark, lake_config
) -> None:
    import pyarrow as pa
    from deltalake import write_deltalake

    day, other = dt.date(2026, 3, 3), dt.date(2026, 3, 4)
    # gold.cx_kpi_daily as contract v1 wrote it: eight KPI columns.
    v1 = pa.table(
        {"kpi_date": [day], "orders_placed": pa.array([7], pa.int64()), "as_of_date": [day], "is_final": [False]}
    )
    write_deltalake(lake_config.table_path("gold.cx_kpi_daily"), v1)
    assert "eta_mae_model_days" in add_new_columns(lake_config, "gold.cx_kpi_daily", spark=spark)
    assert add_new_columns(lake_config, "gold.cx_kpi_daily", spark=spark) == []  # once
    # An update of the model columns: the stored day gets them, its other columns stay, `other` is no row.
    update = [{"kpi_date": d, "eta_mae_model_days": 0.5, "orders_placed": 99} for d in (day, other)]
    update_small(lake_config, "gold.cx_kpi_daily", update, ["eta_mae_model_days"])
    assert read_small(
        lake_config,
        "gold.cx_kpi_daily",
        {"kpi_date": [day, other]},
        ["kpi_date", "orders_placed", "eta_mae_model_days"],
    ) == [{"kpi_date": day, "orders_placed": 7, "eta_mae_model_days": 0.5}]
    assert set(read_table(spark, lake_config, "gold.cx_kpi_daily").columns) == set(
        load_contract("gold.cx_kpi_daily").column_names
    )


def test_later_as_of_dates_lists_the_stored_dates_after_the_run_within_the_horizon_through_delta_rs(
    spark, lake_config
) -> None:
    import pyarrow as pa
    from deltalake import write_deltalake

    assert later_as_of_dates(spark, lake_config, "gold.cx_kpi_daily", "as_of_date", "2026-03-03", 3) == []  # no table
    stored = [dt.date(2026, 3, d) for d in (2, 3, 4, 4, 6, 7)]
    write_deltalake(
        lake_config.table_path("gold.cx_kpi_daily"),
        pa.table({"kpi_date": stored, "as_of_date": stored, "is_final": [False] * len(stored)}),
    )
    # A local lake: delta-rs answers (Spark's query only on lakes it does not read).
    assert distinct_dates(lake_config, "gold.cx_kpi_daily", "as_of_date", dt.date(2026, 3, 3), None) is not None
    # After 03-03 and at most 3 days after it: 04 (once), 06; not 02 or 03 (not after), not 07 (past the horizon).
    assert later_as_of_dates(spark, lake_config, "gold.cx_kpi_daily", "as_of_date", "2026-03-03", 3) == [
        "2026-03-04",
        "2026-03-06",
    ]
    # No horizon: every later date.
    assert later_as_of_dates(spark, lake_config, "gold.cx_kpi_daily", "as_of_date", "2026-03-03", None) == [
        "2026-03-04",
        "2026-03-06",
        "2026-03-07",
    ]


def test_a_process_losing_the_race_to_create_the_table_merges_into_it(lake_config) -> None:
    """Three tasks ending at once each find no ops table and create it: the losers' delta-rs
    write fails with "A table already exists"; the retry merges instead, and no row is lost
    (a sensor's run-log row once went missing that way)."""
    import datetime as dt

    from deltalake import DeltaTable

    from jobs.lake import small_tables

    def row(task: str) -> dict:
        return {
            "dag_id": "cx_nightly",
            "run_date": dt.date(2026, 3, 3),
            "task_id": task,
            "try_number": 1,
            "run_id": "manual",
            "state": "success",
            "exception_class": None,
            "reason": None,
            "recorded_at": dt.datetime(2026, 3, 4),
        }

    small_tables.merge_small(lake_config, "ops.pipeline_runs", [row("wait_for_orders")])
    # The loser: it looked before the winner's first commit, so it goes for the create.
    looked_before = small_tables._open
    attempts = []

    def open_as_before_the_winner(config, table):
        attempts.append(table)
        return None if len(attempts) == 1 else looked_before(config, table)

    small_tables._open = open_as_before_the_winner
    try:
        small_tables.merge_small(lake_config, "ops.pipeline_runs", [row("wait_for_interactions")])
    finally:
        small_tables._open = looked_before
    assert len(attempts) == 2  # refused once ("A table already exists"), merged on the retry
    tasks = DeltaTable(lake_config.table_path("ops.pipeline_runs")).to_pyarrow_table().column("task_id").to_pylist()
    assert sorted(tasks) == ["wait_for_interactions", "wait_for_orders"]
