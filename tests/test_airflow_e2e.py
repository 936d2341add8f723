"""A real `airflow dags test cx_nightly` on tiny hand-written raw files, asserting exact gold values.

The landing files and the tables are tests/e2e_night.py's (one arrival day, 2026-03-03, with late
arrivals, a resent scan, a duplicate order line and three broken lines); tests/test_airflow_scheduler.py
runs the same night under the real scheduler.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import mlflow
import pytest
from e2e_night import LANDING, RUN_DATE, TABLES

from jobs.devtools.airflow_env import dags_test, ensure_airflow_db
from jobs.lake.tables import read_table

pytestmark = pytest.mark.airflow


# The night hashes with this key: no log, plan dump, table or store of the night may hold it.
CANARY_KEY = "canary-pii-key-9d41e7b2c5"


@pytest.fixture(scope="module")
def e2e(spark, config, tmp_path_factory):
    home = tmp_path_factory.mktemp("e2e_home")
    e2e_config = config.moved_to(home, landing_root=str(LANDING))
    ensure_airflow_db(e2e_config)
    # One run: rerun identity of every table is tests/test_nightly_backfill.py's (a date rerun
    # after later dates, the harder case).
    previous_key = os.environ["CXLAKE_PII_KEY"]
    os.environ["CXLAKE_PII_KEY"] = CANARY_KEY  # the child process's key (its environment)
    try:
        done = dags_test(e2e_config, "cx_nightly", RUN_DATE, capture=True)
    finally:
        os.environ["CXLAKE_PII_KEY"] = previous_key
    assert done.returncode == 0, (done.stdout + done.stderr)[-5000:]
    assert CANARY_KEY not in done.stdout + done.stderr
    return e2e_config


def test_every_layer_is_a_delta_table(e2e) -> None:
    config = e2e
    for table in TABLES:
        assert (Path(config.table_path(table)) / "_delta_log").is_dir(), table


def test_gold_kpis_have_exact_values(spark, e2e) -> None:
    config = e2e
    rows = [tuple(r) for r in read_table(spark, config, "gold.cx_kpi_daily").orderBy("kpi_date").collect()]
    as_of = dt.date(2026, 3, 3)
    assert rows == [
        (dt.date(2026, 2, 28), 0, 0, 0, 0, None, None, None, as_of, True),
        (dt.date(2026, 3, 1), 2, 0, 0, 0, None, None, None, as_of, False),  # O1, O2 placed
        (dt.date(2026, 3, 2), 1, 1, 1, 0, 1.0, 0.5, None, as_of, False),  # O3: 10:00 -> 22:00
        # O4 placed (O5's line is malformed); O1 on time after 2.25 days, O2 one day late after 2.0.
        (dt.date(2026, 3, 3), 1, 2, 1, 1, 0.5, 2.125, 1.0, as_of, False),
    ]


def test_raw_rows_are_accepted_or_quarantined(spark, e2e) -> None:
    config = e2e
    audit = {
        r.source: (r.raw_rows, r.accepted_rows, r.quarantined_rows)
        for r in read_table(spark, config, "ops.ingest_audit").collect()
    }
    assert audit == {"orders": (6, 4, 2), "tracking_scans": (12, 10, 2), "interactions": (7, 6, 1)}
    reasons = sorted(r.reason for r in read_table(spark, config, "quarantine.tracking_scans").collect())
    assert reasons == ["duplicate", "unknown_enum:event"]


def test_model_runs_record_table_versions_and_why_they_did_not_train(e2e) -> None:
    config = e2e
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


def test_no_clear_text_pii_in_silver_or_gold(e2e) -> None:
    config = e2e
    needles = [b"example.com", b"111-22-33", b"ann.lee"]
    for layer in ("silver", "gold"):
        for path in Path(config.lake_root, layer).rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                assert not any(n in data for n in needles), path


def test_the_hashing_key_is_in_no_file_the_night_left(e2e) -> None:
    """Every file under the night's home: the lake's tables and logs, Airflow's logs and metadata DB,
    the MLflow store, GX's stores and Data Docs. The key reached Spark as data, never in a plan."""
    files = [p for p in Path(e2e.home).rglob("*") if p.is_file() and not p.is_symlink()]
    assert len(files) > 100  # the whole night's output, not an empty folder
    assert [p for p in files if CANARY_KEY.encode() in p.read_bytes()] == []


def test_anonymous_pre_login_activity_joins_the_customer(spark, e2e) -> None:
    config = e2e
    keys = {r.event_id: r.customer_key for r in read_table(spark, config, "silver.interactions").collect()}
    # E1 is an anonymous app_open on device D1 two minutes before D1 logs in as C3 (E2).
    assert keys["E1"] is not None and keys["E1"] == keys["E2"] == keys["E4"]
    customers = {r.customer_id: r for r in read_table(spark, config, "silver.customers").collect()}
    assert customers["C3"].customer_key == keys["E1"]
    assert customers["C1"].orders == 2  # O1 (its resent copy counts once) and O3
