"""The domain vocabulary: every column function on a small frame with a null row, and the contract checks."""

from __future__ import annotations

import datetime as dt
import hashlib

import pyspark.sql.functions as F
import pytest
from chispa import assert_df_equality

from jobs import domain
from jobs.domain import (
    MILESTONE_AT,
    MILESTONES,
    VocabularyError,
    check_against_contracts,
    check_milestone_columns,
    check_milestones,
    customer_key,
    days_between,
    days_late,
    delivery_days,
    first_scan_at,
    hours_between,
    is_late,
    is_new_session,
    is_on_time,
    milestone_rank,
    promised_at,
)
from jobs.lake.contracts import load_contract


def t(day: int, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0) -> dt.datetime:
    return dt.datetime(2026, 3, day, hour, minute, second, micro)


def d(day: int) -> dt.date:
    return dt.date(2026, 3, day)


def _assert_rows(spark, got, rows: list[tuple], schema: str) -> None:
    expected = spark.createDataFrame(rows, schema)
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


# ---- milestones -----------------------------------------------------------------------------------


def test_milestones_agree_with_the_contracts() -> None:
    check_against_contracts()  # also ran at import; the contracts as they are must pass
    assert set(MILESTONES) == set(load_contract("raw.tracking_scans").column("event").allowed)
    assert domain.MILESTONE_RANK == {m: i for i, m in enumerate(MILESTONES)}
    assert set(MILESTONE_AT.values()) <= set(load_contract("silver.shipments").column_names)


def test_a_contract_event_missing_from_the_milestones_is_an_error() -> None:
    # A carrier event the contracts accept but the journey order does not know could not be ranked.
    with pytest.raises(VocabularyError, match=r"raw\.tracking_scans: .*not in MILESTONES \['lost'\]"):
        check_milestones([*MILESTONES, "lost"], "raw.tracking_scans")
    # A milestone the contracts no longer allow is as wrong the other way round.
    with pytest.raises(VocabularyError, match=r"not in the contract \['returned'\], not in MILESTONES \[\]"):
        check_milestones(MILESTONES[:-1], "silver.tracking_events")
    with pytest.raises(VocabularyError, match="has no 'allowed' list"):
        check_milestones(None, "raw.tracking_scans")
    with pytest.raises(VocabularyError, match=r"silver\.shipments lacks the milestone columns \['returned_at'\]"):
        check_milestone_columns([c for c in MILESTONE_AT.values() if c != "returned_at"])
    assert issubclass(VocabularyError, ValueError)


def test_milestone_rank_with_a_null_row(spark) -> None:
    df = spark.createDataFrame(
        [("a", "created"), ("b", "delivered"), ("c", "returned"), ("d", "lost"), ("e", None)], "id string, event string"
    )
    got = df.select("id", milestone_rank(F.col("event")).alias("rank"))
    # Journey order from 0; an event outside the vocabulary and a null event have no rank.
    _assert_rows(spark, got, [("a", 0), ("b", 6), ("c", 7), ("d", None), ("e", None)], "id string, rank int")


def test_first_scan_at_takes_the_first_scan_of_the_milestone(spark) -> None:
    df = spark.createDataFrame(
        [
            ("O1", "picked", t(2, 10)),
            ("O1", "picked", t(2, 9)),  # a second pick scan, timed earlier: the first one wins
            ("O1", "arrived_hub", t(2, 8)),  # another milestone: ignored even though earliest
            ("O2", "arrived_hub", t(3, 8)),  # O2 was never picked: null
            ("O2", None, None),  # the null row
        ],
        "order_id string, event string, scan_at timestamp",
    )
    got = df.groupBy("order_id").agg(first_scan_at("picked", F.col("event"), F.col("scan_at")).alias("picked_at"))
    _assert_rows(spark, got, [("O1", t(2, 9)), ("O2", None)], "order_id string, picked_at timestamp")


# ---- durations ------------------------------------------------------------------------------------


