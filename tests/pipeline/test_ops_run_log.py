"""The DAG's task callback (ops.pipeline_runs) and the landing sensor's check, on a private lake.

The callback receives what Airflow passes it: a context mapping with the task instance (here a
plain record with the same attributes), ``ds``, the dag run and, on failure, the exception.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from types import SimpleNamespace

import pytest

from jobs.ingest.bronze import MissingSourceError
from jobs.lake.tables import read_table
from jobs.pipeline import nightly
from jobs.pipeline.ops import record_task_end
from jobs.quality.gate import DataQualityError

RUN_DATE = "2026-03-03"


def _context(task_id: str, try_number: int, state: str, error: BaseException | None = None) -> dict:
    ti = SimpleNamespace(dag_id="cx_nightly", task_id=task_id, try_number=try_number, state=state, run_id="manual__x")
    context = {"ti": ti, "ds": RUN_DATE, "dag_run": SimpleNamespace(run_id="manual__x")}
    if error is not None:
        context["exception"] = error
    return context


def _rows(spark, config) -> list[tuple]:
    df = read_table(spark, config, "ops.pipeline_runs")
    return sorted((r.task_id, r.try_number, r.state, r.exception_class, r.reason) for r in df.collect())


def test_one_row_per_task_try_and_idempotent(spark, lake_config) -> None:
    record_task_end(_context("build_silver", 1, "success"), lake_config)
    record_task_end(_context("build_silver", 1, "success"), lake_config)  # the same try recorded again
    error = DataQualityError(
        "suite(s) silver_orders failed 1 critical expectation(s): expect_column_values_to_be_unique"
    )
    failed = record_task_end(_context("validate_silver", 1, "up_for_retry", error), lake_config)
    record_task_end(_context("validate_silver", 2, "failed", error), lake_config)
    assert failed["exception_class"] == "DataQualityError" and failed["run_date"] == dt.date(2026, 3, 3)
    assert _rows(spark, lake_config) == [
        ("build_silver", 1, "success", None, None),
        ("validate_silver", 1, "up_for_retry", "DataQualityError", str(error)),
        ("validate_silver", 2, "failed", "DataQualityError", str(error)),
    ]
    # A rerun of a try replaces its row: the state is the latest one recorded.
    record_task_end(_context("validate_silver", 2, "success"), lake_config)
    assert _rows(spark, lake_config)[-1] == ("validate_silver", 2, "success", None, None)
    assert read_table(spark, lake_config, "ops.pipeline_runs").count() == 3


def test_concurrent_task_ends_all_land_and_each_commit_names_the_contract(spark, lake_config) -> None:
    """The three ingests of a night end at once: commits that lose the race retry, none is lost."""
    from concurrent.futures import ThreadPoolExecutor

    from delta.tables import DeltaTable

    from jobs.lake.contracts import load_contract

    record_task_end(_context("wait_for_orders", 1, "success"), lake_config)  # creates the table
    tasks = [f"ingest_{source}" for source in ("orders", "tracking_scans", "interactions")]
    with ThreadPoolExecutor(len(tasks)) as pool:
        rows = list(pool.map(lambda task: record_task_end(_context(task, 1, "success"), lake_config), tasks))
    assert all(row is not None for row in rows)
    assert [r[0] for r in _rows(spark, lake_config)] == sorted(["wait_for_orders", *tasks])
    history = DeltaTable.forPath(spark, lake_config.table_path("ops.pipeline_runs")).history().collect()
    assert len(history) == 4  # one commit per task end
    assert {h.userMetadata for h in history} == {
        f"contract ops.pipeline_runs v{load_contract('ops.pipeline_runs').version}"
    }


def test_a_run_log_written_by_spark_takes_the_callbacks_rows(spark, lake_config) -> None:
    """Lakes made before the callback wrote through delta-rs: their Spark-written table keeps working."""
    from jobs.lake.contracts import load_contract
    from jobs.pipeline.ops import pipeline_run_row

    contract = load_contract("ops.pipeline_runs")
    row = pipeline_run_row(_context("build_gold", 1, "failed", RuntimeError("boom")), dt.datetime(2026, 3, 4, 1, 2, 3))
    spark.createDataFrame([row], contract.spark_schema()).write.format("delta").partitionBy("run_date").save(
        lake_config.table_path("ops.pipeline_runs")
    )
    record_task_end(_context("build_gold", 1, "success"), lake_config)  # the same try again: replaced
    record_task_end(_context("build_journey", 1, "success"), lake_config)
    assert _rows(spark, lake_config) == [
        ("build_gold", 1, "success", None, None),
        ("build_journey", 1, "success", None, None),
    ]


def test_an_unreachable_lake_is_logged_not_raised(lake_config, tmp_path, caplog) -> None:
    blocker = tmp_path / "not_a_directory"
    blocker.write_text("a file where the lake should be")
    config = replace(lake_config, lake_root=str(blocker / "lake"))
    row = record_task_end(_context("build_gold", 1, "failed", RuntimeError("boom")), config)
    assert row["state"] == "failed" and row["exception_class"] == "RuntimeError"
    assert "could not record build_gold" in caplog.text
    assert record_task_end({"ti": None}, config) is None  # not even a context: still no raise


def test_landing_check_finds_waits_or_fails_naming_source_and_folder(lake_config, tmp_path) -> None:
    folder = tmp_path / "landing" / "orders" / RUN_DATE
    due = dt.datetime(2026, 3, 4, tzinfo=dt.UTC) + dt.timedelta(seconds=lake_config.landing_wait_seconds)
    assert nightly.landing_arrived("orders", RUN_DATE, lake_config, now=due - dt.timedelta(minutes=1)) is None
    with pytest.raises(MissingSourceError) as missing:
        nightly.landing_arrived("orders", RUN_DATE, lake_config, now=due)
    assert "source 'orders'" in str(missing.value) and str(folder) in str(missing.value)
    folder.mkdir(parents=True)
    (folder / "orders_1.jsonl").write_text("not the expected format\n")  # orders are CSV: ignored
    with pytest.raises(MissingSourceError):
        nightly.landing_arrived("orders", RUN_DATE, lake_config, now=due)
    (folder / "orders_1.csv").write_text("order_id\n")
    assert nightly.landing_arrived("orders", RUN_DATE, lake_config, now=due) == {
        "source": "orders",
        "folder": str(folder),
        "files": 1,
    }
