"""Each kind of gate check on one passing and one failing tiny frame, with the exact failure reported."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from frames import contract_frame

from jobs.lake.contracts import load_contract
from jobs.lake.tables import read_table, table_exists, table_version
from jobs.pipeline.ops import record_findings
from jobs.quality.gate import (
    Check,
    DataQualityError,
    locked_quality_context,
    quality_context,
    raise_critical,
    run_checks,
    validate_dataframe,
)
from jobs.quality.suites import (
    WARNING,
    at_most_rows_expectation,
    contract_expectations,
    freshness_expectation,
    has_rows_expectation,
    not_before_expectation,
    reference_expectation,
    with_date_flag,
    with_reference_flag,
)

D = dt.date(2026, 3, 3)
T = dt.datetime(2026, 3, 3, 10)


def _order(order_id: str, **values) -> dict:
    return {
        "order_id": order_id,
        "customer_id": "C1",
        "placed_at": T,
        "order_date": D,
        "items": 1,
        "amount": Decimal("10.00"),
        "origin_warehouse": "WH-MOSCOW",
        "destination_region": "RU-SPE",
        "lane": "WH-MOSCOW>RU-SPE",
        "carrier": "cdek",
        "promised_delivery_date": D,
        "promised_days": 0,
        "payment_method": "card",
        "channel": "app",
        "first_ingest_date": D,
        "source_file": "orders/x.csv",
        "line_number": 2,
        **values,
    }


def _scan(scan_id: str, order_id: str, event_date: dt.date = D, **values) -> dict:
    return {
        "order_id": order_id,
        "scan_id": scan_id,
        "scan_at": dt.datetime.combine(event_date, dt.time(9)),
        "event": "picked",
        "carrier": "cdek",
        "seq": 1,
        "is_out_of_order_arrival": False,
        "first_ingest_date": D,
        "event_date": event_date,
        **values,
    }


def _orders(spark, rows):
    return contract_frame(spark, "silver.orders", rows)


def _fails(df, expectations, index_columns, suite="suite_under_test") -> str:
    with pytest.raises(DataQualityError) as failure:
        validate_dataframe(df, suite, expectations, index_columns=index_columns)
    return str(failure.value)


def test_contract_not_null_enum_range_and_key_rules(spark) -> None:
    rules = lambda: contract_expectations(load_contract("silver.orders"))  # noqa: E731 (fresh objects per suite)
    good = _orders(spark, [_order("O1"), _order("O2")])
    assert validate_dataframe(good, "orders_ok", rules(), index_columns=("order_id",)).success
    bad = _orders(
        spark,
        [
            _order("O1", carrier="teleport"),  # enum
            _order("O2", items=0),  # range (min 1)
            _order("O3", customer_id=None),  # not null
            _order("O3"),  # duplicate key
        ],
    )
    message = _fails(bad, rules(), ("order_id",), "orders_bad")
    assert "suite(s) orders_bad failed 4 critical expectation(s)" in message
    assert "expect_column_values_to_be_in_set {'column': 'carrier'" in message
    assert "{'order_id': 'O1', 'carrier': 'teleport'}" in message
    assert "expect_column_values_to_be_between {'column': 'items', 'min_value': 1.0}" in message
    assert "{'order_id': 'O2', 'items': 0}" in message
    assert "expect_column_values_to_not_be_null {'column': 'customer_id'}" in message
    assert "expect_column_values_to_be_unique {'column': 'order_id'}" in message and "'O3'" in message


def test_reference_check_reports_the_missing_keys(spark) -> None:
    orders = _orders(spark, [_order("O1")])
    scans = contract_frame(spark, "silver.tracking_events", [_scan("S1", "O1"), _scan("S2", "O9"), _scan("S3", "O9")])
    flagged = with_reference_flag(scans, "order_id", orders, "order_id", "order_id_in_silver_orders")
    assert [r.order_id_in_silver_orders for r in flagged.orderBy("scan_id").collect()] == [True, False, False]
    check = "every scan's order is in silver.orders"
    passing = flagged.filter("order_id = 'O1'")
    assert validate_dataframe(passing, "ref_ok", [reference_expectation("order_id_in_silver_orders", check)]).success
    message = _fails(flagged, [reference_expectation("order_id_in_silver_orders", check)], ("scan_id", "order_id"))
    assert (
        f"expect_column_values_to_be_in_set {{'column': 'order_id_in_silver_orders', 'value_set': [True]}} [{check}]"
        in message
    )
    assert "unexpected=2" in message
    assert "'scan_id': 'S2', 'order_id': 'O9'" in message and "'scan_id': 'S3', 'order_id': 'O9'" in message


def test_a_warning_is_reported_not_raised(spark) -> None:
    orders = _orders(spark, [_order("O1")])
    scans = contract_frame(spark, "silver.tracking_events", [_scan("S2", "O9")])
    flagged = with_reference_flag(scans, "order_id", orders, "order_id", "flag")
    result = validate_dataframe(
        flagged, "ref_warn", [reference_expectation("flag", "scan order known", WARNING)], index_columns=("scan_id",)
    )
    assert not result.success and not result.critical_failures
    (warning,) = result.warnings
    assert warning["expectation"] == "expect_column_values_to_be_in_set"
    assert warning["sample"] == [{"scan_id": "S2", "flag": False}]


def test_null_foreign_keys_pass_the_reference_check(spark) -> None:
    customers = contract_frame(spark, "silver.customers", [{"customer_key": "K1"}])
    events = contract_frame(
        spark,
        "silver.interactions",
        [{"event_id": "E1", "customer_key": None}, {"event_id": "E2", "customer_key": "K1"}],
    )
    flagged = with_reference_flag(events, "customer_key", customers, "customer_key", "flag")
    assert all(r.flag for r in flagged.collect())


def test_no_event_arrives_before_it_happened(spark) -> None:
    check = "event date <= first arrival date"
    rule = lambda: [not_before_expectation("first_ingest_date", "event_date", check)]  # noqa: E731
    on_time = contract_frame(
        spark, "silver.tracking_events", [_scan("S1", "O1", D), _scan("S2", "O1", D - dt.timedelta(days=2))]
    )
    assert validate_dataframe(on_time, "arrival_ok", rule()).success
    future = contract_frame(
        spark, "silver.tracking_events", [_scan("S1", "O1", D), _scan("S9", "O1", D + dt.timedelta(days=12))]
    )
    message = _fails(future, rule(), ("scan_id",))
    assert (
        "expect_column_pair_values_a_to_be_greater_than_b {'column_A': 'first_ingest_date', 'column_B': 'event_date', 'or_equal': True}"
        in message
    )
    assert f"[{check}]" in message and "'scan_id': 'S9'" in message and "unexpected=1" in message


def test_row_count_against_the_ingest_audit(spark) -> None:
    rows = _orders(spark, [_order("O1"), _order("O2"), _order("O3")])
    rule = lambda n: [at_most_rows_expectation(n, "silver rows <= bronze accepted")]  # noqa: E731
    assert validate_dataframe(rows, "count_ok", rule(3)).success
    message = _fails(rows, rule(2), ())
    assert (
        "expect_table_row_count_to_be_between {'min_value': 0, 'max_value': 2}" in message and "observed=3" in message
    )


def test_freshness_of_the_run_date(spark) -> None:
    kpis = contract_frame(spark, "gold.cx_kpi_daily", [{"kpi_date": D - dt.timedelta(days=1)}, {"kpi_date": D}])
    rule = lambda: [freshness_expectation("on_run_date", "the run date has its KPI row", "critical")]  # noqa: E731
    assert validate_dataframe(
        with_date_flag(kpis, "kpi_date", D.isoformat(), "on_run_date"), "fresh_ok", rule()
    ).success
    stale = with_date_flag(kpis.filter("kpi_date < DATE'2026-03-03'"), "kpi_date", D.isoformat(), "on_run_date")
    message = _fails(stale, rule(), ())
    assert "expect_column_distinct_values_to_contain_set {'column': 'on_run_date', 'value_set': [True]}" in message
    empty = _orders(spark, [])
    result = validate_dataframe(empty, "has_rows", [has_rows_expectation("orders arrived")])
    assert [w["expectation"] for w in result.warnings] == ["expect_table_row_count_to_be_between"]


def test_large_slices_are_validated_in_spark_with_the_same_report(spark) -> None:
    bad = _orders(spark, [_order("O1"), _order("O2", carrier="teleport")])
    with pytest.raises(DataQualityError) as failure:
        validate_dataframe(
            bad,
            "spark_engine",
            contract_expectations(load_contract("silver.orders")),
            index_columns=("order_id",),
            pandas_max_rows=0,
        )
    assert "expect_column_values_to_be_in_set {'column': 'carrier'" in str(failure.value)
    assert "'order_id': 'O2'" in str(failure.value)


def test_a_suite_validated_in_pandas_then_in_spark_on_a_stored_context(spark, lake_config, tmp_path: Path) -> None:
    """A suite whose slice outgrows the pandas limit one night (e.g. the journey days of a wide
    re-attribution) is validated in Spark; its definition stored by an earlier pandas night, whose
    asset a later pandas suite had dropped, crashed GX ("Could not find asset ... within
    'cxlake_pandas'") instead of validating."""
    from dataclasses import replace

    context = quality_context(replace(lake_config, home=tmp_path / "home"))
    expectations = lambda: contract_expectations(load_contract("silver.orders"))  # noqa: E731 (one set per suite)
    good = _orders(spark, [_order("O1")])
    for suite in ("grows", "stays_small"):  # nights of small slices: both in pandas
        validate_dataframe(good, suite, expectations(), context, build_docs=False)
    result = validate_dataframe(good, "grows", expectations(), context, pandas_max_rows=0, build_docs=False)
    assert result.success and result.evaluated == len(expectations())


def test_a_stored_definition_is_stored_again_only_when_its_expectations_change(
    spark, lake_config, tmp_path: Path
) -> None:
    """Storing a definition (GX's add_or_update) costs ~0.2 s a suite: an unchanged one is read back."""
    from dataclasses import replace

    from jobs.quality.suites import has_rows_expectation

    context = quality_context(replace(lake_config, home=tmp_path / "home"))
    suite_file = Path(context.root_directory) / "expectations" / "unchanged.json"
    expectations = lambda: contract_expectations(load_contract("silver.orders"))  # noqa: E731 (one set per suite)
    good = _orders(spark, [_order("O1")])
    validate_dataframe(good, "unchanged", expectations(), context, build_docs=False)
    first_write = suite_file.stat().st_mtime_ns
    # The same expectations another night: the stored suite is not written again, and still validates.
    again = validate_dataframe(good, "unchanged", expectations(), context, build_docs=False)
    assert again.success and again.evaluated == len(expectations())
    assert suite_file.stat().st_mtime_ns == first_write
    # One more expectation (a code change): stored again, and evaluated.
    changed = validate_dataframe(
        good, "unchanged", [*expectations(), has_rows_expectation("one row at least")], context, build_docs=False
    )
    assert changed.evaluated == len(expectations()) + 1
    assert suite_file.stat().st_mtime_ns != first_write
    assert len(context.suites.get("unchanged").expectations) == len(expectations()) + 1


def test_gate_records_findings_and_data_docs(spark, lake_config, tmp_path: Path) -> None:
    from dataclasses import replace

    config = replace(lake_config, home=tmp_path / "home")
    context = quality_context(config)
    checks = lambda carrier: [  # noqa: E731
        Check(
            "silver_orders",
            _orders(spark, [_order("O1", carrier=carrier)]),
            contract_expectations(load_contract("silver.orders")),
            ("order_id",),
        ),
        Check("silver_empty", _orders(spark, []), [has_rows_expectation("orders arrived")]),
    ]
    # A clean gate on a lake without findings writes nothing (not even an empty table).
    assert record_findings(spark, config, D.isoformat(), run_checks(checks("cdek")[:1])) == 0
    assert not table_exists(spark, config.table_path("ops.quality_findings"))
    results = run_checks(checks("teleport"), context)
    with pytest.raises(DataQualityError, match="silver_orders"):
        raise_critical(results)
    assert record_findings(spark, config, D.isoformat(), results) == 2
    assert record_findings(spark, config, D.isoformat(), results) == 2  # rerun: replaced, not added
    rows = {(r.suite, r.severity, r.expectation) for r in read_table(spark, config, "ops.quality_findings").collect()}
    assert rows == {
        ("silver_orders", "critical", "expect_column_values_to_be_in_set"),
        ("silver_empty", "warning", "expect_table_row_count_to_be_between"),
    }
    fixed = run_checks(checks("cdek"), context)
    raise_critical(fixed)
    record_findings(spark, config, D.isoformat(), fixed)
    assert {r.suite for r in read_table(spark, config, "ops.quality_findings").collect()} == {"silver_empty"}
    # A clean rerun of silver_orders alone: its slice already holds no finding, so no commit.
    clean = [r for r in fixed if r.suite == "silver_orders"]
    version = table_version(spark, config, "ops.quality_findings")
    assert record_findings(spark, config, D.isoformat(), clean) == 0
    assert table_version(spark, config, "ops.quality_findings") == version
    html = (config.home / "data_docs" / "index.html").read_text()
    assert "silver_orders" in html and "silver_empty" in html
    # One page per validation run (two runs of each suite), rendered in one build per run_checks.
    pages = {
        suite: list((config.home / "data_docs" / "validations" / suite).rglob("*.html"))
        for suite in ("silver_orders", "silver_empty")
    }
    assert {suite: len(found) for suite, found in pages.items()} == {"silver_orders": 2, "silver_empty": 2}


@pytest.mark.parametrize("left", [b"", b"config_version: 4.0\nfluent_dat"], ids=["empty", "cut_short"])
def test_gx_settings_left_broken_by_a_kill_are_made_again(spark, lake_config, tmp_path: Path, left: bytes) -> None:
    """GX rewrites great_expectations.yml in place: a kill mid-write left it empty and every later
    gate failed. It is moved aside and made again; the stored suites and results stay."""
    from dataclasses import replace

    config = replace(lake_config, home=tmp_path / "home")
    with locked_quality_context(config) as context:
        validate_dataframe(_orders(spark, [_order("O1")]), "kept", [has_rows_expectation("rows")], context)
    (settings,) = (tmp_path / "home" / "gx").rglob("great_expectations.yml")
    settings.write_bytes(left)
    with locked_quality_context(config) as context:
        assert "kept" in [suite.name for suite in context.suites.all()]
        result = validate_dataframe(_orders(spark, [_order("O2")]), "kept", [has_rows_expectation("rows")], context)
    assert result.success
    assert [p.name.split("-")[0] for p in settings.parent.glob("great_expectations.yml.broken-*")] == [
        "great_expectations.yml.broken"
    ]
