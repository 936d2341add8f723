"""Silver ``orders``: one row per order from bronze, PII hashed."""

from __future__ import annotations

import pyspark.sql.functions as F
from pyspark.sql import DataFrame, SparkSession, Window

from jobs.domain import customer_key
from jobs.lake import retractions
from jobs.lake.config import LakeConfig
from jobs.lake.contracts import load_contract
from jobs.lake.tables import arrived_between, first_arrived, read_table, read_table_or_empty
from jobs.silver.pii import checked_pii_key, hashed_pii, record_key_fingerprint, with_pii_key


def filter_first_arrival(df: DataFrame, key: str) -> DataFrame:
    """Keep, per ``key``, the row that arrived first (by ingest date, file, line)."""
    first = Window.partitionBy(key).orderBy("_ingest_date", "_source_file", "_line_number")
    return df.withColumn("_arrival_rank", F.row_number().over(first)).filter("_arrival_rank = 1").drop("_arrival_rank")


def build_silver_orders(bronze_orders_df: DataFrame, hashing_key: str) -> DataFrame:
    """Bronze order rows -> silver orders (contract ``silver.orders``)."""
    contract = load_contract("silver.orders")
    first = filter_first_arrival(bronze_orders_df, "order_id")
    shaped = with_pii_key(first, hashing_key).select(
        "order_id",
        "customer_id",
        "placed_at",
        F.to_date("placed_at").alias("order_date"),
        "items",
        "amount",
        "origin_warehouse",
        "destination_region",
        F.concat_ws(">", "origin_warehouse", "destination_region").alias("lane"),
        "carrier",
        "promised_delivery_date",
        F.datediff("promised_delivery_date", F.to_date("placed_at")).alias("promised_days"),
        "payment_method",
        "channel",
        hashed_pii(F.col("email")).alias("email_hash"),
        hashed_pii(F.col("phone")).alias("phone_hash"),
        F.col("_ingest_date").alias("first_ingest_date"),
        F.col("_source_file").alias("source_file"),
        F.col("_line_number").alias("line_number"),
    )
    return shaped.select(*[F.col(c.name).cast(c.type) for c in contract.columns])


def run(spark: SparkSession, config: LakeConfig, run_date: str, through: str | None = None) -> None:
    """Merge the orders that arrived on ``run_date`` into ``silver.orders``.

    ``through`` (history import): every night from ``run_date`` to ``through`` at once, with the
    same end state as running them one by one. Exact resends of an order can arrive on several
    dates: the earliest copy is the record. A rerun after the night's files were corrected
    retracts the orders they no longer carry (:mod:`jobs.lake.retractions`).
    """
    bronze = read_table(spark, config, "bronze.orders")
    arrived = bronze.filter(arrived_between(F.col("_ingest_date"), run_date, through))
    contract = load_contract("silver.orders")
    hashing_key = checked_pii_key(spark, config, contract.name)
    silver = build_silver_orders(arrived, hashing_key.value)
    stored = read_table_or_empty(spark, config, contract.name, contract.spark_schema())
    later = bronze.filter(F.col("_ingest_date") > F.lit(through or run_date).cast("date"))
    retractions.merge_night(
        spark,
        config,
        contract.name,
        silver,
        owned=first_arrived(stored, run_date, through),
        arrived_keys=arrived,
        describe=lambda orphans: orphans.select(
            F.col("first_ingest_date").alias("night"),
            F.col("order_id").alias("row_key"),
            customer_key(F.col("customer_id")).alias("customer_key"),
            "order_id",
            F.col("order_date").alias("row_date"),
        ),
        replacements=lambda keys: build_silver_orders(later.join(keys, "order_id", "left_semi"), hashing_key.value),
        run_date=run_date,
        through=through,
    )
    record_key_fingerprint(spark, config, contract.name, hashing_key)
