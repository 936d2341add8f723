"""The two feature tables built on lane statistics, built together: ``features.order_eta`` and
``features.shipment_scan``.

Both describe a lane and carrier by the deliveries the lake knew at the end of a stats date
(:mod:`jobs.features.lane_stats`), and on a night both need the statistics of the same few dates
(mostly the day before the run date). Built alone, each computes them from the whole delivery
history: measured on the large bench (2.27 M scans), ~13 s each on its last night and ~47 s
each for its 59-date history import. Here the targets of both tables are found first, the
statistics of the union of their stats dates are computed once (a local checkpoint: a row per
date, lane and carrier), then both tables are merged at the same time.
"""

from __future__ import annotations

import datetime as dt
from functools import partial

from pyspark.sql import DataFrame, SparkSession

from jobs.features import order_eta, shipment_scan
from jobs.features.lane_stats import LaneStats, deliveries_known, lane_stats, lane_transit_stats, states_in_window
from jobs.lake.config import LakeConfig
from jobs.lake.spark import in_parallel, run_concurrently
from jobs.lake.tables import read_table


def shared_lane_stats(
    spark: SparkSession, orders_df: DataFrame, delivery_states_df: DataFrame, dates: list[dt.date]
) -> LaneStats | None:
    """The lane statistics of ``dates`` from ``silver.delivery_states``, computed once (None
    without dates: nothing to build)."""
    if not dates:
        return None
    dates_df = spark.createDataFrame([(d,) for d in dates], "stats_date date")
    states = states_in_window(delivery_states_df, dates)
    per_lane = lane_transit_stats(deliveries_known(orders_df, states, dates_df)).localCheckpoint()
    return lane_stats(per_lane)


def run(spark: SparkSession, config: LakeConfig, run_date: str, through: str | None = None) -> dict[str, int]:
    """Merge the ``features.order_eta`` and ``features.shipment_scan`` rows that the nights
    ``run_date`` to ``through`` create or can change; return the rows merged per table."""
    orders = read_table(spark, config, "silver.orders")
    events = read_table(spark, config, "silver.tracking_events")
    targets = in_parallel(
        {
            "orders": lambda: order_eta.target_orders(orders, run_date, through).localCheckpoint(),
            "scans": lambda: shipment_scan.target_scans(
                orders, events, run_date, config.lateness_days
            ).localCheckpoint(),
        }
    )
    wanted = order_eta.stats_dates(targets["orders"]).unionByName(shipment_scan.stats_dates(targets["scans"], orders))
    dates = sorted(row.stats_date for row in wanted.distinct().collect())
    stats = shared_lane_stats(spark, orders, read_table(spark, config, "silver.delivery_states"), dates)
    return run_concurrently(
        spark,
        {
            "order_eta_rows": partial(
                order_eta.run, config=config, run_date=run_date, through=through, targets=targets["orders"], stats=stats
            ),
            "shipment_scan_rows": partial(
                shipment_scan.run,
                config=config,
                run_date=run_date,
                through=through,
                targets=targets["scans"],
                lane_stats_df=None if stats is None else stats.lane_carrier,
            ),
        },
    )
