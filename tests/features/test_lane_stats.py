from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyspark.sql.functions as F
from chispa import assert_df_equality
from frames import contract_frame

from jobs.domain import delivery_days, hours_between
from jobs.features.delivery_features import STATS_TABLE, stored_lane_stats
from jobs.features.lane_stats import (
    carrier_transit_stats,
    day_end,
    deliveries_known,
    lane_all_carriers_transit_stats,
    lane_transit_stats,
)
from jobs.lake.tables import read_table
from jobs.silver.delivery_states import build_delivery_states

D10, D11 = dt.date(2026, 3, 10), dt.date(2026, 3, 11)


def t(day: int, hour: int = 0, month: int = 3, year: int = 2026) -> dt.datetime:
    return dt.datetime(year, month, day, hour)


def _order(order_id, placed_at, promised, ingest=None, lane="WH-A>R1", carrier="cdek"):
    origin, region = lane.split(">")
    return {
        "order_id": order_id,
        "customer_id": f"C-{order_id}",
        "placed_at": placed_at,
        "order_date": placed_at.date(),
        "items": 1,
        "amount": Decimal("10.00"),
        "origin_warehouse": origin,
        "destination_region": region,
        "lane": lane,
        "carrier": carrier,
        "promised_delivery_date": promised,
        "promised_days": (promised - placed_at.date()).days,
        "first_ingest_date": ingest or placed_at.date(),
    }


def _scan(scan_id, order_id, at, event, ingest=None):
    # seq / is_out_of_order_arrival are not read by the feature transforms.
    return {
        "order_id": order_id,
        "scan_id": scan_id,
        "scan_at": at,
        "event": event,
        "first_ingest_date": ingest or at.date(),
        "event_date": at.date(),
    }


def _history(spark):
    """Nine orders around stats dates 10 and 11 March 2026 (window 90 days): the orders, their
    delivery states (silver.delivery_states, built from the scans below) and the stats dates."""
    orders = [
        _order("O1", t(1, 8), dt.date(2026, 3, 4)),
        _order("O2", t(2), dt.date(2026, 3, 5)),
        _order("O3", t(5, 10), dt.date(2026, 3, 9)),
        _order("O4", t(7, month=12, year=2025), dt.date(2025, 12, 10)),
        _order("O5", t(8, month=12, year=2025), dt.date(2025, 12, 10)),
        _order("O6", t(3), dt.date(2026, 3, 6), carrier="boxberry"),
        _order("O7", t(6), dt.date(2026, 3, 9), ingest=D11),  # the order itself reached the lake late
        _order("O8", t(9), dt.date(2026, 3, 12)),
        _order("O9", t(4), dt.date(2026, 3, 6), lane="WH-B>R2"),
    ]
    scans = [
        _scan("P1", "O1", t(1, 12), "picked"),
        _scan("L1", "O1", t(2, 8), "left_warehouse"),
        _scan("H1", "O1", t(3, 8), "arrived_hub"),
        _scan("H1b", "O1", t(3, 20), "arrived_hub"),  # a second hub: the leg ends at the first
        _scan("F1", "O1", t(4, 8), "out_for_delivery"),
        _scan("D1", "O1", t(4, 14), "delivered"),
        _scan("P2", "O2", t(2, 6), "picked"),
        _scan("L2", "O2", t(2, 20), "left_warehouse", ingest=D11),  # late leg scan: only from the 11th
        _scan("H2", "O2", t(4, 6), "arrived_hub"),
        _scan("F2", "O2", t(6, 6), "out_for_delivery"),
        _scan("X2", "O2", t(6, 10), "delivery_failed"),
        _scan("D2", "O2", t(7, 12), "delivered"),
        _scan("C3", "O3", t(5, 10), "created"),  # not a leg milestone: ignored
        _scan("P3", "O3", t(5, 14), "picked"),
        _scan("D3", "O3", t(9, 16), "delivered", ingest=D11),  # late delivered scan: only from the 11th
        _scan("D4", "O4", t(10, 23, month=12, year=2025), "delivered"),  # on day 10 Dec = D10 - 90: out
        _scan("D5", "O5", t(11, 0, month=12, year=2025), "delivered"),  # first day in D10's window only
        _scan("D6", "O6", t(5), "delivered"),
        _scan("D7", "O7", t(8, 12), "delivered"),
        _scan("D8", "O8", t(11, 0), "delivered", ingest=D10),  # arrived on the 10th, timed the 11th at 00:00
        _scan("D9", "O9", t(5), "delivered"),
    ]
    return (
        contract_frame(spark, "silver.orders", orders),
        build_delivery_states(
            contract_frame(spark, "silver.tracking_events", scans, carrier="cdek", seq=1, is_out_of_order_arrival=False)
        ),
        spark.createDataFrame([(D10,), (D11,), (D11,)], "stats_date date"),  # duplicates do not duplicate rows
    )


