"""Simulation time: integer UTC epoch seconds, day indices and their text formats.

Every instant in the simulator is an ``int`` number of seconds since 1970-01-01T00:00:00Z.
Integers (not floats, not ``datetime``) keep arithmetic exact and formatting byte-stable, and
formatting through a per-day cache and a time-of-day table is much cheaper than
``datetime.strftime`` per event.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

DAY = 86_400
HOUR = 3_600
MINUTE = 60

_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
_DAY_TEXT: dict[int, str] = {}
_TIME_TEXT: list[str] = []


def day_of(date: dt.date) -> int:
    """Epoch day index of a calendar date."""
    return date.toordinal() - _EPOCH_ORDINAL


def date_of(day: int) -> dt.date:
    """Calendar date of an epoch day index."""
    return dt.date.fromordinal(day + _EPOCH_ORDINAL)


def weekday(day: int) -> int:
    """Weekday of an epoch day index, Monday = 0 (1970-01-01 was a Thursday)."""
    return (day + 3) % 7


def day_text(day: int) -> str:
    """``YYYY-MM-DD`` of an epoch day index (cached: a run touches only a few hundred days)."""
    text = _DAY_TEXT.get(day)
    if text is None:
        text = date_of(day).isoformat()
        _DAY_TEXT[day] = text
    return text


def _time_texts() -> list[str]:
    """``THH:MM:SSZ`` for every second of a day, built on first use (86,400 short strings)."""
    if not _TIME_TEXT:
        two = [f"{i:02d}" for i in range(60)]
        _TIME_TEXT.extend(f"T{h}:{m}:{s}Z" for h in two[:24] for m in two for s in two)
    return _TIME_TEXT


def ts_text(t: int) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` of an epoch second."""
    day, sod = divmod(int(t), DAY)
    return day_text(day) + _time_texts()[sod]


def ts_texts(ts: Iterable[int]) -> list[str]:
    """``ts_text`` of many epoch seconds, without a function call per element."""
    days, times = _DAY_TEXT, _time_texts()
    out = []
    for t in ts:
        day, sod = divmod(t, DAY)
        d = days.get(day)
        out.append((d if d is not None else day_text(day)) + times[sod])
    return out
