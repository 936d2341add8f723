"""features.customer_daily: exact values for hand-written customers, and no leakage from later data."""

from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal

import pytest
from chispa import assert_df_equality
from frames import contract_frame

from jobs.features.customer_daily import build_customer_daily
from jobs.silver.delivery_states import build_delivery_states
from jobs.silver.session_starts import build_session_starts

AS_OF = "2026-03-10"


def key(customer_id: str) -> str:
    return hashlib.sha256(f"cxlake-customer:{customer_id}".encode()).hexdigest()[:20]


def d(month: int, day: int, year: int = 2026) -> dt.date:
    return dt.date(year, month, day)


def ts(month: int, day: int, hour: int = 12, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute)


def order(order_id, customer_id, placed_at, amount, promised, ingest=None):
    return {
        "order_id": order_id,
        "customer_id": customer_id,
        "placed_at": placed_at,
        "order_date": placed_at.date(),
        "amount": Decimal(amount),
        "promised_delivery_date": promised,
        "first_ingest_date": ingest or placed_at.date(),
    }


def scan(scan_id, order_id, event, scan_at, ingest=None):
    return {
        "scan_id": scan_id,
        "order_id": order_id,
        "event": event,
        "scan_at": scan_at,
        "event_date": scan_at.date(),
        "first_ingest_date": ingest or scan_at.date(),
    }


def event(event_id, customer_id, kind, at, channel="app", rating=None, ingest=None):
    return {
        "event_id": event_id,
        "customer_id": customer_id,
        "customer_key": key(customer_id or "C1"),
        "is_identified": customer_id is not None,  # as silver sets it (its partition column)
        "event": kind,
        "event_at": at,
        "event_date": at.date(),
        "channel": channel,
        "rating": rating,
        "first_ingest_date": ingest or at.date(),
    }


KNOWN = {
    "orders": [
        order("O1", "C1", dt.datetime(2026, 2, 1, 9), 100, d(2, 4)),
        order("O2", "C1", ts(3, 5), 50, d(3, 9)),
        order("O9", "C2", dt.datetime(2025, 1, 1, 9), 70, d(1, 5, 2025)),  # no order in a year: not a row
        order("O5", "C3", ts(3, 10, 23), 20, d(3, 14)),  # late on the as-of day itself: counts
    ],
    "scans": [
        scan("S1", "O1", "delivered", ts(2, 5)),  # a day after its promise
        scan("S2", "O2", "delivery_failed", ts(3, 7)),
    ],
    "events": [
        event("E1", "C1", "support_contact", ts(3, 6), channel="chat"),
        event("E2", "C1", "review", ts(2, 6), channel="email", rating=2),  # not an app/web visit
        event("E3", "C1", "app_open", ts(3, 8, 10, 0)),
        event("E4", "C1", "product_view", ts(3, 8, 10, 20)),  # same session as E3
        event("E5", "C1", "app_open", ts(3, 9, 15)),
        event("E6", "C1", "app_open", ts(2, 20)),  # in the 28 days before the last 7
        event("E7", None, "app_open", ts(3, 9, 16)),  # anonymous, device-linked to C1: not counted
    ],
}
# Facts the lake learnt after the as-of date, some of them dated before it.
LATER = {
    "orders": [
        order("O3", "C1", ts(3, 9), 30, d(3, 12), ingest=d(3, 11)),
        order("O4", "C1", ts(3, 11), 40, d(3, 15)),
        order("O6", "C4", ts(3, 8), 10, d(3, 12), ingest=d(3, 12)),
    ],
    "scans": [
        scan("S3", "O2", "delivered", ts(3, 8), ingest=d(3, 11)),
        scan("S4", "O1", "delivery_failed", ts(3, 11)),
    ],
    "events": [
        event("E8", "C1", "review", ts(3, 9), rating=4, ingest=d(3, 11)),
        event("E9", "C1", "support_contact", ts(3, 12), channel="chat"),
        event("E10", "C3", "app_open", ts(3, 10, 22), ingest=d(3, 13)),
    ],
}


