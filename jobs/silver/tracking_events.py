"""Silver ``tracking_events``: one row per deduplicated carrier scan, in journey order.

* Deduplication: the first arrival of a ``scan_id`` wins (``filter_first_arrival``).
* ``seq``: 1-based position among the order's scans ordered by ``scan_at``, then milestone rank
  (``jobs.domain.MILESTONE_RANK``: a tie on time is broken by journey order), then
  ``scan_id``.
* ``is_out_of_order_arrival``: the scan's ``first_ingest_date`` is later than the earliest
  ``first_ingest_date`` of any scan of the same order with a strictly greater ``scan_at``. In
  words: a scan timed after this one had already arrived on an earlier night. Arrival is known to
  the day only, so scans arriving on the same night are never out of order; a scan with no
  later-timed scan is not either (false, never null).

A late scan changes the ``seq`` of every scan timed after it (and may flag itself), so the nightly
run recomputes all scans of the orders touched by the night's arrivals, exactly like
``silver.shipments``: each row is a function of all the order's scans present, and a MERGE with an
unconditional update converges whatever order the nights ran in.
"""

from __future__ import annotations

import datetime as dt

import pyspark.sql.functions as F
from pyspark.sql import DataFrame, SparkSession, Window

from jobs.domain import milestone_rank, oldest_arrival_date
from jobs.lake import retractions
from jobs.lake.config import LakeConfig
from jobs.lake.contracts import load_contract
from jobs.lake.tables import arrived_between, first_arrived, merge_changed_rows, read_table, read_table_or_empty
from jobs.silver.orders import filter_first_arrival
from jobs.silver.shipments import SHIPMENT_WINDOW_DAYS, TouchedScans, touched_scans


def build_tracking_events(scans_df: DataFrame) -> DataFrame:
    """Bronze tracking scans (all scans of the orders concerned) -> one row per scan.

    Args:
        scans_df: bronze ``tracking_scans`` rows, copies of a scan on several dates allowed.
            Every scan of an order must be present: ``seq`` and the out-of-order flag are
            relative to the order's other scans.

    Returns:
        Rows of contract ``silver.tracking_events``.
    """
    contract = load_contract("silver.tracking_events")
    scans = filter_first_arrival(scans_df, "scan_id")
    journey = Window.partitionBy("order_id").orderBy("scan_at", "_rank", "scan_id")
    # Frame = the order's scans strictly later in time (microsecond offsets on the scan time).
    later = Window.partitionBy("order_id").orderBy(F.unix_micros("scan_at")).rangeBetween(1, Window.unboundedFollowing)
    events = (
        scans.withColumn("_rank", milestone_rank(F.col("event")))
        .withColumn("seq", F.row_number().over(journey))
        .withColumn("_later_first_arrival", F.min("_ingest_date").over(later))
        .withColumn(
            "is_out_of_order_arrival",
            F.coalesce(F.col("_ingest_date") > F.col("_later_first_arrival"), F.lit(False)),
        )
        .withColumn("first_ingest_date", F.col("_ingest_date"))
        .withColumn("event_date", F.to_date("scan_at"))
    )
    return events.select(*[F.col(c.name).cast(c.type) for c in contract.columns])


def run(spark: SparkSession, config: LakeConfig, run_date: str, through: str | None = None) -> TouchedScans:
    """Recompute every scan of the orders that received a scan on ``run_date``; return those
    orders and their scans (:func:`jobs.silver.shipments.touched_scans`) for ``silver.shipments``.

    Scans are looked up as far back as ``SHIPMENT_WINDOW_DAYS`` of arrivals (the same bound as
    ``silver.shipments``; arrivals after ``run_date`` are included so that a rerun of an old date
    never writes a stale view of an order). A rerun after the night's files were corrected
    retracts the scans they no longer carry (recorded in ``ops.silver_retractions`` for
    ``silver.shipments``): their orders are recomputed too, and a scan left in no file deleted.
    """
    contract = load_contract("silver.tracking_events")
    bronze = read_table(spark, config, "bronze.tracking_scans")
    arrived = bronze.filter(arrived_between(F.col("_ingest_date"), run_date, through))
    window_start = dt.date.fromisoformat(run_date) - dt.timedelta(days=SHIPMENT_WINDOW_DAYS)
    # Stored scans of these orders arrived in the window, so their event dates are at most the
    # lateness bound older.
    (partition,) = contract.partition_by
    stored_since = window_start - dt.timedelta(days=config.lateness_days)
    stored = read_table_or_empty(spark, config, contract.name, contract.spark_schema())
    owned = first_arrived(stored, run_date, through, oldest_arrival_date(run_date, config.lateness_days))
    retracted = []
    if retractions.may_hold(config, contract.name, "first_ingest_date", run_date, through):
        retracted = [
            row.asDict()
            for row in retractions.orphans(owned, arrived, "scan_id")
            .select(
                F.col("first_ingest_date").alias("night"),
                F.col("scan_id").alias("row_key"),
                F.lit(None).cast("string").alias("customer_key"),
                "order_id",
                F.col("event_date").alias("row_date"),
            )
            .collect()
        ]
    if retracted:
        retractions.record(spark, config, contract.name, retracted)
    # The touched orders' scans as silver.shipments recomputes them (one read for both tables):
    # tonight's arrivals, plus the orders of every scan these nights retracted (tonight's, just
    # recorded, and a killed earlier run's: recomputing an unchanged order writes nothing).
    touched = touched_scans(spark, config, run_date, through)
    events = build_tracking_events(touched.scans)
    # Most recomputed scans are unchanged (only a late scan moves the seq of those after it):
    # only changed rows are merged, into their own event-date partitions.
    merge_changed_rows(
        spark,
        events,
        config,
        contract.name,
        contract.keys,
        partition,
        stored_since,
        scope=touched.orders if touched.any_retracted else None,
    )
    return touched
