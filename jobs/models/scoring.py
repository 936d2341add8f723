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
) -> dict[str, object]:
    """Score with ``models:/<model_name>@champion`` and MERGE the rows ``build`` returns into ``table``.

    ``build`` receives the champion (version, run id, broadcast model) and returns the rows in
    ``table``'s contract schema, computed in the workers (``mapInPandas``): nothing is collected
    to the driver. Without a champion yet nothing is scored, and the result says so.
    """
    import mlflow

    from jobs.models.registry import champion_version

    mlflow.set_tracking_uri(config.mlflow_tracking_uri)
    registered = champion_version(model_name)
    if registered is None:
        log.warning("%s scoring skipped for %s: no %s@champion yet", table, run_date, model_name)
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
