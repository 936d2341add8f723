"""The declared gates: which suites each gate runs, and one declaration built on a tiny lake."""

from __future__ import annotations

import datetime as dt
import os

from frames import contract_frame

from jobs.lake.contracts import load_contract
from jobs.quality.gate import validate_dataframe
from jobs.quality.gates import BRONZE, GOLD, SILVER, Night, build_checks

D = dt.date(2026, 3, 3)


def test_each_gate_declares_its_suites_keyed_by_the_contracts() -> None:
    # Bronze: one suite per raw source, then the night's ingest audit (quarantine limits) and the
    # landing files against what was ingested.
    assert [g.suite for g in BRONZE] == [
        "bronze_interactions",
        "bronze_orders",
        "bronze_tracking_scans",
        "ops_ingest_audit",
        "ops_ingest_files",
    ]
    assert [g.suite for g in SILVER] == [
        "silver_orders",
        "silver_shipments",
        "silver_delivery_states",
        "silver_tracking_events",
        "silver_interactions",
        "silver_session_starts",
        "silver_customers",
    ]
    assert [g.suite for g in GOLD] == [
        "gold_cx_kpi_daily",
        "gold_cx_kpi_breakdown_daily",
        "gold_customer_journey",
        "gold_journey_daily",
        "gold_funnel_daily",
        "features_customer_daily",
        "features_order_eta",
        "features_shipment_scan",
    ]
    # Failing rows are named by the contract's keys, except where a declaration says otherwise.
    overrides = {g.suite: g.index_columns for g in (*BRONZE, *SILVER, *GOLD) if g.index_columns is not None}
    assert overrides == {
        "silver_tracking_events": ("scan_id", "order_id"),  # + the order a scan names
        "gold_customer_journey": ("touchpoint_id", "customer_key"),  # + the customer a touchpoint names
        "features_customer_daily": ("customer_key",),  # - as_of_date: the slice is one as_of_date
        "ops_ingest_audit": ("source", "quarantined_rows", "raw_rows", "quarantine_ratio", "max_quarantine_ratio"),
        "ops_ingest_files": ("source", "source_file"),  # - run_date: the slice is one run date
    }
    assert all(load_contract(g.table) for g in (*BRONZE, *SILVER, *GOLD))
    # Optional: gold (absent before its first night) and the landing comparison (absent on a lake
    # ingested before ops.ingest_files existed).
    assert [g.table for g in (*BRONZE, *SILVER, *GOLD) if g.optional] == ["ops.ingest_files", *(g.table for g in GOLD)]


def _write(spark, config, table: str, rows: list[dict]) -> None:
    contract = load_contract(table)
    df = contract_frame(spark, table, rows)
    df.write.format("delta").partitionBy(*contract.partition_by).save(config.table_path(table))


def _scan(scan_id: str, order_id: str, event_date: dt.date, first_ingest_date: dt.date) -> dict:
    return {
        "order_id": order_id,
        "scan_id": scan_id,
        "scan_at": dt.datetime.combine(event_date, dt.time(9)),
        "event": "picked",
        "carrier": "cdek",
        "seq": 1,
        "is_out_of_order_arrival": False,
        "first_ingest_date": first_ingest_date,
        "event_date": event_date,
    }


def test_a_declaration_checks_the_nights_slice_with_its_extras(spark, lake_config) -> None:
    (events_gate,) = [g for g in SILVER if g.table == "silver.tracking_events"]
    _write(spark, lake_config, "silver.orders", [{"order_id": "O1", "first_ingest_date": D}])
    _write(
        spark,
        lake_config,
        "silver.tracking_events",
        [
            _scan("S1", "O1", D, D),  # tonight's
            _scan("S2", "O9", D - dt.timedelta(days=1), D),  # tonight's, its order not (yet) in silver
            _scan("S3", "O1", D - dt.timedelta(days=1), D - dt.timedelta(days=1)),  # an earlier night's
            # Outside the lateness window's partitions (3 days): never read, whatever its arrival.
            _scan("S4", "O1", D - dt.timedelta(days=5), D),
        ],
    )
    audit = {"files": 1, "raw_rows": 1, "quarantined_rows": 0, "recorded_at": dt.datetime(2026, 3, 4)}
    # The audit says bronze accepted one scan tonight; silver holds two first arrived tonight.
    _write(
        spark,
        lake_config,
        "ops.ingest_audit",
        [{"source": "tracking_scans", "run_date": D, "accepted_rows": 1, **audit}],
    )

    (check,) = build_checks([events_gate], Night(spark, lake_config, D.isoformat()))

    assert check.suite == "silver_tracking_events" and check.index_columns == ("scan_id", "order_id")
    flags = sorted((r.scan_id, r.order_id_in_silver_orders) for r in check.df.collect())
    assert flags == [("S1", True), ("S2", False)]
    result = validate_dataframe(
        check.df, check.suite, check.expectations, index_columns=check.index_columns, raise_on_critical=False
    )
    (critical,) = result.critical_failures  # the audit count, the only critical extra that fails
    assert critical["kwargs"] == {"min_value": 0, "max_value": 1} and critical["observed"] == 2
    assert critical["check"] == "silver scans first arrived tonight <= bronze accepted"
    (warning,) = result.warnings  # the scan whose order has not arrived
    assert warning["sample"] == [{"scan_id": "S2", "order_id": "O9", "order_id_in_silver_orders": False}]
    # Contract rules first, then the declared extras in their order (not-before, reference, audit).
    assert [e.meta.get("check") for e in check.expectations[-3:]] == [
        "an event cannot arrive before it happened (event date <= first arrival date)",
        "every scan's order is in silver.orders (scans may arrive first)",
        "silver scans first arrived tonight <= bronze accepted",
    ]


