"""The journey of one hand-written customer: browse -> order -> late delivery -> support -> 2-star review."""

from __future__ import annotations

import datetime as dt
import hashlib

import pyspark.sql.functions as F
import pytest
from chispa import assert_df_equality
from frames import contract_frame

from jobs.gold.journey import (
    all_touchpoints,
    build_customer_journey,
    changed_rows,
    journey_context,
    removed_rows,
    touched_customers,
    tracking_views,
)
from jobs.gold.journey_daily import build_funnel_daily, build_journey_daily
from jobs.lake.contracts import load_contract

KEY = hashlib.sha256(b"cxlake-customer:C1").hexdigest()[:20]


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime(2026, 3, day, hour, minute, second)


def session(first_touchpoint: str) -> str:
    return hashlib.sha256(f"{KEY}:{first_touchpoint}".encode()).hexdigest()[:16]


def _event(event_id, when, event, channel="app", order_id=None, customer_id="C1", **extra):
    return {
        "event_id": event_id,
        "event_at": when,
        "event_date": when.date(),
        "event": event,
        "channel": channel,
        "device_id": None if channel == "chat" or event == "review" else "D1",
        "customer_id": customer_id,
        "customer_key": KEY if customer_id or extra.pop("linked", False) else None,
        "is_identified": customer_id is not None,
        "order_id": order_id,
        "first_ingest_date": when.date(),
        **extra,
    }


def _scan(scan_id, when, event, seq, order_id="O1"):
    return {
        "order_id": order_id,
        "scan_id": scan_id,
        "scan_at": when,
        "event": event,
        "carrier": "cdek",
        "seq": seq,
        "is_out_of_order_arrival": False,
        "first_ingest_date": when.date(),
        "event_date": when.date(),
    }


@pytest.fixture(scope="module")
def story(story_inputs):
    orders, interactions, events, shipments = story_inputs
    return build_customer_journey(all_touchpoints(orders, interactions, events), orders, shipments)


@pytest.fixture(scope="module")
def story_inputs(spark):
    interactions = contract_frame(
        spark,
        "silver.interactions",
        [
            # Anonymous browsing on device D1, attributed through the login that follows.
            _event("E1", at(1, 10), "app_open", customer_id=None, linked=True),
            _event("E2", at(1, 10, 5), "search", customer_id=None, linked=True),
            _event("E3", at(1, 10, 10), "product_view", customer_id=None, linked=True),
            _event("E4", at(1, 10, 12), "add_to_cart", customer_id=None, linked=True),
            _event("E5", at(1, 10, 15), "login"),
            _event("E6", at(1, 10, 16), "checkout", order_id="O1"),
            _event("E7", at(3, 20), "tracking_page_view", order_id="O1"),
            _event("E8", at(4, 21), "tracking_page_view", order_id="O1"),
            _event("E9", at(5, 9), "tracking_page_view", order_id="O1"),
            _event("E10", at(5, 13), "support_contact", channel="chat", order_id="O1", contact_reason="late_delivery"),
            _event("E11", at(7, 10), "review", order_id="O1", rating=2),
            # Never linked to anyone: not in any journey.
            _event("E12", at(1, 11), "app_open", customer_id=None),
        ],
    )
    orders = contract_frame(
        spark,
        "silver.orders",
        [
            {
                "order_id": "O1",
                "customer_id": "C1",
                "placed_at": at(1, 10, 16, 30),
                "order_date": dt.date(2026, 3, 1),
                "channel": "app",
                "promised_delivery_date": dt.date(2026, 3, 4),
                "first_ingest_date": dt.date(2026, 3, 1),
            }
        ],
    )
    events = contract_frame(
        spark,
        "silver.tracking_events",
        [
            _scan("S1", at(1, 18), "created", 1),
            _scan("S2", at(2, 8), "picked", 2),
            _scan("S3", at(2, 14), "left_warehouse", 3),
            _scan("S4", at(3, 9), "arrived_hub", 4),
            _scan("S5", at(5, 8), "out_for_delivery", 5),
            _scan("S6", at(5, 12), "delivery_failed", 6),
            _scan("S7", at(6, 15), "delivered", 7),
            _scan("S99", at(2, 9), "picked", 1, order_id="O-UNKNOWN"),  # its order has not arrived
        ],
    )
    shipments = contract_frame(spark, "silver.shipments", [{"order_id": "O1", "delivered_at": at(6, 15)}])
    return orders, interactions, events, shipments


