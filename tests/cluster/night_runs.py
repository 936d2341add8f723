"""Helpers of the cluster and object-store tests: one night on the tiny e2e landing, run by config only.

A night here is the data steps of ``cx_nightly`` for 2026-03-03 (ingest of each source,
validate_bronze, build_silver, build_gold, build_journey, build_features; not the model steps),
run by ``run_nightly_steps.py`` in a fresh Python process whose only input is the ``CXLAKE_*``
environment, as an Airflow task's would be. Its tables are compared, sorted row by row, with the
same steps run in local mode in this process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from jobs.summary import delta_tables
from jobs.tables import read_table

CLUSTER_TESTS = Path(__file__).resolve().parent
LANDING = CLUSTER_TESTS.parent / "data" / "e2e" / "landing"
RUN_DATE = "2026-03-03"
# The tables the issue names; every other table the steps write is compared as well.
NAMED_TABLES = ("gold.cx_kpi_daily", "gold.customer_journey", "silver.orders")
# Wall-clock bookkeeping, the only columns allowed to differ between two runs of the same night.
WALL_CLOCK_COLUMNS = {"ops.ingest_audit": ["recorded_at"]}
SMALL_SPARK_CONF = {
    # Small enough to share two cores with another Spark test run.
    "spark.executor.memory": "1g",
    "spark.executor.cores": "1",
    "spark.cores.max": "1",
    # The driver would otherwise advertise the first non-loopback interface to the executors.
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
}
STEPS_TIMEOUT_SECONDS = 600


def snapshot(spark, config) -> dict[str, list]:
    """Every Delta table of a local lake (``layer.table`` -> its rows, sorted)."""
    result = {}
    for table in delta_tables(config):
        df = read_table(spark, config, table).drop(*WALL_CLOCK_COLUMNS.get(table, []))
        result[table] = sorted(df.collect(), key=repr)
    return result


def spark_conf(settings: dict[str, str]) -> str:
    """``CXLAKE_SPARK_CONF`` text for ``settings``."""
    return ";".join(f"{key}={value}" for key, value in settings.items())


def run_nightly_steps(home: Path, **cxlake_env: str) -> dict:
    """Run the night in a fresh process configured by ``CXLAKE_<name>=<value>`` for each keyword.

    The process starts from this one's environment minus every ``CXLAKE_*`` variable, plus the
    settings the test suite uses (landing, PII key, 2 shuffle partitions, a 1g driver) and
    ``cxlake_env``. Its stdout and stderr are kept in ``home``; returns its JSON report.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("CXLAKE_") and not k.startswith("PYSPARK_GATEWAY")}
    env.pop("MLFLOW_TRACKING_URI", None)
    settings = {
        "HOME": str(home),
        "LANDING_ROOT": str(LANDING),
        "PII_KEY": "test-only-key",  # as tests/conftest.py: the local reference hashes with it too
        "SHUFFLE_PARTITIONS": "2",
        "DRIVER_MEMORY": "1g",
        **cxlake_env,
    }
    env.update({f"CXLAKE_{name}": value for name, value in settings.items()})
    home.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [sys.executable, str(CLUSTER_TESTS / "run_nightly_steps.py"), RUN_DATE],
        env=env,
        cwd=home,  # nothing the driver drops in its working folder lands in the repository
        capture_output=True,
        text=True,
        timeout=STEPS_TIMEOUT_SECONDS,
    )
    (home / "steps.stdout").write_text(result.stdout)
    (home / "steps.stderr").write_text(result.stderr)
    assert result.returncode == 0, f"exit {result.returncode}; stderr tail:\n{result.stderr[-6000:]}"
    return json.loads(result.stdout.strip().splitlines()[-1])


def mismatched_tables(actual: dict[str, list], reference: dict[str, list]) -> list[str]:
    """Tables missing on one side or whose sorted rows differ (empty when the lakes are equal)."""
    return sorted(t for t in set(actual) | set(reference) if actual.get(t) != reference.get(t))
