"""Feature table ``features.customer_daily``: what was known about each customer at the end of a day.

Point-in-time rule: a fact counts for as-of date D only if it happened by the end of D *and* had
arrived in the lake by D (``first_ingest_date <= D``): a late event dated D that arrived on D+2 is
invisible as of D, exactly as it was on the night of D. Interactions count only when the raw
event carried the ``customer_id``: device-linked anonymous activity is attributed when a link
arrives, possibly later, and would leak.

Many as-of dates are built in one pass (a history import asks for months of them): each fact is
paired with the as-of dates it counts for (a range join against the small, broadcast list of
dates), then aggregated per customer and date. The cost grows with facts x the dates each one is
visible in, not with dates x the whole history.

Deliveries are read from ``silver.delivery_states`` (a few rows per delivered order: what the lake
knew of it from each day on), not from the scans; of the scans only the failed attempts are read,
pruned to the 90 days they count in. Sessions are counted from ``silver.session_starts`` (the
visits that open one, with the day an earlier visit's arrival stops them), not by windowing every
visit of the 35 days.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

import pyspark.sql.functions as F
from pyspark.sql import Column, DataFrame, SparkSession

from jobs.domain import DELIVERY_FAILED, customer_key, days_late, is_late
from jobs.features.lane_stats import states_in_window
from jobs.lake.config import LakeConfig
from jobs.lake.contracts import load_contract
from jobs.lake.tables import later_as_of_dates, nights, read_table, replace_dates

log = logging.getLogger(__name__)

ACTIVE_DAYS = 365  # a customer with no order in a year is gone, not churning
DELIVERY_DAYS = 90  # the window of the delivery features (deliveries_90d ... failed_attempts_90d)
AS_OF_CHUNK = 62  # as-of dates per write on a history import: bounds one plan's shuffle size
SESSION_WINDOW_DAYS = 35  # sessions_7d + sessions_prev_28d


def _as_of() -> Column:
    """The as-of date each fact is paired with (:func:`_known_as_of`)."""
    return F.col("as_of_date")


def _within(date_col: Column | str, days: int, as_of: Column | None = None) -> Column:
    """``date_col`` in the ``days`` days ending with ``as_of`` (``(as_of - days, as_of]``)."""
    col = F.col(date_col) if isinstance(date_col, str) else date_col
    as_of = _as_of() if as_of is None else as_of
    return (col > F.date_sub(as_of, days)) & (col <= as_of)


def _is_known(time_col: str) -> Column:
    """The fact at ``time_col`` is known as of the paired as-of date D: it happened by the end of
    D and arrived in the lake by D (``first_ingest_date``)."""
    return (F.col("first_ingest_date") <= _as_of()) & (F.col(time_col) < F.to_timestamp(F.date_add(_as_of(), 1)))


def _known_as_of(
    facts: DataFrame, as_of_dates: DataFrame, time_col: str, date_col: str, days: int | None = None
) -> DataFrame:
    """Each fact paired with every as-of date it was known on (and, with ``days``, falls in the window)."""
    condition = _is_known(time_col)
    if days is not None:
        condition &= F.col(date_col) > F.date_sub(_as_of(), days)
    return facts.join(F.broadcast(as_of_dates), condition)


def _order_features(known_orders: DataFrame) -> DataFrame:
    def count_in(days: int) -> Column:
        return F.count(F.when(_within("order_date", days), 1)).cast("int")

    def amount_in(days: int) -> Column:
        return F.round(F.coalesce(F.sum(F.when(_within("order_date", days), F.col("amount"))), F.lit(0)), 2)

    return (
        known_orders.groupBy("customer_key", "as_of_date")
        .agg(
            F.max("order_date").alias("_last"),
            F.min("order_date").alias("_first"),
            F.countDistinct("order_date").cast("int").alias("purchase_days_total"),
            *[count_in(d).alias(f"orders_{d}d") for d in (30, 90, 365)],
            *[amount_in(d).cast("double").alias(f"amount_{d}d") for d in (30, 90, 365)],
        )
        .filter(F.col("_last") > F.date_sub(_as_of(), ACTIVE_DAYS))
        .withColumn("days_since_last_order", F.datediff(_as_of(), "_last"))
        .withColumn("tenure_days", F.datediff(_as_of(), "_first"))
        .drop("_last", "_first")
    )


def _delivery_features(
    orders: DataFrame, failed_scans: DataFrame, delivery_states: DataFrame, as_of_dates: DataFrame
) -> tuple[DataFrame, DataFrame]:
    """The deliveries' and the failed attempts' features per ``customer_key, as_of_date``."""
    # A delivery or a failed attempt counts for its order's customer on the dates the order is
    # known: its (order, as-of date) rows are joined to the orders by id, then filtered. Joined
    # to the orders already paired with every as-of date (the range join of _order_features,
    # evaluated again for each), 30 as-of dates of the large bench took 67 s against 56 s.
    owners = orders.select(
        "order_id",
        customer_key(F.col("customer_id")).alias("customer_key"),
        "promised_delivery_date",
        "first_ingest_date",
        "placed_at",
    )

    def with_owner(facts: DataFrame) -> DataFrame:
        return facts.join(owners, "order_id").filter(_is_known("placed_at"))

    # A delivery counts on D from its state known on D (silver.delivery_states: the first *known*
    # delivered scan, so a resent or late-arriving earlier delivered scan moves nothing before it
    # is known): the state's delivered_date is that of the first delivered scan known by D.
    delivered_in_window = (
        (F.col("known_from") <= _as_of())
        & (F.col("known_until").isNull() | (F.col("known_until") > _as_of()))
        & _within("delivered_date", DELIVERY_DAYS)
    )
    delivered = (
        delivery_states.select("order_id", "known_from", "known_until", "delivered_date")
        .join(F.broadcast(as_of_dates), delivered_in_window)
        .transform(with_owner)
        .withColumn("_days_late", days_late(F.col("delivered_date"), F.col("promised_delivery_date")))
        .groupBy("customer_key", "as_of_date")
        .agg(
            F.count("*").cast("int").alias("deliveries_90d"),
            F.count(F.when(is_late(F.col("delivered_date"), F.col("promised_delivery_date")), 1))
            .cast("int")
            .alias("late_deliveries_90d"),
            F.round(F.avg("_days_late"), 6).alias("mean_days_late_90d"),
        )
    )
    failed = (
        _known_as_of(
            failed_scans.withColumn("_scan_date", F.to_date("scan_at")),
            as_of_dates,
            "scan_at",
            "_scan_date",
            DELIVERY_DAYS,
        )
        # The scan's arrival was checked; the order's is checked against the same as-of date next.
        .drop("first_ingest_date")
        .transform(with_owner)
        .groupBy("customer_key", "as_of_date")
        .agg(F.count("*").cast("int").alias("failed_attempts_90d"))
    )
    return delivered, failed


def _interaction_features(
    interactions: DataFrame, session_starts: DataFrame, as_of_dates: DataFrame
) -> tuple[DataFrame, DataFrame]:
    """The support contacts' and reviews' features, and the sessions', per ``customer_key, as_of_date``."""
    kind = F.col("event")
    counted = (
        _known_as_of(
            interactions.filter(kind.isin("support_contact", "review")), as_of_dates, "event_at", "event_date", 365
        )
        .groupBy("customer_key", "as_of_date")
        .agg(
            F.count(F.when((kind == "support_contact") & _within("event_date", 90), 1))
            .cast("int")
            .alias("support_contacts_90d"),
            F.count(F.when(kind == "review", 1)).cast("int").alias("reviews_365d"),
            F.round(F.avg(F.when(kind == "review", F.col("rating"))), 6).alias("mean_review_rating_365d"),
        )
    )
    # A visit opens a session as of D from its arrival until an earlier visit within the gap
    # arrives (silver.session_starts' blocked_from).
    starts = _known_as_of(session_starts, as_of_dates, "event_at", "event_date", SESSION_WINDOW_DAYS).filter(
        F.col("blocked_from").isNull() | (F.col("blocked_from") > _as_of())
    )
    sessions = starts.groupBy("customer_key", "as_of_date").agg(
        F.count(F.when(_within("event_date", 7), 1)).cast("int").alias("sessions_7d"),
        F.count(F.when(_within("event_date", 28, F.date_sub(_as_of(), 7)), 1)).cast("int").alias("sessions_prev_28d"),
    )
    return counted, sessions


