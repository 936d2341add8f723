"""Silver ``customers``: one row per resolved customer, from silver orders, interactions and links.

A customer exists once its ``customer_id`` was seen on an order or an identified interaction;
``customer_key`` is :func:`jobs.domain.customer_key` of it. The nightly run for date D
recomputes, from all their rows, the customers D can have changed:

* customers of orders and interactions whose first copy arrived on D (``first_ingest_date = D``);
* every customer seen on a device whose link D brought or made earlier (``link_ingest_date = D``):
  the new owner gains the device and its anonymous history, the previous owner (who has an
  identified event on the device, the one that had linked it) loses them.

Each row is a function of the customer's silver rows, so a MERGE with an unconditional update
converges whatever order the nights ran in, provided it runs after ``orders`` and
``interactions`` of the same date.
"""

from __future__ import annotations

import datetime as dt

import pyspark.sql.functions as F
from pyspark.sql import Column, DataFrame, SparkSession

from jobs.domain import customer_key, oldest_arrival_date, oldest_attributable_date
from jobs.lake import retractions
from jobs.lake.config import LakeConfig
from jobs.lake.contracts import load_contract
from jobs.lake.tables import (
    arrived_between,
    broadcast_if_one_night,
    first_arrived,
    merge_rows,
    read_table,
    read_table_or_empty,
    table_exists,
)

# On equal times the order's contact details beat an interaction's (a checkout form is the
# stronger evidence), then the greater record id: a total order, so the pick is deterministic.
_ORDER_SOURCE, _INTERACTION_SOURCE = 1, 0


def _latest_non_null(value: str) -> Column:
    candidate = F.struct("_at", "_source_rank", "_record_id", F.col(value).alias("_value"))
    return F.max(F.when(F.col(value).isNotNull(), candidate)).getField("_value")


def _evidence(orders_df: DataFrame, interactions_df: DataFrame) -> DataFrame:
    """Orders and attributed interactions as one frame of dated facts about a customer."""
    orders = orders_df.select(
        customer_key(F.col("customer_id")).alias("customer_key"),
        "customer_id",
        F.col("placed_at").alias("_at"),
        F.lit(_ORDER_SOURCE).alias("_source_rank"),
        F.col("order_id").alias("_record_id"),
        F.lit(True).alias("_is_order"),
        "email_hash",
        "phone_hash",
        F.col("first_ingest_date").alias("_identified_ingest_date"),
    )
    # A linked (anonymous) event dates the customer but lends them no contact details: the
    # device may be shared, and only an identified event says who typed them.
    identified = F.col("is_identified")
    interactions = interactions_df.filter(F.col("customer_key").isNotNull()).select(
        "customer_key",
        "customer_id",
        F.col("event_at").alias("_at"),
        F.lit(_INTERACTION_SOURCE).alias("_source_rank"),
        F.col("event_id").alias("_record_id"),
        F.lit(False).alias("_is_order"),
        F.when(identified, F.col("email_hash")).alias("email_hash"),
        F.when(identified, F.col("phone_hash")).alias("phone_hash"),
        F.when(identified, F.col("first_ingest_date")).alias("_identified_ingest_date"),
    )
    return orders.unionByName(interactions)


def _evidence_stats(evidence_df: DataFrame) -> DataFrame:
    """Per customer: the figures :func:`_evidence` rows give (named or not)."""
    is_order = F.col("_is_order")
    return evidence_df.groupBy("customer_key").agg(
        F.max("customer_id").alias("customer_id"),
        F.min("_at").alias("first_seen_at"),
        F.min(F.when(is_order, F.col("_at"))).alias("first_order_at"),
        F.max(F.when(is_order, F.col("_at"))).alias("last_order_at"),
        F.count(F.when(is_order, 1)).alias("orders"),
        _latest_non_null("email_hash").alias("email_hash"),
        _latest_non_null("phone_hash").alias("phone_hash"),
        F.min("_identified_ingest_date").alias("first_ingest_date"),
    )


def _home_region(orders_df: DataFrame) -> DataFrame:
    # Most orders wins; on a tie the alphabetically first region: min of (-count, region).
    region_counts = orders_df.groupBy(
        customer_key(F.col("customer_id")).alias("customer_key"), "destination_region"
    ).agg(F.count("*").alias("_n"))
    return region_counts.groupBy("customer_key").agg(
        F.min(F.struct((-F.col("_n")).alias("_neg_n"), F.col("destination_region")))
        .getField("destination_region")
        .alias("home_region")
    )


