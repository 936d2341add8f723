"""cx_nightly under the real scheduler, one night of tiny hand-written raw files: exact gold values.

The scheduler, DAG processor and API server run as `cxlake airflow up` starts them, the
LocalExecutor runs each task in its own process, and the night is unpaused, triggered and followed
through the REST API, as a data engineer or an orchestrating system would. The landing files and
the tables are tests/e2e_night.py's (one arrival day, 2026-03-03, with late arrivals, a resent
scan, a duplicate order line and three broken lines); the night's gold values are asserted exactly.
The night hashes with a canary key that no file under its home may hold (the components' and
tasks' logs included). `airflow dags test` (every task in one process) is what
tests/pipeline/test_nightly_backfill.py runs; here the CLI only has to find the DAG.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import mlflow
import psutil
import pytest
from deltalake import DeltaTable, QueryBuilder
from e2e_night import LANDING, RUN_DATE, TABLES

from jobs.analytics.lineage import lineage_of
from jobs.cli import main
from jobs.devtools.airflow_env import airflow
from jobs.devtools.airflow_local import free_port, local_airflow, run_night
from jobs.lake.lineage import lineage_dir
from jobs.lake.tables import read_table
from jobs.report.morning import report_path

pytestmark = pytest.mark.airflow

# ~11 tasks start a Spark JVM each; on two busy cores a night of these tiny files took 15 min.
RUN_TIMEOUT_SECONDS = 1800
# The night hashes with this key: no log, plan dump, table or store of the night may hold it.
CANARY_KEY = "canary-pii-key-9d41e7b2c5"


def _row_count(path: str) -> int:
    table = QueryBuilder().register("t", DeltaTable(path))
    return table.execute("SELECT count(*) AS n FROM t").read_all().column("n")[0].as_py()


def _home_of(process: psutil.Process) -> str | None:
    try:
        return process.environ().get("CXLAKE_HOME")
    except (psutil.Error, OSError):
        return None  # gone meanwhile, or not ours to read


@pytest.fixture(scope="module")
def night(config, tmp_path_factory):
    home = tmp_path_factory.mktemp("scheduler_home")
    night_config = config.moved_to(home, landing_root=str(LANDING))
    previous_key = os.environ["CXLAKE_PII_KEY"]
    os.environ["CXLAKE_PII_KEY"] = CANARY_KEY  # the components' key (their environment)
    previous_lineage = os.environ.get("CXLAKE_LINEAGE")
    os.environ["CXLAKE_LINEAGE"] = "1"  # OpenLineage on, as in production (tests/conftest.py turns it off)
    try:
        # A free port: a developer's `cxlake airflow up` may hold 8080 while the suite runs.
        with local_airflow(night_config, port=free_port()) as components, components.api() as api:
            outcome = run_night(api, dt.date.fromisoformat(RUN_DATE), timeout=RUN_TIMEOUT_SECONDS)
    finally:
        os.environ["CXLAKE_PII_KEY"] = previous_key
        if previous_lineage is None:
            os.environ.pop("CXLAKE_LINEAGE", None)
        else:
            os.environ["CXLAKE_LINEAGE"] = previous_lineage
    assert outcome.state == "success", outcome.describe()
    return night_config, outcome


def test_night_builds_every_table(night) -> None:
    config, _ = night
    empty = [table for table in TABLES if _row_count(config.table_path(table)) == 0]
    # The day's interactions hold no tracking page view: the journey's views table is written, empty.
    assert empty == ["gold.journey_tracking_views"]


def test_every_task_ran_in_a_process_of_its_own(night) -> None:
    _, outcome = night
    states = dict(outcome.task_states)
    # 2026-03-03 is a Tuesday: the short circuit skips maintenance (Sundays), every other task runs.
    assert states.pop("maintain_delta") == "skipped"
    assert set(states.values()) == {"success"}
    assert sorted(outcome.task_pids) == sorted(states)
    assert len(set(outcome.task_pids.values())) == len(states)


def test_run_log_has_a_row_per_task_from_parallel_processes(night) -> None:
    config, outcome = night
    # Tasks that end at once (the three sensors, the three ingests) MERGE into the run log from
    # separate processes: every one's row is there, none lost to a commit race.
    rows = DeltaTable(config.table_path("ops.pipeline_runs")).to_pyarrow_table().to_pylist()
    last_tries = sorted((r for r in rows if r["run_id"] == outcome.run_id), key=lambda r: r["try_number"])
    logged = {row["task_id"]: row["state"] for row in last_tries}  # a retried task: its last try
    ran = {task: state for task, state in outcome.task_states.items() if task in outcome.task_pids}
    assert logged == ran


def test_nothing_is_left_running(night) -> None:
    config, _ = night
    # Components, task processes and Spark JVMs all carry the night's CXLAKE_HOME.
    assert [p.info["cmdline"] for p in psutil.process_iter(["cmdline"]) if _home_of(p) == str(config.home)] == []


def test_every_layer_is_a_delta_table(night) -> None:
    config, _ = night
    for table in TABLES:
        assert (Path(config.table_path(table)) / "_delta_log").is_dir(), table


def test_gold_kpis_have_exact_values(spark, night) -> None:
    config, _ = night
    columns = ["kpi_date", "orders_placed", "orders_delivered", "on_time_deliveries", "late_deliveries"]
    columns += ["on_time_delivery_rate", "avg_delivery_days", "avg_days_late", "as_of_date", "is_final"]
    kpis = read_table(spark, config, "gold.cx_kpi_daily").select(*columns)
    rows = [tuple(r) for r in kpis.orderBy("kpi_date").collect()]
    as_of = dt.date(2026, 3, 3)
    assert rows == [
        (dt.date(2026, 2, 28), 0, 0, 0, 0, None, None, None, as_of, True),
        (dt.date(2026, 3, 1), 2, 0, 0, 0, None, None, None, as_of, False),  # O1, O2 placed
        (dt.date(2026, 3, 2), 1, 1, 1, 0, 1.0, 0.5, None, as_of, False),  # O3: 10:00 -> 22:00
        # O4 placed (O5's line is malformed); O1 on time after 2.25 days, O2 one day late after 2.0.
        (dt.date(2026, 3, 3), 1, 2, 1, 1, 0.5, 2.125, 1.0, as_of, False),
    ]


def test_raw_rows_are_accepted_or_quarantined(spark, night) -> None:
    config, _ = night
    audit = {
        r.source: (r.raw_rows, r.accepted_rows, r.quarantined_rows)
        for r in read_table(spark, config, "ops.ingest_audit").collect()
    }
    assert audit == {"orders": (6, 4, 2), "tracking_scans": (12, 10, 2), "interactions": (7, 6, 1)}
    reasons = sorted(r.reason for r in read_table(spark, config, "quarantine.tracking_scans").collect())
    assert reasons == ["duplicate", "unknown_enum:event"]


def test_model_runs_record_table_versions_and_why_they_did_not_train(night) -> None:
    config, _ = night
    mlflow.set_tracking_uri(config.mlflow_tracking_uri)
    for experiment, table, metric in (
        ("cx_eta", "features.order_eta", "training_orders"),
        ("cx_churn", "features.customer_daily", "panel_rows"),
    ):
        runs = mlflow.search_runs(experiment_names=[experiment])
        assert len(runs) == 1, experiment  # no champion yet, so retraining is due
        run = runs.iloc[0]
        assert run["tags.as_of_date"] == RUN_DATE
        assert int(run[f"params.delta_version.{table}"]) >= 0
        # A day of history: no order is 14 days old, no churn label window has passed.
        assert run[f"metrics.{metric}"] == 0.0
        assert run["tags.status"] == "skipped_insufficient_data"


def test_no_clear_text_pii_in_silver_or_gold(night) -> None:
    config, _ = night
    needles = [b"example.com", b"111-22-33", b"ann.lee"]
    for layer in ("silver", "gold"):
        for path in Path(config.lake_root, layer).rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                assert not any(n in data for n in needles), path


def test_the_hashing_key_is_in_no_file_the_night_left(night) -> None:
    """Every file under the night's home: the lake's tables and logs, Airflow's logs and metadata DB,
    the MLflow store, GX's stores and Data Docs. The key reached Spark as data, never in a plan."""
    config, _ = night
    files = [p for p in Path(config.home).rglob("*") if p.is_file() and not p.is_symlink()]
    assert len(files) > 100  # the whole night's output, not an empty folder
    assert [p for p in files if CANARY_KEY.encode() in p.read_bytes()] == []