def _frame(spark, columns: str, rows: list[dict]):
    """A frame of the DDL ``columns`` from dict rows (absent keys are null)."""
    names = [c.split()[0] for c in columns.split(",")]
    assert not {k for r in rows for k in r} - set(names)
    return spark.createDataFrame([tuple(r.get(n) for n in names) for r in rows], columns)


def test_hours_between_and_day_end_with_a_null_row(spark) -> None:
    df = spark.createDataFrame(
        [(t(1, 8), dt.datetime(2026, 3, 1, 9, 30), dt.date(2026, 3, 13)), (t(2), t(1, 12), None), (None, t(1), None)],
        "start timestamp, end timestamp, day date",
    )
    got = df.select(hours_between(df.start, df.end).alias("hours"), day_end(df.day).alias("end_of_day")).collect()
    # 90 minutes; an end before the start is negative; null in, null out.
    assert [tuple(r) for r in got] == [(1.5, t(14)), (-12.0, None), (None, None)]


DELIVERIES = (
    "stats_date date, order_id string, lane string, carrier string, placed_at timestamp, "
    "promised_delivery_date date, picked_at timestamp, left_warehouse_at timestamp, first_hub_at timestamp, "
    "out_for_delivery_at timestamp, first_failed_attempt_at timestamp, delivered_at timestamp"
)


def test_deliveries_known_applies_the_known_by_rule_per_stats_date(spark) -> None:
    orders, states, dates = _history(spark)
    got = deliveries_known(orders, states, dates)

    o1 = {
        "order_id": "O1",
        "lane": "WH-A>R1",
        "carrier": "cdek",
        "placed_at": t(1, 8),
        "promised_delivery_date": dt.date(2026, 3, 4),
        "picked_at": t(1, 12),
        "left_warehouse_at": t(2, 8),
        "first_hub_at": t(3, 8),
        "out_for_delivery_at": t(4, 8),
        "delivered_at": t(4, 14),
    }
    o2 = {
        "order_id": "O2",
        "lane": "WH-A>R1",
        "carrier": "cdek",
        "placed_at": t(2),
        "promised_delivery_date": dt.date(2026, 3, 5),
        "picked_at": t(2, 6),
        "first_hub_at": t(4, 6),
        "out_for_delivery_at": t(6, 6),
        "first_failed_attempt_at": t(6, 10),
        "delivered_at": t(7, 12),
    }
    o6 = {
        "order_id": "O6",
        "lane": "WH-A>R1",
        "carrier": "boxberry",
        "placed_at": t(3),
        "promised_delivery_date": dt.date(2026, 3, 6),
        "delivered_at": t(5),
    }
    o9 = {
        "order_id": "O9",
        "lane": "WH-B>R2",
        "carrier": "cdek",
        "placed_at": t(4),
        "promised_delivery_date": dt.date(2026, 3, 6),
        "delivered_at": t(5),
    }
    expected = _frame(
        spark,
        DELIVERIES,
        [
            # 10 March: O3 (delivered scan arrived on the 11th), O4 (delivered on D - 90), O7 (order
            # known on the 11th) and O8 (delivered at 00:00 on the 11th) are not known yet.
            {"stats_date": D10, **o1},
            {"stats_date": D10, **o2},  # its left_warehouse scan arrived on the 11th: unknown
            {
                "stats_date": D10,
                "order_id": "O5",
                "lane": "WH-A>R1",
                "carrier": "cdek",
                "placed_at": t(8, month=12, year=2025),
                "promised_delivery_date": dt.date(2025, 12, 10),
                "delivered_at": t(11, month=12, year=2025),
            },
            {"stats_date": D10, **o6},
            {"stats_date": D10, **o9},
            # 11 March: O5 falls out of the window (11 Dec = D - 90); O3, O7, O8 and O2's leg are known.
            {"stats_date": D11, **o1},
            {"stats_date": D11, **o2, "left_warehouse_at": t(2, 20)},
            {
                "stats_date": D11,
                "order_id": "O3",
                "lane": "WH-A>R1",
                "carrier": "cdek",
                "placed_at": t(5, 10),
                "promised_delivery_date": dt.date(2026, 3, 9),
                "picked_at": t(5, 14),
                "delivered_at": t(9, 16),
            },
            {"stats_date": D11, **o6},
            {
                "stats_date": D11,
                "order_id": "O7",
                "lane": "WH-A>R1",
                "carrier": "cdek",
                "placed_at": t(6),
                "promised_delivery_date": dt.date(2026, 3, 9),
                "delivered_at": t(8, 12),
            },
            {
                "stats_date": D11,
                "order_id": "O8",
                "lane": "WH-A>R1",
                "carrier": "cdek",
                "placed_at": t(9),
                "promised_delivery_date": dt.date(2026, 3, 12),
                "delivered_at": t(11),
            },
            {"stats_date": D11, **o9},
        ],
    )
    keys = ["stats_date", "order_id"]
    assert_df_equality(got.orderBy(keys), expected.orderBy(keys), ignore_nullable=True)