def test_optional_gates_of_absent_tables_are_skipped(spark, lake_config) -> None:
    assert not os.path.exists(lake_config.table_path("gold.cx_kpi_daily"))
    assert build_checks(GOLD, Night(spark, lake_config, D.isoformat())) == []


def _touchpoint(touchpoint_id: str, day: dt.date) -> dict:
    return {
        "customer_key": "K1",
        "touchpoint_id": touchpoint_id,
        "touchpoint_at": dt.datetime.combine(day, dt.time(9)),
        "touchpoint_date": day,
        "touchpoint_type": "login",
        "channel": "app",
        "journey_stage": "discover",
        "pain_points": 0,
    }


def test_the_journey_suite_validates_the_rows_the_nights_merge_wrote(spark, lake_config) -> None:
    from jobs.lake.tables import merge_rows, table_version

    (journey_gate,) = [g for g in GOLD if g.table == "gold.customer_journey"]
    table = "gold.customer_journey"
    keys = ("touchpoint_date", "touchpoint_id")
    earlier = D - dt.timedelta(days=1)
    stored = [_touchpoint("T1", earlier), _touchpoint("T2", earlier), _touchpoint("T3", D)]
    merge_rows(spark, contract_frame(spark, table, stored), lake_config, table, keys, partition_by=("touchpoint_date",))
    # Tonight: T2 changes (a re-attributed day: one row of an older day), T4 arrives; T1, T3 stay.
    tonight = [{**_touchpoint("T2", earlier), "channel": "web"}, _touchpoint("T4", D)]
    merge_rows(
        spark, contract_frame(spark, table, tonight), lake_config, table, keys, partition_by=("touchpoint_date",)
    )
    version = table_version(spark, lake_config, table)
    _write(spark, lake_config, "silver.customers", [{"customer_key": "K1"}])  # the suite's reference

    night = Night(spark, lake_config, D.isoformat(), [earlier.isoformat(), D.isoformat()], version)
    (check,) = build_checks([journey_gate], night)
    assert sorted((r.touchpoint_id, r.channel) for r in check.df.collect()) == [("T2", "web"), ("T4", "app")]
    # A journey result without a version (an older run's) falls back to its days' rows.
    (check,) = build_checks([journey_gate], Night(spark, lake_config, D.isoformat(), [earlier.isoformat()]))
    assert sorted(r.touchpoint_id for r in check.df.collect()) == ["T1", "T2"]


def test_the_journey_daily_suite_validates_the_customer_days_the_nights_merge_changed(spark, lake_config) -> None:
    from jobs.lake.tables import merge_rows, table_version

    (daily_gate,) = [g for g in GOLD if g.table == "gold.journey_daily"]
    table = "gold.customer_journey"
    keys = ("touchpoint_date", "touchpoint_id")
    earlier = D - dt.timedelta(days=1)
    stored = [_touchpoint("T1", earlier), _touchpoint("T2", earlier), {**_touchpoint("T3", D), "customer_key": "K2"}]
    merge_rows(spark, contract_frame(spark, table, stored), lake_config, table, keys, partition_by=("touchpoint_date",))
    # Tonight: T2 is re-attributed from K1 to K2 (an older day), T4 arrives for K3.
    tonight = [{**_touchpoint("T2", earlier), "customer_key": "K2"}, {**_touchpoint("T4", D), "customer_key": "K3"}]
    merge_rows(
        spark, contract_frame(spark, table, tonight), lake_config, table, keys, partition_by=("touchpoint_date",)
    )
    version = table_version(spark, lake_config, table)
    _write(
        spark,
        lake_config,
        "gold.journey_daily",
        [
            {"customer_key": k, "journey_date": d}
            for k, d in [("K1", earlier), ("K2", earlier), ("K4", earlier), ("K2", D), ("K3", D)]
        ],
    )
    _write(spark, lake_config, "silver.customers", [{"customer_key": k} for k in ("K1", "K2", "K3", "K4")])

    night = Night(spark, lake_config, D.isoformat(), [earlier.isoformat(), D.isoformat()], version)
    (check,) = build_checks([daily_gate], night)
    # K1 lost T2 and K2 gained it on the earlier day; K3 arrived on D. K4's day and K2's day D
    # have no changed row: as an earlier gate saw them.
    assert sorted((r.customer_key, r.journey_date) for r in check.df.collect()) == [
        ("K1", earlier),
        ("K2", earlier),
        ("K3", D),
    ]
    # A journey result without a version (an older run's) falls back to its days' rows.
    (check,) = build_checks([daily_gate], Night(spark, lake_config, D.isoformat(), [earlier.isoformat()]))
    assert sorted(r.customer_key for r in check.df.collect()) == ["K1", "K2", "K4"]