def test_the_story_has_the_exact_touchpoints_stages_sessions_and_flags(spark, story) -> None:
    s1, s7, s8, s9, s10, s11 = (session(f"interaction:E{i}") for i in (1, 7, 8, 9, 10, 11))
    # id, type, channel, session, order, stage, seconds since previous, late, failed, support, low review, repeated view
    expected = [
        ("interaction:E1", at(1, 10), "app_open", "app", s1, None, "discover", None, 0, 0, 0, 0, 0),
        ("interaction:E2", at(1, 10, 5), "search", "app", s1, None, "discover", 300, 0, 0, 0, 0, 0),
        ("interaction:E3", at(1, 10, 10), "product_view", "app", s1, None, "consider", 300, 0, 0, 0, 0, 0),
        ("interaction:E4", at(1, 10, 12), "add_to_cart", "app", s1, None, "consider", 120, 0, 0, 0, 0, 0),
        ("interaction:E5", at(1, 10, 15), "login", "app", s1, None, "discover", 180, 0, 0, 0, 0, 0),
        ("interaction:E6", at(1, 10, 16), "checkout", "app", s1, "O1", "purchase", 60, 0, 0, 0, 0, 0),
        ("order:O1", at(1, 10, 16, 30), "order_placed", "app", s1, "O1", "purchase", 30, 0, 0, 0, 0, 0),
        ("scan:S1", at(1, 18), "shipment_created", "carrier", None, "O1", "wait-for-delivery", 27810, 0, 0, 0, 0, 0),
        ("scan:S2", at(2, 8), "shipment_picked", "carrier", None, "O1", "wait-for-delivery", 50400, 0, 0, 0, 0, 0),
        (
            "scan:S3",
            at(2, 14),
            "shipment_left_warehouse",
            "carrier",
            None,
            "O1",
            "wait-for-delivery",
            21600,
            0,
            0,
            0,
            0,
            0,
        ),
        ("scan:S4", at(3, 9), "shipment_arrived_hub", "carrier", None, "O1", "wait-for-delivery", 68400, 0, 0, 0, 0, 0),
        ("interaction:E7", at(3, 20), "tracking_page_view", "app", s7, "O1", "wait-for-delivery", 39600, 0, 0, 0, 0, 0),
        # The promised day itself is not late.
        ("interaction:E8", at(4, 21), "tracking_page_view", "app", s8, "O1", "wait-for-delivery", 90000, 0, 0, 0, 0, 0),
        (
            "scan:S5",
            at(5, 8),
            "shipment_out_for_delivery",
            "carrier",
            None,
            "O1",
            "wait-for-delivery",
            39600,
            1,
            0,
            0,
            0,
            0,
        ),
        # Third view while waiting, a day past the promise.
        ("interaction:E9", at(5, 9), "tracking_page_view", "app", s9, "O1", "wait-for-delivery", 3600, 1, 0, 0, 0, 1),
        (
            "scan:S6",
            at(5, 12),
            "shipment_delivery_failed",
            "carrier",
            None,
            "O1",
            "wait-for-delivery",
            10800,
            1,
            1,
            0,
            0,
            0,
        ),
        ("interaction:E10", at(5, 13), "support_contact", "chat", s10, "O1", "support", 3600, 1, 0, 1, 0, 0),
        ("scan:S7", at(6, 15), "shipment_delivered", "carrier", None, "O1", "delivered", 93600, 1, 0, 0, 0, 0),
        ("interaction:E11", at(7, 10), "review", "app", s11, "O1", "post-delivery", 68400, 0, 0, 0, 1, 0),
    ]
    got = [
        (
            r.touchpoint_id,
            r.touchpoint_at,
            r.touchpoint_type,
            r.channel,
            r.session_id,
            r.order_id,
            r.journey_stage,
            r.seconds_since_previous,
            int(r.is_late_vs_promise),
            int(r.is_failed_delivery_attempt),
            int(r.is_support_contact),
            int(r.is_low_review),
            int(r.is_repeated_tracking_view),
        )
        for r in story.orderBy("touchpoint_at", "touchpoint_id").collect()
    ]
    assert got == expected
    rows = {r.touchpoint_id: r for r in story.collect()}
    assert {r.customer_key for r in rows.values()} == {KEY}
    assert rows["interaction:E11"].rating == 2 and rows["interaction:E10"].contact_reason == "late_delivery"
    assert [rows[i].pain_points for i in ("interaction:E9", "scan:S6", "interaction:E10", "scan:S7")] == [2, 2, 2, 1]
    assert rows["scan:S5"].touchpoint_date == dt.date(2026, 3, 5)


