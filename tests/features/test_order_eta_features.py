from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal

from chispa import assert_df_equality
from frames import contract_frame

from jobs.features.order_eta import build_order_eta_features
from jobs.silver.delivery_states import build_delivery_states


def t(day: int, hour: int = 0, minute: int = 0, month: int = 3, year: int = 2026) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute)


def _order(order_id, placed_at, promised, ingest=None, lane="WH-A>R1", carrier="cdek", items=1, amount="10.00"):
    origin, region = lane.split(">")
    return {
        "order_id": order_id,
        "customer_id": f"C-{order_id}",
        "placed_at": placed_at,
        "order_date": placed_at.date(),
        "items": items,
        "amount": Decimal(amount),
        "origin_warehouse": origin,
        "destination_region": region,
        "lane": lane,
        "carrier": carrier,
        "promised_delivery_date": promised,
        "promised_days": (promised - placed_at.date()).days,
        "channel": "app",
        "first_ingest_date": ingest or placed_at.date(),
    }


def _delivered(scan_id, order_id, at, ingest=None):
    return {
        "order_id": order_id,
        "scan_id": scan_id,
        "scan_at": at,
        "event": "delivered",
        "first_ingest_date": ingest or at.date(),
    }


# Orders to build: placed on the 11th (lane statistics of the 10th) and one on the 12th (of the 11th).
TARGETS = [
    _order("T1", t(11, 9, 30), dt.date(2026, 3, 14), ingest=dt.date(2026, 3, 13), items=2, amount="19.90"),  # late
    _order("T2", t(11, 23), dt.date(2026, 3, 16), lane="WH-C>R3", carrier="russian_post"),  # no history at all
    _order("T3", t(11, 14), dt.date(2026, 3, 15), carrier="russian_post"),  # history on the lane only
    _order("T4", t(12, 1), dt.date(2026, 3, 15)),
]
# Delivered history, transit days in brackets.
HISTORY_ORDERS = [
    _order("H1", t(1), dt.date(2026, 3, 4)),  # delivered 3rd 12:00 (2.5), a day early
    _order("H2", t(2), dt.date(2026, 3, 4)),  # 5th 12:00 (3.5), a day late
    _order("H3", t(5), dt.date(2026, 3, 8)),  # 9th (4.0), a day late; the scan arrived on the 11th
    _order("H4", t(30, month=10, year=2025), dt.date(2025, 11, 2)),  # 1 Nov 2025: outside both windows
    _order("H5", t(3), dt.date(2026, 3, 5), lane="WH-B>R2"),  # 4th (1.0): cdek elsewhere
    _order("H6", t(3), dt.date(2026, 3, 6), carrier="boxberry"),  # 7th (4.0): the lane with another carrier
]
HISTORY_SCANS = [
    _delivered("D1", "H1", t(3, 12)),
    _delivered("D2", "H2", t(5, 12)),
    _delivered("D3", "H3", t(9), ingest=dt.date(2026, 3, 11)),
    _delivered("D4", "H4", t(1, month=11, year=2025)),
    _delivered("D5", "H5", t(4)),
    _delivered("D6", "H6", t(7)),
]
# Rows the lake learns after every stats date (the 10th and 11th), some even before a target's
# as_of_date: none may change a row.
LATER_ORDERS = [
    _order(
        "X1", t(9), dt.date(2026, 3, 11), ingest=dt.date(2026, 3, 12)
    ),  # delivered on the 10th, order known the 12th
    _order("X2", t(12), dt.date(2026, 3, 14)),
    _order("X3", t(10), dt.date(2026, 3, 12), lane="WH-C>R3", carrier="russian_post"),
]
LATER_SCANS = [
    _delivered("D1x", "X1", t(10, 12), ingest=dt.date(2026, 3, 10)),
    _delivered("D2x", "H2", t(4, 12), ingest=dt.date(2026, 3, 14)),  # would make H2 a day faster
    _delivered("D3x", "X2", t(12, 20)),
    _delivered("D4x", "X3", t(11, 18), ingest=dt.date(2026, 3, 12)),  # timed the 11th, arrived the 12th
]


