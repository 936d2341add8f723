"""Nightly drift monitoring: PSI of each model's features and score vs its champion's training data.

The reference is a sample of the champion's training-time rows logged with the model
(``reference.parquet``: the registered features plus a ``score`` column). The current side is the
model's recent population: for ETA the orders placed in the last 7 nights (one night's orders all
share a weekday and an hour pattern, which alone would "drift" against a training set spanning
months), for churn tonight's customer snapshot (every active customer once). Both sides are small,
so the comparison runs in pandas on the driver.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import pandas as pd
import pyspark.sql.functions as F
from pyspark.sql import DataFrame, SparkSession

from jobs.domain import days_between
from jobs.lake.config import LakeConfig
from jobs.lake.contracts import load_contract
from jobs.lake.feature_catalog import features_of
from jobs.lake.tables import read_table, replace_slice, table_exists

log = logging.getLogger(__name__)

REFERENCE_ARTIFACT = "reference.parquet"


@dataclass(frozen=True)
class Monitored:
    model_name: str
    feature_table: str
    scores_table: str
    score_column: str
    score_filter: str  # which score rows correspond to the feature rows
    window_days: int  # as-of dates compared, ending with the run date


MODELS = (
    Monitored("cx_eta", "features.order_eta", "gold.eta_predictions", "_score", "scan_seq = 0", 7),
    Monitored("cx_churn", "features.customer_daily", "gold.churn_scores", "churn_probability", "true", 1),
)


def _recent(spark: SparkSession, config: LakeConfig, m: Monitored, run_date: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The window's feature rows and scores (two frames: they need not align row by row)."""
    day = F.lit(run_date).cast("date")
    in_window = F.col("as_of_date").between(F.date_sub(day, m.window_days - 1), day)
    features = [f.name for f in features_of(m.feature_table)]
    rows = read_table(spark, config, m.feature_table).filter(in_window).select(*features)
    scores = pd.DataFrame({"score": pd.Series(dtype="float64")})
    if table_exists(spark, config.table_path(m.scores_table)):
        tonight: DataFrame = read_table(spark, config, m.scores_table).filter(in_window)
        tonight = tonight.filter(m.score_filter)
        if m.model_name == "cx_eta":
            # The ETA "score" is the P50 estimate in days after placement.
            placed = read_table(spark, config, "features.order_eta").select("order_id", "placed_at")
            tonight = tonight.join(placed, "order_id").select(
                days_between(F.col("placed_at"), F.col("predicted_p50")).alias("score")
            )
        else:
            tonight = tonight.select(F.col(m.score_column).alias("score"))
        scores = tonight.toPandas()
    return rows.toPandas(), scores


def has_reference(run_id: str) -> bool:
    """Did the run log the training sample the monitor compares against? (Errors reaching MLflow raise.)"""
    import mlflow

    return any(a.path == REFERENCE_ARTIFACT for a in mlflow.MlflowClient().list_artifacts(run_id))


def run(spark: SparkSession, config: LakeConfig, run_date: str) -> dict[str, int]:
    """PSI rows for every model with a champion into ``gold.model_monitoring`` (+ an MLflow run)."""
    import mlflow

    from jobs.models.monitoring.psi import psi_table
    from jobs.models.registry import champion_version
    from jobs.models.tracking import use_experiment

    contract = load_contract("gold.model_monitoring")
    mlflow.set_tracking_uri(config.mlflow_tracking_uri)
    flagged: dict[str, int] = {}
    frames = []
    for m in MODELS:
        champion = champion_version(m.model_name)
        if champion is None:
            continue
        # Only a champion logged without a reference (before monitoring existed) is skipped, with a
        # warning. Any other failure (tracking server down, artifact store unreadable, a corrupt
        # file) raises: a monitor that cannot look must not report "no drift".
        if not has_reference(champion.run_id):
            log.warning("%s v%s has no %s: not monitored", m.model_name, champion.version, REFERENCE_ARTIFACT)
            continue
        path = mlflow.artifacts.download_artifacts(run_id=champion.run_id, artifact_path=REFERENCE_ARTIFACT)
        reference = pd.read_parquet(path)
        current, scores = _recent(spark, config, m, run_date)
        if current.empty:
            continue
        columns = [c for c in reference.columns if c in current.columns]
        table = psi_table(reference, current, columns)
        if "score" in reference.columns and not scores.empty:
            table = pd.concat([table, psi_table(reference[["score"]], scores, ["score"])], ignore_index=True)
        table = table.assign(
            as_of_date=dt.date.fromisoformat(run_date),
            model_name=m.model_name,
            model_version=str(champion.version),
            mlflow_run_id=champion.run_id,
        )
        frames.append(table)
        flagged[m.model_name] = int(table["flagged"].sum())
        experiment_id = use_experiment(config, m.model_name)
        with mlflow.start_run(experiment_id=experiment_id, run_name=f"monitor_{run_date}"):
            mlflow.set_tags({"as_of_date": run_date, "status": "monitoring", "champion_version": str(champion.version)})
            mlflow.log_metrics({f"psi.{r.feature}": float(r.psi) for r in table.itertuples()})
            mlflow.log_metric("psi_flagged_features", float(flagged[m.model_name]))
    if frames:
        rows = pd.concat(frames, ignore_index=True)[contract.column_names]
        df = spark.createDataFrame(rows, contract.spark_schema())
        replace_slice(df, config, contract.name, {"as_of_date": run_date}, contract.partition_by)
    return flagged


def drift_flagged(
    spark: SparkSession, config: LakeConfig, model_name: str, run_date: str, last_trained: dt.date | None = None
) -> bool:
    """Did the previous night flag a feature of ``model_name`` (PSI > 0.2) that no training answered?

    Args:
        last_trained: the as-of date of the model's latest trained run before ``run_date`` (None:
            never trained): see :func:`unanswered_drift`.
    """
    from jobs.lake.small_tables import read_small

    previous = dt.date.fromisoformat(run_date) - dt.timedelta(days=1)
    first = min(last_trained, previous) if last_trained is not None else previous
    nights = [first + dt.timedelta(days=n) for n in range((previous - first).days + 1)]
    # A few rows (features x nights); on a local lake delta-rs reads them without a Spark job.
    rows = read_small(
        config,
        load_contract("gold.model_monitoring").name,
        {"model_name": [model_name], "as_of_date": nights},
        ["as_of_date", "flagged"],
        spark,
    )
    flagged_nights = {row["as_of_date"] for row in rows if row["flagged"]}
    return unanswered_drift(flagged_nights, previous, last_trained)


def unanswered_drift(flagged_nights: set[dt.date], previous: dt.date, last_trained: dt.date | None) -> bool:
    """Whether the drift of the night before a run calls for retraining now.

    Drift flagged on ``previous`` calls for it, unless it was flagged on every night since the
    model's last training (``last_trained``, that night included): then it was there when that run
    trained and its monitoring, after training, still flagged it. Retraining again on one more
    day of the same data would not answer it either: a challenger that lost stays beaten, and a
    feature that grows with time (tenure against a reference spanning months) stays flagged
    whatever the model. Such drift waits for the cadence; new drift retrains at once.
    """
    if previous not in flagged_nights:
        return False
    if last_trained is None or last_trained > previous:
        return True
    streak = (previous - last_trained).days + 1
    return any(previous - dt.timedelta(days=n) not in flagged_nights for n in range(streak))
