"""Gold ``customer_journey``: every touchpoint of a resolved customer, ordered, with stages and pain points.

Touchpoints come from three silver tables:

* ``silver.interactions`` with a ``customer_key`` (own id, or device-linked anonymous activity);
* ``silver.orders`` (one ``order_placed`` per order, keyed by the order's customer);
* ``silver.tracking_events`` (one ``shipment_<event>`` per scan, attributed through its order).

Rules (each is a function of the customer's touchpoints at or before the row, looking back at
most ``JOURNEY_LOOKBACK_DAYS``, plus the order's promise and delivery time):

* *order*: ``(touchpoint_at, touchpoint_id)`` per customer.
* *session*: customer-initiated touchpoints (not carrier scans) start a new session after
  ``SESSION_GAP_MINUTES`` without one (:func:`jobs.domain.is_new_session`); ``session_id`` = 16 hex
  of sha2 of ``customer_key:`` and the session's first ``touchpoint_id``: deterministic and stable
  when later rows arrive.
* *stage*: by type (``STAGE_OF_TYPE``); a tracking page view is ``post-delivery`` once its order was
  delivered (``silver.shipments.delivered_at`` at or before the view), else ``wait-for-delivery``.
* *pain points*: late vs promise (a touchpoint of an order not yet delivered, or its delivery scan,
  on a day after the promised date: :func:`jobs.domain.is_late`), failed delivery attempt, support contact, low review
  (rating <= 2), repeated tracking view (an undelivered order's view after >= 2 earlier views of it).

Because every rule looks back a bounded time, a night only recomputes, for each customer its
arrivals touch, the rows from their earliest new touchpoint on, and merges the rows whose content
changed: the partitions written are the days that really changed. The context before that day
comes from the stored journey (:func:`journey_context`: the last row, the last customer-initiated
row with its session, and the tracking views of the ``JOURNEY_LOOKBACK_DAYS`` before), so silver
is read only from the first changed day on; the first build reads its context from silver.
The same run replaces the changed days of the daily aggregates (:mod:`jobs.gold.journey_daily`),
before its merge: a run killed between the two writes finds the same changes when it reruns.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import NamedTuple

import pyspark.sql.functions as F
from pyspark.sql import Column, DataFrame, SparkSession, Window

from jobs.domain import (
    SESSION_GAP_MINUTES,
    customer_key,
    is_late,
    is_new_session,
    oldest_arrival_date,
    oldest_attributable_date,
)
from jobs.gold import journey_daily
from jobs.lake import retractions
from jobs.lake.config import LakeConfig
from jobs.lake.contracts import load_contract
from jobs.lake.retractions import DELETE_FLAG
from jobs.lake.small_tables import add_new_columns
from jobs.lake.spark import in_parallel
from jobs.lake.tables import (
    arrived_between,
    broadcast_if_one_night,
    first_arrived,
    merge_rows,
    night_commit,
    partition_values,
    partitions_written,
    read_table,
    sql_dates,
    table_exists,
    table_version,
)

log = logging.getLogger(__name__)

VIEWS_TABLE = "gold.journey_tracking_views"
# What the journey build writes besides the journey, before merging it (a rerun writes them again).
DERIVED_TABLES = (*journey_daily.DAILY_TABLES, VIEWS_TABLE)

JOURNEY_LOOKBACK_DAYS = 45
REPEATED_TRACKING_VIEWS = 3  # the third view of an undelivered order is a pain point
LOW_REVIEW_MAX_RATING = 2
SCAN_TYPE_PREFIX = "shipment_"  # a carrier scan's touchpoint type: not the customer's own action

STAGE_OF_TYPE = {
    "app_open": "discover",
    "push_open": "discover",
    "login": "discover",
    "search": "discover",
    "product_view": "consider",
    "add_to_cart": "consider",
    "checkout": "purchase",
    "order_placed": "purchase",
    "tracking_page_view": "wait-for-delivery",  # or post-delivery, see module docstring
    "support_contact": "support",
    "review": "post-delivery",
    "shipment_created": "wait-for-delivery",
    "shipment_picked": "wait-for-delivery",
    "shipment_left_warehouse": "wait-for-delivery",
    "shipment_arrived_hub": "wait-for-delivery",
    "shipment_out_for_delivery": "wait-for-delivery",
    "shipment_delivery_failed": "wait-for-delivery",
    "shipment_delivered": "delivered",
    "shipment_returned": "post-delivery",
}

TOUCHPOINT_COLUMNS = [
    "customer_key",
    "touchpoint_id",
    "touchpoint_at",
    "touchpoint_type",
    "channel",
    "order_id",
    "rating",
    "contact_reason",
    "is_customer_initiated",
]


def interaction_touchpoints(interactions_df: DataFrame) -> DataFrame:
    """``silver.interactions`` rows attributed to a customer -> touchpoints."""
    return interactions_df.filter(F.col("customer_key").isNotNull()).select(
        "customer_key",
        F.concat(F.lit("interaction:"), "event_id").alias("touchpoint_id"),
        F.col("event_at").alias("touchpoint_at"),
        F.col("event").alias("touchpoint_type"),
        "channel",
        "order_id",
        "rating",
        "contact_reason",
        F.lit(True).alias("is_customer_initiated"),
    )


def order_touchpoints(orders_df: DataFrame) -> DataFrame:
    """``silver.orders`` -> one ``order_placed`` touchpoint per order."""
    return orders_df.select(
        customer_key(F.col("customer_id")).alias("customer_key"),
        F.concat(F.lit("order:"), "order_id").alias("touchpoint_id"),
        F.col("placed_at").alias("touchpoint_at"),
        F.lit("order_placed").alias("touchpoint_type"),
        "channel",
        "order_id",
        F.lit(None).cast("int").alias("rating"),
        F.lit(None).cast("string").alias("contact_reason"),
        F.lit(True).alias("is_customer_initiated"),
    )


def scan_touchpoints(tracking_events_df: DataFrame, orders_df: DataFrame) -> DataFrame:
    """``silver.tracking_events`` -> ``shipment_<event>`` touchpoints of the order's customer.

    A scan whose order has not arrived yet has no customer: it joins the journey the night the
    order arrives (that night touches the customer from the order date on).
    """
    owners = orders_df.select("order_id", customer_key(F.col("customer_id")).alias("customer_key"))
    return tracking_events_df.join(owners, "order_id").select(
        "customer_key",
        F.concat(F.lit("scan:"), "scan_id").alias("touchpoint_id"),
        F.col("scan_at").alias("touchpoint_at"),
        F.concat(F.lit(SCAN_TYPE_PREFIX), "event").alias("touchpoint_type"),
        F.lit("carrier").alias("channel"),
        "order_id",
        F.lit(None).cast("int").alias("rating"),
        F.lit(None).cast("string").alias("contact_reason"),
        F.lit(False).alias("is_customer_initiated"),
    )


def all_touchpoints(
    orders_df: DataFrame,
    interactions_df: DataFrame,
    tracking_events_df: DataFrame,
    owners_df: DataFrame | None = None,
) -> DataFrame:
    """The union of the three kinds of touchpoints (columns ``TOUCHPOINT_COLUMNS``).

    ``owners_df``: the orders whose customers the scans belong to (default ``orders_df``; wider
    when ``orders_df`` is only the orders whose placement is wanted).
    """
    return (
        interaction_touchpoints(interactions_df)
        .unionByName(order_touchpoints(orders_df))
        .unionByName(scan_touchpoints(tracking_events_df, orders_df if owners_df is None else owners_df))
    )


def _stage(delivered_before: Column) -> Column:
    mapping = F.create_map(*[x for k, v in STAGE_OF_TYPE.items() for x in (F.lit(k), F.lit(v))])
    return F.when(
        (F.col("touchpoint_type") == "tracking_page_view") & delivered_before, F.lit("post-delivery")
    ).otherwise(mapping[F.col("touchpoint_type")])


def build_customer_journey(
    touchpoints_df: DataFrame,
    orders_df: DataFrame,
    shipments_df: DataFrame,
    session_gap_minutes: int = SESSION_GAP_MINUTES,
    lookback_days: int = JOURNEY_LOOKBACK_DAYS,
) -> DataFrame:
    """Touchpoints (``TOUCHPOINT_COLUMNS``) -> ``gold.customer_journey`` rows.

    Args:
        touchpoints_df: every touchpoint of the customers concerned from ``lookback_days`` before
            the first row wanted (rows closer to that start lack context; callers drop them).
            With a ``session_id`` column, a row where it is set is a stored journey row used as
            context (:func:`journey_context`): it carries its session on to the rows after it.
        orders_df: ``silver.orders`` (``order_id``, ``promised_delivery_date``).
        shipments_df: ``silver.shipments`` (``order_id``, ``delivered_at``).
    """
    contract = load_contract("gold.customer_journey")
    lookback_seconds = lookback_days * 86400
    by_customer = Window.partitionBy("customer_key").orderBy("touchpoint_at", "touchpoint_id")
    by_order_time = (
        Window.partitionBy("customer_key", "order_id")
        .orderBy(F.unix_micros("touchpoint_at"))
        .rangeBetween(-lookback_seconds * 1_000_000, -1)
    )

    # Sessions over customer-initiated touchpoints only (a carrier scan is not the customer's
    # visit): the same customer ordering, within (customer, initiated or not). Every window here
    # partitions by the customer and more, so rows clustered by the customer alone serve them all
    # with one shuffle (below); left to itself Spark clustered by (customer, initiated) for the
    # sessions, then shuffled every row again by customer for the other windows.
    by_initiated = Window.partitionBy("customer_key", "is_customer_initiated").orderBy("touchpoint_at", "touchpoint_id")
    previous_initiated_at = F.lag("touchpoint_at").over(by_initiated)
    starts_session = is_new_session(previous_initiated_at, F.col("touchpoint_at"), session_gap_minutes)
    stored_session = F.col("session_id") if "session_id" in touchpoints_df.columns else F.lit(None).cast("string")
    new_session_id = F.substring(F.sha2(F.concat_ws(":", "customer_key", "touchpoint_id"), 256), 1, 16)
    session_id = F.when(
        F.col("is_customer_initiated"),
        F.last("_session", ignorenulls=True).over(by_initiated.rowsBetween(Window.unboundedPreceding, 0)),
    )

    promises = orders_df.select("order_id", "promised_delivery_date")
    deliveries = shipments_df.select("order_id", F.col("delivered_at").alias("_delivered_at"))
    previous_at = F.lag("touchpoint_at").over(by_customer)
    gap = F.unix_seconds("touchpoint_at") - F.unix_seconds(previous_at)
    is_view = F.col("touchpoint_type") == "tracking_page_view"
    delivered_before = F.coalesce(F.col("_delivered_at") < F.col("touchpoint_at"), F.lit(False))
    delivered_by = F.coalesce(F.col("_delivered_at") <= F.col("touchpoint_at"), F.lit(False))
    earlier_views = F.count(F.when(is_view, 1)).over(by_order_time)

    journey = (
        touchpoints_df.repartition("customer_key")
        .withColumn("_session", F.coalesce(stored_session, F.when(starts_session, new_session_id)))
        .withColumn("session_id", session_id)
        .drop("_session")
        .join(promises, "order_id", "left")
        .join(deliveries, "order_id", "left")
        .withColumn("touchpoint_date", F.to_date("touchpoint_at"))
        .withColumn("seconds_since_previous", F.when(gap <= lookback_seconds, gap))
        .withColumn("journey_stage", _stage(delivered_by))
        .withColumn(
            "is_late_vs_promise",
            F.coalesce(
                F.col("order_id").isNotNull()
                & ~delivered_before
                & is_late(F.col("touchpoint_at"), F.col("promised_delivery_date")),
                F.lit(False),
            ),
        )
        .withColumn("is_failed_delivery_attempt", F.col("touchpoint_type") == "shipment_delivery_failed")
        .withColumn("is_support_contact", F.col("touchpoint_type") == "support_contact")
        .withColumn(
            "is_low_review",
            (F.col("touchpoint_type") == "review") & F.coalesce(F.col("rating") <= LOW_REVIEW_MAX_RATING, F.lit(False)),
        )
        .withColumn(
            "is_repeated_tracking_view",
            is_view
            & F.col("order_id").isNotNull()
            & ~delivered_by
            & (F.coalesce(earlier_views, F.lit(0)) >= REPEATED_TRACKING_VIEWS - 1),
        )
    )
    flags = [
        "is_late_vs_promise",
        "is_failed_delivery_attempt",
        "is_support_contact",
        "is_low_review",
        "is_repeated_tracking_view",
    ]
    journey = journey.withColumn("pain_points", sum(F.col(f).cast("int") for f in flags))
    return journey.select(*[F.col(c.name).cast(c.type) for c in contract.columns])


def _is_view_of_an_order() -> Column:
    """A journey row ``gold.journey_tracking_views`` keeps."""
    return (F.col("touchpoint_type") == "tracking_page_view") & F.col("order_id").isNotNull()


def tracking_views(journey_df: DataFrame) -> DataFrame:
    """Journey rows -> ``gold.journey_tracking_views`` rows: the tracking page views of an order."""
    return journey_df.filter(_is_view_of_an_order()).select(*load_contract(VIEWS_TABLE).column_names)


def journey_context(
    views_df: DataFrame,
    journey_days_df: DataFrame,
    touched_df: DataFrame,
    lookback_days: int = JOURNEY_LOOKBACK_DAYS,
) -> DataFrame:
    """What recomputing each touched customer from its ``start_date`` needs of the days before it.

    Every rule looks back at a bounded part of the customer's earlier touchpoints, and the stored
    rows before ``start_date`` are final (tonight's arrivals are all on or after it), so instead
    of recomputing ``lookback_days`` of history from silver the recomputation starts from a few
    rows that stand for them:

    * the customer's last touchpoint before ``start_date`` (the gap to the previous touchpoint),
      from its last day's ``last_touchpoint_at``;
    * the last customer-initiated one, with its session (a session that goes on), when it is on
      that same last day (``last_session_at``, ``last_session_id``): an earlier one is more than
      a day before ``start_date``, far beyond the session gap, so the first recomputed visit
      opens a session either way;
    * the tracking page views of an order of the ``lookback_days`` before it (the repeated-view
      count), as views outside any session: the row above carries the session.

    The first two are not stored rows (their type is null: no rule but the gap and the session
    reads them); like the views they come before ``start_date``, and the caller drops them.

    Args:
        views_df: ``gold.journey_tracking_views`` (pruned to the dates needed by the caller):
            6 % of the journey's rows on the large bench, which the whole journey's 45 days
            (10.7 M rows) cost 5 s to scan for.
        journey_days_df: ``gold.journey_daily`` (likewise pruned): a row per customer-day.
        touched_df: ``customer_key, start_date`` (:func:`touched_customers`).

    Returns:
        Touchpoint rows (``TOUCHPOINT_COLUMNS`` + ``session_id``) for :func:`build_customer_journey`.
    """

    def before_start(rows: DataFrame, date_column: str) -> DataFrame:
        # ``touched_df`` is small: broadcast, so the rows are filtered where they are read, not
        # shuffled.
        return rows.join(F.broadcast(touched_df), "customer_key").filter(
            (F.col(date_column) < F.col("start_date")) & (F.col(date_column) >= F.date_sub("start_date", lookback_days))
        )

    def touchpoint(touchpoint_id: Column, at: Column, kind: Column, order_id: Column, session_id: Column) -> Column:
        return F.struct(
            touchpoint_id.alias("touchpoint_id"),
            at.alias("touchpoint_at"),
            kind.cast("string").alias("touchpoint_type"),
            F.lit(None).cast("string").alias("channel"),
            order_id.cast("string").alias("order_id"),
            F.lit(None).cast("int").alias("rating"),
            F.lit(None).cast("string").alias("contact_reason"),
            # Only the row that carries the session is in one.
            session_id.isNotNull().alias("is_customer_initiated"),
            session_id.cast("string").alias("session_id"),
        )

    none = F.lit(None)
    # Structs compare field by field: the customer's latest day. Both rows it stands for come out
    # of one aggregation (a union of two selects of it aggregated the daily rows twice: +1.2 s).
    last_day = (
        before_start(journey_days_df, "journey_date")
        .groupBy("customer_key")
        .agg(F.max(F.struct("journey_date", "last_touchpoint_at", "last_session_at", "last_session_id")).alias("d"))
    )
    last_rows = F.array(
        touchpoint(F.lit("context:last"), F.col("d.last_touchpoint_at"), none, none, none),
        F.when(
            F.col("d.last_session_at").isNotNull(),
            touchpoint(F.lit("context:session"), F.col("d.last_session_at"), none, none, F.col("d.last_session_id")),
        ),
    )
    views = before_start(views_df, "touchpoint_date").select(
        "customer_key",
        touchpoint(
            F.col("touchpoint_id"), F.col("touchpoint_at"), F.lit("tracking_page_view"), F.col("order_id"), none
        ).alias("row"),
    )
    rows = last_day.select("customer_key", F.explode(last_rows).alias("row")).filter(F.col("row").isNotNull())
    return rows.unionByName(views).select("customer_key", "row.*")


def touched_customers(
    orders_df: DataFrame,
    interactions_df: DataFrame,
    tracking_events_df: DataFrame,
    device_links_df: DataFrame,
    run_date: str,
    through: str | None = None,
    relinked_since: dt.date | None = None,
    arrived_since: dt.date | None = None,
    retracted_df: DataFrame | None = None,
) -> DataFrame:
    """Customers whose journey ``run_date``'s arrivals can change, with the first day they can change.

    ``retracted_df`` (``ops.silver_retractions`` of these nights): rows a rerun took back after a
    correction; their customers (a scan's through its order) change from the row's date, and a
    retracted device link re-attributes its anonymous events as a new link would.

    Arrivals: interactions, orders and scans first arrived on ``run_date``, and the anonymous
    events of devices whose link changed that night (re-attributed to a customer, from a previous
    owner, who is touched too from the device's first such event). Such an event
    older than ``relinked_since`` (:func:`jobs.domain.oldest_attributable_date`) cannot have been
    re-attributed: its partitions are not read. Likewise no interaction or scan first arrived on
    ``run_date`` is dated before ``arrived_since`` (:func:`jobs.domain.oldest_arrival_date` of
    the first night): the search for the arrivals reads the partitions from there on.
    """

    owners = orders_df.select("order_id", customer_key(F.col("customer_id")).alias("customer_key"))
    linked_tonight = broadcast_if_one_night(
        device_links_df.filter(arrived_between(F.col("link_ingest_date"), run_date, through)), through
    )
    relinked = linked_tonight.select("device_id")
    if retracted_df is not None:
        relinked = relinked.unionByName(
            retracted_df.filter(F.col("table_name") == "silver.device_links").select(
                F.col("row_key").alias("device_id")
            )
        )
    # ``is_identified`` (a customer_id) is a partition column: each side reads only its own files.
    anonymous = interactions_df.filter(~F.col("is_identified"))
    moved = (anonymous.filter(F.col("event_date") >= F.lit(relinked_since)) if relinked_since else anonymous).join(
        relinked, "device_id", "left_semi"
    )
    # The customers who owned those anonymous events before: a link moves only to an earlier
    # linking event, so a previous owner is another customer with an identified event on the
    # device after the new link's, which arrived tonight (so neither is dated before
    # ``arrived_since``). Their rows lose the moved events from the device's first one on (the
    # gaps and sessions around them change); recomputing another customer seen on the device
    # afterwards is harmless. A retracted link's customer is touched by its retraction row.
    identified = interactions_df.filter(F.col("is_identified"))
    previous_owners = (
        (identified.filter(F.col("event_date") >= F.lit(arrived_since)) if arrived_since else identified)
        .join(
            linked_tonight.select(
                "device_id", F.col("customer_key").alias("_owner"), F.col("linked_at").alias("_linked_at")
            ),
            "device_id",
        )
        .filter((F.col("customer_key") != F.col("_owner")) & (F.col("event_at") > F.col("_linked_at")))
        .select("device_id", "customer_key")
        .join(moved.groupBy("device_id").agg(F.min("event_date").alias("start_date")), "device_id")
        .select("customer_key", "start_date")
    )
    starts = (
        first_arrived(interactions_df, run_date, through, arrived_since)
        .select("customer_key", F.col("event_date").alias("start_date"))
        .unionByName(moved.select("customer_key", F.col("event_date").alias("start_date")))
        .unionByName(previous_owners)
        .unionByName(
            first_arrived(orders_df, run_date, through).select(
                customer_key(F.col("customer_id")).alias("customer_key"), F.col("order_date").alias("start_date")
            )
        )
        .unionByName(
            first_arrived(tracking_events_df, run_date, through, arrived_since)
            .join(owners, "order_id")
            .select("customer_key", F.col("event_date").alias("start_date"))
        )
    )
    if retracted_df is not None:
        of_scans = retracted_df.filter(F.col("table_name") == "silver.tracking_events")
        starts = starts.unionByName(
            retracted_df.filter(F.col("table_name") != "silver.tracking_events").select(
                "customer_key", F.col("row_date").alias("start_date")
            )
        ).unionByName(
            of_scans.drop("customer_key")
            .join(owners, "order_id")
            .select("customer_key", F.col("row_date").alias("start_date"))
        )
    return (
        starts.filter(F.col("customer_key").isNotNull())
        .groupBy("customer_key")
        .agg(F.min("start_date").alias("start_date"))
    )


def changed_rows(recomputed_df: DataFrame, stored_df: DataFrame, touched_df: DataFrame) -> DataFrame:
    """Rows of ``recomputed_df`` that are new or differ from the stored row (nulls compare equal).

    A stored row equal to a recomputed one has its customer and is dated from its ``start_date``
    on (the recomputation gives no earlier row), so only those stored rows are compared
    (``touched_df``: ``customer_key, start_date``, small, broadcast). Filtering by the recomputed
    rows' ids instead would evaluate the recomputation twice (measured: 35 s against 10 s on
    the quick bench's last night).
    """
    # Each customer's stored rows from its own start_date: a customer touched only tonight
    # brings no row of the earlier days the night's first changed day opens.
    stored = stored_df.join(F.broadcast(touched_df.select("customer_key", "start_date")), "customer_key").filter(
        F.col("touchpoint_date") >= F.col("start_date")
    )
    return recomputed_df.exceptAll(stored.select(*recomputed_df.columns))


def removed_rows(recomputed_df: DataFrame, stored_df: DataFrame, touched_df: DataFrame) -> DataFrame:
    """Stored rows of the touched customers, from their ``start_date`` on, that the recomputation
    no longer gives (their touchpoint was retracted from silver)."""
    in_scope = stored_df.join(F.broadcast(touched_df), "customer_key").filter(
        F.col("touchpoint_date") >= F.col("start_date")
    )
    return in_scope.join(recomputed_df.select("touchpoint_id"), "touchpoint_id", "left_anti").select(*stored_df.columns)


def journey_after_merge(stored_df: DataFrame, changed_df: DataFrame) -> DataFrame:
    """The journey as merging ``changed_df`` into ``stored_df`` will leave it (a row's date never
    changes, so its id alone says which stored row it replaces; a row flagged ``DELETE_FLAG``
    deletes it)."""
    # The night's changed ids are few next to the stored days: broadcast, the stored rows are not shuffled.
    replaced = F.broadcast(changed_df.select("touchpoint_id"))
    kept = changed_df.filter(~F.col(DELETE_FLAG)) if DELETE_FLAG in changed_df.columns else changed_df
    return stored_df.join(replaced, "touchpoint_id", "left_anti").unionByName(kept.select(*stored_df.columns))


def _derived_tables_of_every_day(spark: SparkSession, config: LakeConfig, path: str) -> list[dt.date]:
    """Build the daily tables and the tracking views from every day of the stored journey at
    ``path``; return the days."""
    days = partition_values(spark, path, "touchpoint_date")
    journey_daily.run(spark, config, days)
    views = load_contract(VIEWS_TABLE)
    merge_rows(
        spark,
        tracking_views(read_table(spark, config, "gold.customer_journey")),
        config,
        VIEWS_TABLE,
        views.keys,
        partition_by=views.partition_by,
    )
    return days


def _merge_views(
    spark: SparkSession, config: LakeConfig, changed_df: DataFrame, dates: list[dt.date], night: str
) -> None:
    """Merge the journey's changed rows into its tracking views: a view is upserted with its
    customer (re-attributed, it moves with its id).

    On a night that took rows back (``DELETE_FLAG`` in ``changed_df``: a rerun after a corrected
    landing file) a deleted row deletes its id's view, and so does a changed row that is no view:
    the corrected event may have another type. Elsewhere an id's type and order never change
    (a resent copy of an event is deduplicated in silver, the first arrival wins): only the
    views are merged."""
    views = load_contract(VIEWS_TABLE)
    is_view = _is_view_of_an_order()
    if DELETE_FLAG in changed_df.columns:
        rows = changed_df.select(*views.column_names, (F.col(DELETE_FLAG) | ~is_view).alias(DELETE_FLAG))
    else:
        rows = changed_df.filter(is_view).select(*views.column_names, F.lit(False).alias(DELETE_FLAG))
    merge_rows(
        spark,
        rows,
        config,
        VIEWS_TABLE,
        views.keys,
        partition_by=views.partition_by,
        target_filter=f"t.touchpoint_date IN ({sql_dates(dates)})",
        night=night,
        delete_flag=DELETE_FLAG,
    )


class JourneyWrite(NamedTuple):
    """What a night's journey merge wrote: the touchpoint days it changed, and its Delta version
    (None when the night never merged anything), whose change data feed holds exactly the rows it
    wrote. A rerun with nothing left to merge reports the night's earlier merge (found by its
    commit metadata), so a retry after a kill validates the same rows."""

    days: list[dt.date]
    version: int | None


def run(spark: SparkSession, config: LakeConfig, run_date: str, through: str | None = None) -> JourneyWrite:
    """Merge the journey rows that ``run_date``'s arrivals changed, and replace those days' rows of
    ``gold.journey_daily`` and ``gold.funnel_daily`` (:mod:`jobs.gold.journey_daily`); return the
    days and the journey version written.

    The daily tables are written first, from the journey as the merge will leave it, so that a
    kill anywhere converges on rerun. A row disappears only when a rerun after a corrected
    landing file retracted its touchpoint from silver (:mod:`jobs.lake.retractions`); an
    anonymous event re-attributed to another customer moves with its ``touchpoint_id``.
    """
    contract = load_contract("gold.customer_journey")
    night = run_date if through is None else f"{run_date}..{through}"
    orders = read_table(spark, config, "silver.orders")
    interactions = read_table(spark, config, "silver.interactions")
    events = read_table(spark, config, "silver.tracking_events")
    shipments = read_table(spark, config, "silver.shipments")
    links = read_table(spark, config, "silver.device_links")

    path = config.table_path(contract.name)
    stored_exists = table_exists(spark, path)
    if stored_exists and not all(table_exists(spark, config.table_path(t)) for t in DERIVED_TABLES):
        # A first build killed after its journey write, or a lake from before the tracking views
        # (whose journey_daily lacks the columns the context reads: added, then every day
        # rebuilt): the tables it derives are built from the journey now.
        add_new_columns(config, "gold.journey_daily", spark)
        days = _derived_tables_of_every_day(spark, config, path)
        log.info("journey %s: built the tables the first build left unwritten (%d days)", run_date, len(days))

    relinked_since = oldest_attributable_date(run_date, config.lateness_days)
    arrived_since = oldest_arrival_date(run_date, config.lateness_days)
    # Rows a rerun after a correction took back from silver (none on the usual night).
    retracted = retractions.of_nights(spark, config, run_date, through)
    any_retracted = not retracted.isEmpty()
    touched = touched_customers(
        orders,
        interactions,
        events,
        links,
        run_date,
        through,
        relinked_since,
        arrived_since,
        retracted if any_retracted else None,
    ).cache()
    try:
        first = touched.agg(F.min("start_date")).first()[0]
        if first is None:
            log.info("journey %s: no customer touched", run_date)
            return JourneyWrite([], None)
        context_start = first - dt.timedelta(days=JOURNEY_LOOKBACK_DAYS)
        # Silver is read from the first day that changes (partition pruning) when the stored
        # journey gives the context before it (journey_context: a few rows per customer instead
        # of 45 days of three silver tables); the first build reads its context from silver.
        since = first if stored_exists else context_start
        touchpoints = (
            all_touchpoints(
                orders.filter(F.col("order_date") >= F.lit(since)),
                interactions.filter(F.col("event_date") >= F.lit(since)),
                events.filter(F.col("event_date") >= F.lit(since)),
                # A scan's order may be older than the scan: its owner is looked up further back.
                owners_df=orders.filter(F.col("order_date") >= F.lit(context_start)),
            )
            .join(touched, "customer_key")
            .filter(
                F.to_date("touchpoint_at")
                >= (F.col("start_date") if stored_exists else F.date_sub("start_date", JOURNEY_LOOKBACK_DAYS))
            )
            .drop("start_date")
        )
        if stored_exists:
            stored = read_table(spark, config, contract.name)
            # The daily rows and the views exist with the stored journey (built above when a
            # first build was killed before them) and agree with it on every day before a touched
            # customer's start (written from the same rows, before its merge).
            context = journey_context(
                read_table(spark, config, VIEWS_TABLE).filter(F.col("touchpoint_date") >= F.lit(context_start)),
                read_table(spark, config, "gold.journey_daily").filter(F.col("journey_date") >= F.lit(context_start)),
                touched,
            )
            touchpoints = touchpoints.withColumn("session_id", F.lit(None).cast("string")).unionByName(context)
        journey = (
            build_customer_journey(touchpoints, orders, shipments)
            .join(touched, "customer_key")
            .filter(F.col("touchpoint_date") >= F.col("start_date"))
            .drop("start_date")
        )
        keys = (*contract.partition_by, *contract.keys)
        if not stored_exists:
            # The first build writes every row once; its days are then listed from the table
            # written (no second pass over the journey, nor a copy of it kept for one). The daily
            # tables follow; a kill between the two is caught up by the next run (above).
            merge_rows(spark, journey, config, contract.name, keys, partition_by=contract.partition_by, night=night)
            dates = _derived_tables_of_every_day(spark, config, path)
        else:
            stored_since_first = stored.filter(F.col("touchpoint_date") >= F.lit(first))
            # Computed once: the changes are found in it and the touched customers' daily rows
            # built from it (a night's recomputation is a few hundred thousand rows).
            journey = journey.localCheckpoint()
            changed = changed_rows(journey, stored_since_first, touched)
            if any_retracted:
                # Only then can a stored row lose its touchpoint (a second pass over the recomputation).
                removed = removed_rows(journey, stored_since_first, touched)
                changed = changed.withColumn(DELETE_FLAG, F.lit(False)).unionByName(
                    removed.withColumn(DELETE_FLAG, F.lit(True))
                )
            changed = changed.localCheckpoint()
            dates = sorted(r[0] for r in changed.select("touchpoint_date").distinct().collect())
            if dates:
                # The daily tables first, from the journey as the merge will leave it: killed
                # between the two writes, the journey is unmerged, and the rerun finds the same
                # changes and writes the same daily rows. (Merged first, a rerun found nothing to
                # change and the daily tables stayed stale for good.)
                in_parallel(
                    {
                        "daily tables": lambda: journey_daily.run(
                            spark, config, dates, journey_after_merge(stored, changed), journey, touched
                        ),
                        VIEWS_TABLE: lambda: _merge_views(spark, config, changed, dates, night),
                    }
                )
                # The date never changes for an id; the literal list lets Delta prune files.
                merge_rows(
                    spark,
                    changed,
                    config,
                    contract.name,
                    keys,
                    partition_by=contract.partition_by,
                    target_filter=f"t.touchpoint_date IN ({sql_dates(dates)})",
                    night=night,
                    delete_flag=DELETE_FLAG if any_retracted else None,
                )
        if not dates:
            # Nothing left to write: a first run of this night that merged and was then killed
            # (a timeout, a retry) already wrote it. Report that merge, so the gold gate validates
            # its rows as the killed run's gate would have (its change data feed and days).
            earlier = night_commit(spark, path, night) if stored_exists else None
            if earlier is None:
                return JourneyWrite([], None)
            days = [dt.date.fromisoformat(d) for d in partitions_written(spark, path, earlier, "touchpoint_date")]
            log.info("journey %s: nothing left to merge; this night merged version %s already", night, earlier)
            return JourneyWrite(days, earlier)
        version = table_version(spark, config, contract.name)
        log.info("journey %s: %d day(s) changed, from %s (version %s)", run_date, len(dates), dates[0], version)
        return JourneyWrite(dates, version)
    finally:
        touched.unpersist()
