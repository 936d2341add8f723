"""Shared fixtures: one real SparkSession with Delta for the whole session, on a temporary lake."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from jvm_speed import TEST_JAVA_OPTIONS

TESTS_DIR = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def cxlake_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("cxlake_home")
    os.environ["CXLAKE_HOME"] = str(home)
    os.environ.pop("CXLAKE_LAKE_ROOT", None)
    os.environ.pop("CXLAKE_LANDING_ROOT", None)
    os.environ["CXLAKE_DRIVER_MEMORY"] = "2g"
    os.environ["CXLAKE_SHUFFLE_PARTITIONS"] = "2"
    os.environ["CXLAKE_PII_KEY"] = "test-only-key"
    # Child processes (Airflow runs, cluster drivers) inherit it: see tests/jvm_speed.py.
    os.environ.setdefault("CXLAKE_SPARK_CONF", f"spark.driver.defaultJavaOptions={TEST_JAVA_OPTIONS}")
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