LANE_STATS = (
    "stats_date date, lane string, carrier string, deliveries bigint, transit_days_sum double, "
    "transit_days_mean double, transit_days_p50 double, transit_days_p90 double, on_time_rate double, days_late_mean double, "
    "placed_to_picked_hours_mean double, picked_to_left_warehouse_hours_mean double, "
    "left_warehouse_to_first_hub_hours_mean double, first_hub_to_out_for_delivery_hours_mean double, "
    "transit_hours_mean double, picked_to_delivered_hours_mean double, left_warehouse_to_delivered_hours_mean double, "
    "first_hub_to_delivered_hours_mean double, out_for_delivery_to_delivered_hours_mean double, "
    "failed_attempt_to_delivered_hours_mean double"
)


def test_lane_transit_stats_per_stats_date(spark) -> None:
    orders, states, dates = _history(spark)
    got = lane_transit_stats(deliveries_known(orders, states, dates))

    # Transit days (hours): O1 3.25 (78), O2 5.5 (132), O3 4.25 (102), O5 3.0 (72), O6 2.0 (48),
    # O7 2.5 (60), O8 2.0 (48), O9 1.0 (24). Days late: O1 0, O2 2, O3 0, O5 1, others -1.
    # Leg hours: O1 placed->picked 4, picked->left 20, left->hub 24, hub->courier 24, picked->delivered
    # 74, left->delivered 54, hub->delivered 30, courier->delivered 6. O2: 6, (14), (34), 48, 126,
    # (112), 78, 30 and failed->delivered 26 (the brackets need its late left_warehouse scan).
    # O3: placed->picked 4, picked->delivered 98.
    # A single early delivery without leg scans: every leg mean is null.
    single = {"deliveries": 1, "on_time_rate": 1.0, "days_late_mean": -1.0}
    o6 = {**single, "lane": "WH-A>R1", "carrier": "boxberry", "transit_hours_mean": 48.0}
    o6 |= {"transit_days_sum": 2.0, "transit_days_mean": 2.0, "transit_days_p50": 2.0, "transit_days_p90": 2.0}
    o9 = {**single, "lane": "WH-B>R2", "carrier": "cdek", "transit_hours_mean": 24.0}
    o9 |= {"transit_days_sum": 1.0, "transit_days_mean": 1.0, "transit_days_p50": 1.0, "transit_days_p90": 1.0}
    expected = _frame(
        spark,
        LANE_STATS,
        [
            {
                "stats_date": D10,  # O1, O2, O5
                "lane": "WH-A>R1",
                "carrier": "cdek",
                "deliveries": 3,
                "transit_days_sum": 11.75,  # unrounded, for the pooled groupings
                "transit_days_mean": 3.916667,  # 11.75 / 3
                "transit_days_p50": 3.25,
                "transit_days_p90": 5.05,  # 3.25 + 0.8 * (5.5 - 3.25): exact percentile, interpolated
                "on_time_rate": 0.333333,
                "days_late_mean": 1.0,
                "placed_to_picked_hours_mean": 5.0,  # O5 has no leg scans: not in the leg means
                "picked_to_left_warehouse_hours_mean": 20.0,  # O1 only: O2's left scan not known yet
                "left_warehouse_to_first_hub_hours_mean": 24.0,
                "first_hub_to_out_for_delivery_hours_mean": 36.0,
                "transit_hours_mean": 94.0,
                "picked_to_delivered_hours_mean": 100.0,
                "left_warehouse_to_delivered_hours_mean": 54.0,
                "first_hub_to_delivered_hours_mean": 54.0,
                "out_for_delivery_to_delivered_hours_mean": 18.0,
                "failed_attempt_to_delivered_hours_mean": 26.0,
            },
            {"stats_date": D10, **o6},
            {"stats_date": D10, **o9},
            {
                "stats_date": D11,  # O1, O2, O3, O7, O8
                "lane": "WH-A>R1",
                "carrier": "cdek",
                "deliveries": 5,
                "transit_days_sum": 17.5,  # 3.25 + 5.5 + 4.25 + 2.5 + 2.0
                "transit_days_mean": 3.5,
                "transit_days_p50": 3.25,
                "transit_days_p90": 5.0,  # 4.25 + 0.6 * 1.25
                "on_time_rate": 0.8,
                "days_late_mean": 0.0,
                "placed_to_picked_hours_mean": 4.666667,  # (4 + 6 + 4) / 3
                "picked_to_left_warehouse_hours_mean": 17.0,  # O2's late left_warehouse scan now counts
                "left_warehouse_to_first_hub_hours_mean": 29.0,
                "first_hub_to_out_for_delivery_hours_mean": 36.0,
                "transit_hours_mean": 84.0,
                "picked_to_delivered_hours_mean": 99.333333,
                "left_warehouse_to_delivered_hours_mean": 83.0,
                "first_hub_to_delivered_hours_mean": 54.0,
                "out_for_delivery_to_delivered_hours_mean": 18.0,
                "failed_attempt_to_delivered_hours_mean": 26.0,
            },
            {"stats_date": D11, **o6},
            {"stats_date": D11, **o9},
        ],
    )
    keys = ["stats_date", "lane", "carrier"]
    assert_df_equality(got.orderBy(keys), expected.orderBy(keys), ignore_nullable=True)


