from __future__ import annotations

import datetime as dt
from decimal import Decimal

from chispa import assert_df_equality
from frames import contract_frame

from jobs.features.shipment_scan import build_shipment_scan_features, target_order_scans, target_scans
from jobs.silver.delivery_states import build_delivery_states


def t(day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 3, day, hour, minute)


def d(day: int) -> dt.date:
    return dt.date(2026, 3, day)


def _order(order_id, placed_at, promised, lane="WH-A>R1", carrier="cdek"):
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
        "first_ingest_date": placed_at.date(),
    }


def _scan(scan_id, order_id, at, event, ingest=None):
    return {
        "order_id": order_id,
        "scan_id": scan_id,
        "scan_at": at,
        "event": event,
        "first_ingest_date": ingest or at.date(),
    }


ORDERS = [
    # Lane history (WH-A>R1, cdek). Legs in hours, HA / HB: placed->picked 4 / 6, picked->left 6 / 8,
    # left->first hub 24 / 28, hub->courier 22 / 14; to delivered from placed 62 / 60, picked 58 / 54,
    # left 52 / 46, hub 28 / 18, courier 6 / 4, failed attempt - / 3.
    _order("HA", t(1), d(4)),
    _order("HB", t(2), d(5)),
    _order("HC", t(8), d(10)),  # placed->delivered 48 h, no leg scans; its delivery arrives on the 11th
    # Parcels whose scans are built.
    _order("S1", t(11, 8), d(13)),
    _order("S2", t(12, 10), d(15), lane="WH-B>R2", carrier="boxberry"),  # a lane without history
]
HISTORY_SCANS = [
    _scan("HA1", "HA", t(1, 0, 10), "created"),
    _scan("HA2", "HA", t(1, 4), "picked"),
    _scan("HA3", "HA", t(1, 10), "left_warehouse"),
    _scan("HA4", "HA", t(2, 10), "arrived_hub"),
    _scan("HA5", "HA", t(3, 8), "out_for_delivery"),
    _scan("HA6", "HA", t(3, 14), "delivered"),
    _scan("HB1", "HB", t(2, 6), "picked"),
    _scan("HB2", "HB", t(2, 14), "left_warehouse"),
    _scan("HB3", "HB", t(3, 18), "arrived_hub"),
    _scan("HB4", "HB", t(4, 8), "out_for_delivery"),
    _scan("HB5", "HB", t(4, 9), "delivery_failed"),
    _scan("HB6", "HB", t(4, 12), "delivered"),
    _scan("HC1", "HC", t(10), "delivered", ingest=d(11)),
]
TARGET_SCANS = [
    _scan("a", "S1", t(11, 8, 30), "created"),
    _scan("b", "S1", t(11, 14), "picked", ingest=d(13)),  # arrives after c although timed before it
    _scan("c", "S1", t(12, 2), "left_warehouse"),
    _scan("d", "S1", t(13, 6), "arrived_hub"),
    _scan("e", "S1", t(14, 7), "out_for_delivery"),
    _scan("f", "S1", t(14, 11), "delivery_failed"),
    _scan("g", "S1", t(15, 10), "delivered"),
    # Same instant: journey order (created before picked) decides, not the scan_id.
    _scan("S2-a", "S2", t(12, 13), "picked"),
    _scan("S2-b", "S2", t(12, 13), "created"),
    _scan("Z1", "S9", t(12, 9), "created"),  # its order is not in silver yet: not built
]
# What the lake learns later, or on a target's night but timed after it: no row may change.
LATER_ORDERS = [_order("HD", t(9), d(12)), _order("X1", t(14), d(17))]
LATER_SCANS = [
    _scan("x1", "S1", t(11, 10), "picked", ingest=d(16)),  # timed before every S1 scan but a
    _scan("x2", "S1", t(15, 18), "returned", ingest=d(15)),  # g's night, timed after g
    _scan("x3", "S2", t(12, 20), "left_warehouse", ingest=d(12)),  # S2's night, timed after its scans
    _scan("x4", "HB", t(3, 10), "arrived_hub", ingest=d(16)),  # an earlier first hub for HB
    _scan("x5", "HD", t(9, 6), "picked"),
    _scan("x6", "HD", t(11, 12), "delivered", ingest=d(16)),
    _scan("x7", "X1", t(14, 20), "delivered", ingest=d(16)),
]