def test_hours_between_with_a_null_row(spark) -> None:
    df = spark.createDataFrame(
        [("a", t(1, 8), t(1, 9, 30)), ("b", t(2), t(1, 12)), ("c", t(1, 8), t(1, 8, 0, 0, 900_000)), ("d", None, t(1))],
        "id string, start timestamp, end timestamp",
    )
    got = df.select("id", hours_between(F.col("start"), F.col("end")).alias("hours"))
    # 90 minutes; ending before the start is negative; 0.9 s counts (not truncated); null in, null out.
    _assert_rows(spark, got, [("a", 1.5), ("b", -12.0), ("c", 0.00025), ("d", None)], "id string, hours double")


def test_days_between_with_a_null_row(spark) -> None:
    df = spark.createDataFrame(
        [("a", t(2, 6), t(4, 18)), ("b", t(4, 18), t(2, 6)), ("c", t(1), t(1, 0, 0, 0, 500_000)), ("d", t(1), None)],
        "id string, start timestamp, end timestamp",
    )
    got = df.select("id", days_between(F.col("start"), F.col("end")).alias("days"))
    # 2 days 12 hours; the same backwards; half a second is 500000 of the 86.4e9 µs of a day, not 0;
    # null stays null.
    _assert_rows(
        spark, got, [("a", 2.5), ("b", -2.5), ("c", 500_000 / 86_400_000_000), ("d", None)], "id string, days double"
    )


def test_delivery_days_with_a_null_row(spark) -> None:
    df = spark.createDataFrame(
        [("O1", t(2, 6), t(4, 18)), ("O2", t(2, 23, 59, 59), t(3, 0, 0, 1)), ("O3", t(2, 6), None)],
        "order_id string, placed_at timestamp, delivered_at timestamp",
    )
    got = df.select("order_id", delivery_days(F.col("placed_at"), F.col("delivered_at")).alias("delivery_days"))
    # Placement to delivery: 2.5 days; two seconds across midnight are 2/86400 days, not a day;
    # an order not delivered yet has none.
    _assert_rows(
        spark,
        got,
        [("O1", 2.5), ("O2", 2 / 86400), ("O3", None)],
        "order_id string, delivery_days double",
    )


def test_one_timestamp_rule_equals_whole_second_arithmetic_on_whole_seconds(spark) -> None:
    """Why table contents did not change: on whole seconds, micros / 86400e6 == seconds / 86400.0 bit for bit."""
    placed = t(1, 7, 13, 29)
    pairs = [(placed, placed + dt.timedelta(seconds=s)) for s in (1, 7, 59, 3601, 86_399, 123_457, 2_500_001)]
    df = spark.createDataFrame([*pairs, (placed, None)], "placed_at timestamp, delivered_at timestamp")
    old_rule = (F.unix_timestamp("delivered_at") - F.unix_timestamp("placed_at")) / 86400.0
    got = df.select(
        delivery_days(F.col("placed_at"), F.col("delivered_at")).alias("new"), old_rule.alias("old")
    ).collect()
    assert [r.new for r in got] == [r.old for r in got]
    assert got[-1].new is None
    # With a fraction of a second they part: whole seconds would call 0.9 s no time at all.
    fraction = spark.createDataFrame(
        [(placed, placed + dt.timedelta(microseconds=900_000))], "a timestamp, b timestamp"
    )
    row = fraction.select(
        days_between(F.col("a"), F.col("b")).alias("new"),
        ((F.unix_timestamp("b") - F.unix_timestamp("a")) / 86400.0).alias("old"),
    ).first()
    assert (row.new, row.old) == (900_000 / 86_400_000_000, 0.0)


# ---- promises -------------------------------------------------------------------------------------

