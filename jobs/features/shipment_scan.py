"""Shipment-scan features: what is known about a parcel at each tracking scan (``features.shipment_scan``).

A row describes scan ``s`` as the lake could have seen it on the first night both ``s`` and its
order had arrived (``as_of_date = greatest(s.first_ingest_date, order.first_ingest_date)``). The
order's *known scans* at ``s`` are its scans ``k`` with

* ``k.first_ingest_date <= as_of_date`` (arrived by that night), and
* ``(k.scan_at, rank(k.event), k.scan_id) <= (s.scan_at, rank(s.event), s.scan_id)`` (timed at or
  before ``s`` in journey order, ``jobs.domain.MILESTONE_RANK`` breaking time ties, as
  in ``silver.tracking_events.seq``); ``s`` itself is one of them.

So a scan arriving later, even if timed earlier, never changes a row already built; it gets a row
of its own (with its own ``scan_seq``). Lane statistics are those known at the end of
``as_of_date - 1`` (:mod:`jobs.features.lane_stats`), i.e. what the previous night's tables held.

The order's static attributes (``placed_at``, ``promised_delivery_date``, ``lane``, ``carrier``)
come from ``silver.orders``: a scan whose order is not in silver yet cannot be built and is
dropped (inner join); the caller builds it the night the order arrives, with that night as its
``as_of_date``, so a row only ever uses data that had arrived by its ``as_of_date``.
"""

from __future__ import annotations

import pyspark.sql.functions as F
from pyspark.sql import Column, DataFrame, SparkSession

from jobs.domain import (
    MILESTONE_AT,
    MILESTONE_RANK,
    TRANSIT_MILESTONES,
    first_scan_at,
    hours_between,
    milestone_rank,
    oldest_arrival_date,
)
from jobs.features.lane_stats import DECIMALS, day_end, deliveries_known, lane_transit_stats
from jobs.features.order_eta import replace_feature_slice, with_placement_features
from jobs.lake.config import LakeConfig
from jobs.lake.contracts import load_contract
from jobs.lake.tables import broadcast_if_one_night, delete_where, read_table, table_exists

# Leg delay feature -> (leg start, leg end, lane+carrier mean statistic). ``placed_at`` is the
# order's; the other ends are the first known scan of each milestone at this scan.
LEG_DELAYS = {
    "pick_delay_hours": ("placed_at", "picked_at", "placed_to_picked_hours_mean"),
    "warehouse_delay_hours": ("picked_at", "left_warehouse_at", "picked_to_left_warehouse_hours_mean"),
    "linehaul_delay_hours": ("left_warehouse_at", "first_hub_at", "left_warehouse_to_first_hub_hours_mean"),
    "hub_to_courier_delay_hours": ("first_hub_at", "out_for_delivery_at", "first_hub_to_out_for_delivery_hours_mean"),
}

# Highest milestone reached -> statistic of mean hours from that milestone to delivery. A
# delivered or returned parcel has no remaining journey to estimate: null for ranks 6 and 7.
REMAINING_BY_RANK = {
    MILESTONE_RANK["created"]: "transit_hours_mean",  # nothing but the label yet: placed -> delivered
    MILESTONE_RANK["picked"]: "picked_to_delivered_hours_mean",
    MILESTONE_RANK["left_warehouse"]: "left_warehouse_to_delivered_hours_mean",
    MILESTONE_RANK["arrived_hub"]: "first_hub_to_delivered_hours_mean",
    MILESTONE_RANK["out_for_delivery"]: "out_for_delivery_to_delivered_hours_mean",
    MILESTONE_RANK["delivery_failed"]: "failed_attempt_to_delivered_hours_mean",
}

# First known scan of each transit milestone -> column, as in silver.shipments.
_FIRST_AT = {milestone: MILESTONE_AT[milestone] for milestone in TRANSIT_MILESTONES}

_SCAN_COLUMNS = ["scan_id", "order_id", "scan_at", "event", "first_ingest_date"]


