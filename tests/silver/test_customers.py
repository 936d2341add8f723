from __future__ import annotations

import datetime as dt
import hashlib

from chispa import assert_df_equality

from jobs.lake.contracts import load_contract
from jobs.silver.customers import build_customers, build_customers_since

CUSTOMERS = load_contract("silver.customers")

A, B, C = dt.date(2026, 3, 2), dt.date(2026, 3, 3), dt.date(2026, 3, 4)

# Only the columns build_customers reads (the silver tables have more).
ORDERS_SCHEMA = (
    "order_id string, customer_id string, placed_at timestamp, destination_region string, "
    "email_hash string, phone_hash string, first_ingest_date date"
)
INTERACTIONS_SCHEMA = (
    "event_id string, event_at timestamp, customer_id string, customer_key string, is_identified boolean, "
    "email_hash string, phone_hash string, first_ingest_date date"
)


def at(day: dt.date, hour: int) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour))


def ckey(customer_id: str) -> str:
    return hashlib.sha256(f"cxlake-customer:{customer_id}".encode()).hexdigest()[:20]


def test_build_customers_from_orders_interactions_and_links(spark) -> None:
    orders = spark.createDataFrame(
        [
            ("O1", "C1", at(A, 10), "RU-SPE", "e-o1", "p-o1", B),
            ("O2", "C1", at(B, 10), "RU-MOW", None, None, B),
            ("O3", "C3", at(A, 12), "RU-KZN", None, None, A),
            ("O4", "C3", at(B, 12), "RU-KZN", None, None, B),
            ("O5", "C3", at(C, 12), "RU-ABC", None, None, C),
        ],
        ORDERS_SCHEMA,
    )
    interactions = spark.createDataFrame(
        [
            # Anonymous on C1's device: dates C1, lends no contact details, names nobody.
            ("E0", at(A, 8), None, ckey("C1"), False, "e-anon", "p-anon", A),
            ("E1", at(A, 10), "C1", ckey("C1"), True, None, "p-e1", B),  # same time as O1
            ("E2", at(B, 11), "C1", ckey("C1"), True, "e-e2", None, B),
            ("E3", at(B, 9), "C2", ckey("C2"), True, None, None, B),  # support contact only
            ("E4", at(B, 9), None, None, False, "e-x", None, B),  # unresolved: belongs to nobody
        ],
        INTERACTIONS_SCHEMA,
    )
    links = spark.createDataFrame([("D1", ckey("C1")), ("D7", ckey("C1"))], "device_id string, customer_key string")
    expected = spark.createDataFrame(
        [
            (
                ckey("C1"),
                "C1",
                at(A, 8),  # first seen through the linked anonymous event E0
                at(A, 10),
                at(B, 10),
                2,
                2,  # D1 and D7
                "e-e2",  # latest non-null email: E2 (B 11:00); O2 (B 10:00) has none
                "p-o1",  # latest phone: O1 and E1 tie on A 10:00 -> the order wins; E0 is anonymous
                "RU-MOW",  # one order each in RU-MOW and RU-SPE -> alphabetically first
                B,  # first identified arrival: E0 arrived on A but named nobody
            ),
            # Interaction-only customer: no orders, devices or contact details -> nulls and zeros.
            (ckey("C2"), "C2", at(B, 9), None, None, 0, 0, None, None, None, B),
            # Two orders in RU-KZN beat one in RU-ABC, although RU-ABC sorts first.
            (ckey("C3"), "C3", at(A, 12), at(A, 12), at(C, 12), 3, 0, None, None, "RU-KZN", A),
        ],
        CUSTOMERS.spark_schema(),
    )
    got = build_customers(orders, interactions, links)
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_build_customers_since_reads_only_the_recent_interactions(spark) -> None:
    # The night's changes are dated B or later (``since`` = B); A's evidence is unchanged and
    # already in the stored rows, so it is not given here at all.
    orders = spark.createDataFrame(
        [
            ("O1", "C1", at(A, 9), "RU-SPE", "e-o1", None, A),  # an old order: orders are read whole
            ("O3", "C3", at(C, 9), "RU-KZN", None, "p-o3", C),  # C3's first evidence, tonight
        ],
        ORDERS_SCHEMA,
    )
    recent = spark.createDataFrame(
        [
            ("E1", at(B, 10), "C1", ckey("C1"), True, None, "p-e1", C),  # arrived tonight, dated B
            ("E2", at(C, 8), None, ckey("C2"), False, None, None, C),  # anonymous, linked to C2 tonight
            ("E3", at(B, 7), None, ckey("C1"), False, "e-anon", None, B),  # anonymous: no contact details
        ],
        INTERACTIONS_SCHEMA,
    )
    links = spark.createDataFrame([("D1", ckey("C1")), ("D2", ckey("C2"))], "device_id string, customer_key string")
    stored = spark.createDataFrame(
        [
            # Built from A's evidence: an anonymous event at A 08:00 and O1 (A 09:00, e-o1).
            (ckey("C1"), "C1", at(A, 8), at(A, 9), at(A, 9), 1, 1, "e-o1", None, "RU-SPE", A),
            # C2's first sight was an anonymous event at B 12:00 that tonight's earlier link of
            # its device moved to another customer: a loss dated after ``since``.
            (ckey("C2"), "C2", at(B, 12), None, None, 0, 0, "e-c2", None, None, B),
        ],
        CUSTOMERS.spark_schema(),
    )
    expected = spark.createDataFrame(
        [
            # first_seen_at A 08:00 stays (before B: from the unchanged part); email e-o1 stays
            # (nothing newer has one; E3 is anonymous); phone p-e1 from E1; first arrival A.
            (ckey("C1"), "C1", at(A, 8), at(A, 9), at(A, 9), 1, 1, "e-o1", "p-e1", "RU-SPE", A),
            # The stored B 12:00 is not before B, so it is not kept: the earliest evidence from B
            # on is E2 (C 08:00). Its email comes from before B (no newer one): kept.
            (ckey("C2"), "C2", at(C, 8), None, None, 0, 1, "e-c2", None, None, B),
            # A new customer: everything from tonight's order.
            (ckey("C3"), "C3", at(C, 9), at(C, 9), at(C, 9), 1, 0, None, "p-o3", "RU-KZN", C),
        ],
        CUSTOMERS.spark_schema(),
    )
    got = build_customers_since(orders, recent, links, stored, B)
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)
