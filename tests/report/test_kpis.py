"""The morning report's KPIs on the hand-made tiny lake: every value, and why it is what it is."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import pytest
from tiny_lake import DAY_BEFORE, REPORT_DAY, WEEK_BEFORE, build_tiny_lake

from jobs.analytics.sql import connect
from jobs.lake.config import load_config
from jobs.lake.contracts import load_contract
from jobs.report.kpis import daily_kpis, kpi_definitions, tables_needed
from jobs.report.morning import change, tiles_of


@pytest.fixture(scope="module")
def daily(tmp_path_factory: pytest.TempPathFactory):
    home: Path = tmp_path_factory.mktemp("tiny_lake")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CXLAKE_HOME", str(home))
        config = load_config()
        build_tiny_lake(config)
        con, _ = connect(config, tables_needed())
        yield daily_kpis(con, set(tables_needed()), WEEK_BEFORE, REPORT_DAY).set_index("day")


def _values(daily, day) -> dict[str, float]:
    return {name: daily.at[day, name] for name in daily.columns}


def test_every_kpi_on_the_report_day_is_the_stored_column(daily) -> None:
    expected = {
        # gold.cx_kpi_daily's row as the tiny lake wrote it (tests/gold/test_kpi.py checks how the
        # nightly job computes each one): the frame maps every KPI of schemas/kpis.yaml to its column.
        "orders_placed": 2,
        "repeat_purchase_rate": 0.5,
        "on_time_delivery_rate": 1.0,
        "avg_delivery_days": 1.7916666666666667,
        "p90_delivery_days": 2.025,
        "failed_attempts_per_100_deliveries": 50.0,
        "eta_mae_model_days": 0.5,
        "eta_mae_promise_days": 1.0,
        "p10_p90_coverage": 0.75,
        "tracking_views_per_order_in_transit": 1.5,
        "support_contacts_per_100_orders": 50.0,
        "mean_review_rating": 11 / 3,
        "nps_from_ratings": 0.0,
        "active_customers": 2,
        "realised_churn_rate": 0.25,
        "predicted_churn_share": 0.25,
        "funnel_conversion_rate": 0.25,
    }
    assert list(expected) == [k.name for k in kpi_definitions()]  # every KPI of schemas/kpis.yaml
    assert _values(daily, REPORT_DAY) == pytest.approx(expected)


def test_every_kpi_is_a_column_of_the_daily_table() -> None:
    columns = set(load_contract("gold.cx_kpi_daily").column_names)
    assert [k.name for k in kpi_definitions() if k.name not in columns] == []


def test_the_day_before_and_missing_values(daily) -> None:
    values = _values(daily, DAY_BEFORE)
    assert {k: values[k] for k in ("orders_placed", "eta_mae_model_days", "funnel_conversion_rate")} == {
        "orders_placed": 1,
        "eta_mae_model_days": 1.0,
        "funnel_conversion_rate": 0.5,
    }
    # Null in the table (nothing delivered that day, no scores) is NaN in the frame.
    for name in ("on_time_delivery_rate", "p90_delivery_days", "predicted_churn_share"):
        assert math.isnan(values[name]), name
    # A day without a row (4 to 8 March) has every KPI NaN.
    assert all(math.isnan(v) for v in _values(daily, WEEK_BEFORE + dt.timedelta(days=1)).values())


def test_tiles_compare_with_the_day_and_the_week_before(daily) -> None:
    tiles = {tile.kpi.name: tile for tile in tiles_of(daily.reset_index(), REPORT_DAY)}
    assert (tiles["orders_placed"].shown, tiles["orders_placed"].day_change, tiles["orders_placed"].day_tone) == (
        "2",
        "+100.0%",  # 1 -> 2
        "good",
    )
    assert (tiles["orders_placed"].week_change, tiles["orders_placed"].week_tone) == ("-50.0%", "bad")  # 4 -> 2
    # Shares change in percentage points: 0.5 a week before -> 1.0.
    assert (tiles["on_time_delivery_rate"].week_change, tiles["on_time_delivery_rate"].day_change) == (
        "+50.0 pp",
        "n/a",
    )
    # Coverage has a target (0.8): 1.0 -> 0.75 moved closer to it, so it is good news.
    assert (tiles["p10_p90_coverage"].day_change, tiles["p10_p90_coverage"].day_tone) == ("-25.0 pp", "good")
    assert tiles["eta_mae_model_days"].day_tone == "good"  # 1.0 -> 0.5 days: lower is better


def test_change_of_a_count_from_zero() -> None:
    kpi = next(k for k in kpi_definitions() if k.name == "support_contacts_per_100_orders")
    assert change(50.0, 0.0, kpi) == ("+50.00", "bad")  # no relative change from 0; more contacts is bad
    assert change(None, 1.0, kpi) == ("n/a", "")
