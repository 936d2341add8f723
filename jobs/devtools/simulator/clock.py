"""Simulation time: integer UTC epoch seconds, day indices and their text formats.

Every instant in the simulator is an ``int`` number of seconds since 1970-01-01T00:00:00Z.
Integers (not floats, not ``datetime``) keep arithmetic exact and formatting byte-stable, and
formatting through a per-day cache is much cheaper than ``datetime.strftime`` per event.
"""

from __future__ import annotations

import datetime as dt

DAY = 86_400
HOUR = 3_600
MINUTE = 60

_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
_DAY_TEXT: dict[int, str] = {}


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


def ts_text(t: int) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` of an epoch second."""
    day, sod = divmod(int(t), DAY)
    h, rem = divmod(sod, HOUR)
    m, s = divmod(rem, MINUTE)
    return f"{day_text(day)}T{h:02d}:{m:02d}:{s:02d}Z"
