"""Gold ``cx_kpi_daily``: on-time delivery rate, delivery days and volumes per day."""

from __future__ import annotations

import datetime as dt

import pyspark.sql.functions as F
from pyspark.sql import DataFrame, SparkSession

from jobs.domain import days_late, delivery_days, is_late, is_on_time
from jobs.lake.config import LakeConfig
from jobs.lake.contracts import load_contract
from jobs.lake.tables import later_as_of_dates, latest_as_of, merge_rows, nights

LATEST_AS_OF_WINS = "s.as_of_date >= t.as_of_date"
AS_OF_CHUNK = 15


def _window_days(as_of_date: str, lateness_days: int) -> tuple[dt.date, dt.date]:
    end = dt.date.fromisoformat(as_of_date)
    return end - dt.timedelta(days=lateness_days), end


def build_cx_kpi_daily_as_of(
    spark: SparkSession,
    orders_df: DataFrame,
    shipments_df: DataFrame,
    as_of_dates: list[str],
    lateness_days: int,
) -> DataFrame:
    """The KPI rows of several runs at once, one row per day: the latest ``as_of_date`` wins.

    Used when a date is run after later dates (a backfill or an out-of-order rerun): the later
    runs' windows lacked this date's arrivals, so they are recomputed too, each from the data
    arrived by its own as-of date, exactly as if the dates had run in order.
    """
    windows = [build_cx_kpi_daily(spark, orders_df, shipments_df, d, lateness_days) for d in sorted(set(as_of_dates))]
    union = windows[0]
    for window in windows[1:]:
        union = union.unionByName(window)
    return latest_as_of(union, load_contract("gold.cx_kpi_daily").keys)


def build_cx_kpi_daily(
    spark: SparkSession,
    orders_df: DataFrame,
    shipments_df: DataFrame,
    as_of_date: str,
    lateness_days: int,
) -> DataFrame:
    """KPIs for each day in ``[as_of_date - lateness_days, as_of_date]`` from data arrived by ``as_of_date``.

    ``spark`` only builds the calendar of days (so days with no activity still get a row).
    """
    contract = load_contract("gold.cx_kpi_daily")
    start, end = _window_days(as_of_date, lateness_days)
    as_of = F.lit(end)
    calendar = spark.range(lateness_days + 1).select(
        F.date_add(F.lit(start), F.col("id").cast("int")).alias("kpi_date")
    )

    known_orders = orders_df.filter(F.col("first_ingest_date") <= as_of)
    placed = (
        known_orders.filter(F.col("order_date").between(F.lit(start), as_of))
        .groupBy(F.col("order_date").alias("kpi_date"))
        .agg(F.count("*").alias("orders_placed"))
    )
    delivered = (
        shipments_df.filter(F.col("delivered_ingest_date") <= as_of)
        .withColumn("kpi_date", F.to_date("delivered_at"))
        .filter(F.col("kpi_date").between(F.lit(start), as_of))
        .join(known_orders.select("order_id", "placed_at", "promised_delivery_date"), "order_id")
        .withColumn("_days_late", days_late(F.col("delivered_at"), F.col("promised_delivery_date")))
        .withColumn("_is_late", is_late(F.col("delivered_at"), F.col("promised_delivery_date")))
        .groupBy("kpi_date")
        .agg(
            F.count("*").alias("orders_delivered"),
            F.count(F.when(is_on_time(F.col("delivered_at"), F.col("promised_delivery_date")), 1)).alias(
                "on_time_deliveries"
            ),
            F.count(F.when(F.col("_is_late"), 1)).alias("late_deliveries"),
            F.avg(delivery_days(F.col("placed_at"), F.col("delivered_at"))).alias("avg_delivery_days"),
            F.avg(F.when(F.col("_is_late"), F.col("_days_late"))).alias("avg_days_late"),
        )
    )
    kpis = (
        calendar.join(placed, "kpi_date", "left")
        .join(delivered, "kpi_date", "left")
        .fillna(0, ["orders_placed", "orders_delivered", "on_time_deliveries", "late_deliveries"])
        .withColumn(
            "on_time_delivery_rate",
            F.when(F.col("orders_delivered") > 0, F.col("on_time_deliveries") / F.col("orders_delivered")),
        )
        # Rounded so that values are stable across Spark's summation order.
        .withColumn("on_time_delivery_rate", F.round("on_time_delivery_rate", 6))
        .withColumn("avg_delivery_days", F.round("avg_delivery_days", 6))
        .withColumn("avg_days_late", F.round("avg_days_late", 6))
        .withColumn("as_of_date", as_of)
        .withColumn("is_final", F.date_add("kpi_date", lateness_days) <= as_of)
    )
    return kpis.select(*[F.col(c.name).cast(c.type) for c in contract.columns])


def run(spark: SparkSession, config: LakeConfig, run_date: str, through: str | None = None) -> None:
    """Recompute the KPI days that data arriving on ``run_date`` can still change.

    Arrivals of ``run_date`` carry events dated at most ``run_date``, so they can change the
    windows of runs up to ``lateness_days`` later; those runs are redone when they already exist.
    """
    contract = load_contract("gold.cx_kpi_daily")
    orders = spark.read.format("delta").load(config.table_path("silver.orders"))
    shipments = spark.read.format("delta").load(config.table_path("silver.shipments"))
    last = through or run_date
    later = later_as_of_dates(spark, config, contract.name, "as_of_date", last, config.lateness_days)
    as_of_dates = [*nights(run_date, last), *later]
    # Chunks keep each Spark plan small on a history import (one window per night).
    for chunk in range(0, len(as_of_dates), AS_OF_CHUNK):
        dates = as_of_dates[chunk : chunk + AS_OF_CHUNK]
        kpis = build_cx_kpi_daily_as_of(spark, orders, shipments, dates, config.lateness_days)
        merge_rows(spark, kpis, config, contract.name, contract.keys, update_condition=LATEST_AS_OF_WINS)
