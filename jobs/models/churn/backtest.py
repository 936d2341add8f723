"""Churn backtest: how the churn model would have ranked the lake's own customers (``cxlake churn-backtest``).

A cut date D and a horizon N ask the question a team has before it acts on churn scores: had the
nightly job of D scored its customers, would the ones it called likely to leave have been the ones
who placed no order in (D, D + N]?

* training: the weekly panel of ``features.customer_daily`` the night of D would have trained on
  (:func:`jobs.models.churn.job.panel_rows`: as-of dates on D's weekday whose label window, plus
  the allowed lateness of raw events, ended by D), labelled from the orders known by D;
* evaluation: every customer with a row as of D (an order in the year up to D:
  ``features.customer_daily`` drops customers silent for longer, they are gone, not churning),
  labelled from every order the lake now holds: positive = no order in (D, D + N];
* the baseline: BG/NBD fitted on the same history (orders known by D), scoring each customer from
  its purchase timing alone. The model must beat it to be worth its features.

Only ``features.customer_daily`` and ``silver.orders`` are read, so an order-only history (no
tracking scans, no interactions: e.g. ``cxlake import-orders``) backtests too; its delivery and
engagement features are then constant, and the model has purchase timing and amounts to learn from.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import pyspark.sql.functions as F
from pyspark.sql import DataFrame, SparkSession

from jobs.domain import customer_key
from jobs.lake.config import LakeConfig
from jobs.lake.tables import read_table
from jobs.models.churn import job as churn_job
from jobs.models.churn import model as churn

EXPERIMENT = "cx_churn_backtest"


class NotEnoughHistoryError(ValueError):
    """The lake cannot answer the question: too little before the cut, or the horizon not over yet."""


@dataclass(frozen=True)
class ChurnBacktest:
    as_of: str
    horizon_days: int
    customers: int
    positives: int
    model_auc: float
    bgnbd_auc: float
    model_brier: float
    bgnbd_brier: float
    training_rows: int
    training_as_of_dates: int
    calibration: str
    boosting_rounds: int  # 0: boosting did not beat BG/NBD on the held-out dates: the model is the prior

    def line(self) -> dict[str, object]:
        """The one JSON line ``cxlake churn-backtest`` prints (the issue's keys first)."""
        return asdict(self)


def backtest_frames(
    features_df: DataFrame, orders_df: DataFrame, as_of: str, horizon_days: int, lateness_days: int
) -> tuple[DataFrame, DataFrame, DataFrame, DataFrame]:
    """The backtest's inputs cut at ``as_of``: pure, DataFrame -> DataFrame.

    Returns:
        (training panel, evaluation rows as of ``as_of``, the order log known by ``as_of``
        (``customer_key``, ``placed_at``), the whole order log (the same and ``first_ingest_date``:
        the lake's last night, which says whether the window is over)).
    """
    panel = churn_job.panel_rows(features_df, as_of, horizon_days, lateness_days)
    evaluation = features_df.filter(F.col("as_of_date") == F.lit(as_of).cast("date"))
    known = churn_job.order_log(orders_df, as_of)
    every = orders_df.select(customer_key(F.col("customer_id")).alias("customer_key"), "placed_at", "first_ingest_date")
    return panel, evaluation, known, every


def evaluate(
    panel: pd.DataFrame,
    evaluation: pd.DataFrame,
    known_orders: pd.DataFrame,
    all_orders: pd.DataFrame,
    as_of: str,
    horizon_days: int,
    seed: int = 7,
) -> ChurnBacktest:
    """Train on ``panel`` (labels from ``known_orders``), score ``evaluation`` beside BG/NBD, judge both
    on (as_of, as_of + horizon] from ``all_orders``.

    Raises:
        NotEnoughHistoryError: no customer as of the cut, too few training rows or dates, or one
            class only among the evaluated customers.
    """
    if evaluation.empty:
        raise NotEnoughHistoryError(f"no customer in features.customer_daily as of {as_of}: is it a night of the lake?")
    cut = dt.date.fromisoformat(as_of)
    train = churn.label_churn(panel, known_orders, horizon_days, observed_until=cut)
    dates = train["as_of_date"].nunique() if len(train) else 0
    if len(train) < churn_job.MIN_TRAINING_ROWS or dates < churn_job.MIN_AS_OF_DATES:
        raise NotEnoughHistoryError(
            f"{len(train)} training rows on {dates} weekly as-of dates before {as_of} (at least "
            f"{churn_job.MIN_TRAINING_ROWS} rows on {churn_job.MIN_AS_OF_DATES} dates): cut later, or a shorter horizon"
        )
    # The prior from every customer's history as of the cut, as the baseline's: known by then.
    model = churn.train_churn_model(
        train, churn.feature_names(), seed=seed, gap_days=horizon_days, prior_histories=evaluation
    )
    judged = churn.label_churn(evaluation, all_orders, horizon_days, observed_until=cut + dt.timedelta(horizon_days))
    y = judged[churn.LABEL].to_numpy()
    if len(np.unique(y)) < 2:
        raise NotEnoughHistoryError(f"the {len(y)} customers as of {as_of} are all {'churned' if y[0] else 'retained'}")
    model_figures = churn.evaluate(y, model.predict_proba(judged))
    baseline = churn.bgnbd_baseline(known_orders, judged, horizon_days, fit_as_of=cut)
    baseline_figures = churn.evaluate(y, baseline)
    return ChurnBacktest(
        as_of=as_of,
        horizon_days=horizon_days,
        customers=len(judged),
        positives=int(y.sum()),
        model_auc=round(float(model_figures["roc_auc"]), 4),
        bgnbd_auc=round(float(baseline_figures["roc_auc"]), 4),
        model_brier=round(float(model_figures["brier"]), 4),
        bgnbd_brier=round(float(baseline_figures["brier"]), 4),
        training_rows=len(train),
        training_as_of_dates=int(dates),
        calibration=model.calibration,
        boosting_rounds=0 if model.booster is None else model.booster.current_iteration(),
    )


def run(spark: SparkSession, config: LakeConfig, as_of: str, horizon_days: int | None = None) -> ChurnBacktest:
    """The backtest on the lake's tables, logged as an MLflow run of :data:`EXPERIMENT`.

    Raises:
        NotEnoughHistoryError: the lake's last night is before ``as_of + horizon_days`` (the window is
            not over), or :func:`evaluate`'s reasons.
    """
    import mlflow

    from jobs.models.tracking import git_commit, use_experiment

    horizon = horizon_days or config.churn_horizon_days
    panel, evaluation, known, every = backtest_frames(
        read_table(spark, config, churn.FEATURE_TABLE),
        read_table(spark, config, "silver.orders"),
        as_of,
        horizon,
        config.lateness_days,
    )
    orders = every.toPandas()  # the labels' log and, from it, the lake's last night: one Spark job
    last = pd.to_datetime(orders["first_ingest_date"]).max().date() if len(orders) else None
    window_end = dt.date.fromisoformat(as_of) + dt.timedelta(days=horizon)
    if last is None or last < window_end:
        raise NotEnoughHistoryError(
            f"the lake's orders end on {last}: the window ({as_of}, {window_end}] is not over; cut earlier"
        )
    result = evaluate(
        panel.toPandas(), evaluation.toPandas(), known.toPandas(), orders[["customer_key", "placed_at"]], as_of, horizon
    )
    experiment_id = use_experiment(config, EXPERIMENT)
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"churn-backtest-{as_of}-{horizon}d"):
        mlflow.set_tags({"as_of_date": as_of, "git_commit": git_commit(), "calibration": result.calibration})
        mlflow.log_params({"as_of": as_of, "horizon_days": horizon, "lateness_days": config.lateness_days})
        mlflow.log_metrics({k: float(v) for k, v in result.line().items() if isinstance(v, int | float)})
        mlflow.log_dict(json.loads(json.dumps(result.line())), "backtest.json")
    return result
