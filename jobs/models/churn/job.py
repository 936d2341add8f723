"""Nightly churn job: train (on the cadence) with a BG/NBD baseline, and score, tracked in MLflow.

Training panel: ``features.customer_daily`` on weekly as-of dates (the run date's weekday, every
week back), labelled from ``silver.orders`` known by the run date; only as-of dates whose label
window ``(D, D + horizon]`` has fully passed are kept (``observed_until`` = run date). The split
is by as-of date with a gap of one horizon (see ``jobs.models.churn.model.time_split``). The BG/NBD
baseline is fitted on the same training period and judged on the same holdout rows.

Scoring: ``models:/cx_churn@champion`` over tonight's ``features.customer_daily`` partition, in
Spark (``mapInPandas``, model broadcast), into ``gold.churn_scores``.
"""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyspark.sql.functions as F
from pyspark.sql import DataFrame, SparkSession

from jobs.lake.config import LakeConfig
from jobs.lake.contracts import load_contract
from jobs.lake.tables import read_table, table_version
from jobs.models.churn import model as churn
from jobs.models.tracking import TrainingRun, git_commit, use_experiment
from jobs.silver.identity import customer_key

log = logging.getLogger(__name__)

EXPERIMENT = "cx_churn"
MODEL_NAME = "cx_churn"
INPUT_TABLES = ("features.customer_daily", "silver.orders")
HOLDOUT_SHARE = 0.25
MIN_TRAINING_ROWS = 200
MIN_AS_OF_DATES = 3
PROMOTION_METRIC = "roc_auc"  # higher is better


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


def _champion_auc(holdout: pd.DataFrame) -> float | None:
    import mlflow
    from sklearn.metrics import roc_auc_score

    from jobs.models.registry import champion_model_uri

    uri = champion_model_uri(MODEL_NAME)
    if uri is None:
        return None
    champion = mlflow.pyfunc.load_model(uri)
    return float(roc_auc_score(holdout[churn.LABEL], np.asarray(champion.predict(holdout))))


def train(spark: SparkSession, config: LakeConfig, run_date: str, force: bool = False) -> TrainingRun:
    """Train, calibrate, evaluate (vs BG/NBD) and register a churn model when due (or ``force``)."""
    import mlflow

    from jobs.models.registry import register_and_decide, retrain_due

    experiment_id = use_experiment(config, EXPERIMENT)
    if not force and not retrain_due(MODEL_NAME, run_date, config.retrain_cadence_days):
        return TrainingRun(None, False, {}, "not due")
    horizon = config.churn_horizon_days
    versions = {table: table_version(spark, config, table) for table in INPUT_TABLES}
    panel = panel_rows(
        read_table(spark, config, "features.customer_daily"), run_date, horizon, config.lateness_days
    ).toPandas()
    orders = order_log(read_table(spark, config, "silver.orders"), run_date).toPandas()
    names = churn.feature_names()

    with mlflow.start_run(experiment_id=experiment_id, run_name=f"churn_{run_date}") as run:
        mlflow.set_tags({"as_of_date": run_date, "git_commit": git_commit(), "model": "lightgbm_calibrated"})
        mlflow.log_params({f"delta_version.{t}": v for t, v in versions.items()})
        mlflow.log_params({"horizon_days": horizon, "holdout_share": HOLDOUT_SHARE, "features": ",".join(names)})
        dates = panel["as_of_date"].nunique() if len(panel) else 0
        if len(panel) < MIN_TRAINING_ROWS or dates < MIN_AS_OF_DATES:
            mlflow.set_tag("status", "skipped_insufficient_data")
            mlflow.log_metrics({"panel_rows": float(len(panel)), "panel_as_of_dates": float(dates)})
            log.warning("churn not trained for %s: %d rows on %d as-of dates", run_date, len(panel), dates)
            return TrainingRun(run.info.run_id, False, {"panel_rows": float(len(panel))}, "insufficient data")
        labelled = churn.label_churn(panel, orders, horizon, observed_until=run_date)
        train_rows, holdout = churn.time_split(labelled, HOLDOUT_SHARE, gap_days=horizon)
        model = churn.train_churn_model(train_rows, names, gap_days=horizon)
        proba = model.predict_proba(holdout)
        metrics = churn.evaluate(holdout[churn.LABEL].to_numpy(), proba)
        reliability = metrics.pop("reliability")
        baseline = churn.evaluate(holdout[churn.LABEL].to_numpy(), churn.bgnbd_baseline(orders, holdout, horizon))
        baseline.pop("reliability")
        scalar = {k: float(v) for k, v in metrics.items() if isinstance(v, int | float)}
        scalar.update({f"bgnbd_{k}": float(v) for k, v in baseline.items() if isinstance(v, int | float)})
        scalar.update(
            {
                "training_rows": float(len(train_rows)),
                "holdout_rows": float(len(holdout)),
                "roc_auc_gain_vs_bgnbd": scalar["roc_auc"] - scalar["bgnbd_roc_auc"],
                "brier_raw": float(np.mean((model.raw_proba(holdout) - holdout[churn.LABEL].to_numpy()) ** 2)),
            }
        )
        mlflow.log_metrics(scalar)
        _log_artifacts(model, train_rows, reliability)
        mlflow.pyfunc.log_model(
            name="model", python_model=churn.ChurnPyfunc(model), input_example=holdout[names].head(5)
        )
        decision = register_and_decide(
            run.info.run_id,
            "model",
            MODEL_NAME,
            PROMOTION_METRIC,
            scalar[PROMOTION_METRIC],
            _champion_auc(holdout),
            lower_is_better=False,
            margin=config.promotion_margin,
        )
        mlflow.set_tag("status", "trained")
        log.info("churn run %s for %s: AUC %.3f vs BG/NBD %.3f; %s", run.info.run_id, run_date,
                 scalar["roc_auc"], scalar["bgnbd_roc_auc"], decision.reason)  # fmt: skip
        return TrainingRun(run.info.run_id, True, scalar, decision.reason)


def _log_artifacts(model: churn.ChurnModel, train_rows: pd.DataFrame, reliability: list[dict]) -> None:
    import mlflow

    from jobs.models.monitoring.psi import reference_sample

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        churn.plot_reliability(reliability, folder / "calibration.png")
        churn.plot_feature_importance(model, folder / "feature_importance.png")
        pd.DataFrame(reliability).to_csv(folder / "reliability.csv", index=False)
        reference = train_rows[model.feature_names].assign(score=model.predict_proba(train_rows))
        reference_sample(reference).to_parquet(folder / "reference.parquet")
        mlflow.log_artifacts(str(folder))


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
