"""Nightly churn job: train (on the cadence) with a BG/NBD baseline, and score, tracked in MLflow.

Training panel: ``features.customer_daily`` on weekly as-of dates (the run date's weekday, every
week back), labelled from ``silver.orders`` known by the run date; only as-of dates whose label
window ``(D, D + horizon]`` has fully passed are kept (``observed_until`` = run date). The split
is by as-of date with a gap of one horizon (see ``jobs.models.churn.model.time_split``). The BG/NBD
baseline is fitted on the same training period and judged on the same holdout rows. This module
declares the parts (:data:`TRAINING`); :mod:`jobs.models.training` runs them, and the champion is
decided by :mod:`jobs.models.promotion` (``roc_auc``, higher is better, relative margin).

Scoring: ``models:/cx_churn@champion`` over tonight's ``features.customer_daily`` partition, in
Spark (``mapInPandas``, model broadcast), into ``gold.churn_scores``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pyspark.sql.functions as F
from pyspark.sql import DataFrame, SparkSession

from jobs.domain import customer_key
from jobs.lake.config import LakeConfig
from jobs.lake.contracts import load_contract
from jobs.lake.tables import read_table
from jobs.models import training
from jobs.models.churn import model as churn
from jobs.models.promotion import Guard, PromotionMetric
from jobs.models.tracking import TrainingRun

MODEL_NAME = "cx_churn"
INPUT_TABLES = ("features.customer_daily", "silver.orders")
HOLDOUT_SHARE = 0.25
MIN_TRAINING_ROWS = 200
MIN_AS_OF_DATES = 3
# Past this many customers in the panel the model trains on a deterministic sample of customers,
# each with all its as-of dates and orders (jobs.models.training.sampled_by_key), so the driver's
# frames and the fit stay bounded on the large bench (285 k customers); the quick bench's 44 k and
# the demo's are below it.
MAX_TRAINING_CUSTOMERS = 100_000


def observed_until(run_date: str, lateness_days: int) -> dt.date:
    """The last day whose orders are complete on ``run_date``: later ones may still arrive late."""
    return dt.date.fromisoformat(run_date) - dt.timedelta(days=lateness_days)


def panel_rows(features_df: DataFrame, run_date: str, horizon_days: int, lateness_days: int) -> DataFrame:
    """Weekly as-of dates (same weekday as the run) whose label window is complete by ``run_date``."""
    run = dt.date.fromisoformat(run_date)
    newest = observed_until(run_date, lateness_days) - dt.timedelta(days=horizon_days)
    return features_df.filter(
        (F.col("as_of_date") <= F.lit(newest)) & (F.datediff(F.lit(run), F.col("as_of_date")) % 7 == 0)
    )


def order_log(orders_df: DataFrame, run_date: str) -> DataFrame:
    """Orders known by ``run_date``: the purchase log the labels and the BG/NBD baseline read."""
    return orders_df.filter(F.col("first_ingest_date") <= F.lit(run_date).cast("date")).select(
        customer_key(F.col("customer_id")).alias("customer_key"), "placed_at"
    )


def _params(config: LakeConfig) -> dict[str, object]:
    features = ",".join(churn.feature_names())
    return {
        "horizon_days": config.churn_horizon_days,
        "holdout_share": HOLDOUT_SHARE,
        "max_training_customers": MAX_TRAINING_CUSTOMERS,
        "features": features,
    }


def _read(spark: SparkSession, config: LakeConfig, run_date: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The weekly panel and the purchase log known by ``run_date`` (at most ``MAX_TRAINING_CUSTOMERS`` customers), on the driver."""
    panel = panel_rows(
        read_table(spark, config, "features.customer_daily"), run_date, config.churn_horizon_days, config.lateness_days
    )
    orders = order_log(read_table(spark, config, "silver.orders"), run_date)
    return training.sampled_by_key(panel, orders, "customer_key", MAX_TRAINING_CUSTOMERS)


def _too_little(rows: tuple[pd.DataFrame, pd.DataFrame], config: LakeConfig) -> training.TooLittleData | None:
    """Skip the night unless the panel is big enough and both date splits :func:`_fit` makes (holdout,
    then calibration inside training) leave dates a full horizon apart: a history shorter than a
    few horizons cannot be judged out of time."""
    panel, _ = rows
    dates = panel["as_of_date"].nunique() if len(panel) else 0
    metrics = {"panel_rows": float(len(panel)), "panel_as_of_dates": float(dates)}
    if len(panel) < MIN_TRAINING_ROWS or dates < MIN_AS_OF_DATES:
        return training.TooLittleData(f"{len(panel)} rows on {dates} as-of dates", metrics, reported=("panel_rows",))
    horizon = config.churn_horizon_days
    try:
        train_rows, _ = churn.time_split(panel, HOLDOUT_SHARE, gap_days=horizon)
        churn.time_split(train_rows, churn.CALIBRATION_SHARE, gap_days=horizon)
    except churn.ChurnInputError as error:
        return training.TooLittleData(
            f"{dates} as-of dates cannot be split {horizon} days apart: {error}", metrics, reported=("panel_rows",)
        )
    return None


