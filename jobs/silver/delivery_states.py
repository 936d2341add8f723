"""Silver ``delivery_states``: what the lake knew of each delivered order, day by day.

The lane statistics of the delivery feature tables (:mod:`jobs.features.lane_stats`) describe the
deliveries of a 90-day window *as the lake knew them at the end of a stats date*. The known-by rule
(one place, used for every scan): a scan counts for stats date D when it had arrived in the lake by
D (``first_ingest_date <= D``) and is timed before the end of D (``scan_at < D + 1 day``, 00:00
UTC; the session time zone is UTC, see ``jobs.lake.spark``). So a scan counts from
:func:`known_date` on: the later of its arrival date and its own day.

What the lake knows of an order therefore only changes on the days its scans become known: from
the first day a ``delivered`` scan is known, each such day starts a *state* (usually one per order:
scans rarely arrive after the delivery), holding the first known scan of each leg milestone and of
``delivered``, valid until the next state's day. This table keeps those states, recomputed for the
orders a night's scans touch (as ``silver.shipments``), so that a night's lane statistics read a
few rows per delivered order instead of windowing every scan of the window again: at 60 days the
window is the whole scan history.

Like ``silver.shipments`` the states are built from the touched orders' scans of the last
``SHIPMENT_WINDOW_DAYS`` of arrivals: a scan arriving later than that after its order's others is
outside the lake's nightly reach.
"""

from __future__ import annotations

import datetime as dt

import pyspark.sql.functions as F
from pyspark.sql import Column, DataFrame, SparkSession, Window

from jobs.domain import DELIVERED, MILESTONE_AT, TRANSIT_MILESTONES, first_scan_at
from jobs.lake.config import LakeConfig
from jobs.lake.contracts import load_contract
from jobs.lake.tables import merge_changed_rows, merge_rows, read_table, sql_dates, table_exists
from jobs.silver.orders import filter_first_arrival
from jobs.silver.shipments import SHIPMENT_WINDOW_DAYS, TouchedScans

CONTRACT = "silver.delivery_states"

# Milestones whose first known scan times the legs of a journey, and the column each becomes: the
# transit milestones under their silver.shipments names, plus the first failed attempt (the start
# of the "failed attempt -> delivered" remainder; silver.shipments only counts attempts).
LEG_MILESTONES = {
    **{milestone: MILESTONE_AT[milestone] for milestone in TRANSIT_MILESTONES},
    "delivery_failed": "first_failed_attempt_at",
}


def known_date(scan_at: Column, first_ingest_date: Column) -> Column:
    """The first stats date a scan counts for (the known-by rule): the later of its arrival date and
    its (UTC) day, since ``first_ingest_date <= D and scan_at < D + 1 day`` holds exactly from there on."""
    return F.greatest(first_ingest_date, F.to_date(scan_at))


def build_delivery_states(tracking_events_df: DataFrame) -> DataFrame:
    """``silver.tracking_events`` rows (every scan of the orders concerned) -> their delivery states.

    One pass over each order's scans in the order they became known (:func:`known_date`): the
    running first scan of each milestone over the days so far is the state from that day on, and
    the next later day ends it. Days before the first known ``delivered`` scan give no state (the
    order is not a delivery yet); a day whose scans change nothing still starts a state, equal to
    the one before (the statistics count it once either way).

    Args:
        tracking_events_df: at least ``order_id, event, scan_at, first_ingest_date``.

    Returns:
        Rows of contract ``silver.delivery_states``.
    """
    contract = load_contract(CONTRACT)
    epoch = F.lit("1970-01-01").cast("date")  # days as numbers: a range frame needs them
    day = F.datediff(known_date(F.col("scan_at"), F.col("first_ingest_date")), epoch)
    scans = tracking_events_df.filter(F.col("event").isin(DELIVERED, *LEG_MILESTONES)).select(
        "order_id", "event", "scan_at", day.alias("_day")
    )
    by_day = Window.partitionBy("order_id").orderBy("_day")
    so_far = by_day.rangeBetween(Window.unboundedPreceding, 0)
    later = by_day.rangeBetween(1, Window.unboundedFollowing)
    running = scans.select(
        "order_id",
        "_day",
        first_scan_at(DELIVERED, F.col("event"), F.col("scan_at")).over(so_far).alias("delivered_at"),
        *[
            first_scan_at(event, F.col("event"), F.col("scan_at")).over(so_far).alias(name)
            for event, name in LEG_MILESTONES.items()
        ],
        F.min("_day").over(later).alias("_next_day"),
    )
    states = (
        running.filter(F.col("delivered_at").isNotNull())
        .dropDuplicates(["order_id", "_day"])  # the rows of one day hold the same state (range frame)
        .withColumn("known_from", F.date_add(epoch, F.col("_day")))
        .withColumn("known_until", F.date_add(epoch, F.col("_next_day")))
        .withColumn("delivered_date", F.to_date("delivered_at"))
    )
    return states.select(*[F.col(c.name).cast(c.type) for c in contract.columns])