def _named_customers(stats_df: DataFrame, orders_df: DataFrame, device_links_df: DataFrame) -> DataFrame:
    """Per-customer figures -> ``silver.customers`` rows: the named customers only, with their home
    region (from ``orders_df``) and devices (from ``device_links_df``)."""
    contract = load_contract("silver.customers")
    devices = device_links_df.groupBy("customer_key").agg(F.count("*").alias("devices"))
    customers = (
        stats_df.filter(F.col("first_ingest_date").isNotNull())  # someone named this customer
        .join(_home_region(orders_df), "customer_key", "left")
        .join(devices, "customer_key", "left")
        .withColumn("devices", F.coalesce(F.col("devices"), F.lit(0)))
    )
    return customers.select(*[F.col(c.name).cast(c.type) for c in contract.columns])


def build_customers(orders_df: DataFrame, interactions_df: DataFrame, device_links_df: DataFrame) -> DataFrame:
    """Silver orders + interactions + device links (all rows of the customers concerned) -> customers.

    Returns:
        Rows of contract ``silver.customers``, one per ``customer_key`` of an order or an
        identified interaction.
    """
    return _named_customers(_evidence_stats(_evidence(orders_df, interactions_df)), orders_df, device_links_df)


def build_customers_since(
    orders_df: DataFrame,
    recent_interactions_df: DataFrame,
    device_links_df: DataFrame,
    stored_df: DataFrame,
    since: dt.date,
) -> DataFrame:
    """:func:`build_customers` of the customers concerned, reading their interactions only from ``since`` on.

    For a night whose changes to the customers' evidence are all dated ``since`` or later and
    take nothing back (no retraction): its arrivals are within the lateness bound, and a device
    link it brings or moves re-attributes only anonymous events of the pre-login window before
    a link that arrived tonight (:func:`jobs.domain.oldest_attributable_date`). The evidence
    before ``since`` is then what it was when the stored rows were built, so each column follows
    from the stored row and the evidence from ``since`` on:

    * ``first_seen_at``: the stored one when it is before ``since`` (it came from that unchanged
      part), else the earliest of the evidence from ``since`` on (the part before is empty), or
      of any order;
    * ``email_hash`` / ``phone_hash``: the latest non-null of the evidence from ``since`` on, which
      is later than anything before it; else the stored one. Anonymous events, the only evidence
      that can change owner, lend no contact details;
    * ``first_ingest_date``: the earliest of the stored one and the new evidence's (identified
      evidence only grows without a retraction, and first arrivals only move earlier);
    * the order columns and ``home_region`` from all the customers' orders, ``devices`` from the
      links (both small next to the interactions).

    Args:
        orders_df: every ``silver.orders`` row of the customers concerned.
        recent_interactions_df: their ``silver.interactions`` rows dated ``since`` or later
            (older rows are ignored).
        device_links_df: their ``silver.device_links`` rows.
        stored_df: their stored ``silver.customers`` rows (none for a new customer).
        since: the first day whose evidence may have changed.

    Returns:
        Rows of contract ``silver.customers`` as :func:`build_customers` of all their rows gives.
    """
    start = F.lit(since).cast("timestamp")
    recent = _evidence_stats(
        _evidence(
            orders_df.filter(F.col("placed_at") >= start), recent_interactions_df.filter(F.col("event_at") >= start)
        )
    ).select("customer_key", "customer_id", "first_seen_at", "email_hash", "phone_hash", "first_ingest_date")
    every_order = orders_df.groupBy(customer_key(F.col("customer_id")).alias("customer_key")).agg(
        F.max("customer_id").alias("customer_id"),
        F.min("placed_at").alias("first_order_at"),
        F.max("placed_at").alias("last_order_at"),
        F.count("*").alias("orders"),
        F.min("first_ingest_date").alias("first_ingest_date"),
    )
    s, r, o = stored_df.alias("s"), recent.alias("r"), every_order.alias("o")
    stored_before = F.when(F.col("s.first_seen_at") < start, F.col("s.first_seen_at"))
    combined = (
        s.join(r, "customer_key", "full")
        .join(o, "customer_key", "full")
        .select(
            "customer_key",
            F.coalesce("r.customer_id", "o.customer_id", "s.customer_id").alias("customer_id"),
            F.least("r.first_seen_at", "o.first_order_at", stored_before).alias("first_seen_at"),
            "o.first_order_at",
            "o.last_order_at",
            F.coalesce(F.col("o.orders"), F.lit(0)).alias("orders"),
            F.coalesce("r.email_hash", "s.email_hash").alias("email_hash"),
            F.coalesce("r.phone_hash", "s.phone_hash").alias("phone_hash"),
            F.least("r.first_ingest_date", "o.first_ingest_date", "s.first_ingest_date").alias("first_ingest_date"),
        )
    )
    return _named_customers(combined, orders_df, device_links_df)


