from __future__ import annotations

import datetime as dt

from frames import contract_frame

from jobs.silver.delivery_states import build_delivery_states


def t(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 2, day, hour, minute)


def d(day: int) -> dt.date:
    return dt.date(2026, 2, day)


def _scan(scan_id: str, order_id: str, at: dt.datetime, event: str, ingest: int) -> dict:
    return {"order_id": order_id, "scan_id": scan_id, "scan_at": at, "event": event, "first_ingest_date": d(ingest)}


def test_a_state_starts_on_each_day_the_known_scans_change_from_the_first_known_delivery(spark) -> None:
    events = contract_frame(
        spark,
        "silver.tracking_events",
        [
            _scan("S1", "O1", t(10, 12), "picked", ingest=10),
            _scan("S2", "O1", t(10, 9), "created", ingest=10),  # not a leg milestone: no state, no column
            _scan("S3", "O1", t(12, 8), "out_for_delivery", ingest=12),
            _scan("S4", "O1", t(12, 18), "delivered", ingest=13),  # arrived a day late: known from the 13th
            _scan("S5", "O1", t(11, 2), "left_warehouse", ingest=14),  # a leg scan after the delivery
            _scan("S6", "O1", t(12, 16), "delivered", ingest=15),  # an earlier delivered scan, known later
            _scan("S7", "O2", t(11, 8), "picked", ingest=11),  # O2 is not delivered: no state
            _scan("S8", "O3", t(11, 23, 30), "delivered", ingest=11),
            # Arrived on the 11th but timed the 12th: counts from its own day, the 12th.
            _scan("S9", "O3", t(12, 0, 10), "delivery_failed", ingest=11),
        ],
    )
    got = sorted(build_delivery_states(events).collect(), key=lambda r: (r.order_id, r.known_from))

    legs = {"left_warehouse_at": None, "first_hub_at": None, "first_failed_attempt_at": None}
    o1 = {"order_id": "O1", "delivered_date": d(12), "picked_at": t(10, 12), "out_for_delivery_at": t(12, 8)}
    assert [r.asDict() for r in got] == [
        # No state on the 10th or the 12th: the delivery is not known before the 13th.
        {**legs, **o1, "known_from": d(13), "known_until": d(14), "delivered_at": t(12, 18)},
        # The late leg scan of the 14th starts a state with it.
        {
            **legs,
            **o1,
            "known_from": d(14),
            "known_until": d(15),
            "delivered_at": t(12, 18),
            "left_warehouse_at": t(11, 2),
        },
        # The earlier delivered scan known on the 15th moves delivered_at back: the latest state.
        {
            **legs,
            **o1,
            "known_from": d(15),
            "known_until": None,
            "delivered_at": t(12, 16),
            "left_warehouse_at": t(11, 2),
        },
        {
            **legs,
            "order_id": "O3",
            "known_from": d(11),
            "known_until": d(12),
            "delivered_at": t(11, 23, 30),
            "delivered_date": d(11),
            "picked_at": None,
            "out_for_delivery_at": None,
        },
        {
            **legs,
            "order_id": "O3",
            "known_from": d(12),
            "known_until": None,
            "delivered_at": t(11, 23, 30),
            "delivered_date": d(11),
            "picked_at": None,
            "out_for_delivery_at": None,
            "first_failed_attempt_at": t(12, 0, 10),
        },
    ]
