"""The ETA training job on a small generated world with a known, learnable carrier effect."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from decimal import Decimal

import mlflow
import numpy as np
import pandas as pd
import pytest

from jobs.contracts import load_contract
from jobs.models import eta
from jobs.tables import merge_rows

CARRIER_DAYS = {"wb_express": 1.5, "cdek": 3.0, "russian_post": 5.0}


def test_time_split_holds_out_the_latest_orders() -> None:
    rows = pd.DataFrame(
        {
            "placed_at": pd.to_datetime(["2026-01-03", "2026-01-01", "2026-01-02", "2026-01-04"]),
            "order_id": list("abcd"),
        }
    )
    train, holdout = eta.time_split(rows, 0.25)
    assert list(train.order_id) == ["b", "c", "a"] and list(holdout.order_id) == ["d"]


def test_promise_error_treats_the_promised_date_as_midday() -> None:
    holdout = pd.DataFrame(
        {
            "placed_at": pd.to_datetime(["2026-01-01 12:00"]),
            "promised_delivery_date": [dt.date(2026, 1, 4)],  # promise = 3.0 days after placement
            "delivery_days": [2.0],
        }
    )
    assert eta.promise_error_days(holdout).tolist() == [1.0]


def _world(spark, n: int = 240):
    rng = np.random.default_rng(3)
    orders, shipments = [], []
    start = dt.datetime(2026, 1, 1, 8)
    carriers = list(CARRIER_DAYS)
    for i in range(n):
        placed = start + dt.timedelta(hours=int(i * 3))
        carrier = carriers[i % 3]
        days = CARRIER_DAYS[carrier] + float(rng.normal(0, 0.2))
        delivered = placed + dt.timedelta(days=days)
        promised = placed.date() + dt.timedelta(days=4)  # carrier-blind static promise
        orders.append(
            (
                f"O{i:04d}",
                "C1",
                placed,
                placed.date(),
                1,
                Decimal("10.00"),
                "WH-A",
                "R1",
                "WH-A>R1",
                carrier,
                promised,
                4,
                "card",
                "app",
                None,
                None,
                placed.date(),
                "f",
                i + 2,
            )
        )
        shipments.append((f"O{i:04d}", delivered, delivered.date()))
    orders_df = spark.createDataFrame(orders, load_contract("silver.orders").spark_schema())
    shipments_df = spark.createDataFrame(
        shipments, "order_id string, delivered_at timestamp, delivered_ingest_date date"
    )
    return orders_df, shipments_df


@pytest.fixture()
def eta_config(lake_config, tmp_path):
    return replace(lake_config, home=tmp_path, mlflow_tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")


def test_train_beats_the_static_promise_and_logs_lineage(spark, eta_config) -> None:
    orders_df, shipments_df = _world(spark)
    merge_rows(spark, orders_df, eta_config, "silver.orders", ("order_id",))
    merge_rows(spark, shipments_df, eta_config, "silver.shipments", ("order_id",))

    result = eta.train(spark, eta_config, "2026-02-28")

    assert result.trained
    # The promise ignores the carrier (errors ~2.5, 1, 1 days); the model learns it (noise sd 0.2).
    assert result.metrics["mae_promise_days"] > 1.0
    assert result.metrics["mae_p50_days"] < 0.4
    assert 0.5 <= result.metrics["p10_p90_coverage"] <= 1.0
    mlflow.set_tracking_uri(eta_config.mlflow_tracking_uri)
    run = mlflow.get_run(result.run_id)
    assert run.data.params["delta_version.silver.orders"] == "0"
    assert run.data.params["delta_version.silver.shipments"] == "0"
    assert run.data.tags["as_of_date"] == "2026-02-28" and len(run.data.tags["git_commit"]) in (40, 7)
    assert run.data.metrics["holdout_rows"] == 48.0  # 20 % of 240


def test_too_little_data_is_logged_not_trained(spark, eta_config) -> None:
    orders_df, shipments_df = _world(spark, n=10)
    merge_rows(spark, orders_df, eta_config, "silver.orders", ("order_id",))
    merge_rows(spark, shipments_df, eta_config, "silver.shipments", ("order_id",))
    result = eta.train(spark, eta_config, "2026-02-28")
    assert not result.trained and result.metrics == {"training_rows": 10.0}