def _journey_position(scan_at: str, rank: str, scan_id: str) -> Column:
    # Named fields: Spark compares structs only when their field names match too.
    return F.struct(F.col(scan_at).alias("at"), F.col(rank).alias("rank"), F.col(scan_id).alias("id"))


def _remaining_hours_mean(milestone_rank: Column) -> Column:
    expr = None
    for rank, statistic in REMAINING_BY_RANK.items():
        branch = (milestone_rank == rank, F.col(statistic))
        expr = F.when(*branch) if expr is None else expr.when(*branch)
    return expr


def _rounded_hours(start: Column, end: Column) -> Column:
    return F.round(hours_between(start, end), DECIMALS)


def _with_as_of_date(target_scans_df: DataFrame, orders_df: DataFrame) -> DataFrame:
    """Scans with ``_as_of``: the night both the scan and its order had arrived (inner join: a scan
    whose order is not in silver yet has no row)."""
    order_arrival = orders_df.select("order_id", F.col("first_ingest_date").alias("_order_ingest_date"))
    return (
        target_scans_df.select(*_SCAN_COLUMNS)
        .join(order_arrival, "order_id")
        .withColumn("_as_of", F.greatest("first_ingest_date", "_order_ingest_date"))
        .drop("_order_ingest_date")
    )


def _stats_date(as_of_date: str) -> Column:
    """A row's ``stats_date``: the day before its ``as_of_date`` (what the previous night held)."""
    return F.date_sub(as_of_date, 1)


def stats_dates(target_scans_df: DataFrame, orders_df: DataFrame) -> DataFrame:
    """The ``stats_date`` of each target scan's row (:func:`_stats_date`)."""
    return _with_as_of_date(target_scans_df, orders_df).select(_stats_date("_as_of").alias("stats_date"))


