"""ETA features: what is known about an order at placement, and its realised delivery time."""

from __future__ import annotations

import datetime as dt

import pyspark.sql.functions as F
from pyspark.sql import Column, DataFrame, SparkSession

from jobs.domain import customer_key
from jobs.features.lane_stats import LaneStats, deliveries_known, lane_stats, lane_transit_stats
from jobs.lake.config import LakeConfig
from jobs.lake.contracts import load_contract
from jobs.lake.tables import (
    delete_where,
    merge_rows,
    nights,
    read_table,
    replace_where,
    sql_dates,
    table_exists,
)


def with_placement_features(orders_df: DataFrame) -> DataFrame:
    """Add calendar features of the placement time (weekday 1=Mon..7=Sun, UTC hour)."""
    return (
        orders_df.withColumn("placed_weekday", F.dayofweek("placed_at"))
        .withColumn("placed_weekday", ((F.col("placed_weekday") + 5) % 7) + 1)
        .withColumn("placed_hour", F.hour("placed_at"))
    )


# Feature column of features.order_eta -> the statistic it takes, per grouping (jobs.features.lane_stats).
_LANE_CARRIER_FEATURES = {
    "lane_carrier_deliveries_90d": "deliveries",
    "lane_carrier_transit_days_mean": "transit_days_mean",
    "lane_carrier_transit_days_p50": "transit_days_p50",
    "lane_carrier_transit_days_p90": "transit_days_p90",
    "lane_carrier_on_time_rate": "on_time_rate",
    "lane_carrier_days_late_mean": "days_late_mean",
}
_CARRIER_FEATURES = {"carrier_deliveries_90d": "deliveries", "carrier_transit_days_mean": "transit_days_mean"}
_LANE_FEATURES = {"lane_deliveries_90d": "deliveries", "lane_transit_days_mean": "transit_days_mean"}
# No delivery in the window is a count of 0, not an unknown; the means stay null.
_COUNT_FEATURES = ["lane_carrier_deliveries_90d", "carrier_deliveries_90d", "lane_deliveries_90d"]


def _renamed(stats_df: DataFrame, keys: list[str], features: dict[str, str]) -> DataFrame:
    return stats_df.select(*keys, *[F.col(source).alias(name) for name, source in features.items()])


def _stats_date() -> Column:
    """An order's ``stats_date``: the day before its (UTC) placement day."""
    return F.date_sub(F.to_date("placed_at"), 1)


def stats_dates(target_orders_df: DataFrame) -> DataFrame:
    """The ``stats_date`` of each target order (:func:`_stats_date`)."""
    return target_orders_df.select(_stats_date().alias("stats_date"))


def build_order_eta_features(
    target_orders_df: DataFrame,
    orders_df: DataFrame,
    delivery_states_df: DataFrame | None = None,
    stats: LaneStats | None = None,
) -> DataFrame:
    """Orders -> rows of ``features.order_eta``: the order at placement plus its lane's recent history.

    The lane statistics are those known at the end of the day before placement (``stats_date =
    to_date(placed_at) - 1``), not at ``as_of_date``: an order that reaches the lake late gets the
    row it would have had on time, and scoring at checkout (when only the previous night's tables
    exist) sees the same numbers as training. A row is therefore a function of the order and of
    history known by its stats date only: building it again later, from a bigger lake, gives the
    same row (the contract's "never changes once written").

    Args:
        target_orders_df: the ``silver.orders`` rows to build (e.g. those whose
            ``first_ingest_date`` is the run date); unique ``order_id``.
        orders_df: all ``silver.orders`` rows (history; may include the targets and later orders,
            which are ignored by the known-by rule).
        delivery_states_df: ``silver.delivery_states`` rows (history; states known later are
            ignored by the known-by rule); needed when ``stats`` is not given.
        stats: the lane statistics of (at least) the targets' :func:`stats_dates`, when the caller
            computed them already (:mod:`jobs.features.delivery_features`); else computed here
            from ``orders_df`` and ``delivery_states_df``.

    Returns:
        The ``features.order_eta`` columns in contract order. ``as_of_date`` is the order's
        ``first_ingest_date``; ``customer_key`` comes from ``customer_id``
        (:func:`jobs.domain.customer_key`). Counts are 0 without history, means null.
    """
    contract = load_contract("features.order_eta")
    targets = target_orders_df.withColumn("stats_date", _stats_date())
    if stats is None:
        if delivery_states_df is None:
            raise ValueError("build_order_eta_features needs the lane statistics or the delivery states")
        stats = lane_stats(lane_transit_stats(deliveries_known(orders_df, delivery_states_df, stats_dates(targets))))
    lane_carrier = _renamed(stats.lane_carrier, ["stats_date", "lane", "carrier"], _LANE_CARRIER_FEATURES)
    carrier = _renamed(stats.carrier, ["stats_date", "carrier"], _CARRIER_FEATURES)
    lane = _renamed(stats.lane, ["stats_date", "lane"], _LANE_FEATURES)
    features = (
        targets.join(lane_carrier, ["stats_date", "lane", "carrier"], "left")
        .join(carrier, ["stats_date", "carrier"], "left")
        .join(lane, ["stats_date", "lane"], "left")
        .fillna(0, subset=_COUNT_FEATURES)
        .transform(with_placement_features)
        .withColumn("as_of_date", F.col("first_ingest_date"))
        .withColumn("customer_key", customer_key(F.col("customer_id")))
    )
    return features.select(*[F.col(c.name).cast(c.type) for c in contract.columns])


