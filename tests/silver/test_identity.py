from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from decimal import Decimal

import pyspark.sql.functions as F
import pytest
from chispa import assert_df_equality

from jobs.domain import customer_key
from jobs.lake.contracts import load_contract
from jobs.lake.tables import read_table
from jobs.silver import customers, interactions, orders
from jobs.silver.identity import build_device_links, with_customer_key
from jobs.silver.interactions import build_silver_interactions
from jobs.silver.pii import pii_key

BRONZE = load_contract("bronze.interactions")
BRONZE_ORDERS = load_contract("bronze.orders")
LINKS = load_contract("silver.device_links")

DAY_A, DAY_B = "2026-03-02", "2026-03-03"


def ckey(customer_id: str) -> str:
    """The documented rule, computed outside Spark."""
    return hashlib.sha256(f"cxlake-customer:{customer_id}".encode()).hexdigest()[:20]


def at(day: str, hhmm: str) -> dt.datetime:
    return dt.datetime.fromisoformat(f"{day}T{hhmm}")


def event(event_id, when, kind, device=None, customer=None, ingest=DAY_A, line=1, **fields):
    """One bronze interaction row (contract column order)."""
    row = {
        "event_id": event_id,
        "event_at": when,
        "event": kind,
        "device_id": device,
        "customer_id": customer,
        "channel": fields.pop("channel", "app" if device else "chat"),
        "_source_file": f"interactions/{ingest}/f.jsonl",
        "_line_number": line,
        "_ingest_date": dt.date.fromisoformat(ingest),
        **fields,
    }
    return tuple(row.get(name) for name in BRONZE.column_names)


def test_customer_key_is_the_documented_sha2_prefix_and_null_safe(spark) -> None:
    df = spark.createDataFrame([("C1",), (None,)], "customer_id string")
    keyed = df.select("customer_id", customer_key(F.col("customer_id")).alias("key"))
    got = {r.customer_id: r.key for r in keyed.collect()}
    # Same text as sha256 in Python (stable across runs/machines); no customer -> no key.
    assert got == {"C1": ckey("C1"), None: None}
    assert len(got["C1"]) == 20


def test_build_device_links_takes_each_devices_earliest_linking_event(spark) -> None:
    bronze = spark.createDataFrame(
        [
            event("E1", at(DAY_A, "09:00"), "app_open", device="D1"),  # anonymous: links nothing
            event("E3", at(DAY_A, "09:20"), "checkout", device="D1", customer="C1", order_id="O1"),
            event("E2", at(DAY_A, "09:10"), "login", device="D1", customer="C1"),
            event("E2", at(DAY_A, "09:10"), "login", device="D1", customer="C1", ingest=DAY_B),  # resend
            event("E4", at(DAY_A, "09:05"), "product_view", device="D2"),  # never logs in
            # Two customers log in on D3 at the same second: event_id decides (E5 < E6).
            event("E6", at(DAY_A, "10:00"), "login", device="D3", customer="C3"),
            event("E5", at(DAY_A, "10:00"), "login", device="D3", customer="C2", ingest=DAY_B),
            event("E7", at(DAY_A, "11:00"), "support_contact", customer="C4"),  # no device
            event("E8", at(DAY_A, "08:00"), "login", device="D4", customer="  "),  # blank id is no id
        ],
        BRONZE.spark_schema(),
    )
    expected = spark.createDataFrame(
        [
            # E2 (09:10) beats the checkout (09:20); its first copy arrived on DAY_A.
            ("D1", "C1", ckey("C1"), at(DAY_A, "09:10"), "E2", "login", dt.date(2026, 3, 2)),
            # Tie on time -> E5; it arrived a day later, which is fine: arrival does not decide.
            ("D3", "C2", ckey("C2"), at(DAY_A, "10:00"), "E5", "login", dt.date(2026, 3, 3)),
        ],
        LINKS.spark_schema(),
    )
    assert_df_equality(build_device_links(bronze), expected, ignore_row_order=True, ignore_nullable=True)


