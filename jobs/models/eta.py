"""Nightly ETA model: LightGBM quantile regression of delivery days, tracked in MLflow."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pyspark.sql import SparkSession

from jobs.config import LakeConfig
from jobs.features.order_eta import CATEGORICAL_FEATURES, ETA_FEATURES, ETA_LABEL, build_eta_training_rows
from jobs.tables import read_table, table_version
from jobs.tracking import git_commit, use_experiment

log = logging.getLogger(__name__)

EXPERIMENT = "cx_eta"
INPUT_TABLES = ("silver.orders", "silver.shipments")
MIN_TRAINING_ROWS = 50
HOLDOUT_SHARE = 0.2
QUANTILES = {"p10": 0.1, "p50": 0.5, "p90": 0.9}
# The static promise is a date; as a point estimate of the arrival time it stands for midday.
PROMISE_HOUR = 12


@dataclass(frozen=True)
class EtaRun:
    run_id: str
    trained: bool
    metrics: dict[str, float]


def _as_model_frame(rows: pd.DataFrame) -> pd.DataFrame:
    frame = rows[ETA_FEATURES].copy()
    for name in CATEGORICAL_FEATURES:
        frame[name] = frame[name].astype("category")
    return frame


def time_split(rows: pd.DataFrame, holdout_share: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train on the earliest orders, hold out the latest: the model is always judged on the future."""
    ordered = rows.sort_values(["placed_at", "order_id"], kind="mergesort").reset_index(drop=True)
    cut = int(round(len(ordered) * (1 - holdout_share)))
    return ordered.iloc[:cut], ordered.iloc[cut:]


def promise_error_days(holdout: pd.DataFrame) -> np.ndarray:
    promised_at = pd.to_datetime(holdout["promised_delivery_date"]) + pd.Timedelta(hours=PROMISE_HOUR)
    placed_at = pd.to_datetime(holdout["placed_at"])
    promised_days = (promised_at - placed_at).dt.total_seconds() / 86400.0
    return np.abs(promised_days.to_numpy() - holdout[ETA_LABEL].to_numpy())


def fit_quantile_models(train: pd.DataFrame, seed: int = 0) -> dict:
    """One LightGBM model per quantile (P10/P50/P90) of delivery days."""
    import lightgbm as lgb

    models = {}
    for name, alpha in QUANTILES.items():
        model = lgb.LGBMRegressor(
            objective="quantile",
            alpha=alpha,
            n_estimators=200,
            learning_rate=0.05,
            num_leaves=15,
            min_child_samples=10,
            random_state=seed,
            deterministic=True,
            force_col_wise=True,
            n_jobs=1,
            verbose=-1,
        )
        model.fit(_as_model_frame(train), train[ETA_LABEL])
        models[name] = model
    return models


def evaluate(models: dict, holdout: pd.DataFrame) -> dict[str, float]:
    features = _as_model_frame(holdout)
    actual = holdout[ETA_LABEL].to_numpy()
    predicted = {name: model.predict(features) for name, model in models.items()}
    model_error = np.abs(predicted["p50"] - actual)
    promise_error = promise_error_days(holdout)
    return {
        "holdout_rows": float(len(holdout)),
        "mae_p50_days": float(model_error.mean()),
        "median_ae_p50_days": float(np.median(model_error)),
        "mae_promise_days": float(promise_error.mean()),
        "mae_ratio_model_vs_promise": float(model_error.mean() / max(promise_error.mean(), 1e-9)),
        "p10_p90_coverage": float(np.mean((actual >= predicted["p10"]) & (actual <= predicted["p90"]))),
        "share_within_1_day": float(np.mean(model_error <= 1.0)),
    }


def train(spark: SparkSession, config: LakeConfig, run_date: str) -> EtaRun:
    """Train and evaluate the ETA model on deliveries known by ``run_date``; log it to MLflow."""
    import mlflow

    experiment_id = use_experiment(config, EXPERIMENT)
    versions = {table: table_version(spark, config, table) for table in INPUT_TABLES}
    orders = read_table(spark, config, "silver.orders")
    shipments = read_table(spark, config, "silver.shipments")
    # Training sets are small (one row per delivered order): the driver holds them comfortably.
    rows = build_eta_training_rows(orders, shipments, run_date).toPandas()
    rows = rows.sort_values(["placed_at", "order_id"], kind="mergesort").reset_index(drop=True)

    with mlflow.start_run(experiment_id=experiment_id, run_name=f"eta_{run_date}") as run:
        mlflow.set_tags({"as_of_date": run_date, "git_commit": git_commit(), "model": "lightgbm_quantile"})
        mlflow.log_params({f"delta_version.{t}": v for t, v in versions.items()})
        mlflow.log_params(
            {"training_rows_available": len(rows), "holdout_share": HOLDOUT_SHARE, "features": ",".join(ETA_FEATURES)}
        )
        if len(rows) < MIN_TRAINING_ROWS:
            mlflow.set_tag("status", "skipped_insufficient_data")
            mlflow.log_metric("training_rows", float(len(rows)))
            log.warning(
                "ETA model not trained for %s: %d delivered orders < %d", run_date, len(rows), MIN_TRAINING_ROWS
            )
            return EtaRun(run.info.run_id, False, {"training_rows": float(len(rows))})
        train_rows, holdout = time_split(rows, HOLDOUT_SHARE)
        models = fit_quantile_models(train_rows)
        metrics = {"training_rows": float(len(train_rows)), **evaluate(models, holdout)}
        mlflow.log_metrics(metrics)
        mlflow.set_tag("status", "trained")
        example = _as_model_frame(holdout.head(5))
        for name, model in models.items():
            mlflow.lightgbm.log_model(model, name=f"eta_{name}", input_example=example)
        log.info("ETA run %s for %s: %s", run.info.run_id, run_date, metrics)
        return EtaRun(run.info.run_id, True, metrics)
