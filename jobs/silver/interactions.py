"""Silver ``interactions``: one row per event, PII hashed, attributed to a customer.

Attribution follows the identity rule of :mod:`jobs.silver.identity`: an event's own
``customer_id``, else its device's link, else null. The nightly run for date D

1. merges D's linking events into ``silver.device_links`` (:func:`jobs.silver.identity.run`);
2. merges D's arrivals into ``silver.interactions`` (first arrival of an ``event_id`` wins),
   resolved against the links as they now stand;
3. re-resolves the anonymous events of the devices whose link D brought or made earlier (their
   ``link_ingest_date`` is D): only the event dates such a link can attribute
   (:func:`jobs.domain.oldest_attributable_date` on), read and rewritten by partition.

Invariant after every run: each row's ``customer_key`` is what the current links say. Links only
move to an earlier event, and every move re-resolves the device's history, so D then D+1, D+1
then D and reruns all end with the same table.
"""

from __future__ import annotations

import pyspark.sql.functions as F
from pyspark.sql import DataFrame, SparkSession

from jobs.domain import oldest_arrival_date, oldest_attributable_date
from jobs.lake import retractions
from jobs.lake.config import LakeConfig
from jobs.lake.contracts import load_contract
from jobs.lake.tables import (
    arrived_between,
    broadcast_if_one_night,
    first_arrived,
    key_range_filter,
    merge_rows,
    read_table,
    read_table_or_empty,
    sql_dates,
    table_exists,
)
from jobs.silver import identity
from jobs.silver.orders import filter_first_arrival
from jobs.silver.pii import checked_pii_key, hashed_pii, record_key_fingerprint, with_pii_key


def build_silver_interactions(
    bronze_interactions_df: DataFrame, device_links_df: DataFrame, hashing_key: str
) -> DataFrame:
    """Bronze interaction rows + device links -> silver interactions (contract ``silver.interactions``).

    Args:
        bronze_interactions_df: bronze rows (copies of an event on several dates allowed).
        device_links_df: ``silver.device_links`` (the links known now).
        hashing_key: key of :func:`jobs.silver.pii.hashed_pii`; clear email and phone are dropped here.
    """
    contract = load_contract("silver.interactions")
    first = filter_first_arrival(bronze_interactions_df, "event_id")
    customer_id = identity.blank_as_null(F.col("customer_id"))
    shaped = with_pii_key(first, hashing_key).select(
        "event_id",
        "event_at",
        F.to_date("event_at").alias("event_date"),
        "event",
        "channel",
        identity.blank_as_null(F.col("device_id")).alias("device_id"),
        customer_id.alias("customer_id"),
        customer_id.isNotNull().alias("is_identified"),
        "order_id",
        "product_id",
        "query",
        "contact_reason",
        "rating",
        "review_text",
        "campaign",
        hashed_pii(F.col("email")).alias("email_hash"),
        hashed_pii(F.col("phone")).alias("phone_hash"),
        F.col("_ingest_date").alias("first_ingest_date"),
    )
    resolved = identity.with_customer_key(shaped, device_links_df)
    return resolved.select(*[F.col(c.name).cast(c.type) for c in contract.columns])


def re_resolve(
    spark: SparkSession,
    config: LakeConfig,
    run_date: str,
    through: str | None,
    retracted_devices: list[str] | None,
) -> None:
    """Step 3: re-resolve, in place, the anonymous events of the devices whose link ``run_date``
    set or moved, or retracted (``retracted_devices``: recomputed or deleted, :func:`identity.run`).

    ``retracted_devices`` is what :func:`merge_arrivals` returned: None when it created the table
    (every row was resolved against the links as they now stand), and then there is nothing to do.

    The new keys come from :func:`jobs.silver.identity.with_customer_key` (one definition of the
    rule); only events whose key actually changes are rewritten, and nothing is written when none
    does (the usual night: a new link's same-day anonymous events were resolved on insert).
    """
    if retracted_devices is None:
        return
    device_links_df = read_table(spark, config, "silver.device_links")
    changed = device_links_df.filter(arrived_between(F.col("link_ingest_date"), run_date, through)).select("device_id")
    if retracted_devices:
        changed = changed.unionByName(spark.createDataFrame([(d,) for d in retracted_devices], "device_id string"))
    # Older events cannot take a key from tonight's links: the read and the MERGE skip their partitions.
    oldest = oldest_attributable_date(run_date, config.lateness_days)
    anonymous = (
        read_table(spark, config, "silver.interactions")
        # Anonymous is ``NOT is_identified`` (no customer_id): a partition of its own, read alone.
        .filter((F.col("event_date") >= F.lit(oldest)) & ~F.col("is_identified"))
        .join(broadcast_if_one_night(changed, through), "device_id", "left_semi")
        .select(
            "event_id", "event_at", "event_date", "device_id", "customer_id", F.col("customer_key").alias("_stored_key")
        )
    )
    fixes = (
        identity.with_customer_key(anonymous, device_links_df)
        .filter(~F.col("customer_key").eqNullSafe(F.col("_stored_key")))
        .select("event_id", "event_date", "customer_key")
    ).localCheckpoint()
    dates = sorted(row[0] for row in fixes.select("event_date").distinct().collect())
    if not dates:
        return
    merge_rows(
        spark,
        fixes,
        config,
        "silver.interactions",
        ("event_id",),
        # Literals: only the anonymous files of those days are read and rewritten (a lake
        # created before the contract's v4 keeps one partition per day: still correct).
        target_filter=f"t.event_date IN ({sql_dates(dates)}) AND NOT t.is_identified",
        update_columns=("customer_key",),
        insert=False,
    )


