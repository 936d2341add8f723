"""What the nightly silver and gold gates validate: the slices a night touched, and their suites.

Only the rows the night wrote are validated (rows first arrived on the run date, orders whose
scans arrived, the journey days that changed, the run date's feature partitions), so the gate's
cost follows the day, not the history. Reference tables are only probed for those rows' keys.

Severity follows what the pipeline guarantees. Critical = true by construction, so a failure
means a bug or corrupt input: contract rules (not-null, enums, ranges, keys), no event arriving
before it happened, no more silver rows than bronze accepted, customer keys of the journey and the
features existing in ``silver.customers``, feature orders existing in ``silver.orders``, and the
run date's KPI row. Warning = legal but worth a look: scans whose order has not arrived (or was
quarantined), an arrival day without orders, a day without journey or funnel rows.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import pyspark.sql.functions as F

from jobs.lake.contracts import load_contract
from jobs.lake.tables import read_table, table_exists
from jobs.quality.gate import Check
from jobs.quality.suites import (
    WARNING,
    at_most_rows_expectation,
    contract_expectations,
    freshness_expectation,
    has_rows_expectation,
    not_before_expectation,
    reference_expectation,
    reference_flag_column,
    with_date_flag,
    with_reference_flag,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from jobs.lake.config import LakeConfig

ARRIVED_AFTER_EVENT = "an event cannot arrive before it happened (event date <= first arrival date)"
RUN_DATE_FLAG = "on_run_date"


def referenced(df: DataFrame, column: str, reference: DataFrame, table: str, ref_column: str | None = None):
    """``df`` with the flag of ``column`` in ``table`` (:func:`with_reference_flag`) and its flag name."""
    flag = reference_flag_column(column, table)
    return with_reference_flag(df, column, reference, ref_column or column, flag), flag


def silver_checks(
    spark: SparkSession, config: LakeConfig, run_date: str, accepted: dict[str, int] | None = None
) -> list[Check]:
    """Suites of the silver rows ``run_date`` touched.

    Args:
        accepted: bronze rows accepted tonight per source (``ops.ingest_audit``); silver rows first
            arrived tonight cannot outnumber them (resent copies are dropped, never added).
    """
    accepted = accepted or {}
    day = F.lit(run_date).cast("date")

    def within_audit(source: str, rows: str) -> list:
        """Silver rows first arrived tonight <= bronze rows accepted tonight (when audited)."""
        if source not in accepted:
            return []
        return [at_most_rows_expectation(accepted[source], f"silver {rows} first arrived tonight <= bronze accepted")]

    # Events older than the lateness bound were quarantined, so tonight's arrivals live in these
    # event-date partitions: a partition-pruned read instead of a scan of the history.
    oldest = dt.date.fromisoformat(run_date) - dt.timedelta(days=config.lateness_days)
    orders_all = read_table(spark, config, "silver.orders")
    customers_all = read_table(spark, config, "silver.customers")

    orders = orders_all.filter(F.col("first_ingest_date") == day)
    orders_exp = contract_expectations(load_contract("silver.orders")) + [
        not_before_expectation("first_ingest_date", "order_date", ARRIVED_AFTER_EVENT),
        has_rows_expectation("orders first arrived on the run date (a day without orders is legal but suspicious)"),
        *within_audit("orders", "orders"),
    ]

    tonight_scans = (
        read_table(spark, config, "bronze.tracking_scans")
        .filter(F.col("_ingest_date") == day)
        .select("order_id")
        .distinct()
    )
    shipments = read_table(spark, config, "silver.shipments").join(tonight_scans, "order_id", "left_semi")
    shipments, shipment_flag = referenced(shipments, "order_id", orders_all, "silver.orders")
    shipments_exp = contract_expectations(load_contract("silver.shipments")) + [
        reference_expectation(
            shipment_flag, "every shipment's order is in silver.orders (scans may arrive before their order)", WARNING
        )
    ]

    events = read_table(spark, config, "silver.tracking_events").filter(
        (F.col("event_date") >= F.lit(oldest)) & (F.col("first_ingest_date") == day)
    )
    events, event_flag = referenced(events, "order_id", orders_all, "silver.orders")
    events_exp = contract_expectations(load_contract("silver.tracking_events")) + [
        not_before_expectation("first_ingest_date", "event_date", ARRIVED_AFTER_EVENT),
        reference_expectation(event_flag, "every scan's order is in silver.orders (scans may arrive first)", WARNING),
        *within_audit("tracking_scans", "scans"),
    ]

    interactions = read_table(spark, config, "silver.interactions").filter(
        (F.col("event_date") >= F.lit(oldest)) & (F.col("first_ingest_date") == day)
    )
    interactions, customer_flag = referenced(interactions, "customer_key", customers_all, "silver.customers")
    interactions_exp = contract_expectations(load_contract("silver.interactions")) + [
        not_before_expectation("first_ingest_date", "event_date", ARRIVED_AFTER_EVENT),
        reference_expectation(customer_flag, "every attributed interaction's customer is in silver.customers"),
        *within_audit("interactions", "interactions"),
    ]

    touched = orders.select("customer_id").union(interactions.select("customer_id")).distinct()
    customers = customers_all.join(touched, "customer_id", "left_semi")
    return [
        Check("silver_orders", orders, orders_exp, ("order_id",)),
        Check("silver_shipments", shipments, shipments_exp, ("order_id",)),
        Check("silver_tracking_events", events, events_exp, ("scan_id", "order_id")),
        Check("silver_interactions", interactions, interactions_exp, ("event_id",)),
        Check(
            "silver_customers", customers, contract_expectations(load_contract("silver.customers")), ("customer_key",)
        ),
    ]


def gold_checks(
    spark: SparkSession, config: LakeConfig, run_date: str, journey_days: list[str] | None = None
) -> list[Check]:
    """Suites of the gold and feature rows ``run_date`` wrote (before the models read them).

    Args:
        journey_days: the touchpoint days the night's journey merge changed (``build_journey``);
            None reads them as the run date only.
    """
    day = F.lit(run_date).cast("date")
    days = [F.lit(d).cast("date") for d in (journey_days if journey_days is not None else [run_date])]
    customers = read_table(spark, config, "silver.customers")
    orders = read_table(spark, config, "silver.orders")
    checks: list[Check] = []

    def table(name: str) -> DataFrame | None:
        return read_table(spark, config, name) if table_exists(spark, config.table_path(name)) else None

    if (kpis := table("gold.cx_kpi_daily")) is not None:
        # The days the night's arrivals can change; their as_of_date is the run date, or later
        # when later nights already ran (a backfill or a rerun: their windows were redone).
        first = dt.date.fromisoformat(run_date) - dt.timedelta(days=config.lateness_days)
        kpis = kpis.filter(F.col("kpi_date").between(F.lit(first), day) & (F.col("as_of_date") >= day))
        kpis = with_date_flag(kpis, "kpi_date", run_date, RUN_DATE_FLAG)
        checks.append(
            Check(
                "gold_cx_kpi_daily",
                kpis,
                contract_expectations(load_contract("gold.cx_kpi_daily"))
                + [
                    freshness_expectation(
                        RUN_DATE_FLAG, "the run date has its KPI row (zeros on a quiet day)", "critical"
                    ),
                    not_before_expectation(
                        "orders_delivered", "on_time_deliveries", "on-time deliveries <= deliveries"
                    ),
                    not_before_expectation("orders_delivered", "late_deliveries", "late deliveries <= deliveries"),
                ],
                ("kpi_date",),
            )
        )
    if (journey := table("gold.customer_journey")) is not None:
        journey, flag = referenced(
            journey.filter(F.col("touchpoint_date").isin(days)), "customer_key", customers, "silver.customers"
        )
        checks.append(
            Check(
                "gold_customer_journey",
                journey,
                contract_expectations(load_contract("gold.customer_journey"))
                + [reference_expectation(flag, "every journey customer is in silver.customers")],
                ("touchpoint_id", "customer_key"),
            )
        )
    if (daily := table("gold.journey_daily")) is not None:
        daily, flag = referenced(
            daily.filter(F.col("journey_date").isin(days)), "customer_key", customers, "silver.customers"
        )
        daily = with_date_flag(daily, "journey_date", run_date, RUN_DATE_FLAG)
        checks.append(
            Check(
                "gold_journey_daily",
                daily,
                contract_expectations(load_contract("gold.journey_daily"))
                + [
                    reference_expectation(flag, "every journey_daily customer is in silver.customers"),
                    freshness_expectation(
                        RUN_DATE_FLAG, "the run date has journey rows (a day without activity is legal)"
                    ),
                ],
                ("customer_key", "journey_date"),
            )
        )
    if (funnel := table("gold.funnel_daily")) is not None:
        funnel = with_date_flag(funnel.filter(F.col("funnel_date").isin(days)), "funnel_date", run_date, RUN_DATE_FLAG)
        checks.append(
            Check(
                "gold_funnel_daily",
                funnel,
                contract_expectations(load_contract("gold.funnel_daily"))
                + [
                    freshness_expectation(
                        RUN_DATE_FLAG, "the run date has funnel rows (a day without sessions is legal)"
                    )
                ],
                ("funnel_date", "channel"),
            )
        )
    if (features := table("features.customer_daily")) is not None:
        features, flag = referenced(
            features.filter(F.col("as_of_date") == day), "customer_key", customers, "silver.customers"
        )
        checks.append(
            Check(
                "features_customer_daily",
                features,
                contract_expectations(load_contract("features.customer_daily"))
                + [
                    reference_expectation(flag, "every churn-feature customer is in silver.customers"),
                    has_rows_expectation("customer features exist as of the run date"),
                ],
                ("customer_key",),
            )
        )
    if (order_eta := table("features.order_eta")) is not None:
        order_eta, flag = referenced(order_eta.filter(F.col("as_of_date") == day), "order_id", orders, "silver.orders")
        checks.append(
            Check(
                "features_order_eta",
                order_eta,
                contract_expectations(load_contract("features.order_eta"))
                + [reference_expectation(flag, "every ETA-feature order is in silver.orders")],
                ("order_id",),
            )
        )
    if (scans := table("features.shipment_scan")) is not None:
        checks.append(
            Check(
                "features_shipment_scan",
                scans.filter(F.col("as_of_date") == day),
                contract_expectations(load_contract("features.shipment_scan")),
                ("scan_id",),
            )
        )
    return checks