def run(
    spark: SparkSession, config: LakeConfig, run_date: str, touched: TouchedScans, through: str | None = None
) -> None:
    """Recompute the states of the orders the nights ``run_date`` to ``through`` touched
    (``touched``: what :func:`jobs.silver.tracking_events.run` returned, from their scans as it
    merged them), and write the new or changed ones.

    In nightly order only states known from tonight on are new, and only the latest stored state
    of an order that got one ends (its ``known_until``): those rows are upserted into their
    delivery dates' partitions. When later nights already brought scans of these orders (a rerun,
    a backfill) or tonight retracted scans, any state may change or go (an earlier copy of a scan
    moves the day it became known): every recomputed state is compared with the stored one and
    the touched orders' stored states that are no longer given are deleted.

    Before the table exists (an empty lake, or a lake from before it), every order's states are
    built from the whole of ``silver.tracking_events`` instead: the table is complete from its
    first write.
    """
    contract = load_contract(CONTRACT)
    (partition,) = contract.partition_by
    if not table_exists(spark, config.table_path(contract.name)):
        all_states = build_delivery_states(read_table(spark, config, "silver.tracking_events"))
        merge_rows(spark, all_states, config, contract.name, contract.keys, partition_by=contract.partition_by)
        return
    # The states read each scan's first arrival only: the first-arrival filter tracking_events
    # applies, without its ordering windows (seq, out-of-order flag), which states do not need.
    first_arrivals = filter_first_arrival(touched.scans, "scan_id").withColumnRenamed(
        "_ingest_date", "first_ingest_date"
    )
    states = build_delivery_states(first_arrivals).localCheckpoint()
    night, last = F.lit(run_date).cast("date"), F.lit(through or run_date).cast("date")
    in_nightly_order = not touched.any_retracted and touched.scans.filter(F.col("_ingest_date") > last).isEmpty()
    if in_nightly_order:
        changed = states.filter((F.col("known_from") >= night) | (F.col("known_until") >= night))
        dates = [row[0] for row in changed.select(partition).distinct().collect()]
        if dates:
            merge_rows(
                spark,
                changed,
                config,
                contract.name,
                contract.keys,
                partition_by=contract.partition_by,
                target_filter=f"t.`{partition}` IN ({sql_dates(dates)})",
            )
        return
    # The touched orders' scans arrived in the window, and a delivery is never timed before its
    # order's first scan: their stored states sit in partitions from there on (less the lateness
    # bound, as silver.tracking_events' stored scans).
    window_start = dt.date.fromisoformat(run_date) - dt.timedelta(days=SHIPMENT_WINDOW_DAYS)
    merge_changed_rows(
        spark,
        states,
        config,
        contract.name,
        contract.keys,
        partition,
        window_start - dt.timedelta(days=config.lateness_days),
        scope=touched.orders,
    )