def test_identity_story_pre_login_activity_belongs_to_the_device_owner(spark) -> None:
    bronze = spark.createDataFrame(
        [
            event("E1", at(DAY_A, "09:00"), "product_view", device="D1", product_id="P1"),  # before login
            event("E2", at(DAY_A, "09:10"), "login", device="D1", customer="C1"),
            event("E3", at(DAY_A, "09:20"), "checkout", device="D1", customer="C1", order_id="O1"),
            event("E4", at(DAY_A, "09:30"), "search", device="D2", query="lego"),  # D2 never logs in
            event("E5", at(DAY_A, "09:40"), "review", customer="C2", rating=5, channel="web"),  # no device
            event("E6", at(DAY_A, "09:50"), "push_open", campaign="digest", channel="app"),  # neither id: null row
        ],
        BRONZE.spark_schema(),
    )
    links = build_device_links(bronze)
    silver = build_silver_interactions(bronze, links, "k")
    got = {r.event_id: (r.customer_key, r.is_identified) for r in silver.collect()}
    assert got == {
        "E1": (ckey("C1"), False),  # anonymous, but D1's earliest link is C1's login
        "E2": (ckey("C1"), True),
        "E3": (ckey("C1"), True),
        "E4": (None, False),  # D2 was never linked
        "E5": (ckey("C2"), True),  # its own customer_id
        "E6": (None, False),
    }


def test_with_customer_key_prefers_the_events_own_customer_over_the_device_link(spark) -> None:
    linked_at = at(DAY_B, "09:00")
    events = spark.createDataFrame(
        [
            ("E1", "D1", None, at(DAY_A, "08:00")),
            ("E2", "D1", "C9", at(DAY_A, "08:00")),
            ("E3", None, None, at(DAY_A, "08:00")),
            ("E4", "D5", None, at(DAY_A, "08:00")),
            ("E5", "D1", None, linked_at - dt.timedelta(days=7)),
            ("E6", "D1", None, linked_at - dt.timedelta(days=7, seconds=1)),
            ("E7", "D1", None, linked_at + dt.timedelta(days=30)),
        ],
        "event_id string, device_id string, customer_id string, event_at timestamp",
    )
    links = spark.createDataFrame(
        [("D1", ckey("C1"), linked_at)], "device_id string, customer_key string, linked_at timestamp"
    )
    expected = spark.createDataFrame(
        [
            ("E1", "D1", None, at(DAY_A, "08:00"), ckey("C1")),  # anonymous on a linked device -> its customer
            ("E2", "D1", "C9", at(DAY_A, "08:00"), ckey("C9")),  # a second customer on the device keeps their key
            ("E3", None, None, at(DAY_A, "08:00"), None),  # no device, no customer -> null
            ("E4", "D5", None, at(DAY_A, "08:00"), None),  # unlinked device -> null
            # PRE_LOGIN_ATTRIBUTION_DAYS = 7: exactly 7 days before the link is still pre-login
            # activity; one second older stays anonymous; any time after the link is attributed.
            ("E5", "D1", None, linked_at - dt.timedelta(days=7), ckey("C1")),
            ("E6", "D1", None, linked_at - dt.timedelta(days=7, seconds=1), None),
            ("E7", "D1", None, linked_at + dt.timedelta(days=30), ckey("C1")),
        ],
        "event_id string, device_id string, customer_id string, event_at timestamp, customer_key string",
    )
    assert_df_equality(with_customer_key(events, links), expected, ignore_row_order=True, ignore_nullable=True)


# --- Job level: the nights run in order, backwards or twice leave the same silver tables ------------

