"""One configuration for every job, read from ``CXLAKE_*`` environment variables.

Going from a laptop to a cluster is a change of environment, never of code: the Spark master,
the lake root (local path or ``s3a://bucket/prefix``), driver memory and shuffle partitions all
come from here.

| variable | default | meaning |
|---|---|---|
| ``CXLAKE_HOME`` | ``<project>/.cxlake`` | work folder: lake, landing, MLflow store, Airflow home |
| ``CXLAKE_LAKE_ROOT`` | ``$CXLAKE_HOME/lake`` | root of all Delta tables (``s3a://…`` allowed) |
| ``CXLAKE_LANDING_ROOT`` | ``$CXLAKE_HOME/landing`` | raw files, ``<source>/<YYYY-MM-DD>/`` |
| ``CXLAKE_SPARK_MASTER`` | ``local[*]`` | Spark master URL |
| ``CXLAKE_DRIVER_MEMORY`` | ``4g`` | ``spark.driver.memory`` |
| ``CXLAKE_SHUFFLE_PARTITIONS`` | ``4`` | ``spark.sql.shuffle.partitions`` (small data, 2 cores) |
| ``CXLAKE_SPARK_CONF`` | empty | extra Spark settings, ``key=value`` pairs separated by ``;`` |
| ``CXLAKE_LATENESS_DAYS`` | ``3`` | how late raw events may arrive and still be counted |
| ``CXLAKE_RETRAIN_CADENCE_DAYS`` | ``7`` | retrain a model when its champion was trained this many days before the run |
| ``CXLAKE_PROMOTION_MARGIN`` | ``0.02`` | relative improvement a challenger needs over the champion (same holdout) |
| ``CXLAKE_CHURN_HORIZON_DAYS`` | ``60`` | churn label: no order within this many days |
| ``CXLAKE_PSI_RETRAIN`` | ``1`` | a feature PSI above 0.2 makes the next night retrain (``0``: only report) |
| ``CXLAKE_LANDING_WAIT_SECONDS`` | ``21600`` | how long after the end of an arrival day its raw files may still come (landing sensor) |
| ``CXLAKE_LANDING_POKE_SECONDS`` | ``300`` | how often the landing sensor looks again (reschedule mode: no worker slot held) |
| ``CXLAKE_LANDING_SETTLE_SECONDS`` | ``120`` | without a ``_SUCCESS`` marker, how long a landing file must be unchanged before it is read |
| ``CXLAKE_LOCK_WAIT_SECONDS`` | ``600`` | how long a DAG task waits for a whole-night command holding the lake lock (:mod:`jobs.lake.lock`) |
| ``CXLAKE_PII_KEY`` | empty | secret key of the PII hashes (production: from a secret store); empty: a random key kept in ``$CXLAKE_HOME/pii.key`` (:func:`jobs.silver.pii.pii_key`) |
| ``CXLAKE_VACUUM_RETENTION_HOURS`` | ``168`` | VACUUM keeps the files of the table versions this recent (how far back time travel reaches) |
| ``CXLAKE_LINEAGE`` | ``1`` | OpenLineage events of every night step (the tables it read and wrote), Airflow task and delta-rs write under ``$CXLAKE_HOME/lineage/`` (:mod:`jobs.lake.lineage`); ``spark``: also every Spark job's, from the ``openlineage-spark`` listener (~10 % of a night's time); ``0``: none |
| ``CXLAKE_MERGE_ENGINE`` | ``auto`` | who runs a night's MERGE: ``auto``: delta-rs on a local lake (:mod:`jobs.lake.local_merge`; tables are then created without deletion vectors, which it does not write), Spark otherwise; ``spark``: always Spark (and deletion vectors where a contract asks for them) |
| ``MLFLOW_TRACKING_URI`` | ``sqlite:///$CXLAKE_HOME/mlflow.db`` | MLflow tracking + registry store |
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ENV_PREFIX = "CXLAKE_"


def _env(name: str, default: str) -> str:
    value = os.environ.get(ENV_PREFIX + name, "")
    return value if value.strip() else default


def _parse_spark_conf(text: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in text.split(";"):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"{ENV_PREFIX}SPARK_CONF item {item!r} is not key=value")
        pairs[key.strip()] = value.strip()
    return pairs


@dataclass(frozen=True)
class LakeConfig:
    """Where things live and how Spark runs. Build it with :func:`load_config`."""

    home: Path
    lake_root: str
    landing_root: str
    spark_master: str = "local[*]"
    driver_memory: str = "4g"
    shuffle_partitions: int = 4
    extra_spark_conf: dict[str, str] = field(default_factory=dict)
    lateness_days: int = 3
    mlflow_tracking_uri: str = ""
    retrain_cadence_days: int = 7
    promotion_margin: float = 0.02
    churn_horizon_days: int = 60
    psi_triggers_retraining: bool = True
    landing_wait_seconds: int = 21600
    landing_poke_seconds: int = 300
    landing_settle_seconds: int = 120
    lock_wait_seconds: int = 600
    # Never printed with the config (logs, reprs): it is a secret.
    pii_key: str = field(default="", repr=False)
    vacuum_retention_hours: int = 168
    merge_engine: str = "auto"

    def moved_to(self, home: Path, landing_root: str | None = None) -> LakeConfig:
        """The same settings with the lake, the landing and the MLflow store under ``home``.

        Laid out as :func:`load_config` lays out ``$CXLAKE_HOME``; for a private lake (a benchmark,
        a test) next to the configured one. ``landing_root`` keeps raw files elsewhere.
        """
        home = Path(home)
        return replace(
            self,
            home=home,
            lake_root=str(home / "lake"),
            landing_root=landing_root or str(home / "landing"),
            mlflow_tracking_uri=f"sqlite:///{home / 'mlflow.db'}",
        )

    def table_path(self, table: str) -> str:
        """Path of a Delta table given as ``layer.table`` or ``layer/table``."""
        return f"{self.lake_root.rstrip('/')}/{table.replace('.', '/')}"

    def landing_path(self, source: str, day: str) -> str:
        """Folder of one source's raw files that arrived on ``day`` (``YYYY-MM-DD``)."""
        return f"{self.landing_root.rstrip('/')}/{source}/{day}"


