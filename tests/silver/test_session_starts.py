"""silver.session_starts: which identified app/web visits open a session, and from which day they stop."""

from __future__ import annotations

import datetime as dt
import hashlib

from frames import contract_frame

from jobs.silver.session_starts import build_session_starts


def t(day: int, hour: int, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime(2026, 3, day, hour, minute, second)


def d(day: int) -> dt.date:
    return dt.date(2026, 3, day)


def key(customer_id: str) -> str:
    return hashlib.sha256(f"cxlake-customer:{customer_id}".encode()).hexdigest()[:20]


def _visit(event_id: str, customer_id: str | None, at: dt.datetime, ingest: int, channel: str = "app") -> dict:
    return {
        "event_id": event_id,
        "customer_id": customer_id,
        "event_at": at,
        "event_date": at.date(),
        "first_ingest_date": d(ingest),
        "channel": channel,
        "event": "product_view",
    }


def test_a_visit_opens_a_session_until_an_earlier_visit_within_the_gap_arrives(spark) -> None:
    interactions = contract_frame(
        spark,
        "silver.interactions",
        [
            _visit("E1", "C1", t(10, 9), ingest=10),  # C1's first visit: a start from the 10th on
            _visit("E2", "C1", t(10, 9, 20), ingest=10),  # 20 min after E1, same arrival: never a start
            _visit("E3", "C1", t(10, 11), ingest=10),  # 100 min after E2: a start
            # Timed 10 min before E3 but arrived on the 12th: a start itself (E2 is 90 min
            # before it), and from the 12th on E3 continues its session.
            _visit("E4", "C1", t(10, 10, 50), ingest=12),
            # Exactly 30 min after E4 (gap in whole seconds): within it, so blocked by E4's
            # arrival; it arrived on the 13th, after E4: never a start, no row.
            _visit("E5", "C1", t(10, 11, 20), ingest=13),
            # The same second as E6 with a smaller id: E6 is after it within the gap.
            _visit("E6b", "C2", t(11, 8), ingest=11),
            _visit("E6a", "C2", t(11, 8), ingest=12),  # a smaller id, arrived later: E6b stops on the 12th
            _visit("E7", "C2", t(11, 20), ingest=11, channel="chat"),  # not an app/web visit
            _visit("E8", None, t(11, 21), ingest=11),  # anonymous: not counted (would leak via links)
            _visit("E9", "C2", t(11, 8, 10), ingest=11, channel="web"),  # web counts; 10 s after E6b
        ],
    )
    got = sorted(build_session_starts(interactions).collect(), key=lambda r: r.event_id)
    assert [r.asDict() for r in got] == [
        {
            "event_id": "E1",
            "customer_key": key("C1"),
            "event_at": t(10, 9),
            "event_date": d(10),
            "first_ingest_date": d(10),
            "blocked_from": None,
        },
        {
            "event_id": "E3",
            "customer_key": key("C1"),
            "event_at": t(10, 11),
            "event_date": d(10),
            "first_ingest_date": d(10),
            "blocked_from": d(12),  # E4's arrival
        },
        {
            "event_id": "E4",
            "customer_key": key("C1"),
            "event_at": t(10, 10, 50),
            "event_date": d(10),
            "first_ingest_date": d(12),
            "blocked_from": None,
        },
        {
            "event_id": "E6a",
            "customer_key": key("C2"),
            "event_at": t(11, 8),
            "event_date": d(11),
            "first_ingest_date": d(12),
            "blocked_from": None,
        },
        {
            "event_id": "E6b",
            "customer_key": key("C2"),
            "event_at": t(11, 8),
            "event_date": d(11),
            "first_ingest_date": d(11),
            "blocked_from": d(12),  # E6a: same second, smaller id, arrived on the 12th
        },
    ]