def build_shipment_scan_features(
    target_scans_df: DataFrame,
    tracking_events_df: DataFrame,
    orders_df: DataFrame,
    delivery_states_df: DataFrame | None = None,
    lane_stats_df: DataFrame | None = None,
) -> DataFrame:
    """Tracking scans -> rows of ``features.shipment_scan`` (one per target scan with a known order).

    Args:
        target_scans_df: the ``silver.tracking_events`` rows to build (e.g. those whose
            ``first_ingest_date`` is the run date); unique ``scan_id``.
        tracking_events_df: all ``silver.tracking_events`` rows (history: the targets' orders'
            other scans). Scans arrived after a target's night are ignored by the known-scan
            rule; the targets need not be repeated here.
        orders_df: all ``silver.orders`` rows (the targets' orders, and the history of the lane
            statistics).
        delivery_states_df: ``silver.delivery_states`` rows (the lanes' deliveries; states known
            later are ignored by the known-by rule); needed when ``lane_stats_df`` is not given.
        lane_stats_df: :func:`jobs.features.lane_stats.lane_transit_stats` of (at least) the
            targets' :func:`stats_dates`, when the caller computed them already
            (:mod:`jobs.features.delivery_features`); else computed here.

    Returns:
        The ``features.shipment_scan`` columns in contract order, doubles rounded to 6 decimals.
        Leg delays are null until both ends of the leg are known or without lane history;
        ``lane_remaining_hours_mean`` is null without history and once delivered or returned.
    """
    contract = load_contract("features.shipment_scan")
    targets = _with_as_of_date(target_scans_df, orders_df).withColumn("_rank", milestone_rank(F.col("event")))
    # Only the targets' orders' scans can be known to a target (``is_known`` matches the order):
    # the rest of the history is dropped before the de-duplication, which otherwise shuffled every
    # scan of the lake (large bench's last night: 2.3 M rows, for the orders of ~38 k target scans).
    # A target is one of its own known scans, whether or not the caller repeated it in the history.
    history = (
        tracking_events_df.select(*_SCAN_COLUMNS)
        .join(target_scans_df.select("order_id"), "order_id", "left_semi")
        .unionByName(target_scans_df.select(*_SCAN_COLUMNS))
        .distinct()
    )
    known = history.select(
        F.col("order_id").alias("_k_order_id"),
        F.col("scan_id").alias("_k_scan_id"),
        F.col("scan_at").alias("_k_scan_at"),
        F.col("event").alias("_k_event"),
        F.col("first_ingest_date").alias("_k_ingest_date"),
        milestone_rank(F.col("event")).alias("_k_rank"),
    )
    is_known = (
        (F.col("_k_order_id") == F.col("order_id"))
        & (F.col("_k_ingest_date") <= F.col("_as_of"))
        & (_journey_position("_k_scan_at", "_k_rank", "_k_scan_id") <= _journey_position("scan_at", "_rank", "scan_id"))
    )
    so_far = (
        targets.join(known, is_known)
        .groupBy(*_SCAN_COLUMNS, "_as_of")
        .agg(
            F.count("*").alias("scan_seq"),
            F.max("_k_rank").alias("milestone_rank"),
            F.count(F.when(F.col("_k_event") == "arrived_hub", 1)).alias("hubs_passed"),
            F.count(F.when(F.col("_k_event") == "delivery_failed", 1)).alias("failed_attempts"),
            # The previous scan in journey order has the latest scan_at among the others.
            F.max(F.when(F.col("_k_scan_id") != F.col("scan_id"), F.col("_k_scan_at"))).alias("_previous_scan_at"),
            *[
                first_scan_at(event, F.col("_k_event"), F.col("_k_scan_at")).alias(name)
                for event, name in _FIRST_AT.items()
            ],
        )
        .withColumn("as_of_date", F.col("_as_of"))
        .withColumn("stats_date", _stats_date("as_of_date"))
    )
    orders = orders_df.select("order_id", "placed_at", "promised_delivery_date", "lane", "carrier")
    stats = lane_stats_df
    if stats is None:
        if delivery_states_df is None:
            raise ValueError("build_shipment_scan_features needs the lane statistics or the delivery states")
        stats = lane_transit_stats(deliveries_known(orders_df, delivery_states_df, so_far.select("stats_date")))
    features = (
        so_far.join(orders, "order_id")
        .join(stats, ["stats_date", "lane", "carrier"], "left")
        .transform(with_placement_features)
        .withColumn("elapsed_hours", _rounded_hours(F.col("placed_at"), F.col("scan_at")))
        .withColumn("hours_since_previous_scan", _rounded_hours(F.col("_previous_scan_at"), F.col("scan_at")))
        .withColumn("promised_hours_left", _rounded_hours(F.col("scan_at"), day_end(F.col("promised_delivery_date"))))
        .withColumn("scan_hour", F.hour("scan_at"))
        .withColumn("lane_remaining_hours_mean", _remaining_hours_mean(F.col("milestone_rank")))
    )
    for name, (start, end, mean) in LEG_DELAYS.items():
        features = features.withColumn(name, F.round(hours_between(F.col(start), F.col(end)) - F.col(mean), DECIMALS))
    return features.select(*[F.col(c.name).cast(c.type) for c in contract.columns])


