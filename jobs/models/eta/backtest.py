"""ETA backtest: how the placement model would have done on the lake's own past (``cxlake eta-backtest``).

A cut date D splits history the way production would have lived it: the model (and every
baseline) learns as the nightly job of the night before D would have, from orders placed at least
``MATURITY_DAYS`` before D whose deliveries were completed, and had arrived in the lake, before D;
it is judged on every order placed on or after D whose delivery the lake now knows. Its features are the
point-in-time rows of ``features.order_eta`` (lane statistics as known the day before each
placement), so nothing after an order's placement reaches its prediction.

Beside the model: the static promise, and the best of a few simple rules fitted on the same
history (:data:`BASELINE_RULES`), the rule chosen on the latest fifth of the training orders (fitted
on the rest), then refitted on all of them: a rule picked on the evaluated orders would flatter
the baseline, one picked on nothing would flatter the model.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyspark.sql.functions as F
from pyspark.sql import DataFrame, SparkSession

from jobs.domain import DELIVERED, PROMISE_HOUR, delivery_days
from jobs.lake.config import LakeConfig
from jobs.lake.tables import read_table
from jobs.models.eta import model as eta_model

EXPERIMENT = "cx_eta_backtest"
# The share of the training orders (the latest) on which the baseline rule is chosen.
RULE_CHOICE_SHARE = 0.2
# A group (lane, destination) needs this many deliveries for its own median; fewer fall back.
MIN_GROUP_ROWS = 5


class NotEnoughHistoryError(ValueError):
    """Too few deliveries before the cut date, or no delivered order after it."""


def backtest_rows(order_eta_df: DataFrame, tracking_events_df: DataFrame, as_of: str) -> tuple[DataFrame, DataFrame]:
    """Training and evaluation rows of a backtest cut at ``as_of``: pure, DataFrame -> DataFrame.

    * training: orders placed at least ``MATURITY_DAYS`` before ``as_of`` whose first delivered
      scan happened, and arrived in the lake (``first_ingest_date``), before ``as_of``;
    * evaluation: orders placed on or after ``as_of`` with a delivered scan known now.

    Both carry ``order_eta``'s columns, ``delivered_at`` and the label ``delivery_days``.
    """
    cut = dt.date.fromisoformat(as_of)
    delivered = (
        tracking_events_df.filter(F.col("event") == DELIVERED)
        .groupBy("order_id")
        .agg(F.min("scan_at").alias("delivered_at"), F.min("first_ingest_date").alias("_delivery_known"))
    )
    rows = order_eta_df.join(delivered, "order_id").withColumn(
        eta_model.PLACEMENT_LABEL, delivery_days(F.col("placed_at"), F.col("delivered_at"))
    )
    matured = F.to_date("placed_at") < F.lit(cut - dt.timedelta(days=eta_model.MATURITY_DAYS))
    known = (F.to_date("delivered_at") < F.lit(cut)) & (F.col("_delivery_known") < F.lit(cut))
    training = rows.filter(matured & known)
    evaluation = rows.filter(F.to_date("placed_at") >= F.lit(cut))
    return training.drop("_delivery_known"), evaluation.drop("_delivery_known")


# ---- simple rules --------------------------------------------------------------------------------


def promised_span_days(rows: pd.DataFrame) -> np.ndarray:
    """Days from placement to the promise (the promised date at midday), as the promise's ETA."""
    promised_at = pd.to_datetime(rows["promised_delivery_date"]) + pd.Timedelta(hours=PROMISE_HOUR)
    placed_at = pd.to_datetime(rows["placed_at"]).dt.tz_localize(None)
    return (promised_at - placed_at).dt.total_seconds().to_numpy() / 86400.0


Rule = Callable[[pd.DataFrame], Callable[[pd.DataFrame], np.ndarray]]


def _grouped_median(value: Callable[[pd.DataFrame], np.ndarray], keys: tuple[str, ...]) -> Rule:
    """Median of ``value`` per the first key with at least MIN_GROUP_ROWS rows, else overall."""

    def fit(train: pd.DataFrame) -> Callable[[pd.DataFrame], np.ndarray]:
        values = pd.Series(value(train), index=train.index)
        overall = float(values.median())
        tables = []
        for key in keys:
            groups = values.groupby(train[key]).agg(["median", "size"])
            tables.append((key, groups.loc[groups["size"] >= MIN_GROUP_ROWS, "median"]))

        def predict(rows: pd.DataFrame) -> np.ndarray:
            out = pd.Series(np.nan, index=rows.index)
            for key, medians in tables:
                out = out.fillna(rows[key].map(medians))
            return out.fillna(overall).to_numpy(dtype="float64")

        return predict

    return fit


def _delivery(rows: pd.DataFrame) -> np.ndarray:
    return rows[eta_model.PLACEMENT_LABEL].to_numpy(dtype="float64")


def _slack(rows: pd.DataFrame) -> np.ndarray:
    return _delivery(rows) - promised_span_days(rows)


def _shifted(rule: Rule) -> Rule:
    """A rule on the slack (delivery minus the promise's span) as a rule on delivery days."""

    def fit(train: pd.DataFrame) -> Callable[[pd.DataFrame], np.ndarray]:
        slack = rule(train)
        return lambda rows: np.clip(promised_span_days(rows) + slack(rows), 0.0, None)

    return fit