NIGHT_A_EVENTS = [
    event("A1", at(DAY_A, "09:00"), "app_open", device="D1"),
    event("A2", at(DAY_A, "09:10"), "login", device="D1", customer="C1", line=2),
    event("A3", at(DAY_A, "09:20"), "checkout", device="D1", customer="C1", order_id="O1", line=3),
    event("A5", at(DAY_A, "11:00"), "search", device="D3", query="lego", line=4),
    event("A4", at(DAY_A, "12:00"), "login", device="D3", customer="C3", line=5),
    event("A6", at(DAY_A, "13:00"), "product_view", device="D2", product_id="P7", line=6),
    event("A7", at(DAY_A, "20:00"), "app_open", device="D4", line=7),
]
NIGHT_B_EVENTS = [
    # C2's login on D3 happened on day A, before C3's, but arrives a day late: D3 moves to C2.
    event("B1", at(DAY_A, "08:00"), "login", device="D3", customer="C2", ingest=DAY_B),
    # D4 logs in on day B: its day-A anonymous activity becomes C4's.
    event("B2", at(DAY_B, "09:00"), "login", device="D4", customer="C4", ingest=DAY_B, line=2),
    # A resend of A3: the first arrival (day A) stays the record.
    event("A3", at(DAY_A, "09:20"), "checkout", device="D1", customer="C1", order_id="O1", ingest=DAY_B, line=3),
    event(
        "B3",
        at(DAY_B, "10:00"),
        "support_contact",
        customer="C1",
        ingest=DAY_B,
        line=4,
        contact_reason="where_is_my_order",
        order_id="O1",
        phone="+7 900 000-00-01",
    ),
]


def order(order_id, customer_id, placed, region, ingest, email=None):
    return (
        order_id,
        customer_id,
        placed,
        1,
        Decimal("9.90"),
        "WH-MOSCOW",
        region,
        "cdek",
        placed.date() + dt.timedelta(days=3),
        "card",
        "app",
        email,
        None,
        None,
        f"orders/{ingest}/f.csv",
        2,
        dt.date.fromisoformat(ingest),
    )


NIGHT_A_ORDERS = [order("O1", "C1", at(DAY_A, "09:20"), "RU-SPE", DAY_A, email="Ann@Example.com")]
NIGHT_B_ORDERS = [
    order("O1", "C1", at(DAY_A, "09:20"), "RU-SPE", DAY_B, email="Ann@Example.com"),  # resend
    order("O2", "C2", at(DAY_B, "11:00"), "RU-MOW", DAY_B),
]
SILVER_TABLES = ("silver.interactions", "silver.device_links", "silver.customers")


def _snapshot(spark, config) -> dict[str, list[tuple]]:
    return {table: sorted(tuple(r) for r in read_table(spark, config, table).collect()) for table in SILVER_TABLES}


def _land_bronze(spark, config) -> None:
    """Both days' bronze at once: these silver jobs read only the night's ``_ingest_date`` slice, so
    landing everything first is the same, for them, as landing each day before its night."""
    for contract, rows in ((BRONZE, NIGHT_A_EVENTS + NIGHT_B_EVENTS), (BRONZE_ORDERS, NIGHT_A_ORDERS + NIGHT_B_ORDERS)):
        df = spark.createDataFrame(rows, contract.spark_schema())
        df.write.format("delta").partitionBy(*contract.partition_by).save(config.table_path(contract.name))


def _play(spark, config, nights, keep) -> dict[int, dict[str, list[tuple]]]:
    """Build silver for each night in turn (as build_silver will); snapshot after the ``keep`` nights."""
    _land_bronze(spark, config)
    snapshots = {}
    for i, day in enumerate(nights):
        orders.run(spark, config, day)
        interactions.run(spark, config, day)
        customers.run(spark, config, day)
        if i in keep:
            snapshots[i] = _snapshot(spark, config)
    return snapshots


SCENARIOS = {
    # Day A run twice: the second time after day B (a stale rerun must not undo B's links).
    "in_order": ([DAY_A, DAY_B, DAY_A], {0, 1, 2}),
    # Backfill: day B built before day A.
    "reverse": ([DAY_B, DAY_A], {1}),
}


@pytest.fixture(scope="module")
def played(spark, config, tmp_path_factory):
    """Table snapshots of each scenario: ``{scenario: {night index: {table: sorted rows}}}``."""
    root = tmp_path_factory.mktemp("identity_nights")
    results = {}
    for name, (nights, keep) in SCENARIOS.items():
        lake = dataclasses.replace(config, lake_root=str(root / name / "lake"), landing_root=str(root / name))
        results[name] = _play(spark, lake, nights, keep)
    return results


