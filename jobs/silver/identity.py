"""Identity resolution: link devices to customers (table ``silver.device_links``).

The rule (also the description of ``schemas/silver/device_links.yaml``):

* A *linking event* is any deduplicated interaction carrying both a ``device_id`` and a
  ``customer_id`` (in practice ``login``, ``checkout`` and every event of a logged-in session).
* A device belongs to the customer of its **earliest linking event**, ordered by ``event_at``,
  then ``event_id`` (and, for two copies of one event, the earliest arrival).
* ``customer_key`` = ``substring(sha2(concat('cxlake-customer:', customer_id), 256), 1, 20)``
  (:func:`jobs.domain.customer_key`): deterministic across runs and machines, no secret
  (``customer_id`` is an internal id, not PII).
* An interaction's ``customer_key`` is the key of its own ``customer_id``; an anonymous event
  (device only) takes the key of its device's link when it happened at most
  :data:`jobs.domain.PRE_LOGIN_ATTRIBUTION_DAYS` before the link (also activity *before* the
  login); it is null when the device was never linked or the event is older than that. A later login of another customer on the same device
  does not move the device (their own events keep their own key).

Because a device's link is a minimum over its linking events, the nightly job merges each night's
candidates with an "earlier link wins" condition: the table does not depend on the order in which
nights ran, nor on reruns. When a night brings a new or earlier link, its ``link_ingest_date`` is
that night, which is how ``jobs.silver.interactions`` and ``jobs.silver.customers`` find the
devices whose history must be re-resolved.
"""

from __future__ import annotations

import pyspark.sql.functions as F
from pyspark.sql import Column, DataFrame, SparkSession

from jobs.domain import PRE_LOGIN_ATTRIBUTION_DAYS, customer_key
from jobs.lake import retractions
from jobs.lake.config import LakeConfig
from jobs.lake.contracts import load_contract
from jobs.lake.tables import arrived_between, merge_rows, read_table, read_table_or_empty
from jobs.silver.orders import filter_first_arrival

# A total order on candidate links of one device: the smaller (linked_at, link_event_id,
# link_ingest_date) wins, so merging nights in any order ends with the same row.
EARLIER_LINK = (
    "s.linked_at < t.linked_at OR (s.linked_at = t.linked_at AND (s.link_event_id < t.link_event_id OR "
    "(s.link_event_id = t.link_event_id AND s.link_ingest_date < t.link_ingest_date)))"
)
# The stored link's own event from the night that brought it: that night's files, as they are
# now, give its values (a rerun after a correction).
SAME_LINK_AGAIN = "(s.link_event_id = t.link_event_id AND s.link_ingest_date = t.link_ingest_date)"


def blank_as_null(value: Column) -> Column:
    """An id that is empty or only spaces is no id: it must not identify or link anyone."""
    return F.when(F.trim(value) != "", value)


def build_device_links(interactions_df: DataFrame) -> DataFrame:
    """Bronze-shaped interactions -> one link per device (contract ``silver.device_links``).

    Args:
        interactions_df: rows with ``event_id, event_at, event, device_id, customer_id`` and the
            bronze arrival columns ``_ingest_date, _source_file, _line_number`` (copies allowed).

    Returns:
        Per device with at least one linking event, the customer of its earliest one.
    """
    contract = load_contract("silver.device_links")
    events = filter_first_arrival(interactions_df, "event_id")
    linking = events.select(
        blank_as_null(F.col("device_id")).alias("device_id"),
        blank_as_null(F.col("customer_id")).alias("customer_id"),
        "event_at",
        "event_id",
        "event",
        "_ingest_date",
    ).filter(F.col("device_id").isNotNull() & F.col("customer_id").isNotNull())
    earliest = linking.groupBy("device_id").agg(
        F.min(F.struct("event_at", "event_id", "_ingest_date", "customer_id", "event")).alias("_link")
    )
    links = earliest.select(
        "device_id",
        F.col("_link.customer_id").alias("customer_id"),
        customer_key(F.col("_link.customer_id")).alias("customer_key"),
        F.col("_link.event_at").alias("linked_at"),
        F.col("_link.event_id").alias("link_event_id"),
        F.col("_link.event").alias("link_event"),
        F.col("_link._ingest_date").alias("link_ingest_date"),
    )
    return links.select(*[F.col(c.name).cast(c.type) for c in contract.columns])


