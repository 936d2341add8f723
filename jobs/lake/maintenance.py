"""Delta maintenance: compaction (OPTIMIZE) and file clean-up (VACUUM) of every lake table.

Nightly MERGEs and slice overwrites leave many small files; readers pay for each. Compaction
rewrites them into few large files without changing content (a new table version whose
``operation`` is ``OPTIMIZE``), and VACUUM deletes files no version inside the retention window
needs. Retention bounds time travel: keep it longer than the longest backfill or audit look-back.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from dataclasses import dataclass

from pyspark.sql import SparkSession

from jobs.lake.config import LakeConfig
from jobs.lake.contracts import SCHEMAS_DIR
from jobs.lake.tables import table_exists

log = logging.getLogger(__name__)

RETENTION_ENV = "CXLAKE_VACUUM_RETENTION_HOURS"
DEFAULT_RETENTION_HOURS = 168  # Delta's own safety floor: a week of time travel
MAINTENANCE_WEEKDAY = 6  # Sunday (Monday = 0): the quietest night


@dataclass(frozen=True)
class MaintenanceResult:
    table: str
    files_removed: int
    files_added: int
    vacuumed: bool


def lake_tables() -> list[str]:
    """Every table that has a contract in ``schemas/`` (raw sources excluded: they are files)."""
    names = []
    for path in sorted(SCHEMAS_DIR.glob("*/*.yaml")):
        layer, table = path.parent.name, path.stem
        if layer != "raw" and not (layer == "quarantine" and table == "rows"):
            names.append(f"{layer}.{table}")
    return names


def retention_hours() -> int:
    return int(os.environ.get(RETENTION_ENV, DEFAULT_RETENTION_HOURS))


def is_maintenance_day(run_date: str) -> bool:
    """Maintenance runs weekly, on the nightly run whose logical date is a Sunday."""
    return dt.date.fromisoformat(run_date).weekday() == MAINTENANCE_WEEKDAY


def maintain_table(spark: SparkSession, config: LakeConfig, table: str, retention: int) -> MaintenanceResult:
    from delta.tables import DeltaTable

    delta = DeltaTable.forPath(spark, config.table_path(table))
    metrics = delta.optimize().executeCompaction().collect()[0]["metrics"]
    # Below Delta's 168 h floor VACUUM refuses unless its check is turned off: a deliberate
    # choice for test lakes only, never the default.
    if retention < DEFAULT_RETENTION_HOURS:
        spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", "false")
    delta.vacuum(retention)
    return MaintenanceResult(table, int(metrics["numFilesRemoved"]), int(metrics["numFilesAdded"]), True)


def run(spark: SparkSession, config: LakeConfig, retention: int | None = None) -> list[MaintenanceResult]:
    """Compact and vacuum every existing lake table."""
    retention = retention_hours() if retention is None else retention
    results = []
    for table in lake_tables():
        if table_exists(spark, config.table_path(table)):
            result = maintain_table(spark, config, table, retention)
            log.info("maintained %s", result)
            results.append(result)
    return results
