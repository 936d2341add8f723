from __future__ import annotations

import datetime as dt

from jobs.lake.contracts import load_contract
from jobs.silver.shipments import build_shipments

BRONZE = load_contract("bronze.tracking_scans")


def _scan(scan_id, order_id, at, event, ingest="2026-02-12", line=1, location=None):
    return (
        scan_id,
        order_id,
        at,
        event,
        location,
        "cdek",
        None,
        f"tracking_scans/{ingest}/f.jsonl",
        line,
        dt.date.fromisoformat(ingest),
    )


def t(day, hour):
    return dt.datetime(2026, 2, day, hour)


def test_build_shipments_derives_milestones_from_unordered_deduplicated_scans(spark) -> None:
    scans = spark.createDataFrame(
        [
            _scan("S6", "O1", t(12, 18), "delivered", ingest="2026-02-13", line=4),  # arrived a day late
            _scan("S1", "O1", t(10, 8), "created", ingest="2026-02-10"),
            _scan("S2", "O1", t(10, 12), "picked", ingest="2026-02-10"),
            _scan("S3", "O1", t(11, 2), "arrived_hub", ingest="2026-02-11", location="HUB-A"),
            _scan("S3", "O1", t(11, 2), "arrived_hub", ingest="2026-02-12", location="HUB-A"),  # carrier resend
            _scan("S4", "O1", t(12, 8), "out_for_delivery", ingest="2026-02-12"),
            _scan("S5", "O1", t(12, 12), "delivery_failed", ingest="2026-02-12"),
            _scan("S7", "O2", t(12, 9), "created", ingest="2026-02-12"),
        ],
        BRONZE.spark_schema(),
    )
    rows = {r.order_id: r.asDict() for r in build_shipments(scans).collect()}
    assert rows["O1"] == {
        "order_id": "O1",
        "carrier": "cdek",
        "created_at": t(10, 8),
        "picked_at": t(10, 12),
        "left_warehouse_at": None,
        "first_hub_at": t(11, 2),
        "hubs_passed": 1,  # the resent hub scan counts once
        "out_for_delivery_at": t(12, 8),
        "failed_attempts": 1,
        "delivered_at": t(12, 18),
        "returned_at": None,
        "last_event": "delivered",
        "last_event_at": t(12, 18),
        "scans": 6,
        "first_ingest_date": dt.date(2026, 2, 10),
        "delivered_ingest_date": dt.date(2026, 2, 13),
    }
    assert (rows["O2"]["last_event"], rows["O2"]["delivered_at"], rows["O2"]["scans"]) == ("created", None, 1)
