"""Gold ``journey_daily`` (per customer-day) and ``funnel_daily`` (per day and channel).

Both are aggregates of ``gold.customer_journey`` over whole days, so a night replaces exactly the
days whose journey rows it changed (for the funnel also the day before: a session counts on the
day it started, and one that crossed midnight may have changed). A night's journey build passes
its recomputed customers' rows: their ``journey_daily`` rows of those days are rebuilt from them,
the other customers' rows are kept as stored (the funnel counts every session of its days).
"""

from __future__ import annotations

import datetime as dt

import pyspark.sql.functions as F
from pyspark.sql import DataFrame, SparkSession

from jobs.lake.config import LakeConfig
from jobs.lake.contracts import load_contract
from jobs.lake.spark import in_parallel
from jobs.lake.tables import read_table, replace_dates

FUNNEL_STEPS = {
    "product_view_sessions": ["product_view"],
    "add_to_cart_sessions": ["add_to_cart"],
    "checkout_sessions": ["checkout"],
    "order_sessions": ["order_placed"],
}


def _count(condition: F.Column | str) -> F.Column:
    """Rows where ``condition`` (a boolean Column or column name) holds."""
    return F.count(F.when(F.col(condition) if isinstance(condition, str) else condition, 1))


def build_journey_daily(journey_df: DataFrame) -> DataFrame:
    """Journey rows -> one row per (customer_key, journey_date) (contract ``gold.journey_daily``)."""
    contract = load_contract("gold.journey_daily")
    kind = F.col("touchpoint_type")
    last_stage = F.max_by("journey_stage", F.struct("touchpoint_at", "touchpoint_id"))
    in_session = F.col("session_id").isNotNull()
    daily = journey_df.groupBy("customer_key", F.col("touchpoint_date").alias("journey_date")).agg(
        F.count("*").alias("touchpoints"),
        F.count_distinct("session_id").alias("sessions"),
        _count(kind == "product_view").alias("product_views"),
        _count(kind == "add_to_cart").alias("add_to_carts"),
        _count(kind == "order_placed").alias("orders_placed"),
        _count(kind == "tracking_page_view").alias("tracking_views"),
        _count(kind == "shipment_delivered").alias("deliveries"),
        _count((kind == "shipment_delivered") & F.col("is_late_vs_promise")).alias("late_deliveries"),
        _count("is_failed_delivery_attempt").alias("failed_delivery_attempts"),
        _count("is_support_contact").alias("support_contacts"),
        _count(kind == "review").alias("reviews"),
        F.round(F.avg(F.when(kind == "review", F.col("rating"))), 6).alias("mean_rating"),
        F.sum("pain_points").alias("pain_points"),
        last_stage.alias("last_journey_stage"),
        F.max("touchpoint_at").alias("last_touchpoint_at"),
        # A customer-initiated touchpoint is one with a session (a carrier scan has none).
        F.max_by("session_id", F.when(in_session, F.struct("touchpoint_at", "touchpoint_id"))).alias("last_session_id"),
        F.max(F.when(in_session, F.col("touchpoint_at"))).alias("last_session_at"),
    )
    return daily.select(*[F.col(c.name).cast(c.type) for c in contract.columns])