def run(spark: SparkSession, config: LakeConfig, run_date: str, through: str | None = None) -> None:
    """Recompute the customers that ``run_date``'s silver changes touched (after orders and interactions)."""
    contract = load_contract("silver.customers")
    orders, interactions, links = (
        read_table_or_empty(spark, config, name, load_contract(name).spark_schema())
        for name in ("silver.orders", "silver.interactions", "silver.device_links")
    )

    keyed_orders = orders.withColumn("customer_key", customer_key(F.col("customer_id")))
    relinked_devices = links.filter(arrived_between(F.col("link_ingest_date"), run_date, through)).select("device_id")
    # The searches for the night's arrivals and re-attributions read only the event dates they
    # can have (bronze quarantines lines older than the lateness bound), not the whole history.
    oldest_arrival = oldest_arrival_date(run_date, config.lateness_days)
    arrivals = first_arrived(interactions, run_date, through, oldest_arrival)
    attributable = interactions.filter(
        F.col("event_date") >= F.lit(oldest_attributable_date(run_date, config.lateness_days))
    )
    # Rows a rerun retracted (a corrected file): their customers lost evidence, maybe all of it;
    # a retracted device link moved its anonymous events away from its customer, maybe to another.
    retracted = retractions.of_nights(spark, config, run_date, through)
    any_retracted = not retracted.isEmpty()
    retracted_devices = retracted.filter(F.col("table_name") == "silver.device_links").select(
        F.col("row_key").alias("device_id")
    )
    # The events of a re-linked (or retracted) device that name a customer the change touches:
    # its anonymous ones of the attributable window (now the new owner's), and identified ones
    # from the arrival bound on only. A previous owner's linking event is later than the new
    # link's, which arrived tonight (a retracted link's successor is later than the retracted
    # one, which did), so it is dated within the lateness bound: the identified partitions of
    # the rest of the window are not read (as in jobs.gold.journey.touched_customers).
    relinked_evidence = attributable.filter(
        ~F.col("is_identified") | (F.col("event_date") >= F.lit(oldest_arrival))
    ).join(broadcast_if_one_night(relinked_devices.unionByName(retracted_devices), through), "device_id", "left_semi")
    touched = (
        first_arrived(keyed_orders, run_date, through)
        .select("customer_key")
        .unionByName(arrivals.select("customer_key"))
        .unionByName(relinked_evidence.select("customer_key"))
        .unionByName(retracted.select("customer_key"))
        .filter(F.col("customer_key").isNotNull())
        .distinct()
        # Small (the night's customers) and read by every join below: computed once, not once
        # per join (each pass reads the arrivals' partitions of silver.interactions again).
        .localCheckpoint()
    )
    touched = broadcast_if_one_night(touched, through)
    # Read by three aggregations (the evidence, every order, the home region): one scan of the
    # orders table instead of three.
    touched_orders = keyed_orders.join(touched, "customer_key", "left_semi").localCheckpoint()
    touched_links = links.join(touched, "customer_key", "left_semi")
    if not any_retracted and table_exists(spark, config.table_path(contract.name)):
        # The usual night: every touched customer still has a row, and every change to their
        # evidence is dated from the attributable bound on (arrivals and re-attributions, nothing
        # taken back), so their interactions are read from there, not the whole history
        # (build_customers_since).
        customers = build_customers_since(
            touched_orders,
            attributable.join(touched, "customer_key", "left_semi"),
            touched_links,
            read_table(spark, config, contract.name).join(touched, "customer_key", "left_semi"),
            oldest_attributable_date(run_date, config.lateness_days),
        )
    else:  # the first build, or a rerun that took rows back: from all their rows
        customers = build_customers(
            touched_orders, interactions.join(touched, "customer_key", "left_semi"), touched_links
        )
    if not any_retracted:
        merge_rows(spark, customers, config, contract.name, contract.keys)
        return
    # A touched customer no row names any more (the only order was retracted) is deleted.
    retractions.merge_deleting_the_rest(spark, config, contract.name, customers, touched)