def test_carrier_and_lane_stats_pool_the_other_dimension(spark) -> None:
    orders, states, dates = _history(spark)
    # Pooled from the lane x carrier rows (counts and unrounded sums), as the features read them.
    per_lane = lane_transit_stats(deliveries_known(orders, states, dates)).cache()  # shared by both below
    carrier = carrier_transit_stats(per_lane).orderBy("stats_date", "carrier")
    lane = lane_all_carriers_transit_stats(per_lane).orderBy("stats_date", "lane")
    expected_carrier = spark.createDataFrame(
        [
            (D10, "boxberry", 1, 2.0),
            (D10, "cdek", 4, 3.1875),  # O1, O2, O5 and O9 on the other lane: 12.75 / 4
            (D11, "boxberry", 1, 2.0),
            (D11, "cdek", 6, 3.083333),  # O1, O2, O3, O7, O8, O9: 18.5 / 6
        ],
        "stats_date date, carrier string, deliveries bigint, transit_days_mean double",
    )
    expected_lane = spark.createDataFrame(
        [
            (D10, "WH-A>R1", 4, 3.4375),  # O1, O2, O5 and boxberry's O6: 13.75 / 4
            (D10, "WH-B>R2", 1, 1.0),
            (D11, "WH-A>R1", 6, 3.25),  # O1, O2, O3, O6, O7, O8: 19.5 / 6
            (D11, "WH-B>R2", 1, 1.0),
        ],
        "stats_date date, lane string, deliveries bigint, transit_days_mean double",
    )
    assert_df_equality(carrier, expected_carrier, ignore_nullable=True)
    assert_df_equality(lane, expected_lane, ignore_nullable=True)
    per_lane.unpersist()


