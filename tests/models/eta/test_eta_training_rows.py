"""The rows the nightly ETA training reads (``jobs.models.eta.job.training_rows``), on hand cases:
maturity, the training window, what the lake knew by the run date, late arrivals."""

from __future__ import annotations

import datetime as dt

from jobs.models.eta import job as eta_job

RUN_DATE = "2026-03-31"
# MATURITY_DAYS = 14: the newest placement day trained on is 03-17. TRAINING_WINDOW_DAYS = 90:
# the oldest is 2025-12-31.
assert (eta_job.MATURITY_DAYS, eta_job.TRAINING_WINDOW_DAYS) == (14, 90)


def _at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def _day(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


# order_id, placed_at, as_of_date (the night the lake first knew the order), why it is in or out.
ORDERS = [
    ("A", "2026-03-17 10:00", "2026-03-17"),  # in: placed on the newest matured day
    ("B", "2026-03-18 09:00", "2026-03-18"),  # out: 13 days old, not matured
    ("C", "2025-12-31 12:00", "2025-12-31"),  # in: placed on the oldest day of the window
    ("D", "2025-12-30 23:00", "2025-12-30"),  # out: one day before the window
    ("E", "2026-03-01 08:00", "2026-03-01"),  # out: its delivery reached the lake after the run date
    ("F", "2026-03-01 09:00", "2026-04-02"),  # out: the order itself arrived after the run date
    ("G", "2026-03-02 06:00", "2026-03-02"),  # in: a late delivered scan, dated earlier, arrived by then
    ("H", "2026-03-03 07:00", "2026-03-03"),  # out: never delivered
]
# scan_id, order_id, event, scan_at, first_ingest_date (the night the scan reached the lake).
EVENTS = [
    ("a1", "A", "left_warehouse", "2026-03-18 08:00", "2026-03-18"),
    ("a2", "A", "delivered", "2026-03-19 22:00", "2026-03-19"),
    ("c1", "C", "delivered", "2026-01-03 12:00", "2026-01-03"),
    ("d1", "D", "delivered", "2026-01-02 11:00", "2026-01-02"),
    ("e1", "E", "delivered", "2026-03-05 10:00", "2026-04-01"),
    ("f1", "F", "delivered", "2026-03-04 09:00", "2026-04-02"),
    # G: first heard delivered at 03-06 18:00, then a scan from 03-05 18:00 arrived late (03-20):
    # the first delivered scan known by the run date is the label's end.
    ("g1", "G", "delivered", "2026-03-06 18:00", "2026-03-06"),
    ("g2", "G", "delivered", "2026-03-05 18:00", "2026-03-20"),
    ("h1", "H", "left_warehouse", "2026-03-04 07:00", "2026-03-04"),
]
# Scan feature rows (scan_id, order_id, scan_at, as_of_date, placed_at).
SCANS = [
    ("a1", "A", "2026-03-18 08:00", "2026-03-18"),  # before A's delivery: a training row
    ("a2", "A", "2026-03-19 22:00", "2026-03-19"),  # the delivery itself: nothing left to estimate
    ("h1", "H", "2026-03-04 07:00", "2026-03-04"),  # H never delivered
]


def _frames(spark):
    placed = {order_id: _at(at) for order_id, at, _ in ORDERS}
    order_eta = spark.createDataFrame(
        [(o, _at(at), _day(as_of)) for o, at, as_of in ORDERS], "order_id string, placed_at timestamp, as_of_date date"
    )
    events = spark.createDataFrame(
        [(s, o, e, _at(at), _day(ingest)) for s, o, e, at, ingest in EVENTS],
        "scan_id string, order_id string, event string, scan_at timestamp, first_ingest_date date",
    )
    scans = spark.createDataFrame(
        [(s, o, _at(at), _day(as_of), placed[o]) for s, o, at, as_of in SCANS],
        "scan_id string, order_id string, scan_at timestamp, as_of_date date, placed_at timestamp",
    )
    return order_eta, scans, events


def test_training_rows_are_the_matured_orders_delivered_as_the_lake_knew_by_the_run_date(spark) -> None:
    order_eta, scans, events = _frames(spark)
    placement, scan_rows = eta_job.training_rows(order_eta, scans, events, RUN_DATE)
    labels = {r.order_id: round(r.delivery_days, 6) for r in placement.collect()}
    assert labels == {
        "A": round((2 * 24 + 12) / 24, 6),  # 03-17 10:00 -> 03-19 22:00: 2.5 days
        "C": 3.0,  # 12-31 12:00 -> 01-03 12:00
        "G": round((3 * 24 + 12) / 24, 6),  # 03-02 06:00 -> 03-05 18:00 (the late, earlier scan): 3.5
    }
    remaining = {r.scan_id: round(r.remaining_days, 6) for r in scan_rows.collect()}
    assert remaining == {"a1": round(38 / 24, 6)}  # 03-18 08:00 -> 03-19 22:00


def test_earlier_nights_see_only_what_had_arrived_by_then(spark) -> None:
    order_eta, scans, events = _frames(spark)
    # 03-07: matured up to 02-21, window from 2025-12-07: C and D only (every other order is younger;
    # D: 12-30 23:00 -> 01-02 11:00, 2.5 days).
    placement, _ = eta_job.training_rows(order_eta, scans, events, "2026-03-07")
    assert sorted(r.order_id for r in placement.collect()) == ["C", "D"]
    # 03-17: G has matured (placed 03-02 <= 03-03); its late scan of 03-05 is not in the lake until
    # 03-20, so the delivery is the one known then, 03-06 18:00: 4.5 days.
    placement, _ = eta_job.training_rows(order_eta, scans, events, "2026-03-17")
    assert {r.order_id: round(r.delivery_days, 6) for r in placement.collect()} == {"C": 3.0, "D": 2.5, "G": 4.5}
    # 03-21: the late scan has arrived: G's delivery took 3.5 days. D (12-30) is still inside the
    # window from 2025-12-21; E's delivery arrives only on 04-01.
    placement, _ = eta_job.training_rows(order_eta, scans, events, "2026-03-21")
    assert {r.order_id: round(r.delivery_days, 6) for r in placement.collect()} == {"C": 3.0, "D": 2.5, "G": 3.5}
