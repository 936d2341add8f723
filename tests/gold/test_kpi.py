from __future__ import annotations

import datetime as dt

from chispa import assert_df_equality

from jobs.gold.kpi import build_cx_kpi_daily, build_cx_kpi_daily_as_of, kpi_days_as_of
from jobs.lake.contracts import load_contract


def d(day):
    return dt.date(2026, 3, day)


def ts(day, hour):
    return dt.datetime(2026, 3, day, hour)


def _inputs(spark):
    orders = spark.createDataFrame(
        [
            ("O1", ts(1, 9), d(1), d(3), d(1)),  # delivered 3rd, on time
            ("O2", ts(1, 12), d(1), d(2), d(1)),  # delivered 3rd, one day late
            ("O3", ts(2, 10), d(2), d(4), d(2)),  # delivered 2nd, same day
            ("O4", ts(3, 8), d(3), d(6), d(3)),  # in transit
            ("O5", ts(3, 9), d(3), d(6), d(4)),  # arrives after the as-of date: unknown on the 3rd
        ],
        "order_id string, placed_at timestamp, order_date date, promised_delivery_date date, first_ingest_date date",
    )
    # silver.shipments has a first_ingest_date of its own (its first scan's arrival): set after
    # every as-of date here, so that mistaking it for the order's would drop every delivery.
    shipments = spark.createDataFrame(
        [
            ("O1", ts(3, 15), d(3), d(9)),
            ("O2", ts(3, 12), d(3), d(9)),
            ("O3", ts(2, 22), d(2), d(9)),
            ("O4", ts(3, 20), d(4), d(9)),  # its delivered scan arrives on the 4th: not yet known
        ],
        "order_id string, delivered_at timestamp, delivered_ingest_date date, first_ingest_date date",
    )
    return orders, shipments


def test_kpis_use_only_data_arrived_by_the_as_of_date(spark) -> None:
    orders, shipments = _inputs(spark)
    got = build_cx_kpi_daily(spark, orders, shipments, "2026-03-03", lateness_days=3)
    expected = spark.createDataFrame(
        [
            # Feb 28 has no activity but still gets a row; it is final (28 Feb + 3 days = 3 Mar).
            (dt.date(2026, 2, 28), 0, 0, 0, 0, None, None, None, d(3), True),
            (d(1), 2, 0, 0, 0, None, None, None, d(3), False),
            (d(2), 1, 1, 1, 0, 1.0, 0.5, None, d(3), False),  # 10:00 -> 22:00 = 0.5 days
            # (2.25 + 2.0) / 2 days; O2 is one day past its promise.
            (d(3), 1, 2, 1, 1, 0.5, 2.125, 1.0, d(3), False),
        ],
        load_contract("gold.cx_kpi_daily").spark_schema(),
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_several_as_of_dates_give_one_row_per_day_from_the_latest_run(spark) -> None:
    orders, shipments = _inputs(spark)
    got = build_cx_kpi_daily_as_of(spark, orders, shipments, ["2026-03-04", "2026-03-03"], lateness_days=3)
    expected = spark.createDataFrame(
        [
            # Only the run of the 3rd still covers Feb 28.
            (dt.date(2026, 2, 28), 0, 0, 0, 0, None, None, None, d(3), True),
            (d(1), 2, 0, 0, 0, None, None, None, d(4), True),
            (d(2), 1, 1, 1, 0, 1.0, 0.5, None, d(4), False),
            # By the 4th, O4's delivery (3rd, 08:00 -> 20:00) and O5's placement are known.
            (d(3), 2, 3, 2, 1, 0.666667, 1.583333, 1.0, d(4), False),
            (d(4), 0, 0, 0, 0, None, None, None, d(4), False),
        ],
        load_contract("gold.cx_kpi_daily").spark_schema(),
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_each_day_is_computed_as_of_the_latest_run_covering_it() -> None:
    # Runs of the 3rd and the 5th with a 2-day bound cover the 1st-3rd and the 3rd-5th: the 3rd is
    # covered by both, and the run of the 5th (later: more of that day's data has arrived) wins.
    assert kpi_days_as_of(["2026-03-05", "2026-03-03"], lateness_days=2) == [
        (d(1), d(3)),
        (d(2), d(3)),
        (d(3), d(5)),
        (d(4), d(5)),
        (d(5), d(5)),
    ]