PRIVATE_UMASK = 0o077


def load_config() -> LakeConfig:
    """Read the configuration from the environment (see the module docstring).

    Also makes the files this process creates from now on private to their owner (umask 077,
    inherited by the Spark JVM and used by delta-rs; Spark's own file system client gets the same
    mask in :func:`jobs.lake.spark.get_spark`): bronze and quarantine hold clear e-mails and
    phones. Every entry point (CLI, DAG task, test) loads the configuration before it writes.
    """
    os.umask(PRIVATE_UMASK)
    home = Path(_env("HOME", str(PROJECT_ROOT / ".cxlake"))).resolve()
    return LakeConfig(
        home=home,
        lake_root=_env("LAKE_ROOT", str(home / "lake")),
        landing_root=_env("LANDING_ROOT", str(home / "landing")),
        spark_master=_env("SPARK_MASTER", "local[*]"),
        driver_memory=_env("DRIVER_MEMORY", "4g"),
        shuffle_partitions=int(_env("SHUFFLE_PARTITIONS", "4")),
        extra_spark_conf=_parse_spark_conf(_env("SPARK_CONF", "")),
        lateness_days=int(_env("LATENESS_DAYS", "3")),
        mlflow_tracking_uri=os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{home / 'mlflow.db'}",
        retrain_cadence_days=int(_env("RETRAIN_CADENCE_DAYS", "7")),
        promotion_margin=float(_env("PROMOTION_MARGIN", "0.02")),
        churn_horizon_days=int(_env("CHURN_HORIZON_DAYS", "60")),
        psi_triggers_retraining=_env("PSI_RETRAIN", "1") not in ("0", "false", "no"),
        landing_wait_seconds=int(_env("LANDING_WAIT_SECONDS", "21600")),
        landing_poke_seconds=int(_env("LANDING_POKE_SECONDS", "300")),
        landing_settle_seconds=int(_env("LANDING_SETTLE_SECONDS", "120")),
        lock_wait_seconds=int(_env("LOCK_WAIT_SECONDS", "600")),
        pii_key=_env("PII_KEY", "").strip(),
        vacuum_retention_hours=int(_env("VACUUM_RETENTION_HOURS", "168")),
        merge_engine=_merge_engine(_env("MERGE_ENGINE", "auto")),
    )


MERGE_ENGINES = ("auto", "spark")


def _merge_engine(value: str) -> str:
    engine = value.strip().lower()
    if engine not in MERGE_ENGINES:
        raise ValueError(f"{ENV_PREFIX}MERGE_ENGINE={value!r}: expected one of {', '.join(MERGE_ENGINES)}")
    return engine
