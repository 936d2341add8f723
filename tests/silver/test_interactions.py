from __future__ import annotations

import datetime as dt
import hashlib

from chispa import assert_df_equality

from jobs.lake.contracts import load_contract
from jobs.silver.interactions import build_silver_interactions

BRONZE = load_contract("bronze.interactions")
SILVER = load_contract("silver.interactions")
LINKS = load_contract("silver.device_links")

A, B = dt.date(2026, 3, 2), dt.date(2026, 3, 3)


def at(hhmm: str) -> dt.datetime:
    return dt.datetime.fromisoformat(f"2026-03-02T{hhmm}")


def ckey(customer_id: str) -> str:
    return hashlib.sha256(f"cxlake-customer:{customer_id}".encode()).hexdigest()[:20]


def pii_hash(value: str, key: str = "k") -> str:
    """``jobs.silver.pii.hashed_pii`` recomputed in Python: trimmed, lower-cased, keyed inner/outer SHA-256."""
    normalised = value.strip().lower()
    inner = hashlib.sha256(f"{key}\x00inner\x00{normalised}".encode()).hexdigest()
    return hashlib.sha256(f"{key}\x00outer\x00{inner}".encode()).hexdigest()


def event(event_id, when, kind, channel, device=None, customer=None, ingest=A, line=1, **fields):
    row = {
        "event_id": event_id,
        "event_at": when,
        "event": kind,
        "channel": channel,
        "device_id": device,
        "customer_id": customer,
        "_source_file": f"interactions/{ingest}/f.jsonl",
        "_line_number": line,
        "_ingest_date": ingest,
        **fields,
    }
    return tuple(row.get(name) for name in BRONZE.column_names)


def test_build_silver_interactions_types_deduplicates_hashes_and_resolves(spark) -> None:
    bronze = spark.createDataFrame(
        [
            event("E1", at("09:00"), "product_view", "app", device="D1", product_id="P1"),
            event("E2", at("09:10"), "login", "app", device="D1", customer="C1", line=2, email=" Ann@Example.com "),
            event("E2", at("09:10"), "login", "app", device="D1", customer="C1", ingest=B, line=7, email="x@y.z"),
            event(
                "E3",
                at("10:00"),
                "support_contact",
                "chat",
                customer="C2",
                line=3,
                order_id="O2",
                contact_reason="late_delivery",
                phone="+7 900 000-00-01",
            ),
            event(
                "E4", at("11:00"), "review", "web", customer="C2", line=4, order_id="O2", rating=2, review_text="Late"
            ),
            event("E5", at("12:00"), "app_open", "app", device="D9", customer="", line=5),
            event("E6", at("13:00"), "push_open", "app", device=" ", line=6, campaign="digest_20260302"),
        ],
        BRONZE.spark_schema(),
    )
    links = spark.createDataFrame([("D1", "C1", ckey("C1"), at("09:10"), "E2", "login", A)], LINKS.spark_schema())
    expected = spark.createDataFrame(
        [
            # Anonymous, but D1 is linked to C1 (the login ten minutes later): C1's key.
            (
                "E1",
                at("09:00"),
                A,
                "product_view",
                "app",
                "D1",
                None,
                ckey("C1"),
                False,
                None,
                "P1",
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                A,
            ),
            # The day-B resend (another email) is dropped: the first arrival is the record;
            # the email is trimmed and lower-cased before the keyed hash.
            (
                "E2",
                at("09:10"),
                A,
                "login",
                "app",
                "D1",
                "C1",
                ckey("C1"),
                True,
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                pii_hash("ann@example.com"),
                None,
                A,
            ),
            # No device: its own customer_id decides; the phone is hashed, never kept.
            (
                "E3",
                at("10:00"),
                A,
                "support_contact",
                "chat",
                None,
                "C2",
                ckey("C2"),
                True,
                "O2",
                None,
                None,
                "late_delivery",
                None,
                None,
                None,
                None,
                pii_hash("+7 900 000-00-01"),
                A,
            ),
            (
                "E4",
                at("11:00"),
                A,
                "review",
                "web",
                None,
                "C2",
                ckey("C2"),
                True,
                "O2",
                None,
                None,
                None,
                2,
                "Late",
                None,
                None,
                None,
                A,
            ),
            # A blank customer_id is no customer: anonymous, and D9 was never linked -> null key.
            (
                "E5",
                at("12:00"),
                A,
                "app_open",
                "app",
                "D9",
                None,
                None,
                False,
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                A,
            ),
            # A blank device_id is no device: nothing to resolve through.
            (
                "E6",
                at("13:00"),
                A,
                "push_open",
                "app",
                None,
                None,
                None,
                False,
                None,
                None,
                None,
                None,
                None,
                None,
                "digest_20260302",
                None,
                None,
                A,
            ),
        ],
        SILVER.spark_schema(),
    )
    got = build_silver_interactions(bronze, links, "k")
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_silver_interactions_contract_holds_no_clear_pii() -> None:
    assert SILVER.pii_columns == []
    assert {"email", "phone"}.isdisjoint(SILVER.column_names)
    assert {"email_hash", "phone_hash", "customer_key", "customer_id"} <= set(SILVER.column_names)
