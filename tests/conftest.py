"""Shared fixtures: one real SparkSession with Delta for the whole session, on a temporary lake."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from jvm_speed import TEST_SPARK_CONF

TESTS_DIR = Path(__file__).resolve().parent

# Two test workers share two cores: one LightGBM thread each (jobs.models.LGBM_THREADS; the
# models are the same whatever the count). Set before any test module imports jobs.models.
os.environ.setdefault("CXLAKE_LGBM_THREADS", "1")


# Modules whose module fixtures run whole nights, slowest first (their setup in the last suite
# run: 16 min down to 3.5). `make test` hands files to its two workers in collection order
# (`--no-loadscope-reorder`), so these start first, one per worker; xdist's default order (most
# tests first) started the backfill last, and one worker ran it alone at the end.
SLOW_MODULES = (
    "pipeline/test_crash_points.py",
    "pipeline/test_nightly_backfill.py",
    "pipeline/test_simulated_nights.py",
    "test_airflow_scheduler.py",
    "cluster/test_standalone_cluster.py",
    "cluster/test_s3_lake.py",
    "silver/test_identity.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {module: i for i, module in enumerate(SLOW_MODULES)}

    def slowness(item: pytest.Item) -> int:
        module = item.path.relative_to(TESTS_DIR).as_posix()
        return rank.get(module, len(SLOW_MODULES))

    items.sort(key=slowness)  # stable: every other module keeps its place and its tests' order


@pytest.fixture(scope="session")
def cxlake_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("cxlake_home")
    os.environ["CXLAKE_HOME"] = str(home)
    os.environ.pop("CXLAKE_LAKE_ROOT", None)
    os.environ.pop("CXLAKE_LANDING_ROOT", None)
    os.environ["CXLAKE_DRIVER_MEMORY"] = "2g"
    os.environ["CXLAKE_SHUFFLE_PARTITIONS"] = "2"
    os.environ["CXLAKE_PII_KEY"] = "test-only-key"
    # Tests land files and ingest them at once, mostly without the exporter's _SUCCESS marker:
    # no settle wait (tests/ingest/test_landing_faults.py checks the rule with its own settings).
    os.environ["CXLAKE_LANDING_SETTLE_SECONDS"] = "0"
    # Child processes (Airflow runs, cluster drivers) inherit it: see tests/jvm_speed.py.
    os.environ.setdefault("CXLAKE_SPARK_CONF", TEST_SPARK_CONF)
    # OpenLineage is on in production; the tests that check it turn it on (the real scheduler's
    # night, tests/analytics/test_lineage.py), the others do not need a listener on every job.
    os.environ["CXLAKE_LINEAGE"] = "0"
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    os.environ.pop("MLFLOW_REGISTRY_URI", None)
    return home


@pytest.fixture(scope="session")
def config(cxlake_home: Path):
    from jobs.lake.config import load_config

    return load_config()


@pytest.fixture(scope="session")
def spark(config):
    from jobs.lake.spark import get_spark

    session = get_spark(config, app_name="cxlake-tests")
    yield session
    session.stop()


@pytest.fixture()
def lake_config(config, tmp_path: Path):
    """A config whose lake and landing are private to one test (tables start empty)."""
    from dataclasses import replace

    return replace(config, lake_root=str(tmp_path / "lake"), landing_root=str(tmp_path / "landing"))
