"""Helpers of the cluster and object-store tests: one night on the tiny e2e landing, run by config only.

A night here is the data steps of ``cx_nightly`` for 2026-03-03 (ingest of each source,
validate_bronze, build_silver, build_journey, build_gold, build_features; not the model steps),
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

from jvm_speed import TEST_JAVA_OPTIONS
from lake_rows import delta_rows

from jobs.devtools.summary import delta_tables

CLUSTER_TESTS = Path(__file__).resolve().parent
LANDING = CLUSTER_TESTS.parent / "data" / "e2e" / "landing"
RUN_DATE = "2026-03-03"
# The tables the issue names; every other table the steps write is compared as well.
NAMED_TABLES = ("gold.cx_kpi_daily", "gold.customer_journey", "silver.orders")
# Wall-clock bookkeeping, the only columns allowed to differ between two runs of the same night.
WALL_CLOCK_COLUMNS = {
    "ops.ingest_audit": ["recorded_at"],
    "ops.ingest_files": ["recorded_at"],
    "ops.night_runs": ["recorded_at"],
    "ops.quality_findings": ["recorded_at"],
}
SMALL_SPARK_CONF = {
    # Small enough to share two cores with another Spark test run.
    "spark.executor.memory": "1g",
    "spark.executor.cores": "1",
    "spark.cores.max": "1",
    # The driver would otherwise advertise the first non-loopback interface to the executors.
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    # Test speed only: the quick C1 compiler alone, with room for its code (tests/jvm_speed.py).
    "spark.driver.defaultJavaOptions": TEST_JAVA_OPTIONS,
    "spark.executor.defaultJavaOptions": TEST_JAVA_OPTIONS,
    # Spark's generated code stays on here (the production default), while the reference night
    # in the test process runs interpreted (tests/jvm_speed.py): the comparison covers both modes.
}
STEPS_TIMEOUT_SECONDS = 600


def snapshot(config) -> dict[str, list]:
    """Every Delta table of a local lake (``layer.table`` -> its rows, sorted), read by delta-rs:
    the same reader for the cluster's lake and the reference, and no Spark job."""
    result = {}
    for table in delta_tables(config):
        rows = delta_rows(config.table_path(table), WALL_CLOCK_COLUMNS.get(table, []))
        result[table] = sorted((tuple(row.values()) for row in rows), key=repr)
    return result


def spark_conf(settings: dict[str, str]) -> str:
    """``CXLAKE_SPARK_CONF`` text for ``settings``."""
    return ";".join(f"{key}={value}" for key, value in settings.items())


class NightRun:
    """The night running in a fresh process, configured by ``CXLAKE_<name>=<value>`` for each keyword.

    The process starts from this one's environment minus every ``CXLAKE_*`` variable, plus the
    settings the test suite uses (landing, PII key, 2 shuffle partitions, a 1g driver) and
    ``cxlake_env``. Its stdout and stderr go to ``home/steps.stdout`` and ``home/steps.stderr``.
    """

    def __init__(self, home: Path, **cxlake_env: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CXLAKE_", "PYSPARK_GATEWAY"))}
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
        self.home = home
        with (home / "steps.stdout").open("wb") as stdout, (home / "steps.stderr").open("wb") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, str(CLUSTER_TESTS / "run_nightly_steps.py"), RUN_DATE],
                env=env,
                cwd=home,  # nothing the driver drops in its working folder lands in the repository
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
            )

    def report(self) -> dict:
        """Wait for the night to end; its JSON report (fails with the stderr tail on a non-zero exit)."""
        try:
            code = self.process.wait(timeout=STEPS_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.stop()
            code = f"killed after {STEPS_TIMEOUT_SECONDS} s"
        stderr = (self.home / "steps.stderr").read_text(errors="replace")
        assert code == 0, f"exit {code}; stderr tail:\n{stderr[-6000:]}"
        return json.loads((self.home / "steps.stdout").read_text().strip().splitlines()[-1])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def run_alongside_reference(night: NightRun, request) -> dict:
    """Build the local reference (``local_reference``) while ``night`` runs, then return its report.

    The fresh process's night mostly waits on its JVM and executor, so the two overlap well on
    two cores; the reference is built once per test session and reused by the next module.
    """
    try:
        request.getfixturevalue("local_reference")
        return night.report()
    finally:
        night.stop()


def mismatched_tables(actual: dict[str, list], reference: dict[str, list]) -> list[str]:
    """Tables missing on one side or whose sorted rows differ (empty when the lakes are equal)."""
    return sorted(t for t in set(actual) | set(reference) if actual.get(t) != reference.get(t))