def _frames(spark, *parts):
    def rows(name):
        return [row for part in parts for row in part[name]]

    scans = contract_frame(spark, "silver.tracking_events", rows("scans"))
    interactions = contract_frame(spark, "silver.interactions", rows("events"))
    # The deliveries come from the states silver keeps of the scans (tested on their own in
    # tests/silver/test_delivery_states.py), the failed attempts from the scans themselves; the
    # sessions from the starts silver keeps of the visits (tests/silver/test_session_starts.py).
    return (
        contract_frame(spark, "silver.orders", rows("orders")),
        interactions,
        build_session_starts(interactions),
        scans,
        build_delivery_states(scans),
    )


@pytest.fixture(scope="module")
def expected(spark):
    return contract_frame(
        spark,
        "features.customer_daily",
        [
            {
                "customer_key": key("C1"),
                "as_of_date": d(3, 10),
                "days_since_last_order": 5,
                "tenure_days": 37,
                "purchase_days_total": 2,
                "orders_30d": 1,
                "orders_90d": 2,
                "orders_365d": 2,
                "amount_30d": 50.0,
                "amount_90d": 150.0,
                "amount_365d": 150.0,
                "deliveries_90d": 1,
                "late_deliveries_90d": 1,
                "mean_days_late_90d": 1.0,
                "failed_attempts_90d": 1,
                "support_contacts_90d": 1,
                "contact_rate_90d": 0.5,
                "reviews_365d": 1,
                "mean_review_rating_365d": 2.0,
                "sessions_7d": 2,
                "sessions_prev_28d": 1,
                "engagement_trend": 2.4,
            },
            {
                "customer_key": key("C3"),
                "as_of_date": d(3, 10),
                "days_since_last_order": 0,
                "tenure_days": 0,
                "purchase_days_total": 1,
                "orders_30d": 1,
                "orders_90d": 1,
                "orders_365d": 1,
                "amount_30d": 20.0,
                "amount_90d": 20.0,
                "amount_365d": 20.0,
                "deliveries_90d": 0,
                "late_deliveries_90d": 0,
                "mean_days_late_90d": None,
                "failed_attempts_90d": 0,
                "support_contacts_90d": 0,
                "contact_rate_90d": 0.0,
                "reviews_365d": 0,
                "mean_review_rating_365d": None,
                "sessions_7d": 0,
                "sessions_prev_28d": 0,
                "engagement_trend": 1.0,
            },
        ],
    )


def test_features_as_of_a_date_are_exact(spark, expected) -> None:
    got = build_customer_daily(*_frames(spark, KNOWN), AS_OF)
    assert_df_equality(got.orderBy("customer_key"), expected.orderBy("customer_key"), ignore_nullable=True)


def test_data_that_arrived_later_does_not_change_the_features(spark, expected) -> None:
    """Leakage: appending later facts (including late ones dated before the as-of date) changes nothing."""
    got = build_customer_daily(*_frames(spark, KNOWN, LATER), AS_OF)
    assert_df_equality(got.orderBy("customer_key"), expected.orderBy("customer_key"), ignore_nullable=True)


def test_a_later_as_of_date_sees_the_late_facts(spark) -> None:
    rows = {r.customer_key: r for r in build_customer_daily(*_frames(spark, KNOWN, LATER), "2026-03-12").collect()}
    c1 = rows[key("C1")]
    # O3 (arrived 11th) and O4; O2's delivery (arrived 11th, early by one day); E8's 4-star review.
    assert (c1.orders_30d, c1.deliveries_90d, c1.mean_days_late_90d) == (3, 2, 0.0)
    assert (c1.reviews_365d, c1.mean_review_rating_365d, c1.support_contacts_90d) == (2, 3.0, 2)
    assert key("C4") in rows and rows[key("C3")].sessions_7d == 0  # C3's app_open arrives on the 13th


