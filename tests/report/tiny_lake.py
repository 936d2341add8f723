"""A tiny hand-made lake for the report's tests: real Delta tables written by delta-rs with the
contracts' Arrow schemas, every value chosen by hand (the numbers the tests expect follow from
the rows below; the comments in the tests say how).

The report day is 2026-03-10 (``REPORT_DAY``); 2026-03-09 and 2026-03-03 are its day-over-day and
week-over-week comparisons.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pyarrow as pa
from deltalake import write_deltalake

from jobs.lake.config import LakeConfig
from jobs.lake.contracts import load_contract

REPORT_DAY = dt.date(2026, 3, 10)
DAY_BEFORE = dt.date(2026, 3, 9)
WEEK_BEFORE = dt.date(2026, 3, 3)
UTC = dt.UTC


def at(day: str, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.fromisoformat(day).replace(hour=hour, minute=minute, tzinfo=UTC)


def _default(arrow_type: pa.DataType) -> Any:
    """A filler for columns a test does not care about (every non-null column needs a value)."""
    if pa.types.is_string(arrow_type):
        return "x"
    if pa.types.is_integer(arrow_type):
        return 0
    if pa.types.is_floating(arrow_type):
        return 0.0
    if pa.types.is_boolean(arrow_type):
        return False
    if pa.types.is_date(arrow_type):
        return dt.date(2026, 1, 1)
    if pa.types.is_timestamp(arrow_type):
        return dt.datetime(2026, 1, 1, tzinfo=UTC)
    if pa.types.is_decimal(arrow_type):
        return Decimal("0")
    if pa.types.is_list(arrow_type):
        return []
    if pa.types.is_map(arrow_type):
        return []
    raise TypeError(f"no filler for {arrow_type}")


def write_rows(config: LakeConfig, table: str, rows: list[dict[str, Any]]) -> None:
    """Append ``rows`` to ``table`` (created on first write, partitioned as its contract says);
    non-null columns a row leaves out get a filler value, nullable ones null."""
    contract = load_contract(table)
    schema = contract.arrow_schema()
    full = [{f.name: row.get(f.name, None if f.nullable else _default(f.type)) for f in schema} for row in rows]
    write_deltalake(
        config.table_path(table),
        pa.Table.from_pylist(full, schema=schema),
        mode="append",
        partition_by=contract.partition_by or None,
    )


def customer_key(customer_id: str) -> str:
    """The lake's rule (jobs.domain.customer_key), computed in Python for the hand-made rows."""
    import hashlib

    return hashlib.sha256(f"cxlake-customer:{customer_id}".encode()).hexdigest()[:20]


