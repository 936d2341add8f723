"""The real cx_nightly DAG over a date range: a 2-night backfill, a rerun, and a night stopped by a gate.

One module fixture simulates three days of a small world and runs the DAG (``dag.test()``, what
``airflow dags test`` runs) in one child process (one JVM start) for the first two dates in
order, then the first date again (a rerun after a later date: the harder case, since the later
night's late data and model state are already in the lake), then the third, whose tracking file
carries a scan dated thirteen days after it arrived: valid for bronze (the lateness bound only
refuses old events), a critical failure of silver's "no event before it happened" expectation.
Gold tables before the rerun are read back by Delta time travel (the last version committed before the rerun's first
task ended, per ``ops.pipeline_runs``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pyspark.sql.functions as F
import pytest

from jobs.devtools.airflow_env import ensure_airflow_db, load_dag, run_dates_logged
from jobs.devtools.simulator import SimulationConfig, simulate
from jobs.devtools.summary import delta_tables
from jobs.lake.tables import read_table, table_exists

DATES = ["2026-01-05", "2026-01-06"]
RERUN_DATE = DATES[0]
BAD_DATE = "2026-01-07"
FUTURE_SCAN = "S_FROM_THE_FUTURE"
# Every gold/feature table and the column that dates its rows.
DATE_COLUMNS = {
    "gold.cx_kpi_daily": "kpi_date",
    "gold.customer_journey": "touchpoint_date",
    "gold.journey_daily": "journey_date",
    "gold.funnel_daily": "funnel_date",
    "features.customer_daily": "as_of_date",
    "features.order_eta": "as_of_date",
    "features.shipment_scan": "as_of_date",
}


@dataclass(frozen=True)
class Backfill:
    config: object
    results: list[dict]
    before_rerun: dict[str, list]
    after_rerun: dict[str, list]
    runs: list[dict]


def _rows(df) -> list[tuple]:
    return sorted(map(tuple, df.collect()), key=repr)


def _tables_before(spark, config, tables: list[str], moment) -> dict[str, list]:
    """Each table as of its last commit before ``moment`` (Delta time travel)."""
    from delta.tables import DeltaTable

    snapshot = {}
    for table in tables:
        path = config.table_path(table)
        if not table_exists(spark, path):
            continue
        versions = [r.version for r in DeltaTable.forPath(spark, path).history().collect() if r.timestamp < moment]
        if versions:
            snapshot[table] = _rows(spark.read.format("delta").option("versionAsOf", max(versions)).load(path))
    return snapshot


def _corrupt_tracking_file(landing: Path) -> None:
    """Append a well-formed scan whose time is after its arrival date (bronze accepts it)."""
    (path,) = (landing / "tracking_scans" / BAD_DATE).glob("*.jsonl")
    template = json.loads(path.read_text().splitlines()[0])
    template.update(scan_id=FUTURE_SCAN, scan_at="2026-01-20T10:00:00Z", event="arrived_hub")
    with path.open("a") as out:
        out.write(json.dumps(template) + "\n")


@pytest.fixture(scope="module")
def backfill(spark, config, tmp_path_factory) -> Backfill:
    home = tmp_path_factory.mktemp("backfill_home")
    landing = home / "landing"
    simulate(SimulationConfig(days=3, customers=120, seed=21), landing)
    _corrupt_tracking_file(landing)
    night_config = config.moved_to(home)  # landing: home / "landing", simulated above
    ensure_airflow_db(night_config)
    results = run_dates_logged(night_config, [*DATES, RERUN_DATE, BAD_DATE], home / "logs" / "nights.log")
    runs = [r.asDict() for r in read_table(spark, night_config, "ops.pipeline_runs").collect()]
    # The rerun's rows replaced the first run's (same keys): their times are the rerun's.
    rerun_started = min(r["recorded_at"] for r in runs if r["run_date"].isoformat() == RERUN_DATE)
    # Every table but ops (run bookkeeping with wall-clock times): bronze to gold and features.
    tables = [t for t in delta_tables(night_config) if not t.startswith("ops.")]
    before = _tables_before(spark, night_config, tables, rerun_started)
    # The failed night lands bronze and silver rows of its own: compare up to its start.
    bad_started = min(r["recorded_at"] for r in runs if r["run_date"].isoformat() == BAD_DATE)
    after = _tables_before(spark, night_config, list(before), bad_started)
    return Backfill(night_config, results, before, after, runs)


def test_consecutive_dates_succeed_then_a_rerun_then_a_failed_night(backfill) -> None:
    states = [(r["date"], r["state"]) for r in backfill.results]
    assert states == [*((d, "success") for d in DATES), (RERUN_DATE, "success"), (BAD_DATE, "failed")], states


def test_every_task_try_is_one_run_log_row(backfill) -> None:
    keys = [(r["dag_id"], r["run_date"].isoformat(), r["task_id"], r["try_number"]) for r in backfill.runs]
    assert len(keys) == len(set(keys))
    ran = set(load_dag().task_ids) - {"maintain_delta"}  # weekdays: short-circuited, never started
    for day in DATES:
        rows = [r for r in backfill.runs if r["run_date"].isoformat() == day]
        assert {r["task_id"] for r in rows if r["state"] == "success"} == ran, day
        assert len(rows) == len(ran), day
    # The rerun's tries (a new dag run, try 1 again) replaced the first run's rows: same keys.
    rerun = {r["run_id"] for r in backfill.runs if r["run_date"].isoformat() == RERUN_DATE}
    other = {r["run_id"] for r in backfill.runs if r["run_date"].isoformat() == DATES[1]}
    assert len(rerun) == 1 and rerun != other


def test_rerunning_a_date_changes_no_table(backfill) -> None:
    """Bronze, quarantine, silver, gold and features: the rerun of a date rewrites identical rows."""
    assert set(backfill.before_rerun) >= {*DATE_COLUMNS, "bronze.orders", "silver.tracking_events"}
    for table, rows in backfill.before_rerun.items():
        assert rows or table not in DATE_COLUMNS, table  # the comparison is not vacuous
        assert backfill.after_rerun[table] == rows, table


def test_a_critical_silver_failure_stops_the_night_before_gold(spark, backfill) -> None:
    bad = [r for r in backfill.runs if r["run_date"].isoformat() == BAD_DATE]
    states = {r["task_id"]: r["state"] for r in bad}
    assert states["validate_silver"] == "failed"
    assert states["build_silver"] == "success"
    # Nothing downstream of the gate started: no run-log row at all.
    assert not set(states) & {"build_gold", "build_journey", "build_features", "validate_gold", "score_models"}
    (failure,) = [r for r in bad if r["task_id"] == "validate_silver"]
    assert failure["exception_class"] == "DataQualityError"
    assert "silver_tracking_events" in failure["reason"]
    assert "expect_column_pair_values_a_to_be_greater_than_b" in failure["reason"]
    assert FUTURE_SCAN in failure["reason"]  # the sample names the failing scan
    # No gold or feature row dated the bad night.
    for table, column in DATE_COLUMNS.items():
        rows = read_table(spark, backfill.config, table).filter(F.col(column) == F.lit(BAD_DATE).cast("date"))
        assert rows.count() == 0, table
    kpis = read_table(spark, backfill.config, "gold.cx_kpi_daily")
    assert kpis.filter(F.col("as_of_date") == F.lit(BAD_DATE).cast("date")).count() == 0
    findings = read_table(spark, backfill.config, "ops.quality_findings").filter(
        F.col("run_date") == F.lit(BAD_DATE).cast("date")
    )
    critical = [r for r in findings.collect() if r.severity == "critical"]
    assert [(r.suite, r.expectation) for r in critical] == [
        ("silver_tracking_events", "expect_column_pair_values_a_to_be_greater_than_b")
    ]
    assert FUTURE_SCAN in critical[0].sample


def test_data_docs_list_every_gate_suite(backfill) -> None:
    index = Path(backfill.config.home) / "data_docs" / "index.html"
    html = index.read_text()
    for suite in (
        "bronze_orders",
        "silver_orders",
        "silver_tracking_events",
        "gold_cx_kpi_daily",
        "features_customer_daily",
    ):
        assert suite in html, suite