def test_anonymous_pre_login_activity_joins_the_customer(spark, night) -> None:
    config, _ = night
    keys = {r.event_id: r.customer_key for r in read_table(spark, config, "silver.interactions").collect()}
    # E1 is an anonymous app_open on device D1 two minutes before D1 logs in as C3 (E2).
    assert keys["E1"] is not None and keys["E1"] == keys["E2"] == keys["E4"]
    customers = {r.customer_id: r for r in read_table(spark, config, "silver.customers").collect()}
    assert customers["C3"].customer_key == keys["E1"]
    assert customers["C1"].orders == 2  # O1 (its resent copy counts once) and O3


def test_the_airflow_cli_finds_the_dag(night) -> None:
    """A data engineer's hand-run `airflow` command (the environment of `cxlake env`) sees the DAG."""
    config, _ = night
    listed = airflow(config, "dags", "list", "--output", "json", capture=True)
    assert listed.returncode == 0, (listed.stdout + listed.stderr)[-3000:]
    listing = listed.stdout.strip().splitlines()[-1]  # log lines (a warning or two) come first
    assert "cx_nightly" in {dag["dag_id"] for dag in json.loads(listing)}


def test_lineage_of_the_kpis_names_silver_bronze_and_the_runs(night, capsys, monkeypatch) -> None:
    """OpenLineage events of the night (each step's record, the Airflow provider, the delta-rs
    ingest): `cxlake lineage gold.cx_kpi_daily` walks back to the landing files, naming each writer."""
    config, outcome = night
    # The production default writes no Spark listener events (CXLAKE_LINEAGE=spark does): the
    # tree below comes from the steps' own records.
    assert not list(lineage_dir(config).glob("spark-*.jsonl"))
    entries = lineage_of(config, "gold.cx_kpi_daily")
    # Two tasks write the KPIs: build_gold the data KPIs, build_model_reports the model KPIs after it.
    writers = [write for _, name, write in entries if name == "gold.cx_kpi_daily"]
    assert [w.task.job for w in writers] == ["cx_nightly.build_gold", "cx_nightly.build_model_reports"]
    # Its task also wrote gold.eta_accuracy_daily, from the deliveries: what it read is that task's input.
    assert {"silver.orders", "silver.tracking_events"} <= set(writers[1].inputs)
    tree = {name: write for _, name, write in entries}
    kpis = writers[0]
    assert {"silver.orders", "silver.shipments"} <= set(kpis.inputs)
    # Each task ran in its own process: its Spark session's parent is the task's own run.
    assert (kpis.task.job, kpis.task_by_time) == ("cx_nightly.build_gold", False)
    assert tree["silver.orders"].task.job == "cx_nightly.build_silver"
    assert "bronze.orders" in tree["silver.orders"].inputs
    assert "bronze.tracking_scans" in tree["silver.shipments"].inputs
    # Bronze is written by delta-rs, without Spark: its writes are recorded by the ingest itself.
    assert tree["bronze.orders"].task.job == "cx_nightly.ingest_orders"
    assert tree["bronze.orders"].jobs == ["cxlake.ingest_orders"]
    assert tree["bronze.orders"].inputs == [str(LANDING / "orders" / RUN_DATE)]
    # One DAG run above every write, the one the REST API triggered.
    dag_runs = {w.dag_run.run_id for w in tree.values() if w is not None}
    assert len(dag_runs) == 1 and all(w.dag_run.job == "cx_nightly" for w in tree.values() if w is not None)
    monkeypatch.setenv("CXLAKE_HOME", str(config.home))  # the command reads the night's home
    assert main(["lineage", "gold.cx_kpi_daily"]) == 0
    printed = capsys.readouterr().out
    for name in ("gold.cx_kpi_daily", "silver.orders", "silver.shipments", "bronze.orders", "cx_nightly.build_gold"):
        assert name in printed


def test_the_morning_report_is_the_nights_last_output(night) -> None:
    config, outcome = night
    assert outcome.task_states["render_report"] == "success"
    page = report_path(config, dt.date.fromisoformat(RUN_DATE)).read_text()
    assert "CX morning report" in page and 'id="chart-kpi_trend"' in page and "<svg" in page
