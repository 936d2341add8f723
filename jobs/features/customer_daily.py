"""Feature table ``features.customer_daily``: what was known about each customer at the end of a day.

Point-in-time rule: a fact counts for as-of date D only if it happened by the end of D *and* had
arrived in the lake by D (``first_ingest_date <= D``): a late event dated D that arrived on D+2 is
invisible as of D, exactly as it was on the night of D. Interactions count only when the raw
event carried the ``customer_id``: device-linked anonymous activity is attributed when a link
arrives, possibly later, and would leak.
"""

from __future__ import annotations

import datetime as dt
import logging

import pyspark.sql.functions as F
from pyspark.sql import Column, DataFrame, SparkSession, Window

from jobs.config import LakeConfig
from jobs.contracts import load_contract
from jobs.gold.journey import SESSION_GAP_MINUTES
from jobs.silver.identity import customer_key
from jobs.tables import later_as_of_dates, nights, read_table, replace_dates

log = logging.getLogger(__name__)

ACTIVE_DAYS = 365
AS_OF_CHUNK = 10  # a customer with no order in a year is gone, not churning
SESSION_CHANNELS = ("app", "web")


def _within(date_col: Column | str, as_of: dt.date, days: int) -> Column:
    """``date_col`` in the ``days`` days ending with ``as_of`` (``(as_of - days, as_of]``)."""
    col = F.col(date_col) if isinstance(date_col, str) else date_col
    return (col > F.lit(as_of - dt.timedelta(days=days))) & (col <= F.lit(as_of))


def _known(df: DataFrame, time_col: str, as_of: dt.date) -> DataFrame:
    """Rows that happened by the end of ``as_of`` and had arrived in the lake by then."""
    end = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time())
    return df.filter((F.col("first_ingest_date") <= F.lit(as_of)) & (F.col(time_col) < F.lit(end)))


def _order_features(orders: DataFrame, as_of: dt.date) -> DataFrame:
    def count_in(days: int) -> Column:
        return F.count(F.when(_within("order_date", as_of, days), 1)).cast("int")

    def amount_in(days: int) -> Column:
        return F.round(F.coalesce(F.sum(F.when(_within("order_date", as_of, days), F.col("amount"))), F.lit(0)), 2)

    return (
        orders.groupBy("customer_key")
        .agg(
            F.max("order_date").alias("_last"),
            F.min("order_date").alias("_first"),
            *[count_in(d).alias(f"orders_{d}d") for d in (30, 90, 365)],
            *[amount_in(d).cast("double").alias(f"amount_{d}d") for d in (30, 90, 365)],
        )
        .filter(F.col("_last") > F.lit(as_of - dt.timedelta(days=ACTIVE_DAYS)))
        .withColumn("days_since_last_order", F.datediff(F.lit(as_of), "_last"))
        .withColumn("tenure_days", F.datediff(F.lit(as_of), "_first"))
        .drop("_last", "_first")
    )


def _delivery_features(orders: DataFrame, scans: DataFrame, as_of: dt.date) -> DataFrame:
    owners = orders.select("order_id", "customer_key", "promised_delivery_date")
    delivered = (
        scans.filter(F.col("event") == "delivered")
        .groupBy("order_id")
        .agg(F.to_date(F.min("scan_at")).alias("_delivered_date"))
        .filter(_within("_delivered_date", as_of, 90))
        .join(owners, "order_id")
        .withColumn("_days_late", F.datediff("_delivered_date", "promised_delivery_date"))
        .groupBy("customer_key")
        .agg(
            F.count("*").cast("int").alias("deliveries_90d"),
            F.count(F.when(F.col("_days_late") > 0, 1)).cast("int").alias("late_deliveries_90d"),
            F.round(F.avg("_days_late"), 6).alias("mean_days_late_90d"),
        )
    )
    failed = (
        scans.filter((F.col("event") == "delivery_failed") & _within(F.to_date("scan_at"), as_of, 90))
        .join(owners, "order_id")
        .groupBy("customer_key")
        .agg(F.count("*").cast("int").alias("failed_attempts_90d"))
    )
    return delivered.join(failed, "customer_key", "full")