def with_customer_key(
    interactions_df: DataFrame, device_links_df: DataFrame, attribution_days: int = PRE_LOGIN_ATTRIBUTION_DAYS
) -> DataFrame:
    """Add ``customer_key``: own ``customer_id``'s key, else the device's link (for an event at most
    ``attribution_days`` before the link), else null.

    Args:
        interactions_df: rows with ``device_id``, ``customer_id`` (blank ids already null) and ``event_at``.
        device_links_df: ``silver.device_links`` rows (at least ``device_id, customer_key, linked_at``).
    """
    links = device_links_df.select(
        F.col("device_id").alias("_link_device_id"),
        F.col("customer_key").alias("_link_key"),
        F.col("linked_at").alias("_linked_at"),
    )
    joined = interactions_df.join(links, F.col("device_id") == F.col("_link_device_id"), "left")
    window_start = F.col("_linked_at") - F.expr(f"INTERVAL {attribution_days} DAYS")
    linked_key = F.when(F.col("event_at") >= window_start, F.col("_link_key"))
    resolved = F.coalesce(customer_key(F.col("customer_id")), linked_key)
    return joined.withColumn("customer_key", resolved).drop("_link_device_id", "_link_key", "_linked_at")


def run(spark: SparkSession, config: LakeConfig, run_date: str, through: str | None = None) -> list[str]:
    """Merge the links carried by ``run_date``'s interaction arrivals into ``silver.device_links``.

    Called by :func:`jobs.silver.interactions.run` before it writes ``silver.interactions`` (do not
    wire it separately: that would only repeat an idempotent merge).

    A stored link that arrived on one of these nights but that their arrivals no longer give as
    it is (a corrected file removed or changed its linking event) is retracted: the device's link
    is recomputed from all its linking events in bronze (:mod:`jobs.lake.retractions`), which
    may move it to a later event or delete it. Returns the devices so retracted: their events
    must be re-resolved.
    """
    contract = load_contract("silver.device_links")
    bronze = read_table(spark, config, "bronze.interactions")
    arrived = bronze.filter(arrived_between(F.col("_ingest_date"), run_date, through))
    fresh = build_device_links(arrived)
    stored = read_table_or_empty(spark, config, contract.name, contract.spark_schema())
    owned = stored.filter(arrived_between(F.col("link_ingest_date"), run_date, through))
    columns = [c.name for c in contract.columns]
    retracted = []
    if retractions.may_hold(config, contract.name, "link_ingest_date", run_date, through):
        # A stored link of tonight that tonight's arrivals do not give exactly as stored.
        changed = owned.alias("o").join(
            fresh.alias("f"), [F.col(f"o.{c}").eqNullSafe(F.col(f"f.{c}")) for c in columns], "left_anti"
        )
        retracted = [
            row.asDict()
            for row in changed.select(
                F.col("link_ingest_date").alias("night"),
                F.col("device_id").alias("row_key"),
                "customer_key",
                F.lit(None).cast("string").alias("order_id"),
                F.to_date(F.col("linked_at") - F.expr(f"INTERVAL {PRE_LOGIN_ATTRIBUTION_DAYS} DAYS")).alias("row_date"),
            ).collect()
        ]
    source = fresh.withColumn("_recomputed", F.lit(False)).withColumn(retractions.DELETE_FLAG, F.lit(False))
    if retracted:
        retractions.record(spark, config, contract.name, retracted)
        devices = spark.createDataFrame([(r["row_key"],) for r in retracted], "device_id string")
        # Every linking event of these devices, whatever night brought it.
        recomputed = build_device_links(bronze.join(devices, "device_id", "left_semi"))
        gone = retractions.deletions(devices.join(recomputed, "device_id", "left_anti"), contract.name)
        source = (
            source.join(devices, "device_id", "left_anti")
            .unionByName(
                recomputed.withColumn("_recomputed", F.lit(True)).withColumn(retractions.DELETE_FLAG, F.lit(False))
            )
            .unionByName(gone.withColumn("_recomputed", F.lit(True)))
        )
    merge_rows(
        spark,
        source,
        config,
        contract.name,
        contract.keys,
        # A recomputed link replaces the stored one whatever its time; tonight's otherwise win
        # only when earlier, or when they are the stored link's own event as tonight's file gives it.
        update_condition=f"s._recomputed OR {EARLIER_LINK} OR {SAME_LINK_AGAIN}",
        delete_flag=retractions.DELETE_FLAG,
    )
    return [str(r["row_key"]) for r in retracted]
