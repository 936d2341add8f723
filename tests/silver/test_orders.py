from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal

from jobs.lake.contracts import load_contract
from jobs.silver.orders import build_silver_orders, filter_first_arrival

BRONZE = load_contract("bronze.orders")


def _bronze_row(order_id, ingest_day, line, email="Ann@Example.com ", phone=None):
    return (
        order_id,
        "C1",
        dt.datetime(2026, 2, 10, 8, 30),
        2,
        Decimal("10.50"),
        "WH-MOSCOW",
        "RU-SPE",
        "cdek",
        dt.date(2026, 2, 14),
        "card",
        "app",
        email,
        phone,
        None,
        f"orders/{ingest_day}/f.csv",
        line,
        dt.date.fromisoformat(ingest_day),
    )


def reference_hash(value: str, key: str) -> str:
    """:func:`jobs.silver.pii.hashed_pii` in plain Python: SHA-256 of key, a tag and the trimmed,
    lower-cased value, hashed again under the key."""
    inner = hashlib.sha256(f"{key}\x00inner\x00{value.strip().lower()}".encode()).hexdigest()
    return hashlib.sha256(f"{key}\x00outer\x00{inner}".encode()).hexdigest()


def test_build_silver_orders_keeps_first_arrival_and_hashes_pii(spark) -> None:
    bronze = spark.createDataFrame(
        [
            _bronze_row("O1", "2026-02-11", 5),  # a resend, arrived a day later
            _bronze_row("O1", "2026-02-10", 7),  # the first copy: this one is the record
            _bronze_row("O2", "2026-02-10", 2, email=None, phone="+7 900 000-00-01"),
        ],
        BRONZE.spark_schema(),
    )
    rows = {r.order_id: r for r in build_silver_orders(bronze, "k").collect()}
    assert sorted(rows) == ["O1", "O2"]
    first = rows["O1"]
    assert (first.first_ingest_date, first.line_number) == (dt.date(2026, 2, 10), 7)
    assert (first.lane, first.order_date, first.promised_days) == ("WH-MOSCOW>RU-SPE", dt.date(2026, 2, 10), 4)
    # Normalised before hashing: case and spaces do not change the join key; the key does. The
    # value is the formula lakes were hashed with when the key was a literal (hashes still join).
    same = reference_hash("ann@example.com", "k")
    assert first.email_hash == same and len(same) == 64
    assert rows["O2"].email_hash is None
    assert rows["O2"].phone_hash is not None and "900" not in rows["O2"].phone_hash
    assert build_silver_orders(bronze, "other-key").filter("order_id = 'O1'").first().email_hash != same


def test_filter_first_arrival_orders_by_date_then_file_then_line(spark) -> None:
    df = spark.createDataFrame(
        [("k", dt.date(2026, 1, 2), "a", 1), ("k", dt.date(2026, 1, 1), "b", 9), ("k", dt.date(2026, 1, 1), "b", 3)],
        "id string, _ingest_date date, _source_file string, _line_number bigint",
    )
    assert [tuple(r) for r in filter_first_arrival(df, "id").collect()] == [("k", dt.date(2026, 1, 1), "b", 3)]


def test_the_hashing_key_never_appears_in_a_plan(spark) -> None:
    """The key reaches the hash as data (a broadcast one-row frame), not as a literal: Spark's plans
    (what explain(), Spark's logs and error messages print) never hold it."""
    canary = "CANARY-pii-key-7f3a9c"
    bronze = spark.createDataFrame([_bronze_row("O1", "2026-02-10", 7)], BRONZE.spark_schema())
    silver = build_silver_orders(bronze, canary)
    plans = silver._jdf.queryExecution().toString()  # parsed, analyzed, optimized and physical
    assert "Project" in plans and canary not in plans
    assert silver.first().email_hash == reference_hash("ann@example.com", canary)