PROMISE_ROWS = [
    ("on_the_day", t(5, 23, 59), d(5)),  # 23:59 on the promised day still keeps the promise
    ("two_days_late", t(7, 1), d(5)),
    ("two_days_early", t(3, 12), d(5)),
    ("not_delivered", None, d(5)),  # the null row: nothing to judge yet
]
PROMISE_SCHEMA = "id string, delivered_at timestamp, promised_delivery_date date"


def test_days_late_with_a_null_row(spark) -> None:
    df = spark.createDataFrame(PROMISE_ROWS, PROMISE_SCHEMA)
    got = df.select("id", days_late(F.col("delivered_at"), F.col("promised_delivery_date")).alias("days_late"))
    # Whole UTC days after the promised date, negative when early.
    _assert_rows(
        spark,
        got,
        [("on_the_day", 0), ("two_days_late", 2), ("two_days_early", -2), ("not_delivered", None)],
        "id string, days_late int",
    )


def test_is_late_and_is_on_time_with_a_null_row(spark) -> None:
    df = spark.createDataFrame(PROMISE_ROWS, PROMISE_SCHEMA)
    got = df.select(
        "id",
        is_late(F.col("delivered_at"), F.col("promised_delivery_date")).alias("is_late"),
        is_on_time(F.col("delivered_at"), F.col("promised_delivery_date")).alias("is_on_time"),
    )
    # Exact opposites wherever there is a delivery; unknown (null) without one.
    _assert_rows(
        spark,
        got,
        [
            ("on_the_day", False, True),
            ("two_days_late", True, False),
            ("two_days_early", False, True),
            ("not_delivered", None, None),
        ],
        "id string, is_late boolean, is_on_time boolean",
    )


def test_promised_at_is_midday_of_the_promised_date(spark) -> None:
    df = spark.createDataFrame([("a", d(5)), ("b", None)], "id string, promised_delivery_date date")
    got = df.select("id", promised_at(F.col("promised_delivery_date")).alias("promised_at"))
    # PROMISE_HOUR = 12: the promise as a point estimate is noon UTC of its day; null stays null.
    assert domain.PROMISE_HOUR == 12
    _assert_rows(spark, got, [("a", t(5, 12)), ("b", None)], "id string, promised_at timestamp")


# ---- customers and sessions -----------------------------------------------------------------------


def test_customer_key_with_a_null_row(spark) -> None:
    df = spark.createDataFrame([("a", "C1"), ("b", "C2"), ("c", None)], "id string, customer_id string")
    got = df.select("id", customer_key(F.col("customer_id")).alias("customer_key"))

    def expected(customer_id: str) -> str:  # the documented formula, computed outside Spark
        return hashlib.sha256(f"cxlake-customer:{customer_id}".encode()).hexdigest()[:20]

    # 20 hex characters of the prefixed SHA-256; no id, no key (never a key of the empty string).
    _assert_rows(
        spark, got, [("a", expected("C1")), ("b", expected("C2")), ("c", None)], "id string, customer_key string"
    )


def test_is_new_session_with_a_null_row(spark) -> None:
    df = spark.createDataFrame(
        [
            ("first", None, t(1, 10)),  # no previous touchpoint: a session starts
            ("exactly_the_gap", t(1, 10), t(1, 10, 30)),  # 30 minutes is still the same visit
            ("one_second_more", t(1, 10), t(1, 10, 30, 1)),
            ("whole_seconds", t(1, 10, 0, 0, 500_000), t(1, 10, 30, 0, 900_000)),  # 1800.4 s, compared as 1800
            ("no_time", t(1, 10), None),  # the null row: unknown
        ],
        "id string, previous_at timestamp, at timestamp",
    )
    got = df.select("id", is_new_session(F.col("previous_at"), F.col("at")).alias("is_new_session"))
    assert domain.SESSION_GAP_MINUTES == 30
    _assert_rows(
        spark,
        got,
        [
            ("first", True),
            ("exactly_the_gap", False),
            ("one_second_more", True),
            ("whole_seconds", False),
            ("no_time", None),
        ],
        "id string, is_new_session boolean",
    )
