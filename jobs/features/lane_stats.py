"""Point-in-time lane statistics: what the lake knew about recent deliveries at the end of a day.

Both feature tables (``features.order_eta`` and ``features.shipment_scan``) describe a lane and
carrier by how its recent deliveries went. Those numbers must be the ones the lake could have
computed on a given night, never later, or the model trains on information it will not have when
it scores. Everything here is therefore indexed by a ``stats_date``: the statistics as known at the
end of that day.

The known-by rule (one place, used for every scan): a scan counts for ``stats_date`` D when it had
arrived in the lake by D (``first_ingest_date <= D``) and is timed before the end of D
(``scan_at < D + 1 day``, 00:00 UTC; the session time zone is UTC, see ``jobs.lake.spark``). An order
counts when silver first knew it by D (``orders.first_ingest_date <= D``).

All doubles are rounded to 6 decimals so the tables do not change with Spark's summation order
(partitioning, adaptive execution), which would otherwise flip the last bits between runs.
"""

from __future__ import annotations

import pyspark.sql.functions as F
from pyspark.sql import Column, DataFrame

from jobs.domain import (
    DELIVERED,
    MILESTONE_AT,
    TRANSIT_MILESTONES,
    days_late,
    delivery_days,
    first_scan_at,
    hours_between,
    is_on_time,
)

# Deliveries completed within this many days up to and including the stats date (both contracts
# name their counts ``*_90d``).
LANE_STATS_WINDOW_DAYS = 90

DECIMALS = 6

# Milestones whose first known scan times the legs of a journey, and the column each becomes: the
# transit milestones under their silver.shipments names, plus the first failed attempt (the start
# of the "failed attempt -> delivered" remainder; silver.shipments only counts attempts).
LEG_MILESTONES = {
    **{milestone: MILESTONE_AT[milestone] for milestone in TRANSIT_MILESTONES},
    "delivery_failed": "first_failed_attempt_at",
}

# Mean leg durations (start column, end column) -> statistics column.
LEG_HOURS = {
    "placed_to_picked_hours_mean": ("placed_at", "picked_at"),
    "picked_to_left_warehouse_hours_mean": ("picked_at", "left_warehouse_at"),
    "left_warehouse_to_first_hub_hours_mean": ("left_warehouse_at", "first_hub_at"),
    "first_hub_to_out_for_delivery_hours_mean": ("first_hub_at", "out_for_delivery_at"),
}

# Mean hours from reaching a milestone to delivery: what is left of a journey at each milestone.
REMAINING_HOURS = {
    "transit_hours_mean": "placed_at",
    "picked_to_delivered_hours_mean": "picked_at",
    "left_warehouse_to_delivered_hours_mean": "left_warehouse_at",
    "first_hub_to_delivered_hours_mean": "first_hub_at",
    "out_for_delivery_to_delivered_hours_mean": "out_for_delivery_at",
    "failed_attempt_to_delivered_hours_mean": "first_failed_attempt_at",
}


def day_end(date: Column) -> Column:
    """The instant a date ends: ``date + 1 day`` at 00:00 (UTC, the session time zone)."""
    return F.date_add(date, 1).cast("timestamp")


def _known_by(stats_date: Column, scan_at: Column, first_ingest_date: Column) -> Column:
    return (first_ingest_date <= stats_date) & (scan_at < day_end(stats_date))


