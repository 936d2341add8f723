from __future__ import annotations

import pytest

from jobs.lake.config import load_config
from jobs.lake.spark import spark_settings


def test_cluster_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("CXLAKE_HOME", str(tmp_path))
    monkeypatch.setenv("CXLAKE_SPARK_MASTER", "spark://localhost:7077")
    monkeypatch.setenv("CXLAKE_LAKE_ROOT", "s3a://bucket/lake")
    monkeypatch.setenv("CXLAKE_DRIVER_MEMORY", "8g")
    monkeypatch.setenv("CXLAKE_SHUFFLE_PARTITIONS", "64")
    monkeypatch.setenv(
        "CXLAKE_SPARK_CONF", "spark.hadoop.fs.s3a.endpoint=http://127.0.0.1:5000; spark.executor.cores=2"
    )
    config = load_config()
    assert config.spark_master == "spark://localhost:7077"
    assert config.table_path("silver.orders") == "s3a://bucket/lake/silver/orders"
    settings = spark_settings(config)
    assert settings["spark.driver.memory"] == "8g"
    assert settings["spark.sql.shuffle.partitions"] == "64"
    assert settings["spark.hadoop.fs.s3a.endpoint"] == "http://127.0.0.1:5000"
    assert settings["spark.executor.cores"] == "2"
    assert settings["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"


def test_defaults_live_under_cxlake_home(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("CXLAKE_HOME", str(tmp_path))
    for name in (
        "CXLAKE_LAKE_ROOT",
        "CXLAKE_LANDING_ROOT",
        "CXLAKE_SPARK_MASTER",
        "CXLAKE_SPARK_CONF",
        "MLFLOW_TRACKING_URI",
    ):
        monkeypatch.delenv(name, raising=False)
    config = load_config()
    assert config.lake_root == str(tmp_path / "lake")
    assert config.landing_path("orders", "2026-01-05") == f"{tmp_path}/landing/orders/2026-01-05"
    assert config.spark_master == "local[*]"
    assert config.mlflow_tracking_uri == f"sqlite:///{tmp_path}/mlflow.db"


def test_malformed_spark_conf_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CXLAKE_SPARK_CONF", "spark.executor.cores")
    with pytest.raises(ValueError, match="is not key=value"):
        load_config()


def test_pii_key_and_vacuum_retention_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("CXLAKE_HOME", str(tmp_path))
    monkeypatch.setenv("CXLAKE_PII_KEY", "  from-the-secret-store ")
    monkeypatch.setenv("CXLAKE_VACUUM_RETENTION_HOURS", "720")
    config = load_config()
    assert config.pii_key == "from-the-secret-store"  # surrounding spaces are not part of a key
    assert config.vacuum_retention_hours == 720
    assert "from-the-secret-store" not in repr(config)  # a secret never reaches a log line
    # Unset (or blank): no key in the config (jobs.silver.pii falls back to $CXLAKE_HOME/pii.key)
    # and a week of time travel, Delta's own floor.
    monkeypatch.setenv("CXLAKE_PII_KEY", " ")
    monkeypatch.delenv("CXLAKE_VACUUM_RETENTION_HOURS")
    config = load_config()
    assert (config.pii_key, config.vacuum_retention_hours) == ("", 168)