def _fit(rows: tuple[pd.DataFrame, pd.DataFrame], config: LakeConfig, run_date: str) -> training.Fitted:
    """Label, split by as-of date, fit and calibrate; evaluate it and the BG/NBD baseline on the holdout."""
    panel, orders = rows
    horizon = config.churn_horizon_days
    names = churn.feature_names()
    labelled = churn.label_churn(panel, orders, horizon, observed_until=run_date)
    train_rows, holdout = churn.time_split(labelled, HOLDOUT_SHARE, gap_days=horizon)
    # BG/NBD needs no label: the model's prior and the baseline both fit the histories as of the
    # first holdout date, known on that date (the same information for both, no later order).
    first_holdout = holdout["as_of_date"].min()
    latest_histories = holdout[holdout["as_of_date"] == first_holdout]
    model = churn.train_churn_model(train_rows, names, gap_days=horizon, prior_histories=latest_histories)
    proba = model.predict_proba(holdout)
    metrics = churn.evaluate(holdout[churn.LABEL].to_numpy(), proba)
    reliability = metrics.pop("reliability")
    baseline_proba = churn.bgnbd_baseline(orders, holdout, horizon, fit_as_of=first_holdout)
    baseline = churn.evaluate(holdout[churn.LABEL].to_numpy(), baseline_proba)
    baseline.pop("reliability")
    scalar = {k: float(v) for k, v in metrics.items() if isinstance(v, int | float)}
    scalar.update({f"bgnbd_{k}": float(v) for k, v in baseline.items() if isinstance(v, int | float)})
    scalar.update(
        {
            "training_rows": float(len(train_rows)),
            "holdout_rows": float(len(holdout)),
            # 0: no boosting round beat BG/NBD alone on the held-out training dates.
            "boosting_rounds": float(0 if model.booster is None else model.booster.current_iteration()),
            "roc_auc_gain_vs_bgnbd": scalar["roc_auc"] - scalar["bgnbd_roc_auc"],
            "brier_raw": float(np.mean((model.raw_proba(holdout) - holdout[churn.LABEL].to_numpy()) ** 2)),
        }
    )

    def write_artifacts(folder: Path) -> None:
        churn.plot_reliability(reliability, folder / "calibration.png")
        churn.plot_feature_importance(model, folder / "feature_importance.png")
        pd.DataFrame(reliability).to_csv(folder / "reliability.csv", index=False)

    return training.Fitted(
        metrics=scalar,
        holdout=holdout,
        python_model=churn.ChurnPyfunc(model),
        input_example=holdout[names].head(5),
        reference=train_rows[model.feature_names].assign(score=model.predict_proba(train_rows)),
        write_artifacts=write_artifacts,
    )


def _score_champion(champion, holdout: pd.DataFrame) -> dict[str, float]:
    from sklearn.metrics import brier_score_loss, roc_auc_score

    y, proba = holdout[churn.LABEL], np.asarray(champion.predict(holdout))
    return {"roc_auc": float(roc_auc_score(y, proba)), "brier": float(brier_score_loss(y, proba))}


TRAINING = training.ModelTraining(
    model_name=MODEL_NAME,
    run_prefix="churn",
    model_tag="lightgbm_calibrated",
    input_tables=INPUT_TABLES,
    # AUC lives in 0..1: a margin in its own unit. A better ranking must not cost the probabilities.
    promotion=PromotionMetric(
        "roc_auc", lower_is_better=False, margin_kind="absolute", guards=(Guard("brier", not_worse_than_champion=True),)
    ),
    params=_params,
    read=_read,
    too_little=_too_little,
    fit=_fit,
    score_champion=_score_champion,
)


def train(spark: SparkSession | None, config: LakeConfig, run_date: str, force: bool = False) -> TrainingRun:
    """Train, calibrate, evaluate (vs BG/NBD) and register a churn model when due (or ``force``).

    Runs :func:`jobs.models.training.train` with :data:`TRAINING`.
    """
    return training.train(TRAINING, spark, config, run_date, force)


def score(spark: SparkSession, config: LakeConfig, run_date: str) -> dict[str, object]:
    """Churn probability, risk band and top-3 drivers for tonight's customers into ``gold.churn_scores``."""
    from jobs.models.scoring import Champion, score_with_champion

    schema = load_contract("gold.churn_scores").spark_schema()

    def build(champion: Champion) -> DataFrame:
        broadcast, version, run_id = champion.broadcast, champion.version, champion.run_id

        def predict(batches):
            scorer = broadcast.value
            for batch in batches:
                if batch.empty:
                    continue
                proba = scorer.predict_proba(batch)
                out = pd.DataFrame(
                    {
                        "customer_key": batch["customer_key"].to_numpy(),
                        "as_of_date": batch["as_of_date"].to_numpy(),
                        "churn_probability": np.round(proba, 6),
                        "risk_band": churn.risk_band(proba),
                        "top_drivers": scorer.top_drivers(batch, k=3),
                        "model_version": version,
                        "mlflow_run_id": run_id,
                    }
                )
                yield out[schema.fieldNames()]

        features = read_table(spark, config, "features.customer_daily").filter(
            F.col("as_of_date") >= F.lit(run_date).cast("date")
        )
        return features.mapInPandas(predict, schema)

    return score_with_champion(spark, config, MODEL_NAME, "gold.churn_scores", run_date, build)
