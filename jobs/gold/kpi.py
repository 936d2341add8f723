"""Gold ``cx_kpi_daily``: on-time delivery rate, delivery days and volumes per day."""

from __future__ import annotations

import datetime as dt

import pyspark.sql.functions as F
from pyspark.sql import DataFrame, SparkSession

from jobs.domain import days_late, delivery_days, is_late, is_on_time
from jobs.lake.config import LakeConfig
from jobs.lake.contracts import load_contract
from jobs.lake.tables import later_as_of_dates, merge_rows, nights, read_table

LATEST_AS_OF_WINS = "s.as_of_date >= t.as_of_date"


def kpi_days_as_of(as_of_dates: list[str], lateness_days: int) -> list[tuple[dt.date, dt.date]]:
    """``(kpi_date, as_of_date)``: each day the runs of ``as_of_dates`` cover, with the latest run
    covering it (a run of date A covers ``[A - lateness_days, A]``; the latest run wins)."""
    latest: dict[dt.date, dt.date] = {}
    for as_of in map(dt.date.fromisoformat, as_of_dates):
        for back in range(lateness_days + 1):
            day = as_of - dt.timedelta(days=back)
            latest[day] = max(latest.get(day, as_of), as_of)
    return sorted(latest.items())


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
    arrived by its own as-of date, exactly as if the dates had run in order. And by a history
    import, for every night at once: each day is computed once, from the data arrived by the
    latest run covering it (:func:`kpi_days_as_of`), in one plan whatever the number of runs
    (one window per run, unioned, made a plan and ~8 Spark jobs per night).

    ``spark`` only builds the calendar of days (so days with no activity still get a row).
    """
    contract = load_contract("gold.cx_kpi_daily")
    days = kpi_days_as_of(as_of_dates, lateness_days)
    calendar = spark.createDataFrame(days, "kpi_date date, as_of_date date")
    known_by = F.col("first_ingest_date") <= F.col("as_of_date")
    placed = (
        orders_df.join(calendar, F.col("order_date") == F.col("kpi_date"))
        .filter(known_by)
        .groupBy("kpi_date")
        .agg(F.count("*").alias("orders_placed"))
    )
    delivered = (
        shipments_df.select("order_id", "delivered_at", "delivered_ingest_date")
        .withColumn("kpi_date", F.to_date("delivered_at"))
        .join(calendar, "kpi_date")
        .filter(F.col("delivered_ingest_date") <= F.col("as_of_date"))
        .join(orders_df.select("order_id", "placed_at", "promised_delivery_date", "first_ingest_date"), "order_id")
        .filter(known_by)
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
        .withColumn("is_final", F.date_add("kpi_date", lateness_days) <= F.col("as_of_date"))
    )
    return kpis.select(*[F.col(c.name).cast(c.type) for c in contract.columns])


def build_cx_kpi_daily(
    spark: SparkSession,
    orders_df: DataFrame,
    shipments_df: DataFrame,
    as_of_date: str,
    lateness_days: int,
) -> DataFrame:
    """KPIs for each day in ``[as_of_date - lateness_days, as_of_date]`` from data arrived by ``as_of_date``."""
    return build_cx_kpi_daily_as_of(spark, orders_df, shipments_df, [as_of_date], lateness_days)


def run(spark: SparkSession, config: LakeConfig, run_date: str, through: str | None = None) -> None:
    """Recompute the KPI days that data arriving on ``run_date`` can still change.

    Arrivals of ``run_date`` carry events dated at most ``run_date``, so they can change the
    windows of runs up to ``lateness_days`` later; those runs are redone when they already exist.
    """
    contract = load_contract("gold.cx_kpi_daily")
    orders = read_table(spark, config, "silver.orders")
    shipments = read_table(spark, config, "silver.shipments")
    last = through or run_date
    later = later_as_of_dates(spark, config, contract.name, "as_of_date", last, config.lateness_days)
    as_of_dates = [*nights(run_date, last), *later]
    kpis = build_cx_kpi_daily_as_of(spark, orders, shipments, as_of_dates, config.lateness_days)
    merge_rows(spark, kpis, config, contract.name, contract.keys, update_condition=LATEST_AS_OF_WINS)