def build_customer_daily(
    orders_df: DataFrame,
    interactions_df: DataFrame,
    session_starts_df: DataFrame,
    tracking_events_df: DataFrame,
    delivery_states_df: DataFrame,
    as_of_dates: str | Sequence[str],
) -> DataFrame:
    """Silver orders, interactions, session starts, tracking events and delivery states ->
    ``features.customer_daily`` rows as of dates.

    Args:
        orders_df, interactions_df, session_starts_df, tracking_events_df, delivery_states_df: the
            silver tables (any superset of what was known as of the dates; the point-in-time
            filters are applied here). Of the interactions only support contacts and reviews are
            read (the sessions come from the starts).
            Of the scans only ``delivery_failed`` ones are read (the deliveries come from the
            states), so the caller may pass just those.
        as_of_dates: one ``YYYY-MM-DD`` or several; rows describe the end of each day.
    """
    contract = load_contract("features.customer_daily")
    days = sorted({dt.date.fromisoformat(d) for d in ([as_of_dates] if isinstance(as_of_dates, str) else as_of_dates)})
    if not days:
        raise ValueError("build_customer_daily: no as-of date")
    first, last = days[0], days[-1]
    dates = orders_df.sparkSession.createDataFrame([(d,) for d in days], "as_of_date date")
    orders = orders_df.filter(F.col("first_ingest_date") <= F.lit(last))
    known_orders = _known_as_of(orders, dates, "placed_at", "order_date").withColumn(
        "customer_key", customer_key(F.col("customer_id"))
    )
    # Literal bounds prune the scans' and the states' date partitions.
    failed_scans = tracking_events_df.filter(
        (F.col("event") == DELIVERY_FAILED)
        & (F.col("event_date") > F.lit(first - dt.timedelta(days=DELIVERY_DAYS)))
        & (F.col("first_ingest_date") <= F.lit(last))
    )
    states = states_in_window(delivery_states_df, days, DELIVERY_DAYS)
    # Literal bounds prune the interactions' event_date partitions before the range join.
    interactions = interactions_df.filter(
        (F.col("event_date") > F.lit(first - dt.timedelta(days=ACTIVE_DAYS)))
        & (F.col("event_date") <= F.lit(last))
        & (F.col("first_ingest_date") <= F.lit(last))
        # ``is_identified`` (a customer_id) is a partition column: the anonymous files are not read.
        & F.col("is_identified")
    ).withColumn("customer_key", customer_key(F.col("customer_id")))
    session_starts = session_starts_df.filter(
        (F.col("event_date") > F.lit(first - dt.timedelta(days=SESSION_WINDOW_DAYS)))
        & (F.col("event_date") <= F.lit(last))
        & (F.col("first_ingest_date") <= F.lit(last))
    )
    zero_if_none = [
        "deliveries_90d",
        "late_deliveries_90d",
        "failed_attempts_90d",
        "support_contacts_90d",
        "reviews_365d",
        "sessions_7d",
        "sessions_prev_28d",
    ]
    keys = ["customer_key", "as_of_date"]
    delivered, failed = _delivery_features(orders, failed_scans, states, dates)
    counted, sessions = _interaction_features(interactions, session_starts, dates)
    # Each joined to the customers' order rows on its own, all clustered by the same keys: a
    # full join of two of them first lost that clustering (its keys are either side's), and
    # shuffled its result once more.
    features = (
        _order_features(known_orders)
        .join(delivered, keys, "left")
        .join(failed, keys, "left")
        .join(counted, keys, "left")
        .join(sessions, keys, "left")
        .fillna(0, zero_if_none)
        .withColumn(
            "contact_rate_90d",
            F.round(F.when(F.col("orders_90d") > 0, F.col("support_contacts_90d") / F.col("orders_90d")), 6),
        )
        .withColumn(
            "engagement_trend",
            F.round((F.col("sessions_7d") + 1) / (F.col("sessions_prev_28d") / 4 + 1), 6),
        )
    )
    return features.select(*[F.col(c.name).cast(c.type) for c in contract.columns])


def run(spark: SparkSession, config: LakeConfig, run_date: str, through: str | None = None) -> list[str]:
    """Write the partition ``run_date`` and rebuild every later partition already written.

    In nightly order there is no later partition. When a date runs after later ones (backfill,
    out-of-order rerun), its arrivals were missing from those partitions, which are rebuilt.
    """
    contract = load_contract("features.customer_daily")
    last = through or run_date
    later = later_as_of_dates(spark, config, contract.name, "as_of_date", last, None)
    dates = [*nights(run_date, last), *later]
    if later:
        log.info("customer_daily %s: also rebuilding %d later partition(s)", run_date, len(later))
    orders = read_table(spark, config, "silver.orders")
    interactions = read_table(spark, config, "silver.interactions")
    starts = read_table(spark, config, "silver.session_starts")
    events = read_table(spark, config, "silver.tracking_events")
    states = read_table(spark, config, "silver.delivery_states")
    for chunk in range(0, len(dates), AS_OF_CHUNK):
        chunk_dates = dates[chunk : chunk + AS_OF_CHUNK]
        rows = build_customer_daily(orders, interactions, starts, events, states, chunk_dates)
        replace_dates(rows, config, contract.name, "as_of_date", chunk_dates, contract.partition_by)
    return dates