def test_journey_daily_of_the_story(spark, story) -> None:
    daily = {r.journey_date.day: r for r in build_journey_daily(story).collect()}
    assert sorted(daily) == [1, 2, 3, 4, 5, 6, 7]
    fifth = daily[5]
    assert (fifth.touchpoints, fifth.sessions, fifth.tracking_views, fifth.failed_delivery_attempts) == (4, 2, 1, 1)
    assert (fifth.support_contacts, fifth.pain_points, fifth.last_journey_stage) == (1, 7, "support")
    # The 5th ends with the support contact E10 (13:00), which opened a session of its own (4 h after E9).
    assert (fifth.last_touchpoint_at, fifth.last_session_id, fifth.last_session_at) == (
        at(5, 13),
        session("interaction:E10"),
        at(5, 13),
    )
    sixth = daily[6]
    assert (sixth.deliveries, sixth.late_deliveries, sixth.sessions, sixth.last_journey_stage) == (1, 1, 0, "delivered")
    # Only the carrier's delivery scan that day: no session to go on with.
    assert (sixth.last_touchpoint_at, sixth.last_session_id, sixth.last_session_at) == (at(6, 15), None, None)
    first = daily[1]
    assert (first.touchpoints, first.sessions, first.product_views, first.add_to_carts, first.orders_placed) == (
        8,
        1,
        1,
        1,
        1,
    )
    assert (daily[7].reviews, daily[7].mean_rating) == (1, 2.0)


def test_funnel_daily_of_the_story(spark, story) -> None:
    expected = contract_frame(
        spark,
        "gold.funnel_daily",
        [
            {
                "funnel_date": dt.date(2026, 3, 1),
                "channel": "app",
                "sessions": 1,
                "product_view_sessions": 1,
                "add_to_cart_sessions": 1,
                "checkout_sessions": 1,
                "order_sessions": 1,
                "view_rate": 1.0,
                "cart_rate": 1.0,
                "checkout_rate": 1.0,
                "order_rate": 1.0,
                "conversion_rate": 1.0,
            },
            *[
                {
                    "funnel_date": dt.date(2026, 3, day),
                    "channel": channel,
                    "sessions": 1,
                    "product_view_sessions": 0,
                    "add_to_cart_sessions": 0,
                    "checkout_sessions": 0,
                    "order_sessions": 0,
                    "view_rate": 0.0,
                    "conversion_rate": 0.0,
                }
                for day, channel in [(3, "app"), (4, "app"), (5, "app"), (5, "chat"), (7, "app")]
            ],
        ],
    )
    got = build_funnel_daily(story)
    assert_df_equality(
        got.orderBy("funnel_date", "channel"), expected.orderBy("funnel_date", "channel"), ignore_nullable=True
    )


def test_a_step_whose_event_never_arrived_is_implied_by_a_later_step(spark) -> None:
    """An order without its checkout event (lost upstream) still counts as a checkout: rates stay <= 1."""
    at = dt.datetime(2026, 3, 1, 10)
    rows = [
        {"session_id": "s1", "touchpoint_id": "t1", "touchpoint_at": at, "touchpoint_type": "product_view"},
        {
            "session_id": "s1",
            "touchpoint_id": "t2",
            "touchpoint_at": at.replace(minute=5),
            "touchpoint_type": "order_placed",
        },
        {
            "session_id": "s2",
            "touchpoint_id": "t3",
            "touchpoint_at": at.replace(hour=12),
            "touchpoint_type": "add_to_cart",
        },
    ]
    journey = contract_frame(spark, "gold.customer_journey", rows, touchpoint_date=at.date(), channel="web")
    (row,) = build_funnel_daily(journey).collect()
    steps = (
        row.sessions,
        row.product_view_sessions,
        row.add_to_cart_sessions,
        row.checkout_sessions,
        row.order_sessions,
    )
    assert steps == (2, 2, 2, 1, 1)
    assert (row.view_rate, row.cart_rate, row.checkout_rate, row.order_rate, row.conversion_rate) == (
        1.0,
        1.0,
        0.5,
        1.0,
        0.5,
    )