def _history(spark, orders, scans):
    """(tracking events, orders, their delivery states) frames, in the order the builder takes them."""
    events = contract_frame(
        spark, "silver.tracking_events", scans, carrier="cdek", seq=1, is_out_of_order_arrival=False
    )
    return (
        events,
        contract_frame(
            spark, "silver.orders", orders, channel="app", payment_method="card", source_file="f.csv", line_number=1
        ),
        build_delivery_states(events),
    )


def _targets(spark, scan_ids=None):
    rows = [s for s in TARGET_SCANS if scan_ids is None or s["scan_id"] in scan_ids]
    return contract_frame(spark, "silver.tracking_events", rows, carrier="cdek", seq=1, is_out_of_order_arrival=False)


def _s1(scan: str, **values) -> dict:
    row = next(s for s in TARGET_SCANS if s["scan_id"] == scan)
    common = {"placed_at": t(11, 8), "promised_delivery_date": d(13), "lane": "WH-A>R1", "carrier": "cdek"}
    common |= {"placed_weekday": 3, "hubs_passed": 0, "failed_attempts": 0}  # 11 March 2026: a Wednesday
    event = {k: row[k] for k in ("scan_id", "order_id", "scan_at", "event")}
    return {**common, **event, "as_of_date": row["first_ingest_date"], "scan_hour": row["scan_at"].hour, **values}


# S1's legs once known: picked 6 h after placement (mean 5), left 12 h after picking (mean 7), first
# hub 28 h later (mean 26), courier 25 h later (mean 18).
ALL_LEGS = {
    "pick_delay_hours": 1.0,
    "warehouse_delay_hours": 5.0,
    "linehaul_delay_hours": 2.0,
    "hub_to_courier_delay_hours": 7.0,
}


def test_shipment_scan_features_use_only_what_was_known_at_each_scan(spark) -> None:
    got = build_shipment_scan_features(_targets(spark), *_history(spark, ORDERS, HISTORY_SCANS + TARGET_SCANS))

    s2 = {"order_id": "S2", "placed_at": t(12, 10), "promised_delivery_date": d(15), "lane": "WH-B>R2"}
    s2 |= {"carrier": "boxberry", "scan_at": t(12, 13), "as_of_date": d(12), "placed_weekday": 4, "scan_hour": 13}
    s2 |= {"hubs_passed": 0, "failed_attempts": 0, "elapsed_hours": 3.0, "promised_hours_left": 83.0}
    expected = contract_frame(
        spark,
        "features.shipment_scan",
        [
            # Night of the 11th, lane stats of the 10th (HA, HB; HC's delivery arrived on the 11th):
            # only the created milestone, so the remaining time is the whole placed->delivered mean.
            _s1(
                "a",
                scan_seq=1,
                milestone_rank=0,
                elapsed_hours=0.5,
                promised_hours_left=63.5,
                lane_remaining_hours_mean=61.0,
            ),
            # Night of the 13th: a and b are known (c, d are timed after b).
            _s1("b", scan_seq=2, milestone_rank=1, elapsed_hours=6.0, hours_since_previous_scan=5.5)
            | {"promised_hours_left": 58.0, "pick_delay_hours": 1.0, "lane_remaining_hours_mean": 56.0},
            # Night of the 12th: b has not arrived, so no picking time and no pick or warehouse delay.
            _s1("c", scan_seq=2, milestone_rank=2, elapsed_hours=18.0, hours_since_previous_scan=17.5)
            | {"promised_hours_left": 46.0, "lane_remaining_hours_mean": 49.0},
            _s1("d", scan_seq=4, milestone_rank=3, hubs_passed=1, elapsed_hours=46.0, hours_since_previous_scan=28.0)
            | {
                "promised_hours_left": 18.0,
                **ALL_LEGS,
                "hub_to_courier_delay_hours": None,
                "lane_remaining_hours_mean": 23.0,
            },
            # Past the end of the promised day (14th 00:00): negative hours left.
            _s1("e", scan_seq=5, milestone_rank=4, hubs_passed=1, elapsed_hours=71.0, hours_since_previous_scan=25.0)
            | {"promised_hours_left": -7.0, **ALL_LEGS, "lane_remaining_hours_mean": 5.0},
            _s1("f", scan_seq=6, milestone_rank=5, hubs_passed=1, failed_attempts=1, elapsed_hours=75.0)
            | {
                "hours_since_previous_scan": 4.0,
                "promised_hours_left": -11.0,
                **ALL_LEGS,
                "lane_remaining_hours_mean": 3.0,
            },
            # Delivered: nothing left to estimate (null by design).
            _s1("g", scan_seq=7, milestone_rank=6, hubs_passed=1, failed_attempts=1, elapsed_hours=98.0)
            | {"hours_since_previous_scan": 23.0, "promised_hours_left": -34.0, **ALL_LEGS},
            # No lane history: picked but no delay, no remaining mean; the tie is broken by rank.
            {
                **s2,
                "scan_id": "S2-a",
                "event": "picked",
                "scan_seq": 2,
                "milestone_rank": 1,
                "hours_since_previous_scan": 0.0,
            },
            {**s2, "scan_id": "S2-b", "event": "created", "scan_seq": 1, "milestone_rank": 0},
        ],
    )
    assert got.columns == expected.columns  # the contract's columns, in its order
    assert_df_equality(got.orderBy("scan_id"), expected.orderBy("scan_id"), ignore_nullable=True)


