"""Nights in order: a night builds on its previous night's silver and gold, so it waits for it.

Night D reads what D-1 left: D-1's late arrivals are in silver only if D-1 ran, and D's KPI
window marks the days before it final (``is_final``). After D-1 stopped (a gate, a crash), D
would still run, build on the gap and mark D-1's KPI rows final without D-1's data. So each night
records its completion in ``ops.night_runs`` (when the gold gate passes; a history import records
its nights), and a night whose previous night did not complete stops before silver with
:class:`PreviousNightIncompleteError`, once the lake has any completed night before it (the
first night, or the first night of a backfill before the lake's history, has nothing to wait for).

Override, for a gap on purpose (a day whose files will never come): ``allow_gap`` (``cxlake run
--allow-gap``; the DAG run conf ``{"allow_gap": true}``).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from jobs.lake.config import LakeConfig
from jobs.lake.small_tables import is_local_lake, merge_small

TABLE = "ops.night_runs"


class PreviousNightIncompleteError(RuntimeError):
    """The night before the run date never completed: this night would build on a gap."""


def completed_nights(config: LakeConfig, spark=None) -> set[dt.date]:  # spark: SparkSession | None
    """The run dates recorded in ``ops.night_runs``."""
    path = config.table_path(TABLE)
    if is_local_lake(config):
        if not (Path(path) / "_delta_log").is_dir():
            return set()
        from deltalake import DeltaTable

        return set(DeltaTable(path).to_pyarrow_table(columns=["run_date"]).column("run_date").to_pylist())
    from jobs.lake.spark import get_spark
    from jobs.lake.tables import table_exists

    spark = spark or get_spark(config)
    if not table_exists(spark, path):
        return set()
    return {row[0] for row in spark.read.format("delta").load(path).select("run_date").collect()}


def missing_previous_night(completed: set[dt.date], run_date: str) -> dt.date | None:
    """The night before ``run_date`` when it should have completed and did not, else None."""
    day = dt.date.fromisoformat(run_date)
    previous = day - dt.timedelta(days=1)
    if previous in completed or not any(d < day for d in completed):
        return None
    return previous


def require_previous_night(config: LakeConfig, run_date: str, allow_gap: bool = False, spark=None) -> None:
    """Stop unless the night before ``run_date`` completed (see the module docstring).

    Raises:
        PreviousNightIncompleteError: naming the missing night and the last completed one.
    """
    if allow_gap:
        return
    completed = completed_nights(config, spark)
    missing = missing_previous_night(completed, run_date)
    if missing is not None:
        last = max(d for d in completed if d < dt.date.fromisoformat(run_date))
        raise PreviousNightIncompleteError(
            f"night {missing} did not complete (the last completed night before {run_date} is {last}): "
            f"run {missing} first (cxlake run --date {missing}, or clear its failed task), or, for a gap on "
            'purpose, rerun with allow_gap (cxlake run --allow-gap; DAG run conf {"allow_gap": true})'
        )


def record_completed(config: LakeConfig, run_dates: list[str], completed_by: str, spark=None) -> None:
    """Record ``run_dates`` as completed nights (one commit)."""
    # When it completed is a fact about the run, not table content of the lake's data layers.
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    rows = [{"run_date": dt.date.fromisoformat(d), "completed_by": completed_by, "recorded_at": now} for d in run_dates]
    merge_small(config, TABLE, rows, spark=spark)


def allowed(value: object) -> bool:
    """``allow_gap`` as a flag, from a bool or a rendered template (``"True"``, ``"false"``, ``""``)."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(value)
