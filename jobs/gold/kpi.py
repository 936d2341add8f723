"""Gold ``cx_kpi_daily`` and ``cx_kpi_breakdown_daily``: the daily CX KPIs, overall and by segment.

``schemas/kpis.yaml`` defines every KPI; the contracts name the columns. Both tables come from one
plan: every fact of a day (an order placed, a delivery, a failed attempt, an order in transit, a
tracking view, a support contact, a review) becomes a row carrying its order's channel, carrier and
destination region, known only if it had arrived by the as-of date of the run computing the day.
The rows are aggregated once per (day, dimension, segment), the overall segment included: the
overall rows are the daily table, the others the long breakdown (the churn cohort is a fact too: a
customer's order ``churn_horizon_days`` before the day). Two daily KPIs have no segment: active
customers, and the funnel (from ``gold.funnel_daily``; by channel in the breakdown).

The model KPIs (ETA error, interval coverage, predicted churn share) exist only after the night has
scored: :func:`run_model_kpis` fills them in from ``gold.eta_accuracy_daily`` and
``gold.churn_scores`` after the model reports; a recomputed day carries them over.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

import pyspark.sql.functions as F
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql.types import StructType

from jobs.domain import DELIVERY_FAILED, customer_key, days_late, delivery_days, is_late, is_on_time
from jobs.lake.config import LakeConfig
from jobs.lake.contracts import load_contract
from jobs.lake.small_tables import add_new_columns, read_small, replace_small, update_small
from jobs.lake.tables import later_as_of_dates, nights, read_table, read_table_or_empty

log = logging.getLogger(__name__)

DAILY = "gold.cx_kpi_daily"
BREAKDOWN = "gold.cx_kpi_breakdown_daily"
# An order still undelivered this long after its placement is lost or returned, not awaited.
IN_TRANSIT_MAX_DAYS = 60
UNATTRIBUTED = "unattributed"
NO_REASON = "none_given"
SEGMENT_DIMENSIONS = ("channel", "carrier", "region")
# The dimension of the rows counting a day's active customers (not a KPI segment).
_ACTIVE = "active_customers"
MODEL_COLUMNS = (
    "eta_predicted_deliveries",
    "eta_mae_model_days",
    "eta_mae_promise_days",
    "p10_p90_coverage",
    "predicted_churn_share",
)
# The interaction events that are KPI facts, and the column counting each.
_INTERACTION_FACTS = {"tracking_page_view": "tracking_view", "support_contact": "contact", "review": "review"}
_COUNTS = (
    "placed",
    "repeat",
    "delivered",
    "promised",
    "on_time",
    "late",
    "failed",
    "in_transit",
    "tracking_view",
    "contact",
    "review",
    "promoter",
    "detractor",
    "cohort",
    "churned",
)


@dataclass(frozen=True)
class KpiSources:
    """The tables the data KPIs read (silver, and the journey build's funnel)."""

    orders: DataFrame  # silver.orders
    shipments: DataFrame  # silver.shipments
    tracking_events: DataFrame  # silver.tracking_events
    interactions: DataFrame  # silver.interactions
    funnel: DataFrame  # gold.funnel_daily: at least funnel_date, channel, sessions, order_sessions


@dataclass(frozen=True)
class KpiRows:
    """One computation's rows of both tables."""

    daily: DataFrame
    breakdown: DataFrame


def kpi_days_as_of(as_of_dates: list[str], lateness_days: int) -> list[tuple[dt.date, dt.date]]:
    """``(kpi_date, as_of_date)``: each day the runs of ``as_of_dates`` cover, with the latest run
    covering it (a run of date A covers ``[A - lateness_days, A]``; the latest run wins)."""
    latest: dict[dt.date, dt.date] = {}
    for as_of in map(dt.date.fromisoformat, as_of_dates):
        for back in range(lateness_days + 1):
            day = as_of - dt.timedelta(days=back)
            latest[day] = max(latest.get(day, as_of), as_of)
    return sorted(latest.items())


def _order_dims(orders: DataFrame) -> DataFrame:
    """Per order: what the facts need of it, its segments, and when it was first known."""
    return orders.select(
        F.col("order_id").alias("_order_id"),
        "customer_id",
        "placed_at",
        "order_date",
        "promised_delivery_date",
        "channel",
        "carrier",
        F.col("destination_region").alias("region"),
        F.col("first_ingest_date").alias("_order_known"),
    )


def _order_history(dims: DataFrame, shipments: DataFrame, horizon_days: int) -> DataFrame:
    """Each order with its delivery and what its customer's other orders say, from one pass over
    the orders of each customer (no self-join): the earliest arrival of an earlier order (a repeat
    purchase once that arrived), the earliest arrival of an order in the ``horizon_days`` after its
    day (the customer came back once that arrived), and, per customer and day, the earliest arrival
    of that day's orders and the order's rank among them (the churn cohort counts a customer once)."""
    customer = Window.partitionBy("customer_id")
    by_time = customer.orderBy("placed_at", "_order_id")
    day_number = F.datediff("order_date", F.lit("1970-01-01").cast("date"))
    same_day = Window.partitionBy("customer_id", "order_date")
    delivered = shipments.select(
        F.col("order_id").alias("_order_id"),
        "delivered_at",
        F.to_date("delivered_at").alias("_delivered"),
        "delivered_ingest_date",
    )
    return dims.join(delivered, "_order_id", "left").select(
        "*",
        F.min("_order_known").over(by_time.rowsBetween(Window.unboundedPreceding, -1)).alias("_earlier_known"),
        F.min("_order_known").over(customer.orderBy(day_number).rangeBetween(1, horizon_days)).alias("_back_known"),
        F.min("_order_known").over(same_day).alias("_day_known"),
        F.row_number().over(same_day.orderBy("placed_at", "_order_id")).alias("_day_rank"),
    )


def _order_facts(history: DataFrame, calendar: DataFrame, days: list[dt.date], horizon_days: int) -> DataFrame:
    """The facts an order makes, from one explode and one join with the calendar:

    * placed, on its order date; ``repeat`` when an earlier order of its customer had arrived by the
      as-of date (same instant: the smaller order id is the earlier one);
    * delivered, on its delivery date, once its delivered scan had arrived;
    * in transit, on each day from its placement (at most ``IN_TRANSIT_MAX_DAYS``) that it was not
      delivered before, as known by the as-of date;
    * in the churn cohort of the day ``horizon_days`` after its order date (once per customer and
      day, when an order of that day had arrived), ``churned`` unless an order of the days since had.

    Every fact needs its order known by the as-of date.
    """
    first, last = min(days), max(days)
    horizon = F.date_add("order_date", IN_TRANSIT_MAX_DAYS - 1)
    # Past both its delivery day and the arrival of that scan, every run knows the order arrived:
    # the days after are never in transit, so they are not generated.
    until = F.least(horizon, F.coalesce(F.greatest("_delivered", "delivered_ingest_date"), horizon))
    # Only the days computed get a fact (the calendar join drops the others), so the in-transit
    # days are clipped to them and an order with no fact on them is dropped before the explode:
    # otherwise every order of the last 60 days made up to 60 rows a night (large bench: ~340 k
    # orders exploded, then joined with 4 days).
    transit_from, transit_to = F.greatest("order_date", F.lit(first)), F.least(until, F.lit(last))
    # (``sequence`` counts down when its start is after its end: no in-transit day then.)
    has_transit_days = transit_from <= transit_to
    is_cohort_row = F.col("_day_rank") == 1
    cohort_date = F.date_add("order_date", horizon_days)
    makes_a_fact = (
        F.col("order_date").between(first, last)
        | F.col("_delivered").between(first, last)
        | has_transit_days
        | (is_cohort_row & cohort_date.between(first, last))
    )
    # Kind 0 placed, 1 delivered, 2 in transit, 3 cohort.
    events = F.concat(
        F.array(F.struct(F.lit(0).alias("kind"), F.col("order_date").alias("kpi_date"))),
        F.when(
            F.col("_delivered").isNotNull(),
            F.array(F.struct(F.lit(1).alias("kind"), F.col("_delivered").alias("kpi_date"))),
        ).otherwise(F.array()),
        F.when(
            has_transit_days,
            F.transform(
                F.sequence(transit_from, transit_to),
                lambda day: F.struct(F.lit(2).alias("kind"), day.alias("kpi_date")),
            ),
        ).otherwise(F.array()),
        F.when(
            is_cohort_row,
            F.array(F.struct(F.lit(3).alias("kind"), cohort_date.alias("kpi_date"))),
        ).otherwise(F.array()),
    )
    kind, as_of = F.col("kind"), F.col("as_of_date")
    delivered_before = (F.col("_delivered") < F.col("kpi_date")) & (F.col("delivered_ingest_date") <= as_of)
    known = (
        F.when(kind == 3, F.col("_day_known") <= as_of).otherwise(F.col("_order_known") <= as_of)
        & ((kind != 1) | (F.col("delivered_ingest_date") <= as_of))
        & ((kind != 2) | ~F.coalesce(delivered_before, F.lit(False)))
    )
    late = is_late(F.col("delivered_at"), F.col("promised_delivery_date"))
    is_delivery = kind == 1

    def flag(condition: Column) -> Column:
        return F.when(condition, 1).otherwise(0)

    return (
        history.filter(
            F.col("order_date").between(first - dt.timedelta(days=max(IN_TRANSIT_MAX_DAYS, horizon_days)), last)
            & makes_a_fact
        )
        .select("*", F.explode(events).alias("_event"))
        .select("*", "_event.kind", "_event.kpi_date")
        .join(calendar, "kpi_date")
        .filter(known)
        .select(
            "kpi_date",
            "as_of_date",
            "channel",
            "carrier",
            "region",
            flag(kind == 0).alias("placed"),
            flag((kind == 0) & (F.col("_earlier_known") <= as_of)).alias("repeat"),
            flag(is_delivery).alias("delivered"),
            # The on-time rate's base: an imported order without a promise is neither on time nor late.
            flag(is_delivery & F.col("promised_delivery_date").isNotNull()).alias("promised"),
            flag(is_delivery & is_on_time(F.col("delivered_at"), F.col("promised_delivery_date"))).alias("on_time"),
            flag(is_delivery & late).alias("late"),
            F.when(is_delivery, delivery_days(F.col("placed_at"), F.col("delivered_at"))).alias("delivery_days"),
            F.when(is_delivery & late, days_late(F.col("delivered_at"), F.col("promised_delivery_date"))).alias(
                "days_late"
            ),
            flag(kind == 2).alias("in_transit"),
            flag(kind == 3).alias("cohort"),
            flag((kind == 3) & ~F.coalesce(F.col("_back_known") <= as_of, F.lit(False))).alias("churned"),
        )
    )


def _event_facts(
    tracking_events: DataFrame, interactions: DataFrame, dims: DataFrame, calendar: DataFrame
) -> DataFrame:
    """Failed delivery attempts (``delivery_failed`` scans), tracking views, support contacts (with
    their reason) and rated reviews of a day, each with its order's segments when the order had
    arrived by the as-of date (``unattributed`` otherwise; a scan keeps its own carrier)."""
    event = F.col("event")
    scans = tracking_events.filter(event == DELIVERY_FAILED).select(
        "order_id",
        F.col("event_date").alias("kpi_date"),
        "first_ingest_date",
        F.col("carrier").alias("_scan_carrier"),
        F.lit(1).alias("failed"),
    )
    touches = (
        interactions.filter(event.isin(*_INTERACTION_FACTS))
        # A review without a rating says nothing the rating KPIs can use.
        .filter((event != "review") | F.col("rating").isNotNull())
        .select(
            "order_id",
            F.col("event_date").alias("kpi_date"),
            "first_ingest_date",
            *[F.when(event == name, 1).otherwise(0).alias(column) for name, column in _INTERACTION_FACTS.items()],
            F.when(event == "support_contact", F.coalesce("contact_reason", F.lit(NO_REASON))).alias("contact_reason"),
            F.when(event == "review", F.col("rating")).alias("rating"),
        )
    )
    facts = (
        scans.unionByName(touches, allowMissingColumns=True)
        .join(calendar, "kpi_date")
        .filter(F.col("first_ingest_date") <= F.col("as_of_date"))
    )
    joined = facts.join(
        dims.select("_order_id", "channel", "carrier", "region", "_order_known"),
        (F.col("order_id") == F.col("_order_id")) & (F.col("_order_known") <= F.col("as_of_date")),
        "left",
    )
    return joined.select(
        "kpi_date",
        "as_of_date",
        F.coalesce("channel", F.lit(UNATTRIBUTED)).alias("channel"),
        F.coalesce("carrier", "_scan_carrier", F.lit(UNATTRIBUTED)).alias("carrier"),
        F.coalesce("region", F.lit(UNATTRIBUTED)).alias("region"),
        "failed",
        *_INTERACTION_FACTS.values(),
        "contact_reason",
        "rating",
        F.when(F.col("rating") == 5, 1).otherwise(0).alias("promoter"),
        F.when(F.col("rating") <= 3, 1).otherwise(0).alias("detractor"),
    )


def _segmented(facts: DataFrame) -> DataFrame:
    """Each fact once per (dimension, segment) it counts in: overall, its three segments, and its
    contact reason for a support contact (a calendar row, with no segments: overall only)."""
    segments = F.array(
        F.struct(F.lit("overall").alias("dimension"), F.lit("all").alias("segment")),
        # A day's calendar row (no segment) makes sure the day has an overall row.
        *[
            F.when(F.col(d).isNotNull(), F.struct(F.lit(d).alias("dimension"), F.col(d).alias("segment")))
            for d in SEGMENT_DIMENSIONS
        ],
        F.when(
            F.col("contact") == 1,
            F.struct(F.lit("contact_reason").alias("dimension"), F.col("contact_reason").alias("segment")),
        ),
    )
    return (
        facts.select("*", F.explode(segments).alias("_segment"))
        .filter(F.col("_segment").isNotNull())
        .select("*", "_segment.dimension", "_segment.segment")
        .drop("_segment")
    )


def _aggregated(facts: DataFrame) -> DataFrame:
    """Counts, means and the P90 per (day, as-of date, dimension, segment)."""
    return (
        _segmented(facts)
        .groupBy("kpi_date", "as_of_date", "dimension", "segment")
        .agg(
            *[F.sum(c).alias(c) for c in _COUNTS],
            F.avg("delivery_days").alias("avg_delivery_days"),
            # Exact, interpolated between the two nearest values (like DuckDB's quantile_cont).
            F.expr("percentile(delivery_days, 0.9)").alias("p90_delivery_days"),
            F.avg("days_late").alias("avg_days_late"),
            F.avg("rating").alias("mean_review_rating"),
        )
    )


def _ratio(numerator: Column, denominator: Column, scale: float = 1.0) -> Column:
    """``scale * numerator / denominator``, null over zero, rounded so values do not depend on
    Spark's summation order."""
    return F.round(F.when(denominator > 0, F.lit(scale) * numerator / denominator), 6)


def _active_customers(
    orders: DataFrame, interactions: DataFrame, calendar: DataFrame, first: dt.date, last: dt.date
) -> DataFrame:
    """Customers with a touchpoint of their own on the day (an interaction attributed to them or an
    order they placed): a journey session that day, as ``gold.journey_daily`` counts them."""
    touch = interactions.filter(F.col("customer_key").isNotNull()).select(
        "customer_key", F.col("event_date").alias("kpi_date"), "first_ingest_date"
    )
    # Only the calendar's days (``first`` to ``last``) are counted: the orders of other days are
    # dropped before their key is hashed and the rows joined (the table holds the whole history).
    ordered = orders.filter(F.col("order_date").between(first, last)).select(
        customer_key(F.col("customer_id")).alias("customer_key"),
        F.col("order_date").alias("kpi_date"),
        "first_ingest_date",
    )
    return (
        touch.unionByName(ordered)
        .join(calendar, "kpi_date")
        .filter(F.col("first_ingest_date") <= F.col("as_of_date"))
        .groupBy("kpi_date")
        .agg(F.countDistinct("customer_key").alias("_active"))
        .withColumn("dimension", F.lit(_ACTIVE))
    )


def _sessions(funnel: DataFrame, calendar: DataFrame) -> DataFrame:
    """Sessions and order sessions per day and channel, from ``gold.funnel_daily``: rows of the
    channel dimension of their own (no other fact counts in them)."""
    return (
        funnel.withColumnRenamed("funnel_date", "kpi_date")
        .join(calendar, "kpi_date")
        .select(
            "kpi_date",
            "as_of_date",
            F.lit("channel").alias("dimension"),
            F.col("channel").alias("segment"),
            "sessions",
            "order_sessions",
        )
    )


def _with_day_figures(aggregated: DataFrame, active: DataFrame, sessions: DataFrame) -> DataFrame:
    """All of a day's rows (aggregated facts, active customers, funnel sessions), each with the
    figures of its day that a KPI needs beside the row's own: the day's orders (the base of a
    contact reason's rate), its top contact reason, active customers and funnel totals.

    One window over each day's few rows instead of joins: the rows are then read twice, for
    both tables, with no shuffle.
    """
    rows = aggregated.unionByName(active, allowMissingColumns=True).unionByName(sessions, allowMissingColumns=True)
    day = Window.partitionBy("kpi_date")
    dimension = F.col("dimension")
    # The most contacts first, then the name: min of (-contacts, reason).
    reason = F.when(
        dimension == "contact_reason", F.struct((-F.col("contact")).alias("_n"), F.col("segment").alias("_reason"))
    )
    return rows.select(
        "*",
        F.coalesce(F.max(F.when(dimension == "overall", F.col("placed"))).over(day), F.lit(0)).alias("day_orders"),
        F.min(reason).over(day).getField("_reason").alias("top_contact_reason"),
        F.coalesce(F.max("_active").over(day), F.lit(0)).alias("active_customers"),
        F.sum("sessions").over(day).alias("funnel_sessions"),
        F.sum("order_sessions").over(day).alias("funnel_order_sessions"),
    )


def _daily(figures: DataFrame, lateness_days: int) -> DataFrame:
    """The overall rows (one per day: the calendar's own row sees to that) as ``gold.cx_kpi_daily``."""
    c = F.col
    contract = load_contract(DAILY)
    values = {
        "orders_placed": c("placed"),
        "repeat_orders": c("repeat"),
        "repeat_purchase_rate": _ratio(c("repeat"), c("placed")),
        "orders_delivered": c("delivered"),
        "on_time_deliveries": c("on_time"),
        "late_deliveries": c("late"),
        "on_time_delivery_rate": _ratio(c("on_time"), c("promised")),
        "avg_delivery_days": F.round("avg_delivery_days", 6),
        "p90_delivery_days": F.round("p90_delivery_days", 6),
        "avg_days_late": F.round("avg_days_late", 6),
        "failed_delivery_attempts": c("failed"),
        "failed_attempts_per_100_deliveries": _ratio(c("failed"), c("delivered"), 100),
        "orders_in_transit": c("in_transit"),
        "tracking_views": c("tracking_view"),
        "tracking_views_per_order_in_transit": _ratio(c("tracking_view"), c("in_transit")),
        "support_contacts": c("contact"),
        "support_contacts_per_100_orders": _ratio(c("contact"), c("placed"), 100),
        "reviews": c("review"),
        "mean_review_rating": F.round("mean_review_rating", 6),
        "nps_from_ratings": _ratio(c("promoter") - c("detractor"), c("review"), 100),
        "churn_cohort_customers": c("cohort"),
        "churned_customers": c("churned"),
        "realised_churn_rate": _ratio(c("churned"), c("cohort")),
        "funnel_conversion_rate": _ratio(c("funnel_order_sessions"), c("funnel_sessions")),
        "is_final": F.date_add("kpi_date", lateness_days) <= c("as_of_date"),
        **{name: F.lit(None) for name in MODEL_COLUMNS},
    }
    return figures.filter(c("dimension") == "overall").select(
        *[values.get(col.name, c(col.name)).cast(col.type).alias(col.name) for col in contract.columns]
    )


# Breakdown KPIs: name -> (value, base) over an aggregated row (``day_orders``: the day's orders, the
# base of a contact reason's rate; else the segment's own orders).
def _breakdown_kpis() -> dict[str, tuple[Column, Column]]:
    c = F.col
    return {
        "orders_placed": (c("placed"), c("placed")),
        "repeat_purchase_rate": (_ratio(c("repeat"), c("placed")), c("placed")),
        "orders_delivered": (c("delivered"), c("delivered")),
        "on_time_delivery_rate": (_ratio(c("on_time"), c("promised")), c("promised")),
        "avg_delivery_days": (F.round("avg_delivery_days", 6), c("delivered")),
        "p90_delivery_days": (F.round("p90_delivery_days", 6), c("delivered")),
        "failed_attempts_per_100_deliveries": (_ratio(c("failed"), c("delivered"), 100), c("delivered")),
        "tracking_views_per_order_in_transit": (_ratio(c("tracking_view"), c("in_transit")), c("in_transit")),
        "support_contacts": (c("contact"), c("contact")),
        "support_contacts_per_100_orders": (_ratio(c("contact"), c("day_orders"), 100), c("day_orders")),
        "mean_review_rating": (F.round("mean_review_rating", 6), c("review")),
        "nps_from_ratings": (_ratio(c("promoter") - c("detractor"), c("review"), 100), c("review")),
        "funnel_conversion_rate": (_ratio(c("order_sessions"), c("sessions")), c("sessions")),
    }


def _breakdown(figures: DataFrame, lateness_days: int) -> DataFrame:
    """The segment rows as ``gold.cx_kpi_breakdown_daily``: each KPI a segment has a base for.

    A funnel row is a row of its channel of its own: it has no orders (so no order KPI), an
    aggregated channel row no sessions (so no conversion).
    """
    dimension = F.col("dimension")
    segments = figures.filter(dimension.isin(*SEGMENT_DIMENSIONS, "contact_reason")).withColumn(
        "day_orders", F.when(dimension == "contact_reason", F.col("day_orders")).otherwise(F.col("placed"))
    )
    kpis = F.array(
        *[
            F.struct(F.lit(name).alias("kpi"), value.cast("double").alias("value"), base.cast("bigint").alias("base"))
            for name, (value, base) in _breakdown_kpis().items()
        ]
    )
    contract = load_contract(BREAKDOWN)
    return (
        segments.select("kpi_date", "as_of_date", "dimension", "segment", F.explode(kpis).alias("_kpi"))
        .select("kpi_date", "as_of_date", "dimension", "segment", "_kpi.*")
        .filter((F.col("base") > 0) & F.col("value").isNotNull())
        .withColumn("is_final", F.date_add("kpi_date", lateness_days) <= F.col("as_of_date"))
        .select(*[F.col(col.name).cast(col.type) for col in contract.columns])
    )


def build_kpis_as_of(
    spark: SparkSession,
    sources: KpiSources,
    as_of_dates: list[str],
    lateness_days: int,
    churn_horizon_days: int,
    materialize: Callable[[DataFrame], DataFrame] = lambda df: df,
) -> KpiRows:
    """The KPI rows of several runs at once, one row per day (and segment): the latest ``as_of_date`` wins.

    Used when a date is run after later dates (a backfill or an out-of-order rerun): the later
    runs' windows lacked this date's arrivals, so they are recomputed too, each from the data
    arrived by its own as-of date, exactly as if the dates had run in order. And by a history
    import, for every night at once: each day is computed once, from the data arrived by the
    latest run covering it (:func:`kpi_days_as_of`), in one plan whatever the number of runs.

    ``spark`` only builds the calendar of days (so days with no activity still get a row).
    ``materialize`` is applied to the aggregated rows both tables read (a job's checkpoint, so
    that the facts are computed once for both tables).
    """
    days = kpi_days_as_of(as_of_dates, lateness_days)
    # A local relation: Spark broadcasts it wherever a join can build on it.
    calendar = spark.createDataFrame(days, "kpi_date date, as_of_date date")
    day_list = [day for day, _ in days]
    first, last = min(day_list), max(day_list)
    dims = _order_dims(sources.orders)
    # Partition pruning on the event-date partitioned tables.
    interactions = sources.interactions.filter(F.col("event_date").between(first, last))
    events = sources.tracking_events.filter(F.col("event_date").between(first, last))
    history = _order_history(dims, sources.shipments, churn_horizon_days)
    facts = (
        _order_facts(history, calendar, day_list, churn_horizon_days)
        .unionByName(_event_facts(events, interactions, dims, calendar), allowMissingColumns=True)
        .unionByName(calendar, allowMissingColumns=True)  # every day, with or without facts
        .fillna(0, list(_COUNTS))
    )
    funnel = sources.funnel.filter(F.col("funnel_date").between(first, last))
    figures = materialize(
        _with_day_figures(
            _aggregated(facts),
            _active_customers(sources.orders, interactions, calendar, first, last),
            _sessions(funnel, calendar),
        )
    )
    return KpiRows(daily=_daily(figures, lateness_days), breakdown=_breakdown(figures, lateness_days))


def build_kpis(
    spark: SparkSession, sources: KpiSources, as_of_date: str, lateness_days: int, churn_horizon_days: int
) -> KpiRows:
    """KPIs for each day in ``[as_of_date - lateness_days, as_of_date]`` from data arrived by ``as_of_date``."""
    return build_kpis_as_of(spark, sources, [as_of_date], lateness_days, churn_horizon_days)


def read_sources(spark: SparkSession, config: LakeConfig, days: list[dt.date]) -> KpiSources:
    """The KPIs' tables. Of the funnel only ``days`` (a few rows, read through delta-rs on a local
    lake: no Spark job); it is empty before the first journey build."""
    columns = ["funnel_date", "channel", "sessions", "order_sessions"]
    schema = StructType([load_contract("gold.funnel_daily").spark_schema()[c] for c in columns])
    rows = read_small(config, "gold.funnel_daily", {"funnel_date": days}, columns, spark=spark)
    return KpiSources(
        orders=read_table(spark, config, "silver.orders"),
        shipments=read_table(spark, config, "silver.shipments"),
        tracking_events=read_table(spark, config, "silver.tracking_events"),
        interactions=read_table(spark, config, "silver.interactions"),
        funnel=spark.createDataFrame(rows, schema),
    )


def run(spark: SparkSession, config: LakeConfig, run_date: str, through: str | None = None) -> None:
    """Recompute the KPI days that data arriving on ``run_date`` (to ``through``) can still change.

    Arrivals of ``run_date`` carry events dated at most ``run_date``, so they can change the
    windows of runs up to ``lateness_days`` later; those runs are redone when they already exist.

    Both tables get their recomputed days replaced (delta-rs on a local lake: the rows are a few
    hundred a day). That is the MERGE "the latest as-of date wins" without its scans: every run
    that ever covered one of these days is among the runs computed here or earlier than the one
    computing the day now (:func:`jobs.lake.tables.later_as_of_dates` brings the later ones in),
    so the new row always wins, and a breakdown row the day no longer has goes with the old ones.
    The model KPIs of the replaced days are carried over: they are the model reports' to write.
    """
    last = through or run_date
    later = later_as_of_dates(spark, config, DAILY, "as_of_date", last, config.lateness_days)
    as_of_dates = [*nights(run_date, last), *later]
    days = {"kpi_date": [day for day, _ in kpi_days_as_of(as_of_dates, config.lateness_days)]}
    rows = build_kpis_as_of(
        spark,
        read_sources(spark, config, days["kpi_date"]),
        as_of_dates,
        config.lateness_days,
        config.churn_horizon_days,
        # The facts are aggregated once for both tables.
        materialize=lambda df: df.localCheckpoint(),
    )
    added = add_new_columns(config, DAILY, spark=spark)  # a lake of contract v1: once
    if added:
        log.info("%s: added the columns of contract v2 (null on the days before): %s", DAILY, ", ".join(added))
    model = {
        row["kpi_date"]: row
        for row in read_small(config, DAILY, days, ["kpi_date", *MODEL_COLUMNS], spark=spark)
        if any(row[c] is not None for c in MODEL_COLUMNS)
    }
    daily = [{**row.asDict(), **model.get(row.kpi_date, {})} for row in rows.daily.collect()]
    replace_small(config, DAILY, daily, days, spark=spark)
    replace_small(config, BREAKDOWN, [row.asDict() for row in rows.breakdown.collect()], days, spark=spark)


def model_kpis(eta_accuracy: DataFrame, churn_scores: DataFrame, days: list[dt.date]) -> DataFrame:
    """The model KPI columns of ``days``: the ETA error and coverage of the day's deliveries
    (``gold.eta_accuracy_daily``, overall) and the high-risk share of the day's churn scores."""
    eta = eta_accuracy.filter((F.col("dimension") == "overall") & F.col("accuracy_date").isin(days)).select(
        F.col("accuracy_date").alias("kpi_date"),
        F.col("predicted_deliveries").alias("eta_predicted_deliveries"),
        F.col("mae_p50_days").alias("eta_mae_model_days"),
        F.col("mae_promise_days").alias("eta_mae_promise_days"),
        "p10_p90_coverage",
    )
    churn = (
        churn_scores.filter(F.col("as_of_date").isin(days))
        .groupBy(F.col("as_of_date").alias("kpi_date"))
        .agg(F.round(F.avg(F.when(F.col("risk_band") == "high", 1.0).otherwise(0.0)), 6).alias("predicted_churn_share"))
    )
    contract = load_contract(DAILY)
    return eta.join(churn, "kpi_date", "full").select(
        "kpi_date", *[F.col(name).cast(contract.column(name).type) for name in MODEL_COLUMNS]
    )


def run_model_kpis(spark: SparkSession, config: LakeConfig, run_date: str) -> None:
    """Fill in the model KPIs of the days the night's model reports recomputed (the run date's
    window and any later run's): an update of existing KPI rows, never an insert."""
    later = later_as_of_dates(spark, config, DAILY, "as_of_date", run_date, config.lateness_days)
    days = [day for day, _ in kpi_days_as_of([run_date, *later], config.lateness_days)]
    eta_accuracy = read_table_or_empty(
        spark, config, "gold.eta_accuracy_daily", load_contract("gold.eta_accuracy_daily").spark_schema()
    )
    churn_scores = read_table_or_empty(
        spark, config, "gold.churn_scores", load_contract("gold.churn_scores").spark_schema()
    )
    rows = [row.asDict() for row in model_kpis(eta_accuracy, churn_scores, days).collect()]
    update_small(config, DAILY, rows, MODEL_COLUMNS, spark=spark)
