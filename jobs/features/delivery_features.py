"""The two feature tables built on lane statistics, built together: ``features.order_eta`` and
``features.shipment_scan``.

Both describe a lane and carrier by the deliveries the lake knew at the end of a stats date
(:mod:`jobs.features.lane_stats`), and on a night both need the statistics of the same few dates
(mostly the day before the run date). Built alone, each computes them from the whole delivery
history: measured on the large bench (2.27 M scans), ~13 s each on its last night and ~47 s
each for its 59-date history import. Here the targets of both tables are found first, the
statistics of the union of their stats dates are found once (a local checkpoint: a row per
date, lane and carrier), then both tables are merged at the same time.

The statistics of a stats date never change once that date's night has run (they count what the
lake knew by its end, and silver keeps every fact's arrival date), so they are kept in
``features.lane_stats``: a night computes only the dates not stored yet, mostly the day before its
run date, and reads the others (the late orders' and scans' earlier dates). Computing a date costs
the 90 days of deliveries before it, whatever the day brought; measured on the large bench's last
night, its four stats dates took 3.1-4.4 s warm. A night run for date R (a backfill, a rerun after
a corrected landing file) brings arrivals that can change the dates from R on: it deletes those
first, and they are computed again when a night needs them.
"""

from __future__ import annotations

import datetime as dt
from functools import partial

import pyspark.sql.functions as F
from pyspark.sql import DataFrame, SparkSession

from jobs.features import order_eta, shipment_scan
from jobs.features.lane_stats import LaneStats, deliveries_known, lane_stats, lane_transit_stats, states_in_window
from jobs.lake.config import LakeConfig
from jobs.lake.contracts import load_contract
from jobs.lake.spark import in_parallel, run_concurrently
from jobs.lake.tables import delete_where, later_as_of_dates, read_table, replace_dates, sql_dates

STATS_TABLE = "features.lane_stats"


def _computed_lane_stats(
    spark: SparkSession, orders_df: DataFrame, delivery_states_df: DataFrame, dates: list[dt.date]
) -> DataFrame:
    """:func:`lane_transit_stats` of ``dates`` (the rows of ``features.lane_stats``)."""
    dates_df = spark.createDataFrame([(d,) for d in dates], "stats_date date")
    states = states_in_window(delivery_states_df, dates)
    return lane_transit_stats(deliveries_known(orders_df, states, dates_df))


def stored_lane_stats(
    spark: SparkSession, config: LakeConfig, orders_df: DataFrame, dates: list[dt.date], run_date: str, last: str
) -> LaneStats | None:
    """The lane statistics of ``dates``: those ``features.lane_stats`` holds, the others computed
    and stored (None without dates).

    First the stored dates from ``run_date`` on are deleted: the nights ``run_date`` to ``last``
    bring the arrivals that can change them (none are stored on a night in order). A computed date
    is stored only up to ``last``: a later date's night has not brought its arrivals yet.
    """
    if not dates:
        return None
    contract = load_contract(STATS_TABLE)
    first_night, last_night = dt.date.fromisoformat(run_date), dt.date.fromisoformat(last)
    # One metadata-sized query lists both the stale dates and the stored ones wanted.
    since = min(min(dates), first_night) - dt.timedelta(days=1)
    held = [
        dt.date.fromisoformat(d)
        for d in later_as_of_dates(spark, config, STATS_TABLE, "stats_date", since.isoformat(), None)
    ]
    stale = [d for d in held if d >= first_night]
    if stale:
        delete_where(spark, config, STATS_TABLE, f"stats_date IN ({sql_dates(stale)})")
    stored = sorted(set(held) & set(dates) - set(stale))
    missing = [d for d in dates if d not in stored]
    parts = []
    if stored:
        parts.append(read_table(spark, config, STATS_TABLE).filter(F.col("stats_date").isin(*stored)))
    if missing:
        computed = (
            _computed_lane_stats(spark, orders_df, read_table(spark, config, "silver.delivery_states"), missing)
            .select(*[F.col(c.name).cast(c.type) for c in contract.columns])
            .localCheckpoint()
        )
        final_dates = [d for d in missing if d <= last_night]
        if final_dates:
            rows = computed.filter(F.col("stats_date") <= F.lit(last_night))
            replace_dates(rows, config, STATS_TABLE, "stats_date", final_dates)
        parts.append(computed)
    per_lane = parts[0] if len(parts) == 1 else parts[0].unionByName(parts[1])
    # Read by the three groupings of both tables: one pass over the stored rows.
    return lane_stats(per_lane.localCheckpoint() if stored else per_lane)


def run(spark: SparkSession, config: LakeConfig, run_date: str, through: str | None = None) -> dict[str, int]:
    """Merge the ``features.order_eta`` and ``features.shipment_scan`` rows that the nights
    ``run_date`` to ``through`` create or can change; return the rows merged per table."""
    orders = read_table(spark, config, "silver.orders")
    events = read_table(spark, config, "silver.tracking_events")
    targets = in_parallel(
        {
            "orders": lambda: order_eta.target_orders(orders, run_date, through).localCheckpoint(),
            # The target scans with their orders' other scans: one pass over the scans for both.
            "order_scans": lambda: shipment_scan.target_order_scans(
                orders, events, run_date, config.lateness_days, through
            ).localCheckpoint(),
        }
    )
    target_scans = shipment_scan.targets_of(targets["order_scans"])
    wanted = order_eta.stats_dates(targets["orders"]).unionByName(shipment_scan.stats_dates(target_scans, orders))
    dates = sorted(row.stats_date for row in wanted.distinct().collect())
    stats = stored_lane_stats(spark, config, orders, dates, run_date, through or run_date)
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
                order_scans=targets["order_scans"],
                lane_stats_df=None if stats is None else stats.lane_carrier,
            ),
        },
    )
