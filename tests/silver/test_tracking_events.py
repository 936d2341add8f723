from __future__ import annotations

import dataclasses
import datetime as dt

from chispa import assert_df_equality

from jobs.lake.contracts import load_contract
from jobs.lake.tables import read_table, replace_slice
from jobs.silver import tracking_events
from jobs.silver.tracking_events import build_tracking_events

BRONZE = load_contract("bronze.tracking_scans")
SILVER = load_contract("silver.tracking_events")


def d(day):
    return dt.date(2026, 2, day)


def t(day, hour):
    return dt.datetime(2026, 2, day, hour)


def _scan(scan_id, order_id, at, event, ingest_day, line=1, location=None):
    source = f"tracking_scans/{ingest_day}/f.jsonl"
    return (scan_id, order_id, at, event, location, "cdek", None, source, line, d(ingest_day))


def _expected(spark, rows):
    return spark.createDataFrame(rows, SILVER.spark_schema())


def test_build_tracking_events_sequences_deduplicates_and_flags_late_arrivals(spark) -> None:
    scans = spark.createDataFrame(
        [
            _scan("S1", "O1", t(10, 8), "created", 10, location="WH-MOSCOW"),
            _scan("S2", "O1", t(10, 12), "picked", 10),  # null location stays null
            _scan("S3", "O1", t(10, 20), "left_warehouse", 12, location="WH-MOSCOW"),  # late: S4 came first
            _scan("S4", "O1", t(11, 2), "arrived_hub", 11, location="HUB-A"),
            _scan("S4", "O1", t(11, 2), "arrived_hub", 12, line=9, location="HUB-A"),  # carrier resend
            # Same instant: journey order (out_for_delivery 4 < delivered 6) beats scan_id order.
            _scan("S5", "O1", t(12, 8), "delivered", 13, location="RU-SPE"),
            _scan("S6", "O1", t(12, 8), "out_for_delivery", 12, location="RU-SPE"),
            _scan("S7", "O2", t(12, 9), "created", 12),
        ],
        BRONZE.spark_schema(),
    )
    expected = _expected(
        spark,
        [
            # Later-timed scans of O1 first arrived on the 10th (S2): S1 (10th) is not late.
            ("O1", "S1", t(10, 8), "created", "WH-MOSCOW", "cdek", 1, False, d(10), d(10)),
            # Earliest arrival among later scans is S4's (11th) > S2's own arrival (10th): on time.
            ("O1", "S2", t(10, 12), "picked", None, "cdek", 2, False, d(10), d(10)),
            # Arrived on the 12th although the later-timed S4 arrived on the 11th: out of order.
            ("O1", "S3", t(10, 20), "left_warehouse", "WH-MOSCOW", "cdek", 3, True, d(12), d(10)),
            # The resend (12th) is dropped: first arrival 11th; later scans arrived 12th+.
            ("O1", "S4", t(11, 2), "arrived_hub", "HUB-A", "cdek", 4, False, d(11), d(11)),
            # S6 and S5 share scan_at: ordered by milestone rank; neither is "later" than the
            # other, so S5 arriving a day after S6 is not out of order.
            ("O1", "S6", t(12, 8), "out_for_delivery", "RU-SPE", "cdek", 5, False, d(12), d(12)),
            ("O1", "S5", t(12, 8), "delivered", "RU-SPE", "cdek", 6, False, d(13), d(12)),
            # A lone scan: seq 1, no later scan -> false (never null).
            ("O2", "S7", t(12, 9), "created", None, "cdek", 1, False, d(12), d(12)),
        ],
    )
    assert_df_equality(build_tracking_events(scans), expected, ignore_row_order=True)


def test_build_tracking_events_breaks_full_ties_by_scan_id(spark) -> None:
    scans = spark.createDataFrame(
        [
            _scan("H2", "O1", t(11, 2), "arrived_hub", 11, location="HUB-B"),
            _scan("H1", "O1", t(11, 2), "arrived_hub", 11, location="HUB-A"),
        ],
        BRONZE.spark_schema(),
    )
    got = [(r.scan_id, r.seq) for r in build_tracking_events(scans).orderBy("seq").collect()]
    assert got == [("H1", 1), ("H2", 2)]  # same time, same milestone: scan_id decides


def _ingest(spark, config, day, rows) -> None:
    df = spark.createDataFrame(rows, BRONZE.spark_schema())
    replace_slice(df, config, BRONZE.name, {"_ingest_date": d(day).isoformat()}, BRONZE.partition_by)


def _sorted_rows(spark, config):
    return sorted(tuple(r) for r in read_table(spark, config, SILVER.name).collect())


DAY_11 = [
    _scan("S1", "O1", t(10, 8), "created", 11),
    _scan("S3", "O1", t(11, 2), "arrived_hub", 11, location="HUB-A"),
    _scan("S9", "O9", t(11, 5), "created", 11),  # an order day 12 never touches
]
DAY_12 = [
    _scan("S2", "O1", t(10, 12), "picked", 12),  # late: lands between S1 and S3
    _scan("S3", "O1", t(11, 2), "arrived_hub", 12, line=2, location="HUB-A"),  # resend
]


def test_run_recomputes_touched_orders_and_converges_in_any_run_order(spark, lake_config) -> None:
    in_order = lake_config
    _ingest(spark, in_order, 11, DAY_11)
    tracking_events.run(spark, in_order, "2026-02-11")
    first_night = read_table(spark, in_order, SILVER.name).filter("order_id = 'O1'")
    assert sorted((r.scan_id, r.seq) for r in first_night.collect()) == [("S1", 1), ("S3", 2)]
    _ingest(spark, in_order, 12, DAY_12)
    tracking_events.run(spark, in_order, "2026-02-12")
    expected = sorted(
        [
            ("O1", "S1", t(10, 8), "created", None, "cdek", 1, False, d(11), d(10)),
            # The late scan takes seq 2 and is flagged: S3 (later-timed) arrived on the 11th.
            ("O1", "S2", t(10, 12), "picked", None, "cdek", 2, True, d(12), d(10)),
            # S3 moved from seq 2 to 3 although none of its copies arrived out of order.
            ("O1", "S3", t(11, 2), "arrived_hub", "HUB-A", "cdek", 3, False, d(11), d(11)),
            ("O9", "S9", t(11, 5), "created", None, "cdek", 1, False, d(11), d(11)),
        ]
    )
    assert _sorted_rows(spark, in_order) == expected

    # A stale rerun of the 11th after the 12th recomputes O1 from all its scans: no change.
    tracking_events.run(spark, in_order, "2026-02-11")
    assert _sorted_rows(spark, in_order) == expected

    # Backfill the other way round: the 12th ingested and built before the 11th.
    reverse = dataclasses.replace(lake_config, lake_root=lake_config.lake_root + "-reverse")
    _ingest(spark, reverse, 12, DAY_12)
    tracking_events.run(spark, reverse, "2026-02-12")
    _ingest(spark, reverse, 11, DAY_11)
    tracking_events.run(spark, reverse, "2026-02-11")
    assert _sorted_rows(spark, reverse) == expected
    written = read_table(spark, reverse, SILVER.name).schema
    assert [(f.name, f.dataType) for f in written] == [(f.name, f.dataType) for f in SILVER.spark_schema()]