def build_tiny_lake(config: LakeConfig) -> None:
    """Write every table the morning report reads (see the module docstring)."""
    d, d1, w = REPORT_DAY, DAY_BEFORE, WEEK_BEFORE
    orders = [
        # (order, customer, placed_at, promised date)
        ("o1", "c1", at("2026-03-08", 10), dt.date(2026, 3, 10)),
        ("o2", "c2", at("2026-03-09", 9), dt.date(2026, 3, 11)),
        ("o3", "c1", at("2026-03-10", 8), dt.date(2026, 3, 13)),
        ("o4", "c3", at("2026-03-10", 12), dt.date(2026, 3, 12)),
        ("o0", "c1", at("2026-02-20", 12), dt.date(2026, 2, 23)),  # c1 ordered inside the lift window
    ]
    write_rows(
        config,
        "silver.orders",
        [
            {
                "order_id": o,
                "customer_id": c,
                "placed_at": placed,
                "order_date": placed.date(),
                "promised_delivery_date": p,
            }
            for o, c, placed, p in orders
        ],
    )
    write_rows(
        config,
        "silver.customers",
        [
            {"customer_key": customer_key(c), "customer_id": c, "home_region": r}
            for c, r in [("c1", "RU-MOW"), ("c2", "RU-MOW"), ("c3", "RU-SPE"), ("c4", "RU-SPE")]
        ],
    )
    write_rows(
        config,
        "silver.shipments",
        [
            {"order_id": "o1", "delivered_at": at("2026-03-10", 12)},  # 2 days 2 hours after placement
            {"order_id": "o2", "delivered_at": at("2026-03-10", 21)},  # 1.5 days
            {"order_id": "o3", "delivered_at": None},
            {"order_id": "o4", "delivered_at": None},
            {"order_id": "o0", "delivered_at": at("2026-02-22", 12)},
        ],
    )
    # The nightly job's KPI rows (its computation is tested in tests/gold/test_kpi.py): values chosen
    # to agree with the rows below, e.g. the report day's P90 of o1's 2 d 2 h and o2's 1.5 d.
    write_rows(
        config,
        "gold.cx_kpi_daily",
        [
            {
                "kpi_date": w,
                "orders_placed": 4,
                "orders_delivered": 2,
                "on_time_deliveries": 1,
                "on_time_delivery_rate": 0.5,
                "avg_delivery_days": 3.0,
                "as_of_date": w,
            },
            {
                "kpi_date": d1,
                "orders_placed": 1,
                "repeat_purchase_rate": 0.0,
                "orders_delivered": 0,
                "eta_mae_model_days": 1.0,
                "eta_mae_promise_days": 1.5,
                "p10_p90_coverage": 1.0,
                "tracking_views_per_order_in_transit": 0.5,
                "support_contacts_per_100_orders": 0.0,
                "mean_review_rating": 5.0,
                "nps_from_ratings": 100.0,
                "active_customers": 1,
                "funnel_conversion_rate": 0.5,
                "as_of_date": d1,
            },
            {
                "kpi_date": d,
                "orders_placed": 2,
                "repeat_purchase_rate": 0.5,
                "orders_delivered": 2,
                "on_time_deliveries": 2,
                "on_time_delivery_rate": 1.0,
                "avg_delivery_days": 1.7916666666666667,
                "p90_delivery_days": 2.025,
                "failed_attempts_per_100_deliveries": 50.0,
                "eta_mae_model_days": 0.5,
                "eta_mae_promise_days": 1.0,
                "p10_p90_coverage": 0.75,
                "tracking_views_per_order_in_transit": 1.5,
                "support_contacts_per_100_orders": 50.0,
                "top_contact_reason": "where_is_my_order",
                "mean_review_rating": 11 / 3,
                "nps_from_ratings": 0.0,
                "active_customers": 2,
                "realised_churn_rate": 0.25,
                "predicted_churn_share": 0.25,
                "funnel_conversion_rate": 0.25,
                "as_of_date": d,
            },
        ],
    )
    write_rows(
        config,
        "gold.cx_kpi_breakdown_daily",
        [
            {
                "kpi_date": day,
                "dimension": "contact_reason",
                "segment": reason,
                "kpi": "support_contacts",
                "value": 1.0,
                "base": 1,
                "as_of_date": day,
            }
            for day, reason in (
                (d, "where_is_my_order"),
                (d1, "where_is_my_order"),
                (dt.date(2026, 3, 8), "late_delivery"),
            )
        ]
        + [
            # cdek: 3 of 4 on time over two days; boxberry: its one delivery late.
            {
                "kpi_date": day,
                "dimension": "carrier",
                "segment": carrier,
                "kpi": "on_time_delivery_rate",
                "value": value,
                "base": base,
                "as_of_date": day,
            }
            for day, carrier, value, base in ((d, "cdek", 1.0, 2), (d1, "cdek", 0.5, 2), (d, "boxberry", 0.0, 1))
        ],
    )
    write_rows(
        config,
        "gold.eta_accuracy_daily",
        [
            {
                "accuracy_date": d,
                "dimension": "overall",
                "segment": "all",
                "deliveries": 2,
                "predicted_deliveries": 2,
                "mae_p50_days": 0.5,
                "mae_promise_days": 1.0,
                "p10_p90_coverage": 0.75,
                "as_of_date": d,
            },
            {
                "accuracy_date": d1,
                "dimension": "overall",
                "segment": "all",
                "deliveries": 1,
                "predicted_deliveries": 1,
                "mae_p50_days": 1.0,
                "mae_promise_days": 1.5,
                "p10_p90_coverage": 1.0,
                "as_of_date": d1,
            },
            {
                "accuracy_date": d,
                "dimension": "milestone",
                "segment": "placement",
                "deliveries": 2,
                "predicted_deliveries": 2,
                "mae_p50_days": 0.5,
                "mae_promise_days": 1.0,
                "as_of_date": d,
            },
            {
                "accuracy_date": d,
                "dimension": "milestone",
                "segment": "out_for_delivery",
                "deliveries": 2,
                "predicted_deliveries": 2,
                "mae_p50_days": 0.1,
                "mae_promise_days": 1.0,
                "as_of_date": d,
            },
        ],
    )
    write_rows(
        config,
        "gold.eta_predictions",
        [
            {
                "order_id": "o1",
                "scan_seq": 0,
                "milestone": "placement",
                "predicted_p10": at("2026-03-09", 12),
                "predicted_p50": at("2026-03-10", 0),
                "predicted_p90": at("2026-03-11", 0),
                "as_of_date": dt.date(2026, 3, 8),
                "model_name": "cx_eta",
                "model_version": "3",
                "mlflow_run_id": "eta-run-3",
            },
            {
                "order_id": "o2",
                "scan_seq": 0,
                "milestone": "placement",
                "predicted_p10": at("2026-03-10", 0),
                "predicted_p50": at("2026-03-10", 12),
                "predicted_p90": at("2026-03-11", 12),
                "as_of_date": d1,
                "model_name": "cx_eta",
                "model_version": "3",
                "mlflow_run_id": "eta-run-3",
            },
            {
                "order_id": "o3",
                "scan_seq": 0,
                "milestone": "placement",
                "predicted_p10": at("2026-03-11", 0),
                "predicted_p50": at("2026-03-12", 0),
                "predicted_p90": at("2026-03-13", 0),
                "as_of_date": d,
                "model_name": "cx_eta",
                "model_version": "4",
                "mlflow_run_id": "eta-run-4",
            },
        ],
    )
    write_rows(
        config,
        "gold.journey_daily",
        [
            {
                "customer_key": customer_key("c1"),
                "journey_date": d,
                "touchpoints": 5,
                "sessions": 2,
                "tracking_views": 4,
                "support_contacts": 1,
                "deliveries": 1,
                "failed_delivery_attempts": 1,
                "last_journey_stage": "purchase",
            },
            {
                "customer_key": customer_key("c2"),
                "journey_date": d,
                "touchpoints": 2,
                "sessions": 0,
                "tracking_views": 0,
                "deliveries": 1,
                "last_journey_stage": "delivered",
            },
            {
                "customer_key": customer_key("c3"),
                "journey_date": d,
                "touchpoints": 3,
                "sessions": 1,
                "tracking_views": 2,
                "last_journey_stage": "purchase",
            },
            {
                "customer_key": customer_key("c2"),
                "journey_date": d1,
                "touchpoints": 2,
                "sessions": 1,
                "tracking_views": 1,
                "last_journey_stage": "wait-for-delivery",
            },
        ],
    )
    reviews = [(d, "e1", 5), (d, "e2", 4), (d, "e3", 2), (d1, "e4", 5)]
    write_rows(
        config,
        "silver.interactions",
        [
            {"event_id": e, "event_at": at(day.isoformat(), 15), "event_date": day, "event": "review", "rating": r}
            for day, e, r in reviews
        ]
        + [
            {
                "event_id": "e5",
                "event_at": at("2026-03-10", 16),
                "event_date": d,
                "event": "support_contact",
                "contact_reason": "where_is_my_order",
            },
            {
                "event_id": "e6",
                "event_at": at("2026-03-09", 16),
                "event_date": d1,
                "event": "support_contact",
                "contact_reason": "where_is_my_order",
            },
            {
                "event_id": "e7",
                "event_at": at("2026-03-08", 16),
                "event_date": dt.date(2026, 3, 8),
                "event": "support_contact",
                "contact_reason": "late_delivery",
            },
        ],
    )
    write_rows(
        config,
        "gold.funnel_daily",
        [
            {
                "funnel_date": d,
                "channel": "app",
                "sessions": 3,
                "product_view_sessions": 3,
                "add_to_cart_sessions": 2,
                "checkout_sessions": 1,
                "order_sessions": 1,
            },
            {"funnel_date": d, "channel": "web", "sessions": 1, "product_view_sessions": 1},
            {
                "funnel_date": d1,
                "channel": "app",
                "sessions": 2,
                "product_view_sessions": 1,
                "add_to_cart_sessions": 1,
                "checkout_sessions": 1,
                "order_sessions": 1,
            },
        ],
    )
    churn_rows = []
    for as_of, probabilities in ((d, [0.9, 0.5, 0.2, 0.1]), (dt.date(2026, 2, 10), [0.8, 0.6, 0.3, 0.2])):
        for customer, probability in zip(("c1", "c2", "c3", "c4"), probabilities, strict=True):
            band = "high" if probability >= 0.7 else "medium" if probability >= 0.4 else "low"
            churn_rows.append(
                {
                    "customer_key": customer_key(customer),
                    "as_of_date": as_of,
                    "churn_probability": probability,
                    "risk_band": band,
                    "top_drivers": [f"days_since_last_order={customer} (+0.40)"],
                    "model_version": "2",
                    "mlflow_run_id": "churn-run-2",
                }
            )
    write_rows(config, "gold.churn_scores", churn_rows)
    write_rows(
        config,
        "ops.ingest_audit",
        [
            {
                "source": "orders",
                "run_date": d,
                "files": 1,
                "raw_rows": 3,
                "accepted_rows": 2,
                "quarantined_rows": 1,
                "recorded_at": at("2026-03-11", 1),
            }
        ],
    )
    write_rows(
        config,
        "quarantine.orders",
        [
            {
                "source_file": "orders/2026-03-10/a.csv",
                "line_number": 3,
                "raw": "x",
                "reason": "bad_type:amount",
                "_ingest_date": d,
            }
        ],
    )
    write_rows(
        config,
        "ops.quality_findings",
        [
            {
                "run_date": d,
                "suite": "silver.orders",
                "expectation": "expect_column_values_to_be_between",
                "kwargs": "{}",
                "severity": "warning",
                "check": "amount in range",
                "unexpected_count": 1,
                "recorded_at": at("2026-03-11", 1),
            }
        ],
    )