def _interaction_features(interactions: DataFrame, as_of: dt.date) -> DataFrame:
    kind = F.col("event")
    counted = interactions.groupBy("customer_key").agg(
        F.count(F.when((kind == "support_contact") & _within("event_date", as_of, 90), 1))
        .cast("int")
        .alias("support_contacts_90d"),
        F.count(F.when((kind == "review") & _within("event_date", as_of, 365), 1)).cast("int").alias("reviews_365d"),
        F.round(F.avg(F.when((kind == "review") & _within("event_date", as_of, 365), F.col("rating"))), 6).alias(
            "mean_review_rating_365d"
        ),
    )
    # Sessions need the day before the 35-day window to tell a continuing session from a new one.
    visits = interactions.filter(F.col("channel").isin(*SESSION_CHANNELS) & _within("event_date", as_of, 36))
    by_customer = Window.partitionBy("customer_key").orderBy("event_at", "event_id")
    previous = F.lag("event_at").over(by_customer)
    starts = visits.withColumn(
        "_starts",
        previous.isNull() | (F.unix_seconds("event_at") - F.unix_seconds(previous) > SESSION_GAP_MINUTES * 60),
    ).filter("_starts")
    sessions = starts.groupBy("customer_key").agg(
        F.count(F.when(_within("event_date", as_of, 7), 1)).cast("int").alias("sessions_7d"),
        F.count(
            F.when(
                _within("event_date", as_of - dt.timedelta(days=7), 28),
                1,
            )
        )
        .cast("int")
        .alias("sessions_prev_28d"),
    )
    return counted.join(sessions, "customer_key", "full")


def build_customer_daily(
    orders_df: DataFrame, interactions_df: DataFrame, tracking_events_df: DataFrame, as_of_date: str
) -> DataFrame:
    """Silver orders, interactions and tracking events -> ``features.customer_daily`` rows as of a date.

    Args:
        orders_df, interactions_df, tracking_events_df: the silver tables (any superset of what
            was known as of ``as_of_date``; the point-in-time filters are applied here).
        as_of_date: ``YYYY-MM-DD``; rows describe the end of that day.
    """
    contract = load_contract("features.customer_daily")
    as_of = dt.date.fromisoformat(as_of_date)
    orders = _known(orders_df, "placed_at", as_of).withColumn("customer_key", customer_key(F.col("customer_id")))
    scans = _known(tracking_events_df, "scan_at", as_of)
    interactions = (
        _known(interactions_df, "event_at", as_of)
        # The longest interaction window; also prunes the table's event_date partitions.
        .filter(_within("event_date", as_of, 365) & F.col("customer_id").isNotNull())
        .withColumn("customer_key", customer_key(F.col("customer_id")))
    )
    zero_if_none = [
        "deliveries_90d",
        "late_deliveries_90d",
        "failed_attempts_90d",
        "support_contacts_90d",
        "reviews_365d",
        "sessions_7d",
        "sessions_prev_28d",
    ]
    features = (
        _order_features(orders, as_of)
        .join(_delivery_features(orders, scans, as_of), "customer_key", "left")
        .join(_interaction_features(interactions, as_of), "customer_key", "left")
        .fillna(0, zero_if_none)
        .withColumn(
            "contact_rate_90d",
            F.round(F.when(F.col("orders_90d") > 0, F.col("support_contacts_90d") / F.col("orders_90d")), 6),
        )
        .withColumn(
            "engagement_trend",
            F.round((F.col("sessions_7d") + 1) / (F.col("sessions_prev_28d") / 4 + 1), 6),
        )
        .withColumn("as_of_date", F.lit(as_of))
    )
    return features.select(*[F.col(c.name).cast(c.type) for c in contract.columns])


def run(spark: SparkSession, config: LakeConfig, run_date: str, through: str | None = None) -> list[str]:
    """Write the partition ``run_date`` and rebuild every later partition already written.

    In nightly order there is no later partition. When a date runs after later ones (backfill,
    out-of-order rerun), its arrivals were missing from those partitions, which are rebuilt.
    """
    contract = load_contract("features.customer_daily")
    last = through or run_date
    later = later_as_of_dates(spark, config, contract.name, "as_of_date", last, None)
    dates = [*nights(run_date, last), *later]
    if later:
        log.info("customer_daily %s: also rebuilding %d later partition(s)", run_date, len(later))
    orders = read_table(spark, config, "silver.orders")
    interactions = read_table(spark, config, "silver.interactions")
    events = read_table(spark, config, "silver.tracking_events")
    # Chunks keep each Spark plan small on a history import (one build per night).
    for chunk in range(0, len(dates), AS_OF_CHUNK):
        chunk_dates = dates[chunk : chunk + AS_OF_CHUNK]
        frames = [build_customer_daily(orders, interactions, events, d) for d in chunk_dates]
        rows = frames[0]
        for frame in frames[1:]:
            rows = rows.unionByName(frame)
        replace_dates(rows, config, contract.name, "as_of_date", chunk_dates, contract.partition_by)
    return dates