def test_changed_rows_are_new_or_different_rows_only(spark) -> None:
    schema = load_contract("gold.customer_journey").spark_schema()
    base = dict.fromkeys(schema.fieldNames())
    row = {
        **base,
        "customer_key": "k",
        "touchpoint_at": at(1, 1),
        "touchpoint_date": dt.date(2026, 3, 1),
        "touchpoint_type": "login",
        "channel": "app",
        "journey_stage": "discover",
        "is_late_vs_promise": False,
        "is_failed_delivery_attempt": False,
        "is_support_contact": False,
        "is_low_review": False,
        "is_repeated_tracking_view": False,
        "pain_points": 0,
    }
    stored = spark.createDataFrame([tuple({**row, "touchpoint_id": i}.values()) for i in ("a", "b")], schema)
    recomputed = spark.createDataFrame(
        [
            tuple({**row, "touchpoint_id": "a"}.values()),  # unchanged (nulls included)
            tuple({**row, "touchpoint_id": "b", "seconds_since_previous": 5}.values()),  # changed
            tuple({**row, "touchpoint_id": "c"}.values()),  # new
        ],
        schema,
    )
    # The recomputation touched customer k only; a stored row of another customer never matches.
    touched = spark.createDataFrame([("k", dt.date(2026, 3, 1))], "customer_key string, start_date date")
    assert sorted(r.touchpoint_id for r in changed_rows(recomputed, stored, touched).collect()) == ["b", "c"]


# The 4th: a session goes on across midnight; the 5th: E9 is a repeated view through E7 and E8.
@pytest.mark.parametrize("start_day", [4, 5])
def test_recomputing_from_a_day_with_the_stored_context_gives_the_full_journey(spark, story_inputs, start_day) -> None:
    """A night recomputes a customer from its first changed day with journey_context (from the
    stored daily rows and tracking views before it) instead of the history: the rows from that day
    on are the full build's, exactly."""
    orders, interactions, events, shipments = story_inputs
    # A session across midnight (3rd 23:50 -> 4th 00:10): starting on the 4th must carry it on.
    interactions = interactions.unionByName(
        contract_frame(
            spark,
            "silver.interactions",
            [_event("E20", at(3, 23, 50), "app_open"), _event("E21", at(4, 0, 10), "search")],
        )
    )
    touchpoints = all_touchpoints(orders, interactions, events)
    full = build_customer_journey(touchpoints, orders, shipments)
    start = dt.date(2026, 3, start_day)
    touched = spark.createDataFrame([(KEY, start)], "customer_key string, start_date date")

    context = journey_context(tracking_views(full), build_journey_daily(full), touched)
    from_start = touchpoints.filter(F.to_date("touchpoint_at") >= start).withColumn(
        "session_id", F.lit(None).cast("string")
    )
    incremental = build_customer_journey(from_start.unionByName(context), orders, shipments)

    wanted = full.filter(F.col("touchpoint_date") >= start)
    assert_df_equality(
        incremental.filter(F.col("touchpoint_date") >= start), wanted, ignore_row_order=True, ignore_nullable=True
    )
    # The context is a few rows, not the days before: the last touchpoint's time, the last
    # customer-initiated one's with its session (both from the last day's daily row), and the
    # tracking views of an order of the 45 days before the start.
    rows = sorted(
        (r.touchpoint_id, r.touchpoint_at, r.touchpoint_type, r.session_id is not None) for r in context.collect()
    )
    expected = {
        # The 3rd ends with E20 (23:50), which opens the session E21 goes on with.
        4: [
            ("context:last", at(3, 23, 50), None, False),
            ("context:session", at(3, 23, 50), None, True),
            ("interaction:E7", at(3, 20), "tracking_page_view", False),
        ],
        # The 4th ends with the view E8 (21:00, its own session: E21 at 00:10 is in E20's); E7
        # and E8 make E9 a repeated view.
        5: [
            ("context:last", at(4, 21), None, False),
            ("context:session", at(4, 21), None, True),
            ("interaction:E7", at(3, 20), "tracking_page_view", False),
            ("interaction:E8", at(4, 21), "tracking_page_view", False),
        ],
    }
    assert rows == expected[start_day]