def _reference_deliveries_known(orders, scans, dates, window_days: int):
    """The known-by rule applied literally: every stats date with every scan known by it (what
    deliveries_known must equal, without its per-order states)."""
    import pyspark.sql.functions as F

    from jobs.domain import first_scan_at
    from jobs.features.lane_stats import DELIVERY_COLUMNS
    from jobs.silver.delivery_states import LEG_MILESTONES

    def first(event: str):
        return first_scan_at(event, F.col("event"), F.col("scan_at"))

    known = (
        dates.distinct()
        .crossJoin(scans)
        .filter((F.col("first_ingest_date") <= F.col("stats_date")) & (F.to_date("scan_at") <= F.col("stats_date")))
    )
    per_date = known.groupBy("stats_date", "order_id").agg(
        first("delivered").alias("delivered_at"), *[first(event).alias(name) for event, name in LEG_MILESTONES.items()]
    )
    order_columns = ["order_id", "lane", "carrier", "placed_at", "promised_delivery_date", "first_ingest_date"]
    return (
        per_date.filter(F.to_date("delivered_at") > F.date_sub("stats_date", window_days))
        .join(orders.select(*order_columns).withColumnRenamed("first_ingest_date", "_order_ingest"), "order_id")
        .filter(F.col("_order_ingest") <= F.col("stats_date"))
        .select(*DELIVERY_COLUMNS)
    )


