from __future__ import annotations

import datetime as dt
from decimal import Decimal

from jobs.features.order_eta import build_eta_training_rows, with_placement_features
from jobs.lake.feature_catalog import features_of

# What the ETA model knows of the order itself at placement: the registered features of
# features.order_eta minus the lane and carrier history statistics (lane_*/carrier_* columns).
PLACEMENT_FEATURES = [f.name for f in features_of("features.order_eta") if not f.name.startswith(("lane_", "carrier_"))]


def test_placement_features_use_iso_weekdays(spark) -> None:
    df = spark.createDataFrame([(dt.datetime(2026, 3, 2, 7),), (dt.datetime(2026, 3, 8, 23),)], "placed_at timestamp")
    got = [(r.placed_weekday, r.placed_hour) for r in with_placement_features(df).collect()]
    assert got == [(1, 7), (7, 23)]  # 2 March 2026 is a Monday, 8 March a Sunday


def test_training_rows_only_use_deliveries_known_by_the_as_of_date(spark) -> None:
    orders = spark.createDataFrame(
        [
            (
                "O1",
                dt.datetime(2026, 3, 2, 6),
                dt.date(2026, 3, 5),
                "WH-A",
                "R1",
                "WH-A>R1",
                "cdek",
                "app",
                1,
                Decimal("9.90"),
                3,
                dt.date(2026, 3, 2),
            ),
            (
                "O2",
                dt.datetime(2026, 3, 2, 6),
                dt.date(2026, 3, 5),
                "WH-A",
                "R1",
                "WH-A>R1",
                "cdek",
                "web",
                2,
                Decimal("5.00"),
                3,
                dt.date(2026, 3, 2),
            ),
        ],
        "order_id string, placed_at timestamp, promised_delivery_date date, origin_warehouse string, destination_region string, "
        "lane string, carrier string, channel string, items int, amount decimal(12,2), promised_days int, first_ingest_date date",
    )
    shipments = spark.createDataFrame(
        [
            ("O1", dt.datetime(2026, 3, 4, 18), dt.date(2026, 3, 4)),
            ("O2", dt.datetime(2026, 3, 4, 18), dt.date(2026, 3, 6)),
        ],
        "order_id string, delivered_at timestamp, delivered_ingest_date date",
    )
    rows = build_eta_training_rows(orders, shipments, "2026-03-05").collect()
    assert [(r.order_id, r.delivery_days, r.placed_weekday, r.amount) for r in rows] == [("O1", 2.5, 1, 9.9)]
    # Every placement feature of the registry is on the row: O1's own values, a Monday 06:00 UTC
    # placement (weekday 1, hour 6), the amount as a double.
    assert [{f: r[f] for f in PLACEMENT_FEATURES} for r in rows] == [
        {
            "origin_warehouse": "WH-A",
            "destination_region": "R1",
            "lane": "WH-A>R1",
            "carrier": "cdek",
            "channel": "app",
            "placed_weekday": 1,
            "placed_hour": 6,
            "items": 1,
            "amount": 9.9,
            "promised_days": 3,
        }
    ]


def test_target_orders_are_tonights_arrivals_later_arrivals_and_orders_placed_later(spark) -> None:
    from frames import contract_frame

    from jobs.features.order_eta import target_orders

    d1, d2, d3 = dt.date(2026, 3, 1), dt.date(2026, 3, 2), dt.date(2026, 3, 3)
    orders = contract_frame(
        spark,
        "silver.orders",
        [
            {"order_id": "O1", "order_date": d1, "first_ingest_date": d1},  # an earlier night's: not tonight's
            {"order_id": "O2", "order_date": d2, "first_ingest_date": d2},  # tonight's arrival
            {"order_id": "O3", "order_date": d1, "first_ingest_date": d2},  # tonight's late arrival
            # Placed before tonight, its record a later night's copy (out of order, or tonight's
            # copy retracted by a corrected file): its row moves back to that night.
            {"order_id": "O4", "order_date": d1, "first_ingest_date": d3},
            {"order_id": "O5", "order_date": d3, "first_ingest_date": d3},  # placed later: tonight's stats
        ],
    )
    assert sorted(r.order_id for r in target_orders(orders, "2026-03-02").collect()) == ["O2", "O3", "O4", "O5"]
    # A history import of nights 1 to 2: every order arrived then or later.
    assert sorted(r.order_id for r in target_orders(orders, "2026-03-01", "2026-03-02").collect()) == [
        "O1",
        "O2",
        "O3",
        "O4",
        "O5",
    ]