def test_touched_customers_start_at_their_earliest_arrival_and_search_only_the_dates_arrivals_can_have(spark) -> None:
    night, d = "2026-03-10", dt.date
    key_of = {
        c: hashlib.sha256(f"cxlake-customer:{c}".encode()).hexdigest()[:20]
        for c in ("C1", "C2", "C3", "C4", "C5", "C6")
    }
    interactions = contract_frame(
        spark,
        "silver.interactions",
        [
            # C1: two arrivals tonight, dated the 9th and the 8th: starts on the 8th.
            {"event_id": "e1", "event_date": d(2026, 3, 9), "customer_id": "C1", "first_ingest_date": d(2026, 3, 10)},
            {"event_id": "e2", "event_date": d(2026, 3, 8), "customer_id": "C1", "first_ingest_date": d(2026, 3, 10)},
            # Arrived on an earlier night: touches no one.
            {"event_id": "e3", "event_date": d(2026, 3, 5), "customer_id": "C2", "first_ingest_date": d(2026, 3, 6)},
            # Anonymous events of device D1, whose link tonight re-attributes them to C3: the one of
            # the 4th (within relinked_since) starts C3 there; the one of the 1st is not searched.
            {"event_id": "e4", "event_date": d(2026, 3, 4), "device_id": "D1", "first_ingest_date": d(2026, 3, 4)},
            {"event_id": "e5", "event_date": d(2026, 3, 1), "device_id": "D1", "first_ingest_date": d(2026, 3, 1)},
            # C5's login on D1 on the 8th had linked it (and e4) to C5 until C3's earlier login
            # of the 7th arrived tonight: C5's journey loses e4, so C5 starts on the 4th too.
            {
                "event_id": "e7",
                "event_at": dt.datetime(2026, 3, 8, 10, 0),
                "event_date": d(2026, 3, 8),
                "device_id": "D1",
                "customer_id": "C5",
                "first_ingest_date": d(2026, 3, 8),
            },
            # C6 used D1 before C3's login: never its owner, not touched.
            {
                "event_id": "e8",
                "event_at": dt.datetime(2026, 3, 7, 8, 0),
                "event_date": d(2026, 3, 7),
                "device_id": "D1",
                "customer_id": "C6",
                "first_ingest_date": d(2026, 3, 7),
            },
            # Dated before arrived_since yet first arrived tonight: bronze quarantines such a line
            # (too_late), so the search does not read that partition and finds no C4 here.
            {"event_id": "e6", "event_date": d(2026, 3, 2), "customer_id": "C4", "first_ingest_date": d(2026, 3, 10)},
        ],
    ).withColumn(
        "customer_key",
        F.when(F.col("event_id").isin("e4", "e5"), F.lit(key_of["C3"])).otherwise(
            F.substring(F.sha2(F.concat(F.lit("cxlake-customer:"), "customer_id"), 256), 1, 20)
        ),
    )
    # As silver sets it (a partition column: each side of the search reads only its own files).
    interactions = interactions.withColumn("is_identified", F.col("customer_id").isNotNull())
    orders = contract_frame(
        spark,
        "silver.orders",
        [
            # An order placed on the 3rd arriving tonight starts C2 on the 3rd: orders are not pruned.
            {"order_id": "O1", "customer_id": "C2", "order_date": d(2026, 3, 3), "first_ingest_date": d(2026, 3, 10)},
            {"order_id": "O2", "customer_id": "C4", "order_date": d(2026, 2, 20), "first_ingest_date": d(2026, 2, 20)},
        ],
    )
    scans = contract_frame(
        spark,
        "silver.tracking_events",
        [
            # A scan arriving tonight touches its order's customer (C4) on the scan's date.
            {"scan_id": "S1", "order_id": "O2", "event_date": d(2026, 3, 9), "first_ingest_date": d(2026, 3, 10)},
            {"scan_id": "S2", "order_id": "O2", "event_date": d(2026, 3, 6), "first_ingest_date": d(2026, 3, 6)},
        ],
    )
    links = contract_frame(
        spark,
        "silver.device_links",
        [
            {
                "device_id": "D1",
                "customer_id": "C3",
                "customer_key": key_of["C3"],
                # C3's login of the 7th, arrived tonight: earlier than C5's of the 8th.
                "linked_at": dt.datetime(2026, 3, 7, 9, 0),
                "link_ingest_date": d(2026, 3, 10),
            }
        ],
    )

    touched = touched_customers(
        orders, interactions, scans, links, night, relinked_since=d(2026, 3, 3), arrived_since=d(2026, 3, 7)
    )

    assert sorted(touched.collect()) == sorted(
        [
            (key_of["C1"], d(2026, 3, 8)),
            (key_of["C2"], d(2026, 3, 3)),
            (key_of["C3"], d(2026, 3, 4)),
            (key_of["C4"], d(2026, 3, 9)),
            (key_of["C5"], d(2026, 3, 4)),
        ]
    )