def build_funnel_daily(journey_df: DataFrame) -> DataFrame:
    """Journey rows (whole sessions) -> sessions and funnel steps per (start day, start channel)."""
    contract = load_contract("gold.funnel_daily")
    in_sessions = journey_df.filter(F.col("session_id").isNotNull())
    # A step counts the sessions that reached it *or a later step*: an order implies the checkout
    # before it even when that event never reached the lake (dropped, quarantined), which keeps
    # every step rate within [0, 1].
    step_depth = F.lit(0)
    for depth, types in reversed(list(enumerate(FUNNEL_STEPS.values(), start=1))):
        step_depth = F.when(F.col("touchpoint_type").isin(types), F.lit(depth)).otherwise(step_depth)
    # One aggregation per session (its first row by the journey's order gives its day and channel):
    # a session's rows sit in one day's files, so most of it is aggregated before the shuffle,
    # where a window sorted every row of the days by session first.
    sessions = in_sessions.groupBy("session_id").agg(
        F.min_by(F.struct("touchpoint_date", "channel"), F.struct("touchpoint_at", "touchpoint_id")).alias("_start"),
        F.max(step_depth).alias("_depth"),
    )
    funnel = sessions.groupBy(
        F.col("_start.touchpoint_date").alias("funnel_date"), F.col("_start.channel").alias("channel")
    ).agg(
        F.count("*").alias("sessions"),
        *[_count(F.col("_depth") >= depth).alias(step) for depth, step in enumerate(FUNNEL_STEPS, start=1)],
    )

    def rate(numerator: str, denominator: str) -> F.Column:
        return F.round(F.when(F.col(denominator) > 0, F.col(numerator) / F.col(denominator)), 6)

    funnel = (
        funnel.withColumn("view_rate", rate("product_view_sessions", "sessions"))
        .withColumn("cart_rate", rate("add_to_cart_sessions", "product_view_sessions"))
        .withColumn("checkout_rate", rate("checkout_sessions", "add_to_cart_sessions"))
        .withColumn("order_rate", rate("order_sessions", "checkout_sessions"))
        .withColumn("conversion_rate", rate("order_sessions", "sessions"))
    )
    return funnel.select(*[F.col(c.name).cast(c.type) for c in contract.columns])


DAILY_TABLES = ("gold.journey_daily", "gold.funnel_daily")


def run(
    spark: SparkSession,
    config: LakeConfig,
    changed_dates: list[dt.date],
    journey: DataFrame | None = None,
    recomputed: DataFrame | None = None,
    touched: DataFrame | None = None,
) -> None:
    """Replace the journey_daily days in ``changed_dates`` and the funnel days they can affect.

    Args:
        journey: the journey to aggregate (default: the stored table); :mod:`jobs.gold.journey`
            passes the journey as its merge will leave it, and writes these tables before that merge.
        recomputed, touched: a night's recomputed journey rows of the customers it touched, each
            from its ``start_date`` (``touched``: ``customer_key, start_date``, small). Given, a
            day's ``journey_daily`` rows of those customers from their start are built from
            ``recomputed`` (every row they have there, and nothing else: a row moved to another
            customer left theirs) and the day's other rows are kept as stored, instead of
            aggregating every row of the day (the late arrivals of a night touch a few customers
            on each of several days: 4.1 s against 0.7 s on the large bench's last night).
    """
    if not changed_dates:
        return
    journey = read_table(spark, config, "gold.customer_journey") if journey is None else journey
    daily = load_contract("gold.journey_daily")
    if recomputed is None or touched is None:
        daily_rows = build_journey_daily(journey.filter(F.col("touchpoint_date").isin(changed_dates)))
    else:
        start = F.broadcast(touched.select("customer_key", "start_date"))
        kept = (
            read_table(spark, config, daily.name)
            .filter(F.col("journey_date").isin(changed_dates))
            .join(start, "customer_key", "left")
            .filter(F.col("start_date").isNull() | (F.col("journey_date") < F.col("start_date")))
            .select(*daily.column_names)
        )
        daily_rows = kept.unionByName(
            build_journey_daily(recomputed.filter(F.col("touchpoint_date").isin(changed_dates)))
        )

    funnel = load_contract("gold.funnel_daily")
    funnel_dates = sorted(set(changed_dates) | {d - dt.timedelta(days=1) for d in changed_dates})
    # Sessions that started on those days, with their rows on the day after; the day before is
    # read too so that a session from that day is not mistaken for one starting at midnight.
    window = journey.filter(
        F.col("touchpoint_date").between(
            F.lit(funnel_dates[0] - dt.timedelta(days=1)), F.lit(funnel_dates[-1] + dt.timedelta(days=1))
        )
    )
    rows = build_funnel_daily(window).filter(F.col("funnel_date").isin(funnel_dates))
    # Two tables from the same journey days, written at the same time (each write is a few
    # single-core jobs on a night's slice; in order they queued for the same two cores).
    in_parallel(
        {
            daily.name: lambda: replace_dates(
                daily_rows, config, daily.name, "journey_date", changed_dates, daily.partition_by
            ),
            funnel.name: lambda: replace_dates(
                rows, config, funnel.name, "funnel_date", funnel_dates, funnel.partition_by
            ),
        }
    )
