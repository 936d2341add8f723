"""Silver ``shipments``: one row per order with delivery milestones from tracking scans."""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

import pyspark.sql.functions as F
from pyspark.sql import DataFrame, SparkSession

from jobs.domain import DELIVERED, DELIVERY_FAILED, MILESTONE_AT, first_scan_at, milestone_rank
from jobs.lake import retractions
from jobs.lake.config import LakeConfig
from jobs.lake.contracts import load_contract
from jobs.lake.tables import arrived_between, merge_rows, read_table
from jobs.silver.orders import filter_first_arrival

# How far back the scans of a parcel still being touched can reach. Parcels travel days, not
# months; bounding it keeps the nightly cost proportional to the day, not to the history.
SHIPMENT_WINDOW_DAYS = 45


def build_shipments(scans_df: DataFrame) -> DataFrame:
    """Bronze tracking scans (all scans of the orders concerned) -> one milestone row per order."""
    contract = load_contract("silver.shipments")
    scans = filter_first_arrival(scans_df, "scan_id")
    # A tie on scan time is broken by journey order (jobs.domain.MILESTONE_RANK), not by file order.
    ordered = scans.withColumn("_rank", milestone_rank(F.col("event")))
    # The delivered scan's own arrival date too: the night the lake learned of the delivery.
    delivered_first = F.min(F.when(F.col("event") == DELIVERED, F.struct("scan_at", "_ingest_date")))
    shipments = ordered.groupBy("order_id").agg(
        F.min_by("carrier", F.struct("scan_at", "_rank")).alias("carrier"),
        *[
            first_scan_at(milestone, F.col("event"), F.col("scan_at")).alias(column)
            for milestone, column in MILESTONE_AT.items()
            if milestone != DELIVERED
        ],
        delivered_first.getField("scan_at").alias(MILESTONE_AT[DELIVERED]),
        F.count(F.when(F.col("event") == "arrived_hub", 1)).alias("hubs_passed"),
        F.count(F.when(F.col("event") == DELIVERY_FAILED, 1)).alias("failed_attempts"),
        F.max_by("event", F.struct("scan_at", "_rank")).alias("last_event"),
        F.max("scan_at").alias("last_event_at"),
        F.count("*").alias("scans"),
        F.min("_ingest_date").alias("first_ingest_date"),
        delivered_first.getField("_ingest_date").alias("delivered_ingest_date"),
    )
    return shipments.select(*[F.col(c.name).cast(c.type) for c in contract.columns])


class TouchedScans(NamedTuple):
    """The orders a night's scans touch, and every bronze scan of theirs in the window: the one
    read of the window both ``silver.tracking_events`` and ``silver.shipments`` recompute from."""

    orders: DataFrame  # distinct ``order_id``
    scans: DataFrame  # bronze rows (checkpointed: read once, used by both tables)
    any_retracted: bool  # a rerun after a correction took scans back (from these orders)


def touched_scans(spark: SparkSession, config: LakeConfig, run_date: str, through: str | None = None) -> TouchedScans:
    """The orders that received a scan on the nights ``run_date`` to ``through``, plus those whose
    scans those nights retracted (``ops.silver_retractions``: recorded by
    :func:`jobs.silver.tracking_events.run` before it calls this), with all their bronze scans of
    the last ``SHIPMENT_WINDOW_DAYS`` of arrivals."""
    bronze = read_table(spark, config, "bronze.tracking_scans")
    touched = bronze.filter(arrived_between(F.col("_ingest_date"), run_date, through)).select("order_id")
    retracted = retractions.of_nights(spark, config, run_date, through).filter(
        F.col("table_name") == "silver.tracking_events"
    )
    any_retracted = not retracted.isEmpty()
    if any_retracted:
        touched = touched.unionByName(retracted.select("order_id"))
    touched = touched.distinct()
    window_start = dt.date.fromisoformat(run_date) - dt.timedelta(days=SHIPMENT_WINDOW_DAYS)
    recent = bronze.filter(F.col("_ingest_date") >= F.lit(window_start))
    # A few scans per touched order: checkpointed, so the window is read once for both tables.
    scans = recent.join(touched, "order_id", "left_semi").localCheckpoint()
    return TouchedScans(touched, scans, any_retracted)


def run(
    spark: SparkSession,
    config: LakeConfig,
    run_date: str,
    through: str | None = None,
    touched: TouchedScans | None = None,
) -> None:
    """Rebuild the shipments of every order that received a scan on ``run_date``.

    Each touched order is recomputed from all its scans present in bronze, so the row is a
    function of the scans, whatever order the dates were run in. Runs after
    :func:`jobs.silver.tracking_events.run`: the orders of the scans it retracted tonight are
    recomputed too, and an order with no scan left loses its row.

    Args:
        touched: :func:`touched_scans` of these nights, when the caller has them already
            (:func:`jobs.silver.tracking_events.run` returns them); read here otherwise.
    """
    touched = touched or touched_scans(spark, config, run_date, through)
    contract = load_contract("silver.shipments")
    shipments = build_shipments(touched.scans)
    if not touched.any_retracted:  # the usual night: no order can have lost all its scans
        merge_rows(spark, shipments, config, contract.name, contract.keys)
        return
    # An order whose scans were all retracted has no row any more: its stored row is deleted.
    retractions.merge_deleting_the_rest(spark, config, contract.name, shipments, touched.orders)
