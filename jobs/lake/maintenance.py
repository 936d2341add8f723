"""Delta maintenance: compaction (OPTIMIZE) and file clean-up (VACUUM) of every lake table.

Nightly MERGEs and slice overwrites leave many small files; readers pay for each. Compaction
rewrites them into few large files without changing content (a new table version whose
``operation`` is ``OPTIMIZE``), and VACUUM deletes files no version inside the retention window
needs. Retention (``LakeConfig.vacuum_retention_hours``, ``CXLAKE_VACUUM_RETENTION_HOURS``) bounds
time travel: keep it longer than the longest backfill or audit look-back.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from pyspark.sql import SparkSession

from jobs.lake.commits import committed
from jobs.lake.config import LakeConfig
from jobs.lake.contracts import all_contract_names
from jobs.lake.small_tables import is_local_lake
from jobs.lake.tables import table_exists

log = logging.getLogger(__name__)

DELTA_RETENTION_FLOOR_HOURS = 168  # Delta's own safety floor: a week of time travel
MAINTENANCE_WEEKDAY = 6  # Sunday (Monday = 0): the quietest night


@dataclass(frozen=True)
class MaintenanceResult:
    table: str
    files_removed: int
    files_added: int
    vacuumed: bool


def lake_tables() -> list[str]:
    """Every table that has a contract in ``schemas/`` (:func:`jobs.lake.contracts.all_contract_names`).

    Raw sources are files, not tables; ``quarantine.rows`` is the shape the quarantine tables
    extend, not a table of its own.
    """
    return [name for name in all_contract_names() if not name.startswith("raw.") and name != "quarantine.rows"]


def is_maintenance_day(run_date: str) -> bool:
    """Maintenance runs weekly, on the nightly run whose logical date is a Sunday."""
    return dt.date.fromisoformat(run_date).weekday() == MAINTENANCE_WEEKDAY


def maintain_table(spark: SparkSession, config: LakeConfig, table: str, retention: int) -> MaintenanceResult:
    """OPTIMIZE then VACUUM ``table``: through delta-rs on a local lake (no Spark job: the weekly
    maintenance of every table took ~80 s of Spark jobs on the demo's lake), else through Spark."""
    if is_local_lake(config):
        return _maintain_with_delta_rs(config, table, retention)
    from delta.tables import DeltaTable

    delta = DeltaTable.forPath(spark, config.table_path(table))
    metrics = delta.optimize().executeCompaction().collect()[0]["metrics"]
    committed(config.table_path(table))
    # Below Delta's 168 h floor VACUUM refuses unless its check is turned off: a deliberate
    # choice for test lakes only, never the default.
    if retention < DELTA_RETENTION_FLOOR_HOURS:
        spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", "false")
    delta.vacuum(retention)
    committed(config.table_path(table))  # VACUUM's own log entries, where Delta writes them
    return MaintenanceResult(table, int(metrics["numFilesRemoved"]), int(metrics["numFilesAdded"]), True)


def _maintain_with_delta_rs(config: LakeConfig, table: str, retention: int) -> MaintenanceResult:
    from deltalake import DeltaTable

    from jobs.lake.small_tables import commit_properties

    path = config.table_path(table).removeprefix("file:")
    delta = DeltaTable(path)
    metrics = delta.optimize.compact(commit_properties=commit_properties(table))
    committed(path)
    # Delta's 168 h floor is enforced unless the retention asked for is below it on purpose (test
    # lakes only), as Spark's retentionDurationCheck is turned off above.
    # full: files no version references (Spark's MERGE leaves some) go too, as Spark's VACUUM
    # lists the folder; delta-rs' default deletes only the files of remove actions.
    delta.vacuum(
        retention,
        dry_run=False,
        enforce_retention_duration=retention >= DELTA_RETENTION_FLOOR_HOURS,
        commit_properties=commit_properties(table),
        full=True,
    )
    committed(path)
    return MaintenanceResult(table, int(metrics["numFilesRemoved"]), int(metrics["numFilesAdded"]), True)


def _exists(spark: SparkSession | None, config: LakeConfig, table: str) -> bool:
    """Asked of the engine that maintains the table (:func:`maintain_table`)."""
    if is_local_lake(config):
        from jobs.lake.small_tables import table_opened

        return table_opened(config, table)
    return table_exists(spark, config.table_path(table))


def run(spark: SparkSession | None, config: LakeConfig, retention: int | None = None) -> list[MaintenanceResult]:
    """Compact and vacuum every existing lake table.

    Args:
        spark: the session (None on a local lake: delta-rs maintains it).
        config: the lake; its ``vacuum_retention_hours`` unless ``retention`` is given.
        retention: hours of history VACUUM keeps (tests: 0).

    Returns:
        One result per table maintained.
    """
    retention = config.vacuum_retention_hours if retention is None else retention
    results = []
    for table in lake_tables():
        if _exists(spark, config, table):
            result = maintain_table(spark, config, table, retention)
            log.info("maintained %s", result)
            results.append(result)
    return results
