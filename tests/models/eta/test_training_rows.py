"""Which orders and scans the nightly ETA job learns from: :func:`jobs.models.eta.job.training_rows`.

The rules under test, for a run date D (here 2026-04-30, UTC dates of ``placed_at``):

* matured: placed on or before D - ``MATURITY_DAYS`` (04-16), by calendar date;
* in the window: placed on or after D - ``TRAINING_WINDOW_DAYS`` (01-30);
* known: the feature row's ``as_of_date`` (the night the lake first knew the order or scan) <= D;
* labelled by the first ``delivered`` scan *arrived* by the end of D (``first_ingest_date`` <= D),
  whatever its event time: a scan that arrives on D + 1 is not known to D's run;
* a scan row is kept only if it was timed before that delivery (``remaining_days`` > 0).

Each test builds only the columns the function reads and compares the whole result.
``test_eta_training_rows.py`` follows one small world over several run dates; this file takes each
rule on its own at its boundaries (both sides), and the scan rows' own rules.
"""

from __future__ import annotations

import datetime as dt

import pytest
from chispa import assert_df_equality
from frames import contract_frame

from jobs.models.eta import job as eta

RUN_DATE = "2026-04-30"
RUN = dt.date.fromisoformat(RUN_DATE)
NEXT_DAY = RUN + dt.timedelta(days=1)  # a row or scan that reached the lake after the run


