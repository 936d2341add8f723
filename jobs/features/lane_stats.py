"""Point-in-time lane statistics: what the lake knew about recent deliveries at the end of a day.

Both feature tables (``features.order_eta`` and ``features.shipment_scan``) describe a lane and
carrier by how its recent deliveries went. Those numbers must be the ones the lake could have
computed on a given night, never later, or the model trains on information it will not have when
it scores. Everything here is therefore indexed by a ``stats_date``: the statistics as known at the
end of that day.

The known-by rule: a scan counts for ``stats_date`` D when it had arrived in the lake by D
(``first_ingest_date <= D``) and is timed before the end of D (``scan_at < D + 1 day``, 00:00 UTC;
the session time zone is UTC, see ``jobs.lake.spark``). Silver applies it once per order as its
scans arrive (``silver.delivery_states``, :mod:`jobs.silver.delivery_states`); the statistics here
are built from those states. An order counts when silver first knew it by D
(``orders.first_ingest_date <= D``).

All doubles are rounded to 6 decimals so the tables do not change with Spark's summation order
(partitioning, adaptive execution), which would otherwise flip the last bits between runs; the one
unrounded sum, ``transit_days_sum``, is only pooled into rounded means.

Both feature tables of a night read the statistics of the same few dates: the night computes them
once (:func:`lane_stats`, :mod:`jobs.features.delivery_features`).
"""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

import pyspark.sql.functions as F
from pyspark.sql import Column, DataFrame, Window

from jobs.domain import days_late, delivery_days, hours_between, is_on_time

# Deliveries completed within this many days up to and including the stats date (both contracts
# name their counts ``*_90d``).
LANE_STATS_WINDOW_DAYS = 90

DECIMALS = 6

# The columns of a (stats date, delivery) row (:func:`deliveries_known`).
DELIVERY_COLUMNS = (
    "stats_date",
    "order_id",
    "lane",
    "carrier",
    "placed_at",
    "promised_delivery_date",
    "picked_at",
    "left_warehouse_at",
    "first_hub_at",
    "out_for_delivery_at",
    "first_failed_attempt_at",
    "delivered_at",
)

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


def deliveries_known(
    orders_df: DataFrame,
    delivery_states_df: DataFrame,
    as_of_dates_df: DataFrame,
    window_days: int = LANE_STATS_WINDOW_DAYS,
) -> DataFrame:
    """Per stats date, the deliveries of the window as the lake knew them at the end of that day.

    A delivery is dated by its first *known* ``delivered`` scan: a delivered scan that arrived
    after D neither counts nor moves ``delivered_at`` on D, even if it is timed earlier. Leg
    timestamps follow the same rule, so a leg scan arriving late stays out of D's leg means.

    The per-order states of ``silver.delivery_states`` (:mod:`jobs.silver.delivery_states`: what
    the lake knew of an order from each day its scans became known) do the work: a state counts for
    the stats dates from its first day (once the order is known too) to the next state's, or to the
    day its delivery leaves the window. Only these few states per order meet the (small, broadcast)
    dates frame, so the cost grows with dates x delivered orders, not dates x scans, and a night no
    longer windows every scan: the states are kept by silver as its scans arrive.

    Args:
        orders_df: ``silver.orders`` rows (all of them that may be known by the dates).
        delivery_states_df: ``silver.delivery_states`` rows (at least those whose delivery may be
            in a date's window; :func:`states_in_window` prunes the rest).
        as_of_dates_df: a single ``stats_date`` date column (duplicates allowed).
        window_days: deliveries whose (UTC) delivery date is in ``(stats_date - window_days,
            stats_date]`` are kept.

    Returns:
        One row per (``stats_date``, delivered ``order_id``): ``lane, carrier, placed_at,
        promised_delivery_date``, the first known ``picked_at, left_warehouse_at, first_hub_at,
        out_for_delivery_at, first_failed_attempt_at`` (null if not known) and ``delivered_at``.
    """
    orders = orders_df.select(
        "order_id",
        "lane",
        "carrier",
        "placed_at",
        "promised_delivery_date",
        F.col("first_ingest_date").alias("_order_ingest_date"),
    )
    # A state counts for D from its first day (once the order is known too) until the next state,
    # or until its delivery leaves the window (delivered date > D - window_days).
    valid = (
        delivery_states_df.join(orders, "order_id")
        .withColumn("_start", F.greatest("known_from", "_order_ingest_date"))
        .withColumn("_leaves_window", F.date_add(F.col("delivered_date"), window_days))
        .withColumn("_end", F.coalesce(F.least("known_until", "_leaves_window"), "_leaves_window"))
        .filter(F.col("_start") < F.col("_end"))
    )
    dates = F.broadcast(as_of_dates_df.select(F.col("stats_date").cast("date").alias("stats_date")).distinct())
    counted = (F.col("stats_date") >= F.col("_start")) & (F.col("stats_date") < F.col("_end"))
    return dates.join(valid, counted).select(*DELIVERY_COLUMNS)


