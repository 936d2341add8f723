"""ETA features: what is known about an order at placement, and its realised delivery time."""

from __future__ import annotations

import pyspark.sql.functions as F
from pyspark.sql import DataFrame

CATEGORICAL_FEATURES = ["origin_warehouse", "destination_region", "lane", "carrier", "channel"]
NUMERIC_FEATURES = ["placed_weekday", "placed_hour", "items", "amount", "promised_days"]
ETA_FEATURES = CATEGORICAL_FEATURES + NUMERIC_FEATURES
ETA_LABEL = "delivery_days"


def with_placement_features(orders_df: DataFrame) -> DataFrame:
    """Add calendar features of the placement time (weekday 1=Mon..7=Sun, UTC hour)."""
    return (
        orders_df.withColumn("placed_weekday", F.dayofweek("placed_at"))
        .withColumn("placed_weekday", ((F.col("placed_weekday") + 5) % 7) + 1)
        .withColumn("placed_hour", F.hour("placed_at"))
    )


def build_eta_training_rows(orders_df: DataFrame, shipments_df: DataFrame, as_of_date: str) -> DataFrame:
    """Delivered orders known by ``as_of_date`` with placement features and ``delivery_days``.

    Only deliveries whose delivered scan had *arrived* by ``as_of_date`` count, so a model
    trained for date D never sees what the lake learned after D.
    """
    as_of = F.lit(as_of_date).cast("date")
    delivered = shipments_df.filter(F.col("delivered_ingest_date") <= as_of).select("order_id", "delivered_at")
    known = orders_df.filter(F.col("first_ingest_date") <= as_of)
    return (
        known.join(delivered, "order_id")
        .transform(with_placement_features)
        .withColumn(ETA_LABEL, (F.unix_timestamp("delivered_at") - F.unix_timestamp("placed_at")) / 86400.0)
        .withColumn("amount", F.col("amount").cast("double"))
        .select("order_id", "placed_at", "promised_delivery_date", "delivered_at", *ETA_FEATURES, ETA_LABEL)
    )
