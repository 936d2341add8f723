"""The morning report's KPIs on the hand-made tiny lake: every value, and why it is what it is."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from tiny_lake import DAY_BEFORE, REPORT_DAY, WEEK_BEFORE, build_tiny_lake

from jobs.analytics.sql import connect
from jobs.lake.config import load_config
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


def test_every_kpi_on_the_report_day(daily) -> None:
    expected = {
        "orders_placed": 2,  # gold.cx_kpi_daily's row, as written
        "on_time_delivery_rate": 1.0,
        "avg_delivery_days": 1.7916666666666667,
        # Delivered that day: o1 after 2 d 2 h (2.0833 d), o2 after 1.5 d; the interpolated 90th
        # percentile of the two is 1.5 + 0.9 * 0.5833 = 2.025.
        "p90_delivery_days": 2.025,
        "failed_attempts_per_100_deliveries": 50.0,  # 1 failed attempt, 2 deliveries (journey_daily)
        "eta_mae_model_days": 0.5,  # the overall row of gold.eta_accuracy_daily
        "eta_mae_promise_days": 1.0,
        "p10_p90_coverage": 0.75,
        # 4 + 0 + 2 tracking views; in transit: o1 and o2 (delivered that day, not before), o3 and
        # o4 (not delivered); o0 was delivered on 22 Feb. 6 / 4.
        "tracking_views_per_order_in_transit": 1.5,
        "support_contacts_per_100_orders": 50.0,  # 1 contact, 2 orders placed
        "mean_review_rating": 11 / 3,  # ratings 5, 4 and 2
        "nps_from_ratings": 0.0,  # one promoter (5), one detractor (2), one passive (4)
        "active_customers": 2,  # c1 and c3 had sessions; c2 only a carrier scan (0 sessions)
        "funnel_conversion_rate": 0.25,  # 1 ordering session of 3 (app) + 1 (web)
        "predicted_churn_share": 0.25,  # one of four customers scored 0.9: high
    }
    assert list(expected) == [k.name for k in kpi_definitions()]  # every KPI of schemas/kpis.yaml
    assert _values(daily, REPORT_DAY) == pytest.approx(expected)


def test_the_day_before_and_missing_values(daily) -> None:
    values = _values(daily, DAY_BEFORE)
    expected = {
        "orders_placed": 1,
        "eta_mae_model_days": 1.0,
        "eta_mae_promise_days": 1.5,
        "p10_p90_coverage": 1.0,
        # 1 view; in transit on 9 Mar: o1 (placed 8 Mar, delivered 10 Mar) and o2 (placed that day).
        "tracking_views_per_order_in_transit": 0.5,
        "support_contacts_per_100_orders": 0.0,  # no contact, 1 order
        "mean_review_rating": 5.0,
        "nps_from_ratings": 100.0,  # the one review is a 5
        "active_customers": 1,
        "funnel_conversion_rate": 0.5,  # 1 ordering session of 2
    }
    assert {k: values[k] for k in expected} == pytest.approx(expected)
    # Nothing delivered that day (no rate, no P90, failed attempts over 0 deliveries) and no scores.
    for name in (
        "on_time_delivery_rate",
        "avg_delivery_days",
        "p90_delivery_days",
        "failed_attempts_per_100_deliveries",
        "predicted_churn_share",
    ):
        assert math.isnan(values[name]), name


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