def states_in_window(
    delivery_states_df: DataFrame, dates: list[dt.date], window_days: int = LANE_STATS_WINDOW_DAYS
) -> DataFrame:
    """The states that can count for one of ``dates``: delivered within the window of the earliest
    and known by the latest (literals on the partition column: Delta reads only those partitions)."""
    first = min(dates) - dt.timedelta(days=window_days - 1)
    return delivery_states_df.filter(
        (F.col("delivered_date") >= F.lit(first)) & (F.col("known_from") <= F.lit(max(dates)))
    )


def _rounded(value: Column) -> Column:
    return F.round(value, DECIMALS)


def _transit_days() -> Column:
    return delivery_days(F.col("placed_at"), F.col("delivered_at"))


def lane_transit_stats(deliveries_df: DataFrame) -> DataFrame:
    """Per (``stats_date, lane, carrier``): how its known deliveries of the window went.

    Each leg mean is over the deliveries where both ends of the leg are known (carriers skip
    scans), so the means of one row can rest on different deliveries; a mean with no such delivery
    is null. Percentiles are exact (the values ranked within each group, linearly interpolated as
    Spark's ``percentile``), not approximate, so the features are reproducible.

    Args:
        deliveries_df: the output of :func:`deliveries_known`.

    Returns:
        ``stats_date, lane, carrier, deliveries`` (bigint), ``transit_days_sum`` (unrounded: the
        wider groupings pool it, :func:`carrier_transit_stats`), ``transit_days_mean/_p50/_p90``
        (placed -> delivered, days), ``on_time_rate`` (delivered UTC date <= promised date),
        ``days_late_mean`` (delivered date - promised date, negative = early), the mean hours of
        each leg (:data:`LEG_HOURS`) and the mean hours from each milestone to delivery
        (:data:`REMAINING_HOURS`; ``transit_hours_mean`` is placed -> delivered).
    """
    late_days = days_late(F.col("delivered_at"), F.col("promised_delivery_date"))
    on_time = is_on_time(F.col("delivered_at"), F.col("promised_delivery_date"))
    keys = ["stats_date", "lane", "carrier"]
    transit_days = F.col("_transit_days")
    ranked = _ranked(deliveries_df.withColumn("_transit_days", _transit_days()), keys, "_transit_days")
    aggregated = ranked.groupBy(*keys).agg(
        F.count("*").alias("deliveries"),
        F.sum(transit_days).alias("transit_days_sum"),
        _rounded(F.avg(transit_days)).alias("transit_days_mean"),
        *_percentile_ends(transit_days, 0.5, "transit_days_p50"),
        *_percentile_ends(transit_days, 0.9, "transit_days_p90"),
        F.max("_known").alias("_known"),
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
    columns = [
        "stats_date",
        "lane",
        "carrier",
        "deliveries",
        "transit_days_sum",
        "transit_days_mean",
        _rounded(_interpolated(0.5, "transit_days_p50")).alias("transit_days_p50"),
        _rounded(_interpolated(0.9, "transit_days_p90")).alias("transit_days_p90"),
        "on_time_rate",
        "days_late_mean",
        *LEG_HOURS,
        *REMAINING_HOURS,
    ]
    return aggregated.select(*columns)


# Exact percentiles by rank, not by Spark's ``percentile`` aggregate: that one keeps a map of every
# distinct value per group and ships and merges those maps between its two aggregation steps (a
# replay of the large bench's last night, 656 k deliveries of a few stats dates: its two stages
# 8.1 task-seconds, by rank 4.8). One sort of the deliveries within each group gives the same
# values, computed the same way (Spark's ``Percentile``: position = (n - 1) * p, linear
# interpolation between the values at its floor and ceiling). The sums and means now add each
# group's values in sorted order: the same on every run, but not always the same last bits as the
# hash aggregate's order gave (4 of 960 rounded means moved by 1e-6 on that lake).


def _ranked(df: DataFrame, keys: list[str], value: str) -> DataFrame:
    """``df`` with ``_rank`` (0-based, by ``value`` within ``keys``, nulls last) and ``_known``
    (the group's non-null values): one sort per group."""
    ordered = Window.partitionBy(*keys).orderBy(F.col(value).asc_nulls_last())
    whole_group = ordered.rowsBetween(Window.unboundedPreceding, Window.unboundedFollowing)
    return df.withColumn("_rank", F.row_number().over(ordered) - 1).withColumn(
        "_known", F.count(value).over(whole_group)
    )


def _position(p: float, known: Column) -> Column:
    return (known - 1) * F.lit(p)


def _percentile_ends(value: Column, p: float, name: str) -> list[Column]:
    """The values at the floor and the ceiling of the ``p`` position (aggregates over :func:`_ranked`)."""
    position = _position(p, F.col("_known"))
    return [
        F.max(F.when(F.col("_rank") == F.floor(position), value)).alias(f"_{name}_lower"),
        F.max(F.when(F.col("_rank") == F.ceil(position), value)).alias(f"_{name}_higher"),
    ]


def _interpolated(p: float, name: str) -> Column:
    """The ``p`` percentile from :func:`_percentile_ends` (null when the group has no value)."""
    position = _position(p, F.col("_known"))
    lower, higher = F.floor(position), F.ceil(position)
    lower_value, higher_value = F.col(f"_{name}_lower"), F.col(f"_{name}_higher")
    return F.when((higher == lower) | (lower_value == higher_value), lower_value).otherwise(
        (higher - position) * lower_value + (position - lower) * higher_value
    )


def _pooled(lane_stats_df: DataFrame, keys: list[str]) -> DataFrame:
    return lane_stats_df.groupBy(*keys).agg(
        F.sum("deliveries").alias("deliveries"),
        _rounded(F.sum("transit_days_sum") / F.sum("deliveries")).alias("transit_days_mean"),
    )


def carrier_transit_stats(lane_stats_df: DataFrame) -> DataFrame:
    """Per (``stats_date, carrier``) on any lane: ``deliveries`` and ``transit_days_mean``.

    A fallback signal for a lane the carrier rarely serves. Pooled from the lane rows
    (:func:`lane_transit_stats`: counts and unrounded sums), not from the deliveries again.
    """
    return _pooled(lane_stats_df, ["stats_date", "carrier"])


def lane_all_carriers_transit_stats(lane_stats_df: DataFrame) -> DataFrame:
    """Per (``stats_date, lane``) with any carrier: ``deliveries`` and ``transit_days_mean``.

    A fallback signal for a carrier new on the lane. Pooled from the lane rows, as
    :func:`carrier_transit_stats`.
    """
    return _pooled(lane_stats_df, ["stats_date", "lane"])


class LaneStats(NamedTuple):
    """The statistics of a set of stats dates at the three groupings the feature tables use."""

    lane_carrier: DataFrame  # :func:`lane_transit_stats`
    carrier: DataFrame  # :func:`carrier_transit_stats`
    lane: DataFrame  # :func:`lane_all_carriers_transit_stats`


def lane_stats(lane_stats_df: DataFrame) -> LaneStats:
    """The three groupings from the lane rows (:func:`lane_transit_stats`); checkpoint those first
    when the groupings are read more than once, or each read recomputes the deliveries."""
    return LaneStats(
        lane_stats_df, carrier_transit_stats(lane_stats_df), lane_all_carriers_transit_stats(lane_stats_df)
    )
