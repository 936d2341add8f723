"""The ETA backtest's parts: which orders train and which are judged, and the simple rules beside the model."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from frames import contract_frame

from jobs.models.eta import backtest

AS_OF = "2026-03-10"


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def test_backtest_rows_train_on_deliveries_known_before_the_cut_and_judge_orders_after_it(spark) -> None:
    orders = contract_frame(
        spark,
        "features.order_eta",
        [
            {"order_id": "a", "placed_at": at("2026-02-20 12:00")},  # delivered 02-24, known 02-24: trains
            {
                "order_id": "b",
                "placed_at": at("2026-02-21 12:00"),
            },  # delivered 03-09, arrived 03-11: unknown at the cut
            {"order_id": "m", "placed_at": at("2026-02-25 00:00")},  # placed within 14 days of the cut: not matured
            {"order_id": "c", "placed_at": at("2026-03-08 00:00")},  # delivered on the cut day: neither side
            {"order_id": "d", "placed_at": at("2026-03-10 00:00")},  # placed on the cut day: judged
            {"order_id": "e", "placed_at": at("2026-03-11 06:00")},  # never delivered: neither side
        ],
    )

    def scan(order: str, event: str, when: str, known: str) -> dict:
        return {
            "order_id": order,
            "event": event,
            "scan_at": at(when),
            "first_ingest_date": dt.date.fromisoformat(known),
        }

    scans = contract_frame(
        spark,
        "silver.tracking_events",
        [
            scan("a", "left_warehouse", "2026-02-21 00:00", "2026-02-21"),
            scan("a", "delivered", "2026-02-24 00:00", "2026-02-24"),
            scan("m", "delivered", "2026-02-27 00:00", "2026-02-27"),
            scan("b", "delivered", "2026-03-09 12:00", "2026-03-11"),  # a late-arriving scan
            scan("c", "delivered", "2026-03-10 08:00", "2026-03-10"),
            scan("d", "delivered", "2026-03-12 00:00", "2026-03-12"),
            scan("d", "delivered", "2026-03-13 00:00", "2026-03-13"),  # a second delivered scan: the first counts
            scan("e", "out_for_delivery", "2026-03-12 00:00", "2026-03-12"),
        ],
    )
    train, judged = backtest.backtest_rows(orders, scans, AS_OF)
    assert [(r.order_id, r.delivery_days) for r in train.orderBy("order_id").collect()] == [("a", 3.5)]
    assert [(r.order_id, r.delivery_days) for r in judged.orderBy("order_id").collect()] == [("d", 2.0)]


def rows(*orders: tuple[str, str, str, float, str]) -> pd.DataFrame:
    """(lane, destination, placed_at, delivery_days, promised date) per order."""
    return pd.DataFrame(
        {
            "order_id": [f"o{i}" for i in range(len(orders))],
            "lane": [o[0] for o in orders],
            "destination_region": [o[1] for o in orders],
            "placed_at": pd.to_datetime([o[2] for o in orders]),
            "delivery_days": [o[3] for o in orders],
            "promised_delivery_date": [dt.date.fromisoformat(o[4]) for o in orders],
        }
    )


def test_promised_span_counts_the_promised_day_as_midday() -> None:
    # Placed 03-01 at 06:00, promised 03-04: 2.75 days to 03-04 00:00, plus the 12 hours to midday.
    assert backtest.promised_span_days(rows(("A>X", "X", "2026-03-01 06:00", 1.0, "2026-03-04"))).tolist() == [3.25]


def test_lane_median_falls_back_to_the_destination_then_overall(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backtest, "MIN_GROUP_ROWS", 2)
    train = rows(
        ("A>X", "X", "2026-03-01", 1.0, "2026-03-09"),
        ("A>X", "X", "2026-03-01", 3.0, "2026-03-09"),  # lane A>X: median 2
        ("B>X", "X", "2026-03-01", 10.0, "2026-03-09"),  # B>X has one row: too few for its own median
        ("B>Y", "Y", "2026-03-01", 7.0, "2026-03-09"),  # Y has one row too
    )
    predict = backtest.BASELINE_RULES["lane_median"](train)
    judged = rows(
        ("A>X", "X", "2026-03-02", 0.0, "2026-03-09"),  # its lane: 2
        ("B>X", "X", "2026-03-02", 0.0, "2026-03-09"),  # destination X: median of 1, 3, 10 = 3
        ("C>Z", "Z", "2026-03-02", 0.0, "2026-03-09"),  # nothing known: median of all four = 5
    )
    assert predict(judged).tolist() == [2.0, 3.0, 5.0]


def test_promise_shift_moves_the_promise_by_its_typical_slack() -> None:
    # Placed at midnight, promised 10 days later at midday (span 10.5), delivered 4.5 days early
    # (6.0), 5.5 days early (5.0) and 3.5 days early (7.0): the median slack is -4.5 days.
    train = rows(*[("A>X", "X", "2026-03-01 00:00", d, "2026-03-11") for d in (6.0, 5.0, 7.0)])
    predict = backtest.BASELINE_RULES["promise_shift"](train)
    # A new order promised 20.5 days out: 16 days. One promised 2.5 days out: 0 (never negative).
    judged = rows(("A>X", "X", "2026-04-01 00:00", 0, "2026-04-21"), ("A>X", "X", "2026-04-01 00:00", 0, "2026-04-03"))
    assert predict(judged).tolist() == [16.0, 0.0]


def test_the_baseline_is_chosen_on_the_latest_training_orders_not_on_the_judged_ones() -> None:
    # Delivery takes exactly the promise's span minus one day on every order, whatever its lane:
    # the promise shift is exact on the latest fifth, every median is not.
    dates = pd.date_range("2026-01-01", periods=50, freq="D")
    spans = np.arange(50) % 7 + 2
    train = rows(
        *[
            (f"L{i % 3}", "X", str(day), float(span) + 0.5 - 1.0, str((day + pd.Timedelta(days=int(span))).date()))
            for i, (day, span) in enumerate(zip(dates, spans, strict=True))
        ]
    )
    # Both shifts are exact (the slack is -1 on every lane); a tie goes to the first name.
    assert backtest.choose_baseline(train) == "lane_promise_shift"
    # Delivery takes 4 days whatever the promise: the three medians are exact, the shifts are not.
    flat = train.assign(delivery_days=4.0)
    assert backtest.choose_baseline(flat) == "destination_median"