def run(spark: SparkSession, config: LakeConfig, run_date: str, through: str | None = None) -> None:
    """Merge ``run_date``'s interaction arrivals into ``silver.interactions`` (and the device
    links), then re-resolve the anonymous events of re-linked devices: steps 1 to 3 of the module
    docstring (:func:`merge_arrivals`, then :func:`re_resolve`)."""
    re_resolve(spark, config, run_date, through, merge_arrivals(spark, config, run_date, through))


def merge_arrivals(
    spark: SparkSession, config: LakeConfig, run_date: str, through: str | None = None
) -> list[str] | None:
    """Steps 1 and 2: the device links, then ``run_date``'s arrivals merged into ``silver.interactions``.

    Includes :func:`jobs.silver.identity.run`: one call builds both ``silver.device_links`` and
    ``silver.interactions`` for the date. A rerun after the night's files were corrected retracts
    the events they no longer carry (:mod:`jobs.lake.retractions`).

    The identified events are final once this returns (step 3 rewrites anonymous ones only), so
    what reads only those (``silver.session_starts``) need not wait for :func:`re_resolve`.

    Returns:
        The devices whose link the night retracted, for :func:`re_resolve` (set or moved links it
        reads from the table); None when the table was created now: a first build resolves every
        row against the links as they now stand.
    """
    contract = load_contract("silver.interactions")
    hashing_key = checked_pii_key(spark, config, contract.name)  # before any write of the night
    retracted_devices = identity.run(spark, config, run_date, through)
    links = read_table(spark, config, "silver.device_links")
    bronze = read_table(spark, config, "bronze.interactions")
    arrived = bronze.filter(arrived_between(F.col("_ingest_date"), run_date, through))
    later = bronze.filter(F.col("_ingest_date") > F.lit(through or run_date).cast("date"))
    silver = build_silver_interactions(arrived, links, hashing_key.value)
    existed = table_exists(spark, config.table_path(contract.name))
    stored = read_table_or_empty(spark, config, contract.name, contract.spark_schema())
    # The arrivals' event ids (copies included) bound the ids the MERGE can match: the scan of the
    # table skips the files outside them (large bench's last night: 16.9 -> 9.7 s, range included).
    (key,) = contract.keys
    retractions.merge_night(
        spark,
        config,
        contract.name,
        silver,
        # No event of tonight's arrivals is older than the lateness bound: nor are those it owns.
        owned=first_arrived(stored, run_date, through, oldest_arrival_date(run_date, config.lateness_days)),
        arrived_keys=arrived,
        describe=lambda orphans: orphans.select(
            F.col("first_ingest_date").alias("night"),
            F.col("event_id").alias("row_key"),
            "customer_key",
            F.col("order_id"),
            F.col("event_date").alias("row_date"),
        ),
        replacements=lambda keys: build_silver_interactions(
            later.join(keys, "event_id", "left_semi"), links, hashing_key.value
        ),
        run_date=run_date,
        through=through,
        partition_by=contract.partition_by,
        target_filter=key_range_filter(arrived, key) if existed else None,
    )
    record_key_fingerprint(spark, config, contract.name, hashing_key)
    return list(retracted_devices) if existed else None
