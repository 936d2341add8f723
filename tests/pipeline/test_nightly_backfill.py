"""The real cx_nightly DAG over a date range: a 2-night backfill, a rerun, and a night stopped by a gate.

One module fixture simulates three days of a small world and runs the DAG (``dag.test()``, what
``airflow dags test`` runs) in one child process (one JVM start) for the first two dates in
order, then the first date again (a rerun after a later date: the harder case, since the later
night's late data and model state are already in the lake), then the third, whose tracking file
ends in a run of junk lines from a broken exporter: each line is quarantined with its reason, and
the bronze gate's quarantine limit (``schemas/raw/tracking_scans.yaml``) stops the night before
silver.
Gold tables before the rerun are read back by Delta time travel (the last version committed before the rerun's first
task ended, per ``ops.pipeline_runs``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pyspark.sql.functions as F
import pytest
from lake_rows import delta_rows

from jobs.devtools.airflow_env import ensure_airflow_db, load_dag, run_dates_logged
from jobs.devtools.simulator import SimulationConfig, simulate
from jobs.devtools.summary import delta_tables
from jobs.ingest.landing import MARKER
from jobs.lake.tables import read_table

DATES = ["2026-01-05", "2026-01-06"]
RERUN_DATE = DATES[0]
BAD_DATE = "2026-01-07"
JUNK_LINES = 25  # > min_lines 10 and > 10 % of the night's scans
# Every gold/feature table and the column that dates its rows.
DATE_COLUMNS = {
    "gold.cx_kpi_daily": "kpi_date",
    "gold.cx_kpi_breakdown_daily": "kpi_date",
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


def _tables_before(config, tables: list[str], moment: dt.datetime) -> dict[str, list]:
    """Each table as of its last commit before ``moment``, read by delta-rs time travel.

    ``moment`` is a naive time as PySpark collects it: in this process's local zone, which
    ``timestamp()`` assumes too (the commit times are epoch milliseconds)."""
    from deltalake import DeltaTable

    before_ms = moment.timestamp() * 1000
    snapshot = {}
    for table in tables:
        path = Path(config.table_path(table).removeprefix("file:"))
        if not (path / "_delta_log").is_dir():
            continue
        versions = [c["version"] for c in DeltaTable(str(path)).history() if c["timestamp"] < before_ms]
        if versions:
            snapshot[table] = sorted((tuple(row.values()) for row in delta_rows(path, version=max(versions))), key=repr)
    return snapshot


def _corrupt_tracking_file(landing: Path) -> int:
    """Append junk lines to the bad night's scans, as an exporter would (the file, then its folder's
    ``_SUCCESS`` marker again); return the file's lines."""
    (path,) = (landing / "tracking_scans" / BAD_DATE).glob("*.jsonl")
    with path.open("a") as out:
        out.writelines(f"<html>502 Bad Gateway {i}</html>\n" for i in range(JUNK_LINES))
    (path.parent / MARKER).write_bytes(b"")
    lines = len(path.read_text().splitlines())
    assert JUNK_LINES > 0.1 * lines, lines  # over the limit whatever the simulated volume
    return lines


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
    before = _tables_before(night_config, tables, rerun_started)
    # The failed night lands bronze and silver rows of its own: compare up to its start.
    bad_started = min(r["recorded_at"] for r in runs if r["run_date"].isoformat() == BAD_DATE)
    after = _tables_before(night_config, list(before), bad_started)
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


def test_a_feed_turned_to_junk_stops_the_night_at_the_bronze_gate(spark, backfill) -> None:
    bad = [r for r in backfill.runs if r["run_date"].isoformat() == BAD_DATE]
    states = {r["task_id"]: r["state"] for r in bad}
    assert states["validate_bronze"] == "failed"
    assert states["ingest_tracking_scans"] == "success"  # the lines were landed, with reasons
    # Nothing downstream of the gate started: no run-log row at all.
    assert not set(states) & {"build_silver", "build_gold", "build_journey", "build_features", "score_models"}
    (failure,) = [r for r in bad if r["task_id"] == "validate_bronze"]
    assert failure["exception_class"] == "DataQualityError"
    assert "ops_ingest_audit" in failure["reason"] and "quarantine_limit.max_ratio" in failure["reason"]
    # Nothing lost: every junk line is in quarantine with its reason (beside the simulator's own dirt).
    night = read_table(spark, backfill.config, "quarantine.tracking_scans").filter(
        F.col("_ingest_date") == F.lit(BAD_DATE).cast("date")
    )
    junk = night.filter(F.col("raw").startswith("<html>502"))
    assert [r.reason for r in junk.collect()] == ["malformed_json"] * JUNK_LINES
    # The failure names the source with its figures.
    assert f"'source': 'tracking_scans', 'quarantined_rows': {night.count()}, 'raw_rows': " in failure["reason"]
    # No silver row first arrived, and no gold or feature row dated, on the bad night.
    for table in ("silver.orders", "silver.tracking_events", "silver.interactions"):
        rows = read_table(spark, backfill.config, table).filter(F.col("first_ingest_date") == F.lit(BAD_DATE))
        assert rows.count() == 0, table
    for table, column in DATE_COLUMNS.items():
        rows = read_table(spark, backfill.config, table).filter(F.col(column) == F.lit(BAD_DATE).cast("date"))
        assert rows.count() == 0, table
    findings = read_table(spark, backfill.config, "ops.quality_findings").filter(
        F.col("run_date") == F.lit(BAD_DATE).cast("date")
    )
    critical = [r for r in findings.collect() if r.severity == "critical"]
    assert [(r.suite, r.expectation) for r in critical] == [("ops_ingest_audit", "expect_column_values_to_be_in_set")]
    assert "tracking_scans" in critical[0].sample


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