def _frames(spark, orders, scans):
    """(orders, the delivery states of the scans) frames, in the order the builder takes them."""
    return (
        contract_frame(spark, "silver.orders", orders, payment_method="card", source_file="f.csv", line_number=1),
        build_delivery_states(
            contract_frame(spark, "silver.tracking_events", scans, carrier="cdek", seq=1, is_out_of_order_arrival=False)
        ),
    )


def _customer_key(customer_id: str) -> str:
    return hashlib.sha256(f"cxlake-customer:{customer_id}".encode()).hexdigest()[:20]


def _expected(order: dict, weekday: int, **stats) -> dict:
    no_history = {"lane_carrier_deliveries_90d": 0, "carrier_deliveries_90d": 0, "lane_deliveries_90d": 0}
    return {
        **{k: order[k] for k in ("order_id", "placed_at", "promised_delivery_date", "lane", "carrier", "channel")},
        **{k: order[k] for k in ("origin_warehouse", "destination_region", "items", "promised_days")},
        "as_of_date": order["first_ingest_date"],
        "customer_key": _customer_key(order["customer_id"]),
        "placed_weekday": weekday,
        "placed_hour": order["placed_at"].hour,
        "amount": float(order["amount"]),
        **no_history,
        **stats,
    }


def test_order_eta_features_use_lane_history_known_the_day_before_placement(spark) -> None:
    orders, states = _frames(spark, HISTORY_ORDERS + TARGETS, HISTORY_SCANS)
    targets = contract_frame(spark, "silver.orders", TARGETS)
    got = build_order_eta_features(targets, orders, states)

    t1, t2, t3, t4 = TARGETS
    expected = contract_frame(
        spark,
        "features.order_eta",
        [
            # Stats of the 10th although the order reached the lake on the 13th: H1 and H2 (H3's
            # delivery arrived on the 11th, H4 is older than 90 days).
            _expected(
                t1,
                3,  # 11 March 2026 is a Wednesday
                lane_carrier_deliveries_90d=2,
                lane_carrier_transit_days_mean=3.0,
                lane_carrier_transit_days_p50=3.0,
                lane_carrier_transit_days_p90=3.4,  # 2.5 + 0.9 * 1.0
                lane_carrier_on_time_rate=0.5,
                lane_carrier_days_late_mean=0.0,  # (-1 + 1) / 2
                carrier_deliveries_90d=3,
                carrier_transit_days_mean=2.333333,  # H1, H2, H5: 7 / 3
                lane_deliveries_90d=3,
                lane_transit_days_mean=3.333333,  # H1, H2, H6: 10 / 3
            ),
            _expected(t2, 3),  # counts 0, means null
            _expected(t3, 3, lane_deliveries_90d=3, lane_transit_days_mean=3.333333),
            # Stats of the 11th: H3 counts now.
            _expected(
                t4,
                4,
                lane_carrier_deliveries_90d=3,
                lane_carrier_transit_days_mean=3.333333,
                lane_carrier_transit_days_p50=3.5,
                lane_carrier_transit_days_p90=3.9,  # 3.5 + 0.8 * 0.5
                lane_carrier_on_time_rate=0.333333,
                lane_carrier_days_late_mean=0.333333,
                carrier_deliveries_90d=4,
                carrier_transit_days_mean=2.75,
                lane_deliveries_90d=4,
                lane_transit_days_mean=3.5,
            ),
        ],
    )
    assert got.columns == expected.columns  # the contract's columns, in its order
    assert_df_equality(got.orderBy("order_id"), expected.orderBy("order_id"), ignore_nullable=True)


def test_order_eta_rows_do_not_change_when_later_data_arrives(spark) -> None:
    targets = contract_frame(spark, "silver.orders", TARGETS)
    before = build_order_eta_features(targets, *_frames(spark, HISTORY_ORDERS + TARGETS, HISTORY_SCANS))
    after_orders, after_states = _frames(spark, HISTORY_ORDERS + TARGETS + LATER_ORDERS, HISTORY_SCANS + LATER_SCANS)
    after = build_order_eta_features(targets, after_orders, after_states)
    assert_df_equality(after.orderBy("order_id"), before.orderBy("order_id"), ignore_nullable=True)