# Each: a rule anyone could compute from the same history, without a model.
BASELINE_RULES: dict[str, Rule] = {
    "median": _grouped_median(_delivery, ()),
    "destination_median": _grouped_median(_delivery, ("destination_region",)),
    "lane_median": _grouped_median(_delivery, ("lane", "destination_region")),
    "promise_shift": _shifted(_grouped_median(_slack, ())),
    "lane_promise_shift": _shifted(_grouped_median(_slack, ("lane", "destination_region"))),
}
NO_PROMISE_RULES = {name: rule for name, rule in BASELINE_RULES.items() if "promise" not in name}


def choose_baseline(train: pd.DataFrame) -> str:
    """The rule with the lowest MAE on the latest RULE_CHOICE_SHARE of ``train``, fitted on the rest."""
    earlier, latest = eta_model.time_split(train, RULE_CHOICE_SHARE)
    if earlier.empty or latest.empty:
        return "median"
    actual = _delivery(latest)
    # A rule on the promise cannot serve a history where some orders have none (an import without
    # promises): it is left out rather than judged on the orders that happen to have one.
    rules = BASELINE_RULES if train["promised_delivery_date"].notna().all() else NO_PROMISE_RULES
    errors = {name: float(np.mean(np.abs(rules[name](earlier)(latest) - actual))) for name in rules}
    return min(errors, key=lambda name: (errors[name], name))


# ---- the backtest --------------------------------------------------------------------------------


@dataclass(frozen=True)
class EtaBacktest:
    """One line of figures (:meth:`line`) and what stands behind them."""

    as_of: str
    training_orders: int
    orders: int
    model_mae_days: float
    promise_mae_days: float | None  # None: no evaluated order has a promise
    baseline_mae_days: float
    baseline_rule: str
    coverage_p10_p90: float
    late_vs_promise_rate: float | None

    def line(self) -> dict[str, object]:
        """The issue's JSON keys, in its order."""
        keys = ("as_of", "orders", "model_mae_days", "promise_mae_days", "baseline_mae_days")
        keys += ("coverage_p10_p90", "late_vs_promise_rate")
        return {key: getattr(self, key) for key in keys}


def evaluate(train: pd.DataFrame, evaluation: pd.DataFrame, as_of: str, seed: int = 7) -> EtaBacktest:
    """Fit the placement model and the chosen baseline on ``train``; measure all on ``evaluation``.

    ``late_vs_promise_rate`` is the share of evaluated orders delivered on a day after their
    promised date (how often the promise broke, beside how far off it was).

    Raises:
        NotEnoughHistoryError: fewer than the nightly job's minimum training orders, or nothing to evaluate.
    """
    from jobs.models.eta.job import MIN_TRAINING_ORDERS

    if len(train) < MIN_TRAINING_ORDERS:
        raise NotEnoughHistoryError(f"{len(train)} deliveries completed before {as_of} < {MIN_TRAINING_ORDERS}")
    if evaluation.empty:
        raise NotEnoughHistoryError(f"no order placed on or after {as_of} has a known delivery")
    model = eta_model.fit(train, None, seed)
    figures = eta_model.evaluate_placement(model, evaluation)
    rule = choose_baseline(train)
    baseline = BASELINE_RULES[rule](train)(evaluation)
    if np.isnan(baseline).any():  # evaluated orders without a promise under a promise rule
        baseline = np.where(np.isnan(baseline), BASELINE_RULES["lane_median"](train)(evaluation), baseline)
    delivered_day = pd.to_datetime(evaluation["delivered_at"]).dt.tz_localize(None).dt.normalize()
    promised = evaluation["promised_delivery_date"].notna()
    late = delivered_day[promised] > pd.to_datetime(evaluation.loc[promised, "promised_delivery_date"])
    return EtaBacktest(
        as_of=as_of,
        training_orders=len(train),
        orders=len(evaluation),
        model_mae_days=round(figures["mae_p50_days"], 4),
        promise_mae_days=None if np.isnan(figures["mae_promise_days"]) else round(figures["mae_promise_days"], 4),
        baseline_mae_days=round(float(np.mean(np.abs(baseline - _delivery(evaluation)))), 4),
        baseline_rule=rule,
        coverage_p10_p90=round(figures["p10_p90_coverage"], 4),
        late_vs_promise_rate=round(float(late.mean()), 4) if promised.any() else None,
    )


def _frame(df: DataFrame) -> pd.DataFrame:
    rows = df.toPandas()
    # Spark hands timestamps over as naive local-session values; the lake's session is UTC.
    return rows.sort_values(["placed_at", "order_id"], kind="mergesort").reset_index(drop=True)


def run(spark: SparkSession, config: LakeConfig, as_of: str) -> EtaBacktest:
    """The backtest on the lake's tables, logged as an MLflow run of :data:`EXPERIMENT`."""
    import mlflow

    from jobs.models.tracking import git_commit, use_experiment

    train_df, evaluation_df = backtest_rows(
        read_table(spark, config, eta_model.PLACEMENT_TABLE), read_table(spark, config, "silver.tracking_events"), as_of
    )
    result = evaluate(_frame(train_df), _frame(evaluation_df), as_of)
    experiment_id = use_experiment(config, EXPERIMENT)
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"eta-backtest-{as_of}"):
        mlflow.set_tags({"as_of_date": as_of, "git_commit": git_commit(), "baseline_rule": result.baseline_rule})
        mlflow.log_params({"as_of": as_of, "training_orders": result.training_orders})
        mlflow.log_metrics({k: float(v) for k, v in result.line().items() if isinstance(v, int | float)})
        mlflow.log_dict(json.loads(json.dumps(result.__dict__)), "backtest.json")
    return result