def deliveries_known(
    orders_df: DataFrame,
    tracking_events_df: DataFrame,
    as_of_dates_df: DataFrame,
    window_days: int = LANE_STATS_WINDOW_DAYS,
) -> DataFrame:
    """Per stats date, the deliveries of the window as the lake knew them at the end of that day.

    A delivery is dated by its first *known* ``delivered`` scan: a delivered scan that arrived
    after D neither counts nor moves ``delivered_at`` on D, even if it is timed earlier. Leg
    timestamps follow the same rule, so a leg scan arriving late stays out of D's leg means.

    One plan for all dates: the (small) dates frame is broadcast against the delivered scans with
    a range condition (a nested-loop join costing dates x delivered scans); the leg scans are then
    joined on ``order_id`` only, so their cost does not grow with the number of dates.

    Args:
        orders_df: ``silver.orders`` rows (all of them that may be known by the dates).
        tracking_events_df: ``silver.tracking_events`` rows (at least ``order_id, event, scan_at,
            first_ingest_date``), all scans that may be known by the dates.
        as_of_dates_df: a single ``stats_date`` date column (duplicates allowed).
        window_days: deliveries whose (UTC) delivery date is in ``(stats_date - window_days,
            stats_date]`` are kept.

    Returns:
        One row per (``stats_date``, delivered ``order_id``): ``lane, carrier, placed_at,
        promised_delivery_date``, the first known ``picked_at, left_warehouse_at, first_hub_at,
        out_for_delivery_at, first_failed_attempt_at`` (null if not known) and ``delivered_at``.
    """
    dates = F.broadcast(as_of_dates_df.select(F.col("stats_date").cast("date").alias("stats_date")).distinct())
    scans = tracking_events_df.select("order_id", "event", "scan_at", "first_ingest_date")
    delivered_scans = scans.filter(F.col("event") == DELIVERED)
    delivered = (
        dates.join(delivered_scans, _known_by(F.col("stats_date"), F.col("scan_at"), F.col("first_ingest_date")))
        .groupBy("stats_date", "order_id")
        .agg(F.min("scan_at").alias("delivered_at"))
        # The upper bound (end of the stats date) is the known-by rule itself.
        .filter(F.to_date("delivered_at") > F.date_sub("stats_date", window_days))
    )
    leg_scans = scans.filter(F.col("event").isin(*LEG_MILESTONES)).select(
        F.col("order_id").alias("_leg_order_id"),
        F.col("event").alias("_leg_event"),
        F.col("scan_at").alias("_leg_at"),
        F.col("first_ingest_date").alias("_leg_ingest_date"),
    )
    leg_known = (F.col("order_id") == F.col("_leg_order_id")) & _known_by(
        F.col("stats_date"), F.col("_leg_at"), F.col("_leg_ingest_date")
    )
    with_legs = (
        delivered.join(leg_scans, leg_known, "left")
        .groupBy("stats_date", "order_id", "delivered_at")
        .agg(
            *[
                first_scan_at(event, F.col("_leg_event"), F.col("_leg_at")).alias(name)
                for event, name in LEG_MILESTONES.items()
            ]
        )
    )
    orders = orders_df.select(
        "order_id",
        "lane",
        "carrier",
        "placed_at",
        "promised_delivery_date",
        F.col("first_ingest_date").alias("_order_ingest_date"),
    )
    return (
        with_legs.join(orders, "order_id")
        .filter(F.col("_order_ingest_date") <= F.col("stats_date"))
        .select(
            "stats_date",
            "order_id",
            "lane",
            "carrier",
            "placed_at",
            "promised_delivery_date",
            *LEG_MILESTONES.values(),
            "delivered_at",
        )
    )


def _rounded(value: Column) -> Column:
    return F.round(value, DECIMALS)


def _transit_days() -> Column:
    return delivery_days(F.col("placed_at"), F.col("delivered_at"))


def _count_and_mean_transit(deliveries_df: DataFrame, keys: list[str]) -> DataFrame:
    return deliveries_df.groupBy(*keys).agg(
        F.count("*").alias("deliveries"),
        _rounded(F.avg(_transit_days())).alias("transit_days_mean"),
    )


def lane_transit_stats(deliveries_df: DataFrame) -> DataFrame:
    """Per (``stats_date, lane, carrier``): how its known deliveries of the window went.

    Each leg mean is over the deliveries where both ends of the leg are known (carriers skip
    scans), so the means of one row can rest on different deliveries; a mean with no such delivery
    is null. Percentiles are exact (``percentile``, linear interpolation), not approximate, so the
    features are reproducible.

    Args:
        deliveries_df: the output of :func:`deliveries_known`.

    Returns:
        ``stats_date, lane, carrier, deliveries`` (bigint), ``transit_days_mean/_p50/_p90``
        (placed -> delivered, days), ``on_time_rate`` (delivered UTC date <= promised date),
        ``days_late_mean`` (delivered date - promised date, negative = early), the mean hours of
        each leg (:data:`LEG_HOURS`) and the mean hours from each milestone to delivery
        (:data:`REMAINING_HOURS`; ``transit_hours_mean`` is placed -> delivered).
    """
    late_days = days_late(F.col("delivered_at"), F.col("promised_delivery_date"))
    on_time = is_on_time(F.col("delivered_at"), F.col("promised_delivery_date"))
    transit_days = _transit_days()
    return deliveries_df.groupBy("stats_date", "lane", "carrier").agg(
        F.count("*").alias("deliveries"),
        _rounded(F.avg(transit_days)).alias("transit_days_mean"),
        _rounded(F.percentile(transit_days, 0.5)).alias("transit_days_p50"),
        _rounded(F.percentile(transit_days, 0.9)).alias("transit_days_p90"),
        _rounded(F.avg(on_time.cast("double"))).alias("on_time_rate"),
        _rounded(F.avg(late_days.cast("double"))).alias("days_late_mean"),
        *[
            _rounded(F.avg(hours_between(F.col(start), F.col(end)))).alias(name)
            for name, (start, end) in LEG_HOURS.items()
        ],
        *[
            _rounded(F.avg(hours_between(F.col(start), F.col("delivered_at")))).alias(name)
            for name, start in REMAINING_HOURS.items()
        ],
    )


def carrier_transit_stats(deliveries_df: DataFrame) -> DataFrame:
    """Per (``stats_date, carrier``) on any lane: ``deliveries`` and ``transit_days_mean``.

    A fallback signal for a lane the carrier rarely serves.
    """
    return _count_and_mean_transit(deliveries_df, ["stats_date", "carrier"])


def lane_all_carriers_transit_stats(deliveries_df: DataFrame) -> DataFrame:
    """Per (``stats_date, lane``) with any carrier: ``deliveries`` and ``transit_days_mean``.

    A fallback signal for a carrier new on the lane.
    """
    return _count_and_mean_transit(deliveries_df, ["stats_date", "lane"])