def test_a_late_arriving_earlier_scan_leaves_known_rows_alone_and_gets_its_own_seq(spark) -> None:
    without_b = [s for s in HISTORY_SCANS + TARGET_SCANS if s["scan_id"] != "b"]  # the lake before the 13th
    c_before = build_shipment_scan_features(_targets(spark, {"c"}), *_history(spark, ORDERS, without_b)).collect()
    with_b = _history(spark, ORDERS, HISTORY_SCANS + TARGET_SCANS)
    after = {r.scan_id: r for r in build_shipment_scan_features(_targets(spark, {"b", "c"}), *with_b).collect()}
    assert c_before == [after["c"]]
    assert (after["b"].scan_seq, after["c"].scan_seq) == (2, 2)  # b: a and b; c: a and c


def test_shipment_scan_rows_do_not_change_when_later_data_arrives(spark) -> None:
    targets = _targets(spark)
    before = build_shipment_scan_features(targets, *_history(spark, ORDERS, HISTORY_SCANS + TARGET_SCANS))
    later = _history(spark, ORDERS + LATER_ORDERS, HISTORY_SCANS + TARGET_SCANS + LATER_SCANS)
    after = build_shipment_scan_features(targets, *later)
    assert_df_equality(after.orderBy("scan_id"), before.orderBy("scan_id"), ignore_nullable=True)


def test_target_scans_are_tonights_and_later_arrivals_and_the_scans_of_orders_arrived_tonight(spark) -> None:
    # Night 12, lateness bound 3 days: tonight's arrivals are dated from the 9th on.
    late_order = {**_order("LATE", t(1), d(4)), "first_ingest_date": d(12)}  # placed on the 1st, arrived tonight
    orders = contract_frame(spark, "silver.orders", [_order("HA", t(1), d(4)), late_order])

    def scan(scan_id, order_id, at, ingest):
        return {**_scan(scan_id, order_id, at, "arrived_hub", ingest=ingest), "event_date": at.date()}

    scans = contract_frame(
        spark,
        "silver.tracking_events",
        [
            scan("TONIGHT", "HA", t(10), d(12)),  # arrived tonight, dated within the bound: a target
            scan("LATER", "HA", t(12), d(13)),  # arrived on a later night (dates run out of order): a target
            scan("BEFORE", "HA", t(11), d(11)),  # arrived last night, its order long ago: not a target
            scan("ORPHAN", "LATE", t(2), d(2)),  # came before its order, which arrived tonight: a target
            # Impossible in a lake (bronze quarantines a line dated more than the bound before its
            # night): it shows that the arrivals are read from the bound's partitions only.
            scan("TOO_OLD", "HA", t(5), d(12)),
            scan("ELSEWHERE", "OTHER", t(11), d(11)),  # an order with no target: in neither result
        ],
    )
    got = target_scans(orders, scans, "2026-03-12", lateness_days=3).select("scan_id")
    expected = spark.createDataFrame([("TONIGHT",), ("LATER",), ("ORPHAN",)], "scan_id string")
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)
    # In the same pass, the targets' orders' other scans: the history their rows are built from.
    with_history = target_order_scans(orders, scans, "2026-03-12", lateness_days=3).select("scan_id", "_is_target")
    expected_history = spark.createDataFrame(
        [("TONIGHT", True), ("LATER", True), ("ORPHAN", True), ("BEFORE", False), ("TOO_OLD", False)],
        "scan_id string, _is_target boolean",
    )
    assert_df_equality(with_history, expected_history, ignore_row_order=True, ignore_nullable=True)
