"""Gold ``eta_accuracy_daily``: the model's P50 and the static promise against real deliveries."""

from __future__ import annotations

import datetime as dt

import pyspark.sql.functions as F
from pyspark.sql import Column, DataFrame, SparkSession, Window

from jobs.domain import DELIVERED, TRANSIT_MILESTONES, days_between, is_late, promised_at
from jobs.lake.config import LakeConfig
from jobs.lake.contracts import load_contract
from jobs.lake.tables import later_as_of_dates, latest_as_of, merge_rows, read_table, read_table_or_empty

LATEST_AS_OF_WINS = "s.as_of_date >= t.as_of_date"


def _days_between(a: Column, b: Column) -> Column:
    """Absolute error in days (the one duration rule, :func:`jobs.domain.days_between`)."""
    return F.abs(days_between(a, b))


def _metrics(rows: DataFrame, keys: list[Column]) -> DataFrame:
    model_error = _days_between(F.col("predicted_p50"), F.col("delivered_at"))
    promise_error = _days_between(F.col("promised_at"), F.col("delivered_at"))
    covered = (F.col("delivered_at") >= F.col("predicted_p10")) & (F.col("delivered_at") <= F.col("predicted_p90"))
    predicted = F.col("predicted_p50").isNotNull()

    def share(condition: Column, over: Column | None = None) -> Column:
        base = F.when(over, condition.cast("double")) if over is not None else condition.cast("double")
        return F.round(F.avg(base), 6)

    return rows.groupBy(*keys).agg(
        F.count("*").alias("deliveries"),
        F.count(F.when(predicted, 1)).alias("predicted_deliveries"),
        F.round(F.avg(model_error), 6).alias("mae_p50_days"),
        F.round(F.median(model_error), 6).alias("median_ae_p50_days"),
        F.round(F.avg(promise_error), 6).alias("mae_promise_days"),
        F.round(F.median(promise_error), 6).alias("median_ae_promise_days"),
        share(model_error <= 1.0, predicted).alias("share_within_1_day"),
        share(promise_error <= 1.0).alias("share_within_1_day_promise"),
        share(is_late(F.col("delivered_at"), F.col("promised_delivery_date"))).alias("share_after_promise"),
        share(covered, predicted).alias("p10_p90_coverage"),
    )


def build_eta_accuracy(
    orders_df: DataFrame, tracking_events_df: DataFrame, predictions_df: DataFrame, as_of_date: str, lateness_days: int
) -> DataFrame:
    """Accuracy rows for delivery days in ``[as_of_date - lateness_days, as_of_date]``, data known by then."""
    contract = load_contract("gold.eta_accuracy_daily")
    end = dt.date.fromisoformat(as_of_date)
    start = end - dt.timedelta(days=lateness_days)
    known = F.col("first_ingest_date") <= F.lit(end)
    delivered = (
        tracking_events_df.filter((F.col("event") == DELIVERED) & known)
        .groupBy("order_id")
        .agg(F.min("scan_at").alias("delivered_at"))
        .withColumn("accuracy_date", F.to_date("delivered_at"))
        .filter(F.col("accuracy_date").between(F.lit(start), F.lit(end)))
        .join(
            orders_df.filter(known).select(
                "order_id",
                "carrier",
                "lane",
                "promised_delivery_date",
                promised_at(F.col("promised_delivery_date")).alias("promised_at"),
            ),
            "order_id",
        )
    )
    estimates = predictions_df.filter(F.col("as_of_date") <= F.lit(end)).select(
        "order_id", "scan_seq", "milestone", "predicted_p10", "predicted_p50", "predicted_p90"
    )
    at_placement = delivered.join(estimates.filter("scan_seq = 0").drop("scan_seq", "milestone"), "order_id", "left")
    latest = Window.partitionBy("order_id", "milestone").orderBy(F.col("scan_seq").desc())
    at_milestones = (
        estimates.filter(F.col("milestone").isin(*TRANSIT_MILESTONES))
        .withColumn("_rank", F.row_number().over(latest))
        .filter("_rank = 1")
        .drop("_rank", "scan_seq")
    )
    by_milestone = delivered.join(at_milestones, "order_id")
    rows = (
        _metrics(
            at_placement, [F.col("accuracy_date"), F.lit("overall").alias("dimension"), F.lit("all").alias("segment")]
        )
        .unionByName(
            _metrics(
                at_placement,
                [F.col("accuracy_date"), F.lit("carrier").alias("dimension"), F.col("carrier").alias("segment")],
            )
        )
        .unionByName(
            _metrics(
                at_placement, [F.col("accuracy_date"), F.lit("lane").alias("dimension"), F.col("lane").alias("segment")]
            )
        )
        .unionByName(
            _metrics(
                at_placement,
                [F.col("accuracy_date"), F.lit("milestone").alias("dimension"), F.lit("placement").alias("segment")],
            )
        )
        .unionByName(
            _metrics(
                by_milestone,
                [F.col("accuracy_date"), F.lit("milestone").alias("dimension"), F.col("milestone").alias("segment")],
            )
        )
        .withColumn("as_of_date", F.lit(end))
        .withColumn("is_final", F.date_add("accuracy_date", lateness_days) <= F.lit(end))
    )
    return rows.select(*[F.col(c.name).cast(c.type) for c in contract.columns])


def run(spark: SparkSession, config: LakeConfig, run_date: str) -> None:
    """Recompute the delivery days ``run_date`` can still change (and later runs' days, if any)."""
    contract = load_contract("gold.eta_accuracy_daily")
    orders = read_table(spark, config, "silver.orders")
    events = read_table(spark, config, "silver.tracking_events")
    # Before the first champion there are no predictions: the promise is still judged.
    predictions = read_table_or_empty(
        spark, config, "gold.eta_predictions", load_contract("gold.eta_predictions").spark_schema()
    )
    later = later_as_of_dates(spark, config, contract.name, "as_of_date", run_date, config.lateness_days)
    windows = [build_eta_accuracy(orders, events, predictions, d, config.lateness_days) for d in [run_date, *later]]
    rows = windows[0]
    for window in windows[1:]:
        rows = rows.unionByName(window)
    rows = latest_as_of(rows, contract.keys)
    merge_rows(
        spark,
        rows,
        config,
        contract.name,
        contract.keys,
        update_condition=LATEST_AS_OF_WINS,
        partition_by=contract.partition_by,
    )
