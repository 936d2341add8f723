"""Nightly scoring with a registered model's champion: load once, broadcast, score in the workers, MERGE.

Both models score the same way; only the rows they score and how a batch becomes output rows
differ, which the caller passes as ``build``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from jobs.lake.config import LakeConfig
from jobs.lake.contracts import load_contract
from jobs.lake.tables import merge_rows

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Champion:
    """What every scored row records about the model that produced it."""

    version: str
    run_id: str
    broadcast: Any  # pyspark Broadcast of the unwrapped model object


def score_with_champion(
    spark: SparkSession,
    config: LakeConfig,
    model_name: str,
    table: str,
    run_date: str,
    build: Callable[[Champion], DataFrame],
    version: str | None = None,
) -> dict[str, object]:
    """Score with the version that serves the night and MERGE the rows ``build`` returns into ``table``.

    The version (:func:`jobs.models.registry.serving_version`): the one the night's rows already
    name (a rerun writes the same rows), else the champion, else for a backfill of a night before
    the champion's data the version that was champion then. ``build`` receives it (version, run
    id, broadcast model) and returns the rows in ``table``'s contract schema, computed in the
    workers (``mapInPandas``): nothing is collected to the driver. Without a version to serve,
    nothing is scored, and the result says so. ``version``: score with that registered version
    instead (an engineer comparing versions on past nights); the rows name it.
    """
    import mlflow

    from jobs.models.registry import serving_version

    mlflow.set_tracking_uri(config.mlflow_tracking_uri)
    recorded = version or _recorded_version(spark, config, table, run_date)
    registered = serving_version(model_name, run_date, recorded)
    if registered is None:
        log.warning("%s scoring skipped for %s: no version of %s served that night", table, run_date, model_name)
        return {"scored": 0, "model_version": None}
    # The version just resolved, not the alias again: a promotion landing in between would score
    # with one version's model and write the other's number beside the rows.
    model = mlflow.pyfunc.load_model(f"models:/{model_name}/{registered.version}").unwrap_python_model().model
    broadcast = spark.sparkContext.broadcast(model)
    try:
        champion = Champion(version=str(registered.version), run_id=registered.run_id, broadcast=broadcast)
        # One evaluation of the scoring plan for both the count and the merge.
        rows = build(champion).localCheckpoint()
        scored = rows.count()
        if scored:
            contract = load_contract(table)
            merge_rows(spark, rows, config, contract.name, contract.keys, partition_by=contract.partition_by)
    finally:
        broadcast.unpersist()
    return {"scored": scored, "model_version": champion.version}


def _recorded_version(spark: SparkSession, config: LakeConfig, table: str, run_date: str) -> str | None:
    """The model version the night's rows in ``table`` already name (None: not scored yet)."""
    from pyspark.sql import functions as F

    from jobs.lake.tables import read_table, table_exists

    if not table_exists(spark, config.table_path(table)):
        return None
    night = read_table(spark, config, table).filter(F.col("as_of_date") == F.lit(run_date).cast("date"))
    versions = sorted({row[0] for row in night.select("model_version").distinct().collect()}, key=int)
    if len(versions) > 1:
        log.warning("%s on %s names versions %s; rescoring with the newest", table, run_date, versions)
    return versions[-1] if versions else None