def target_orders(orders_df: DataFrame, run_date: str, through: str | None = None) -> DataFrame:
    """The ``silver.orders`` rows whose ``features.order_eta`` row ``run_date``'s arrivals create
    or can change: the orders first arrived then (to ``through``) or later, and orders placed
    after it (their lane statistics, as of the day before placement, include its arrivals).

    Orders first arrived later exist only when dates run out of order, or when this night's rerun
    retracted its copy of an order (a corrected file) and a later night's copy became the record:
    its row must then be the later night's again, and only this run knows (measured: a corrected
    night rerun after the later night left that order without a feature row). In nightly order
    both sets beyond tonight's arrivals are empty."""
    first = F.lit(run_date).cast("date")
    last = F.lit(through or run_date).cast("date")
    return orders_df.filter((F.col("first_ingest_date") >= first) | (F.col("order_date") > last))


def run(
    spark: SparkSession,
    config: LakeConfig,
    run_date: str,
    through: str | None = None,
    targets: DataFrame | None = None,
    stats: LaneStats | None = None,
) -> int:
    """Merge the ``features.order_eta`` rows of :func:`target_orders`; return the rows merged.

    ``targets`` (computed once, e.g. a local checkpoint) and ``stats`` (covering their
    :func:`stats_dates`) are passed by :mod:`jobs.features.delivery_features`, which shares the
    lane statistics with ``features.shipment_scan``; alone, both are computed here.
    """
    contract = load_contract("features.order_eta")
    orders = read_table(spark, config, "silver.orders")
    states = read_table(spark, config, "silver.delivery_states")
    if targets is None:
        targets = target_orders(orders, run_date, through).localCheckpoint()
    rows, oldest = targets.agg(F.count("*"), F.min("first_ingest_date")).first()
    nights_written = sql_dates(nights(run_date, through or run_date))
    if rows:
        features = build_order_eta_features(targets, orders, states, stats)
        if oldest >= dt.date.fromisoformat(run_date):
            # The targets are every order first arrived on run_date or later, so their rows are
            # the whole slice from run_date on: replace it (a stored row no target gives is an
            # order a corrected file retracted). In nightly order that is tonight's partition
            # alone; a MERGE with a not-matched-by-source delete rewrote every partition it
            # scanned (quick bench: 985 rows inserted, 32,358 copied from 29 files).
            replace_feature_slice(features, config, contract.name, run_date)
        else:
            # An order placed after tonight that arrived before it: the ingest refuses those
            # (``from_future``), so this is for safety; a MERGE touches only these keys' rows in
            # the older partitions and leaves the rest of them alone.
            merge_feature_rows(
                spark,
                features,
                config,
                contract.name,
                oldest,
                delete_unmatched=f"t.as_of_date IN ({nights_written})",
            )
    elif table_exists(spark, config.table_path(contract.name)):
        delete_where(spark, config, contract.name, f"as_of_date IN ({nights_written})")
    return rows


def replace_feature_slice(features: DataFrame, config: LakeConfig, table: str, since: str) -> None:
    """Replace the rows of ``table`` whose ``as_of_date`` is ``since`` or later with ``features``.

    For a caller whose ``features`` hold that slice whole (every row, none outside it): only the
    partitions from ``since`` on are rewritten, none is copied.
    """
    contract = load_contract(table)
    replace_where(features, config, table, f"as_of_date >= DATE'{since}'", contract.partition_by)


def merge_feature_rows(
    spark: SparkSession,
    features: DataFrame,
    config: LakeConfig,
    table: str,
    oldest: object,
    delete_unmatched: str | None = None,
) -> None:
    """Merge ``features`` rows (``as_of_date`` partitions) whose ``as_of_date`` is ``oldest`` or later.

    A stored row's ``as_of_date`` comes from first arrivals as known when it was written: never
    before those known now (arrivals only add up). So the stored rows of these keys sit in
    partitions from ``oldest`` on: the MERGE reads those only, not the history.

    ``delete_unmatched`` (SQL over ``t``, within those partitions): the stored rows of a slice
    that ``features`` holds whole; those it no longer has are deleted.
    """
    contract = load_contract(table)
    merge_rows(
        spark,
        features,
        config,
        table,
        contract.keys,
        partition_by=contract.partition_by,
        target_filter=f"t.as_of_date >= {sql_dates([oldest])}",
        delete_unmatched=delete_unmatched,
    )