def _at(text: str) -> dt.datetime:
    """A UTC instant (aware, so that the test does not depend on the machine's zone)."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def _orders(spark, rows: list[tuple[str, str, dt.date | None]]):
    """features.order_eta rows: (order_id, placed_at, as_of_date)."""
    return contract_frame(
        spark, "features.order_eta", [{"order_id": o, "placed_at": _at(p), "as_of_date": a} for o, p, a in rows]
    )


def _events(spark, rows: list[tuple[str, str, str, dt.date | None]]):
    """silver.tracking_events rows: (order_id, scan_at, event, first_ingest_date)."""
    return contract_frame(
        spark,
        "silver.tracking_events",
        [
            {"order_id": o, "scan_id": f"{o}-{i}", "scan_at": _at(s), "event": e, "first_ingest_date": d}
            for i, (o, s, e, d) in enumerate(rows)
        ],
    )


def _scans(spark, rows: list[tuple[str, str, str, str, str, dt.date]]):
    """features.shipment_scan rows: (scan_id, order_id, placed_at, scan_at, event, as_of_date)."""
    return contract_frame(
        spark,
        "features.shipment_scan",
        [
            {"scan_id": i, "order_id": o, "placed_at": _at(p), "scan_at": _at(s), "event": e, "as_of_date": a}
            for i, o, p, s, e, a in rows
        ],
    )


def _placement(spark, orders, events):
    placement, _ = eta.training_rows(orders, _scans(spark, []), events, RUN_DATE)
    return placement.select("order_id", "delivered_at", "delivery_days")


def _expected(spark, rows: list[tuple[str, str, float]]):
    return spark.createDataFrame(
        [(o, _at(d), days) for o, d, days in rows], "order_id string, delivered_at timestamp, delivery_days double"
    )


def test_the_rules_constants_are_the_ones_these_dates_were_chosen_for() -> None:
    # The boundary dates below (04-16/04-17, 01-30/01-29) are D - 14 and D - 90 (and one day more).
    assert (eta.MATURITY_DAYS, eta.TRAINING_WINDOW_DAYS) == (14, 90)


def test_maturity_keeps_an_order_placed_14_days_before_the_run_date_and_drops_one_placed_13(spark) -> None:
    orders = _orders(
        spark,
        [
            # Placed on 04-16 at 23:00, D - 14 by date (though only 13 days 1 hour before D starts):
            # matured, the rule counts calendar days. Delivered 04-18 11:00, known since 04-18: 1.5 days.
            ("O_D14", "2026-04-16 23:00", dt.date(2026, 4, 16)),
            # Placed at the first instant of 04-17 (D - 13): not matured, although its delivery is
            # known and in fact 4 hours earlier than O_D14's.
            ("O_D13", "2026-04-17 00:00", dt.date(2026, 4, 17)),
        ],
    )
    events = _events(
        spark,
        [
            ("O_D14", "2026-04-18 11:00", "delivered", dt.date(2026, 4, 18)),
            ("O_D13", "2026-04-18 07:00", "delivered", dt.date(2026, 4, 18)),
        ],
    )
    expected = _expected(spark, [("O_D14", "2026-04-18 11:00", 1.5)])
    assert_df_equality(_placement(spark, orders, events), expected, ignore_row_order=True, ignore_nullable=True)


def test_the_window_keeps_an_order_placed_90_days_before_the_run_date_and_drops_one_placed_91(spark) -> None:
    orders = _orders(
        spark,
        [
            # Placed at the first instant of 01-30 (D - 90): in; delivered 02-02 00:00: 3.0 days.
            ("O_D90", "2026-01-30 00:00", dt.date(2026, 1, 30)),
            # Placed at 23:00 on 01-29 (D - 91), one hour before O_D90: out of the window.
            ("O_D91", "2026-01-29 23:00", dt.date(2026, 1, 29)),
        ],
    )
    events = _events(
        spark,
        [
            ("O_D90", "2026-02-02 00:00", "delivered", dt.date(2026, 2, 2)),
            ("O_D91", "2026-02-01 23:00", "delivered", dt.date(2026, 2, 1)),
        ],
    )
    expected = _expected(spark, [("O_D90", "2026-02-02 00:00", 3.0)])
    assert_df_equality(_placement(spark, orders, events), expected, ignore_row_order=True, ignore_nullable=True)


def test_only_delivered_scans_arrived_by_the_run_date_label_an_order(spark) -> None:
    # Five matured orders in the window, all placed 03-10 06:00; they differ by their scans only.
    placed = "2026-03-10 06:00"
    orders = _orders(
        spark, [(o, placed, dt.date(2026, 3, 10)) for o in ("K_ON_D", "K_AFTER_D", "K_TWO", "K_NONE", "K_NULL")]
    )
    events = _events(
        spark,
        [
            # Delivered 03-12 18:00, the scan arrived on D itself ("known at the end of D"): 2.5 days.
            ("K_ON_D", "2026-03-12 18:00", "delivered", RUN),
            # Delivered 03-11 06:00, seven weeks before D, but the scan arrived on D + 1: unknown to
            # D's run, so the order has no label and is left out.
            ("K_AFTER_D", "2026-03-11 06:00", "delivered", NEXT_DAY),
            # Two delivered scans: the earlier one (03-12 06:00) arrived on D + 1, the later one
            # (03-13 06:00) on 03-13. The label is the known one's, 3.0 days, not 2.0.
            ("K_TWO", "2026-03-12 06:00", "delivered", NEXT_DAY),
            ("K_TWO", "2026-03-13 06:00", "delivered", dt.date(2026, 3, 13)),
            # Out for delivery but no delivered scan at all: no label, out.
            ("K_NONE", "2026-03-12 08:00", "out_for_delivery", dt.date(2026, 3, 12)),
            # A delivered scan without an arrival date (null): not known, out.
            ("K_NULL", "2026-03-12 09:00", "delivered", None),
        ],
    )
    expected = _expected(spark, [("K_ON_D", "2026-03-12 18:00", 2.5), ("K_TWO", "2026-03-13 06:00", 3.0)])
    assert_df_equality(_placement(spark, orders, events), expected, ignore_row_order=True, ignore_nullable=True)


def test_late_arrivals_count_once_they_have_arrived_by_the_run_date(spark) -> None:
    orders = _orders(
        spark,
        [
            # An old order whose delivered scan (02-05 20:00) arrived 10 weeks late, on 04-20, before
            # D: labelled by the scan's event time, 4.5 days (not by its arrival).
            ("L_SCAN_LATE", "2026-02-01 08:00", dt.date(2026, 2, 1)),
            # The order itself reached the lake late, on D (as_of_date = D): known, in, 3.5 days.
            ("L_ORDER_ON_D", "2026-03-01 00:00", RUN),
            # The order reached the lake on D + 1: its feature row was written after D's run, out,
            # although its delivery scan was known since 03-04.
            ("L_ORDER_AFTER_D", "2026-03-01 00:00", NEXT_DAY),
        ],
    )
    events = _events(
        spark,
        [
            ("L_SCAN_LATE", "2026-02-05 20:00", "delivered", dt.date(2026, 4, 20)),
            ("L_ORDER_ON_D", "2026-03-04 12:00", "delivered", dt.date(2026, 3, 4)),
            ("L_ORDER_AFTER_D", "2026-03-04 12:00", "delivered", dt.date(2026, 3, 4)),
        ],
    )
    expected = _expected(spark, [("L_SCAN_LATE", "2026-02-05 20:00", 4.5), ("L_ORDER_ON_D", "2026-03-04 12:00", 3.5)])
    assert_df_equality(_placement(spark, orders, events), expected, ignore_row_order=True, ignore_nullable=True)


@pytest.fixture()
def scan_rows(spark):
    events = _events(
        spark,
        [
            ("S_MATURE", "2026-04-18 11:00", "delivered", dt.date(2026, 4, 18)),
            ("S_YOUNG", "2026-04-18 12:00", "delivered", dt.date(2026, 4, 18)),
            ("S_OLD", "2026-02-01 23:00", "delivered", dt.date(2026, 2, 1)),
            ("S_UNKNOWN", "2026-03-11 06:00", "delivered", NEXT_DAY),
            ("S_LATE", "2026-02-05 20:00", "delivered", dt.date(2026, 4, 20)),
            ("S_TWO", "2026-03-12 06:00", "delivered", NEXT_DAY),
            ("S_TWO", "2026-03-13 06:00", "delivered", dt.date(2026, 3, 13)),
        ],
    )
    mature, young, old = "2026-04-16 23:00", "2026-04-17 00:00", "2026-01-29 23:00"
    scans = _scans(
        spark,
        [
            # S_MATURE (placed D - 14, delivered 04-18 11:00): scans before the delivery are in,
            # labelled with the days left: 1.0 and 0.25.
            ("s1", "S_MATURE", mature, "2026-04-17 11:00", "picked", dt.date(2026, 4, 17)),
            ("s2", "S_MATURE", mature, "2026-04-18 05:00", "out_for_delivery", dt.date(2026, 4, 18)),
            # The delivered scan itself is not a scan *before* delivery (0 days left): out.
            ("s3", "S_MATURE", mature, "2026-04-18 11:00", "delivered", dt.date(2026, 4, 18)),
            # A hub scan of the same order that reached the lake on D + 1 (its row's as_of_date):
            # out, although timed before the delivery.
            ("s4", "S_MATURE", mature, "2026-04-17 20:00", "arrived_hub", NEXT_DAY),
            # An order placed on D - 13: not matured, its scans out.
            ("s5", "S_YOUNG", young, "2026-04-17 06:00", "picked", dt.date(2026, 4, 17)),
            # An order placed on D - 91: out of the window, although this scan's own date (01-30)
            # is inside it (the window is on placement).
            ("s6", "S_OLD", old, "2026-01-30 10:00", "picked", dt.date(2026, 1, 30)),
            # An order whose delivered scan arrived after D: no label, out.
            ("s7", "S_UNKNOWN", "2026-03-10 06:00", "2026-03-10 12:00", "picked", dt.date(2026, 3, 10)),
            # A scan that arrived late (04-20, before D) of an order whose delivery also arrived late:
            # in, 02-02 08:00 -> 02-05 20:00 = 3.5 days.
            ("s8", "S_LATE", "2026-02-01 08:00", "2026-02-02 08:00", "picked", dt.date(2026, 4, 20)),
            # Timed after the unknown delivered scan (03-12 06:00) but before the known one
            # (03-13 06:00): in, 0.75 days left to the known delivery.
            ("s9", "S_TWO", "2026-03-10 06:00", "2026-03-12 12:00", "out_for_delivery", dt.date(2026, 3, 12)),
        ],
    )
    _, got = eta.training_rows(_orders(spark, []), scans, events, RUN_DATE)
    return got


def test_scan_rows_are_the_known_scans_of_matured_delivered_orders_before_their_delivery(spark, scan_rows) -> None:
    expected = spark.createDataFrame(
        [
            ("s1", "S_MATURE", _at("2026-04-18 11:00"), 1.0),
            ("s2", "S_MATURE", _at("2026-04-18 11:00"), 0.25),
            ("s8", "S_LATE", _at("2026-02-05 20:00"), 3.5),
            ("s9", "S_TWO", _at("2026-03-13 06:00"), 0.75),
        ],
        "scan_id string, order_id string, delivered_at timestamp, remaining_days double",
    )
    got = scan_rows.select("scan_id", "order_id", "delivered_at", "remaining_days")
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)