def test_touched_customers_include_the_customers_of_retracted_rows_from_the_rows_dates(spark) -> None:
    night, d = "2026-03-10", dt.date
    key_of = {c: hashlib.sha256(f"cxlake-customer:{c}".encode()).hexdigest()[:20] for c in ("C1", "C2", "C3", "C4")}
    interactions = contract_frame(
        spark,
        "silver.interactions",
        [
            # Anonymous event of device D9, whose link a rerun retracted and recomputed to C3:
            # C3 starts on the event's date, as for a link that arrived tonight.
            {
                "event_id": "e1",
                "event_date": d(2026, 3, 8),
                "device_id": "D9",
                "customer_key": key_of["C3"],
                "is_identified": False,
            },
        ],
    )
    orders = contract_frame(
        spark, "silver.orders", [{"order_id": "O2", "customer_id": "C2", "order_date": d(2026, 3, 1)}]
    )
    empty = contract_frame(spark, "silver.tracking_events", [])
    links = contract_frame(spark, "silver.device_links", [])
    retracted = contract_frame(
        spark,
        "ops.silver_retractions",
        [
            # A retracted order of C1 placed on the 7th: C1 from the 7th.
            {"table_name": "silver.orders", "row_key": "O1", "customer_key": key_of["C1"], "row_date": d(2026, 3, 7)},
            # A retracted scan has no customer: its order's (O2: C2), from the scan's date.
            {"table_name": "silver.tracking_events", "row_key": "S1", "order_id": "O2", "row_date": d(2026, 3, 9)},
            # A retracted link: its old customer C4 from the first date it could attribute.
            {
                "table_name": "silver.device_links",
                "row_key": "D9",
                "customer_key": key_of["C4"],
                "row_date": d(2026, 3, 2),
            },
        ],
    )

    touched = touched_customers(
        orders, interactions, empty, links, night, relinked_since=d(2026, 3, 3), retracted_df=retracted
    )

    assert sorted(touched.collect()) == sorted(
        [
            (key_of["C1"], d(2026, 3, 7)),
            (key_of["C2"], d(2026, 3, 9)),
            (key_of["C3"], d(2026, 3, 8)),
            (key_of["C4"], d(2026, 3, 2)),
        ]
    )


def test_removed_rows_are_the_touched_customers_stored_rows_from_their_start_that_the_recomputation_lacks(
    spark,
) -> None:
    d = dt.date
    stored = contract_frame(
        spark,
        "gold.customer_journey",
        [
            {"customer_key": "k", "touchpoint_id": "a", "touchpoint_date": d(2026, 3, 1)},  # before k's start: kept
            {"customer_key": "k", "touchpoint_id": "b", "touchpoint_date": d(2026, 3, 2)},  # recomputed: kept
            {"customer_key": "k", "touchpoint_id": "c", "touchpoint_date": d(2026, 3, 3)},  # gone: removed
            {"customer_key": "x", "touchpoint_id": "e", "touchpoint_date": d(2026, 3, 3)},  # untouched customer
        ],
    )
    recomputed = stored.filter(F.col("touchpoint_id") == "b")
    touched = spark.createDataFrame([("k", d(2026, 3, 2))], "customer_key string, start_date date")
    assert [r.touchpoint_id for r in removed_rows(recomputed, stored, touched).collect()] == ["c"]