def test_many_as_of_dates_in_one_build_equal_one_build_per_date(spark) -> None:
    """The history import builds months of dates in one pass; each date must match its own build."""
    frames = _frames(spark, KNOWN, LATER)
    dates = [(d(3, 8) + dt.timedelta(days=i)).isoformat() for i in range(7)]
    together = build_customer_daily(*frames, dates)
    one_by_one = build_customer_daily(*frames, dates[0])
    for as_of in dates[1:]:
        one_by_one = one_by_one.unionByName(build_customer_daily(*frames, as_of))
    assert together.count() == 7 + 5 + 3  # C1 every day, C3 from its order on the 10th, C4 from the 12th
    assert_df_equality(together, one_by_one, ignore_row_order=True, ignore_nullable=True)


def test_a_late_visit_joins_two_sessions_from_its_arrival_date(spark) -> None:
    """Visits 50 min apart are two sessions until a visit between them arrives (two days late)."""
    facts = {
        "orders": [order("O7", "C6", ts(3, 1), 10, d(3, 5))],
        "scans": [],
        "events": [
            event("E20", "C6", "app_open", ts(3, 10, 10, 0)),
            event("E22", "C6", "app_open", ts(3, 10, 10, 50)),
            event("E21", "C6", "app_open", ts(3, 10, 10, 25), ingest=d(3, 12)),
        ],
    }
    rows = build_customer_daily(*_frames(spark, facts), ["2026-03-10", "2026-03-11", "2026-03-12"])
    sessions = {r.as_of_date: r.sessions_7d for r in rows.collect()}
    assert sessions == {d(3, 10): 2, d(3, 11): 2, d(3, 12): 1}


def test_an_order_known_late_and_a_delivery_date_that_moves_earlier(spark) -> None:
    """An order arriving 40 days after it was placed counts from its arrival, in the windows that
    still hold its date; a delivered scan timed earlier, arriving later, moves the delivery date."""
    facts = {
        "orders": [
            order("O8", "C7", ts(1, 20), 25, d(1, 25), ingest=d(3, 1)),
            order("O10", "C7", ts(3, 2), 5, d(3, 5)),
        ],
        "scans": [
            scan("S10", "O10", "delivered", ts(3, 6)),  # a day after the promise
            scan("S11", "O10", "delivered", ts(3, 4), ingest=d(3, 8)),  # really a day early
        ],
        "events": [],
    }
    dates = ["2026-02-28", "2026-03-01", "2026-03-07", "2026-03-08"]
    rows = {r.as_of_date: r for r in build_customer_daily(*_frames(spark, facts), dates).collect()}
    columns = ("orders_30d", "orders_90d", "amount_90d", "purchase_days_total", "days_since_last_order", "tenure_days")
    # Nothing known on Feb 28 (O8 arrives on Mar 1): no row.
    assert sorted(rows) == [d(3, 1), d(3, 7), d(3, 8)]
    # Mar 1: O8 only, placed 40 days before: out of the 30-day window, in the 90-day one.
    assert tuple(rows[d(3, 1)][c] for c in columns) == (0, 1, 25.0, 1, 40, 40)
    # Mar 7: O10 too (5 days old); O8 is 46 days old. O10 delivered on the 6th: one day late.
    assert tuple(rows[d(3, 7)][c] for c in columns) == (1, 2, 30.0, 2, 5, 46)
    assert (rows[d(3, 7)].deliveries_90d, rows[d(3, 7)].late_deliveries_90d, rows[d(3, 7)].mean_days_late_90d) == (
        1,
        1,
        1.0,
    )
    # Mar 8: the scan timed on the 4th arrived: the same delivery, now a day early.
    assert (rows[d(3, 8)].deliveries_90d, rows[d(3, 8)].late_deliveries_90d, rows[d(3, 8)].mean_days_late_90d) == (
        1,
        0,
        -1.0,
    )