def test_late_login_re_resolves_earlier_anonymous_events(played) -> None:
    after_a, after_b = played["in_order"][0], played["in_order"][1]
    key_a = {r[0]: r[7] for r in after_a["silver.interactions"]}
    key_b = {r[0]: r[7] for r in after_b["silver.interactions"]}
    # Night A: D3's only known link is C3's login; D4 has none yet.
    assert (key_a["A5"], key_a["A7"]) == (ckey("C3"), None)
    # Night B brings C2's earlier login on D3 (a day late) and D4's login: both histories move.
    assert (key_b["A5"], key_b["A7"]) == (ckey("C2"), ckey("C4"))
    assert key_b["A4"] == ckey("C3")  # C3's own login keeps C3's key


def pii_hash(value: str, key: str) -> str:
    """``jobs.silver.pii.hashed_pii`` recomputed in Python."""
    inner = hashlib.sha256(f"{key}\x00inner\x00{value.strip().lower()}".encode()).hexdigest()
    return hashlib.sha256(f"{key}\x00outer\x00{inner}".encode()).hexdigest()


def test_final_tables_are_exact(played, config) -> None:
    final = played["in_order"][1]
    keys = {r[0]: (r[7], r[8], r[18]) for r in final["silver.interactions"]}  # key, identified, first arrival
    a, b = dt.date(2026, 3, 2), dt.date(2026, 3, 3)
    assert keys == {
        "A1": (ckey("C1"), False, a),  # pre-login activity of D1
        "A2": (ckey("C1"), True, a),
        "A3": (ckey("C1"), True, a),  # the day-B resend is ignored: first arrival stays A
        "A4": (ckey("C3"), True, a),
        "A5": (ckey("C2"), False, a),
        "A6": (None, False, a),  # D2 never linked
        "A7": (ckey("C4"), False, a),
        "B1": (ckey("C2"), True, b),
        "B2": (ckey("C4"), True, b),
        "B3": (ckey("C1"), True, b),
    }
    assert final["silver.device_links"] == [
        ("D1", "C1", ckey("C1"), at(DAY_A, "09:10"), "A2", "login", a),
        ("D3", "C2", ckey("C2"), at(DAY_A, "08:00"), "B1", "login", b),
        ("D4", "C4", ckey("C4"), at(DAY_B, "09:00"), "B2", "login", b),
    ]
    by_id = {r[1]: r for r in final["silver.customers"]}
    # customer_key, customer_id, first_seen_at, first_order_at, last_order_at, orders, devices,
    # email_hash, phone_hash, home_region, first_ingest_date
    c1 = by_id["C1"]
    assert c1[2:7] == (at(DAY_A, "09:00"), at(DAY_A, "09:20"), at(DAY_A, "09:20"), 1, 1)  # seen first anonymously
    # Email from O1 (no interaction carries one), phone from the support contact B3, both hashed.
    assert c1[7:9] == (pii_hash("Ann@Example.com", pii_key(config)), pii_hash("+7 900 000-00-01", pii_key(config)))
    assert (c1[9], c1[10]) == ("RU-SPE", a)
    # C2: seen first by the late login (day A 08:00); owns D3 now.
    c2_order = at(DAY_B, "11:00")
    assert by_id["C2"][2:] == (at(DAY_A, "08:00"), c2_order, c2_order, 1, 1, None, None, "RU-MOW", b)
    # C3 lost D3 (and A5) on night B: recomputed although none of C3's own rows changed.
    assert by_id["C3"][2:] == (at(DAY_A, "12:00"), None, None, 0, 0, None, None, None, a)
    # C4 is first seen by D4's anonymous day-A activity, though named only on day B.
    assert by_id["C4"][2:] == (at(DAY_A, "20:00"), None, None, 0, 1, None, None, None, b)
    assert {r[0] for r in final["silver.customers"]} == {ckey(c) for c in ("C1", "C2", "C3", "C4")}


@pytest.mark.parametrize(("scenario", "night"), [("in_order", 2), ("reverse", 1)], ids=["A-B-A", "B-A"])
def test_silver_tables_do_not_depend_on_run_order_or_reruns(played, scenario, night) -> None:
    in_order = played["in_order"][1]  # A then B
    other = played[scenario][night]
    for table in SILVER_TABLES:
        assert other[table] == in_order[table], table


def test_clear_pii_never_reaches_silver(played) -> None:
    final = played["in_order"][1]
    text = repr(final)
    assert "Ann@Example.com".lower() not in text.lower() and "900 000" not in text