def target_order_scans(
    orders_df: DataFrame,
    tracking_events_df: DataFrame,
    run_date: str,
    lateness_days: int,
    through: str | None = None,
) -> DataFrame:
    """Every scan of the orders that have a :func:`target_scans` scan, with ``_is_target``: the
    targets and, in the same rows, the history :func:`build_shipment_scan_features` reads of them.

    One pass over the scans finds both: on a night the targets' orders are few (tonight's scans'
    and the arrived orders'), so they are broadcast to the scans (:func:`broadcast_if_one_night`;
    with ``through``, a history import's, they are most orders and left to Spark). Before, the
    arrived orders' scans and the targets' history were two joins over every scan of the lake,
    each read whole (the large bench's last night: 2.3 M scans twice, for ~38 k targets)."""
    day = F.lit(run_date).cast("date")
    arrived_orders = orders_df.filter(F.col("first_ingest_date") >= day).select(
        "order_id", F.lit(True).alias("_order_arrived")
    )
    # A scan first arrived on run_date or later is dated at most lateness_days before its night:
    # those partitions hold every such scan (jobs.domain.oldest_arrival_date).
    arrived_since = F.lit(oldest_arrival_date(run_date, lateness_days))
    arrived = (F.col("event_date") >= arrived_since) & (F.col("first_ingest_date") >= day)
    orders = tracking_events_df.filter(arrived).select("order_id").unionByName(arrived_orders.select("order_id"))
    return (
        tracking_events_df.join(broadcast_if_one_night(orders.distinct(), through), "order_id", "left_semi")
        .join(broadcast_if_one_night(arrived_orders, through), "order_id", "left")
        .withColumn("_is_target", arrived | F.col("_order_arrived").isNotNull())
        .drop("_order_arrived")
    )


def targets_of(order_scans_df: DataFrame) -> DataFrame:
    """The target scans among :func:`target_order_scans` rows (without ``_is_target``)."""
    return order_scans_df.filter(F.col("_is_target")).drop("_is_target")


def target_scans(orders_df: DataFrame, tracking_events_df: DataFrame, run_date: str, lateness_days: int) -> DataFrame:
    """The scans whose ``features.shipment_scan`` row ``run_date``'s arrivals create or can change:
    those whose ``as_of_date`` (the night both the scan and its order had arrived) is ``run_date``
    or later, i.e. scans first arrived then and the scans of orders that arrived then. Later ones
    exist only when dates run out of order: their known scans and lane statistics include this
    night's arrivals.

    A scan first arrived on ``run_date`` or later is dated at most ``lateness_days`` before its
    night (:func:`jobs.domain.oldest_arrival_date`): those are read from the event-date partitions
    from there on, not from the whole history. An arrived order's scans may have come earlier,
    at any date: they are looked up in every partition (:func:`target_order_scans`)."""
    return targets_of(target_order_scans(orders_df, tracking_events_df, run_date, lateness_days))


def run(
    spark: SparkSession,
    config: LakeConfig,
    run_date: str,
    through: str | None = None,
    order_scans: DataFrame | None = None,
    lane_stats_df: DataFrame | None = None,
) -> int:
    """Merge the ``features.shipment_scan`` rows of :func:`target_scans`; return the rows merged.

    ``order_scans`` (:func:`target_order_scans`, computed once, e.g. a local checkpoint: the
    targets and their orders' history) and ``lane_stats_df`` (covering the targets'
    :func:`stats_dates`) are passed by :mod:`jobs.features.delivery_features`, which shares the
    lane statistics with ``features.order_eta``; alone, both are computed here.
    """
    contract = load_contract("features.shipment_scan")
    orders = read_table(spark, config, "silver.orders")
    if order_scans is None:
        events = read_table(spark, config, "silver.tracking_events")
        order_scans = target_order_scans(orders, events, run_date, config.lateness_days, through).localCheckpoint()
    targets = targets_of(order_scans)
    rows = targets.count()
    if rows:
        states = read_table(spark, config, "silver.delivery_states") if lane_stats_df is None else None
        history = order_scans.drop("_is_target")
        features = build_shipment_scan_features(targets, history, orders, states, lane_stats_df)
        # Every target's as_of_date is run_date or later, and every stored row from run_date on
        # is a target's (one no target gives is a scan a corrected file retracted): the slice is
        # replaced whole. A MERGE with a not-matched-by-source delete rewrote every partition
        # it scanned (quick bench: 6,131 rows inserted, 208,987 copied from 29 files).
        replace_feature_slice(features, config, contract.name, run_date)
    elif table_exists(spark, config.table_path(contract.name)):
        delete_where(spark, config, contract.name, f"as_of_date >= DATE'{run_date}'")
    return rows