def test_deliveries_known_equals_the_rule_applied_date_by_date_on_random_histories(spark) -> None:
    """Late scans of every kind (a delivered scan timed before the first known one, legs after the
    delivery, scans known on the day they are timed), orders known late, and the window's edges:
    the state-per-change-day computation must give exactly the rows of the rule applied per date."""
    import random

    rng = random.Random(20261201)
    events = ["picked", "left_warehouse", "arrived_hub", "out_for_delivery", "delivery_failed", "delivered", "created"]
    orders, scans = [], []
    for n in range(80):
        placed = dt.datetime(2026, 3, 1) + dt.timedelta(hours=rng.randrange(0, 24 * 20))
        order_ingest = placed.date() + dt.timedelta(days=rng.choice([0, 0, 0, 1, 4]))
        orders.append(_order(f"R{n}", placed, placed.date() + dt.timedelta(days=3), ingest=order_ingest))
        # Mostly one delivered scan, sometimes none or two (the second may arrive first).
        kinds = [rng.choice(events) for _ in range(rng.randrange(0, 6))] + ["delivered"] * rng.choice([0, 1, 1, 1, 2])
        for k, event in enumerate(kinds):
            at = placed + dt.timedelta(hours=rng.randrange(1, 24 * 8))
            ingest = at.date() + dt.timedelta(days=rng.choice([0, 0, 0, 1, 3, 6]))
            scans.append(_scan(f"S{n}-{k}", f"R{n}", at, event, ingest=ingest))
    orders_df = contract_frame(spark, "silver.orders", orders)
    scans_df = contract_frame(
        spark, "silver.tracking_events", scans, carrier="cdek", seq=1, is_out_of_order_arrival=False
    )
    dates = spark.createDataFrame(
        [(dt.date(2026, 3, 1) + dt.timedelta(days=i),) for i in range(0, 32, 2)], "stats_date date"
    )
    window_days = 8  # short, so that deliveries leave the window within the dates

    got = deliveries_known(orders_df, build_delivery_states(scans_df), dates, window_days=window_days)
    expected = _reference_deliveries_known(orders_df, scans_df, dates, window_days)
    assert expected.count() > 200  # the random history does exercise the rule
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_lane_transit_percentiles_equal_sparks_percentile_on_random_deliveries(spark) -> None:
    """The percentiles are taken by rank (one sort per group) instead of Spark's ``percentile``
    aggregate: on groups of 1 to 40 deliveries with many ties (whole 6-hour steps) they must
    equal that aggregate's exactly (p50 and p90 fall between ranks for most group sizes)."""
    import random

    import pyspark.sql.functions as F

    from jobs.features.lane_stats import DELIVERY_COLUMNS

    rng = random.Random(20261205)
    rows = []
    for group in range(30):
        lane, carrier = f"WH-{group % 3}>R{group}", ["cdek", "boxberry"][group % 2]
        for n in range(rng.choice([1, 2, 3, 4, 7, 10, 40])):
            placed = dt.datetime(2026, 3, 1) + dt.timedelta(hours=rng.randrange(0, 48))
            delivered = placed + dt.timedelta(hours=6 * rng.randrange(2, 12))
            row = dict.fromkeys(DELIVERY_COLUMNS)
            row |= {"stats_date": D10 + dt.timedelta(days=group % 2), "order_id": f"O{group}-{n}"}
            row |= {"lane": lane, "carrier": carrier, "placed_at": placed, "delivered_at": delivered}
            rows.append(row | {"promised_delivery_date": dt.date(2026, 3, 6)})
    schema = (
        "stats_date date, order_id string, lane string, carrier string, placed_at timestamp, "
        "promised_delivery_date date, picked_at timestamp, left_warehouse_at timestamp, first_hub_at timestamp, "
        "out_for_delivery_at timestamp, first_failed_attempt_at timestamp, delivered_at timestamp"
    )
    deliveries = spark.createDataFrame([tuple(r[c] for c in DELIVERY_COLUMNS) for r in rows], schema)
    keys = ["stats_date", "lane", "carrier"]
    transit_days = delivery_days(F.col("placed_at"), F.col("delivered_at"))  # the statistics' own value
    expected = deliveries.groupBy(*keys).agg(
        F.round(F.percentile(transit_days, 0.5), 6).alias("transit_days_p50"),
        F.round(F.percentile(transit_days, 0.9), 6).alias("transit_days_p90"),
    )
    got = lane_transit_stats(deliveries).select(*keys, "transit_days_p50", "transit_days_p90")
    assert expected.count() == 30
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_a_stats_date_is_computed_once_then_read_until_a_night_for_it_runs_again(spark, lake_config) -> None:
    """features.lane_stats: a night computes and stores the stats dates it lacks, reads the stored
    ones, and a night run again for a date deletes the stored dates from it on."""
    orders, states, _ = _history(spark)
    states.write.format("delta").save(lake_config.table_path("silver.delivery_states"))
    without_o6 = orders.filter("order_id != 'O6'")  # O6 is the lane's only boxberry delivery

    def carriers(stats, day):
        return sorted(r.carrier for r in stats.lane_carrier.filter(F.col("stats_date") == day).collect())

    def stored_dates():
        return [
            r.stats_date for r in read_table(spark, lake_config, STATS_TABLE).select("stats_date").distinct().collect()
        ]

    # The night of Mar 11 needs Mar 10: computed (as lane_transit_stats gives it) and stored.
    first = stored_lane_stats(spark, lake_config, orders, [D10], "2026-03-11", "2026-03-11")
    computed = lane_transit_stats(deliveries_known(orders, states, spark.createDataFrame([(D10,)], "stats_date date")))
    assert_df_equality(first.lane_carrier, computed, ignore_row_order=True, ignore_nullable=True)
    assert stored_dates() == [D10]
    # The night of Mar 12 reads Mar 10 from the table: O6, gone from the orders it is given,
    # still counts there (only a night for Mar 10 or before could have changed that date), not
    # in Mar 11, computed now.
    second = stored_lane_stats(spark, lake_config, without_o6, [D10, D11], "2026-03-12", "2026-03-12")
    assert (carriers(second, D10), carriers(second, D11)) == (["boxberry", "cdek", "cdek"], ["cdek", "cdek"])
    assert sorted(stored_dates()) == [D10, D11]
    # The night of Mar 10 again (a rerun after a corrected file): Mar 10 and Mar 11 are deleted,
    # Mar 10 is computed again from what silver holds now; Mar 11 waits for a night that needs it.
    again = stored_lane_stats(spark, lake_config, without_o6, [D10], "2026-03-10", "2026-03-10")
    assert carriers(again, D10) == ["cdek", "cdek"]
    assert stored_dates() == [D10]
