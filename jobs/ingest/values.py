"""Spark's reading of text values, in plain Python: typed casts and JSON scalars as text.

Bronze types every raw value exactly as Spark did when the job ran in Catalyst (``try_cast`` of
the trimmed text, the text of ``parse_json`` scalars); doing it here, inside the Arrow tasks,
keeps the Spark plan a few nodes long. Each function mirrors one Spark rule (noted in its
docstring) and ``jobs/devtools/ingest_equivalence.py`` compares them with Spark on many inputs.

Dates are days and timestamps microseconds since 1970-01-01 (UTC), as Arrow and Spark hold them:
Spark accepts years Python's ``datetime`` cannot hold (0, negative, above 9999).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

# Spark trims bytes that are whitespace or ISO control characters before a cast (``0x00``-``0x20``
# and ``0x7f``); a multi-byte character is never trimmed.
_CAST_TRIM = "".join(chr(c) for c in range(0x21)) + "\x7f"
_INT_TEXT = re.compile(r"[+-]?[0-9]+", re.ASCII)
# java.math.BigDecimal's grammar; its digits are any Unicode decimal digit, as Python's \d.
_DECIMAL_TEXT = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_MICROS_PER_DAY = 86_400_000_000
_INT64 = (-(2**63), 2**63 - 1)
_DECIMAL_CONTEXT = Context(prec=120, Emax=999_999_999, Emin=-999_999_999)
_MAX_PRECISION = 38


def days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (any year), as ``LocalDate.toEpochDay``."""
    year -= month <= 2
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468


def _days_in_month(year: int, month: int) -> int:
    if month == 2:
        return 29 if (year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _local_date_days(year: int, month: int, day: int) -> int | None:
    """``LocalDate.of`` (null where it throws) as epoch days."""
    if not (-999_999_999 <= year <= 999_999_999 and 1 <= month <= 12 and 1 <= day <= _days_in_month(year, month)):
        return None
    return days_from_civil(year, month, day)


# ---- integers and decimals -------------------------------------------------------------------


def cast_integer(text: str, bits: int) -> int | None:
    """``try_cast(text AS INT|BIGINT)``: trimmed ASCII digits with an optional sign, in range."""
    trimmed = text.strip(_CAST_TRIM)
    if not _INT_TEXT.fullmatch(trimmed):
        return None
    value = int(trimmed)
    limit = 1 << (bits - 1)
    return value if -limit <= value < limit else None


def _round_decimal(value: Decimal, precision: int, scale: int) -> Decimal | None:
    """``Decimal.changePrecision(precision, scale, HALF_UP)``: null when the integral part overflows."""
    if value.is_zero():
        return Decimal(0).scaleb(-scale)
    if value.adjusted() >= precision - scale + 1:  # too many integral digits, even before rounding
        return None
    try:
        rounded = value.quantize(Decimal(1).scaleb(-scale), rounding=ROUND_HALF_UP, context=_DECIMAL_CONTEXT)
    except InvalidOperation:
        return None
    if not rounded.is_zero() and rounded.adjusted() >= precision - scale:
        return None
    return rounded + Decimal(0).scaleb(-scale)  # -0.00 is 0.00


def _parse_decimal(text: str) -> Decimal | None:
    # A decimal cast trims as Java's String.trim: U+0000-U+0020 but not U+007F.
    trimmed = text.strip(_CAST_TRIM[:-1])
    if not _DECIMAL_TEXT.fullmatch(trimmed):
        return None
    return Decimal(trimmed)


def cast_decimal(text: str, precision: int, scale: int) -> Decimal | None:
    """``try_cast(text AS DECIMAL(p,s))``, rounded half up; null when the value does not fit."""
    value = _parse_decimal(text)
    return None if value is None else _round_decimal(value, precision, scale)


def cast_exact_decimal(text: str, precision: int, scale: int) -> Decimal | None:
    """The decimal only when the type holds it exactly (``10.505`` is no ``decimal(12,2)``).

    The rule bronze has always applied: the value cast to the column type must equal the value
    cast to ``decimal(38, max(scale, 18))``. When no decimal type holds both (more than 20
    integral digits in the column type), Spark compares them at the column's scale, where they
    are always equal: such a type only refuses what the wide cast cannot hold.
    """
    value = _parse_decimal(text)
    if value is None:
        return None
    typed = _round_decimal(value, precision, scale)
    wide_scale = max(scale, 18)
    exact = _round_decimal(value, _MAX_PRECISION, wide_scale)
    if typed is None or exact is None:
        return None
    if precision - scale + wide_scale <= _MAX_PRECISION and typed != exact:
        return None
    return typed


# ---- dates and timestamps --------------------------------------------------------------------


def cast_date(text: str) -> int | None:
    """``try_cast(text AS DATE)`` as epoch days (Spark's ``stringToDate``).

    Accepts ``[+-]yyyy[y..]``, ``-[m]m``, ``-[d]d`` and anything after a space or ``T`` that
    follows the day.
    """
    end = len(text.rstrip(_CAST_TRIM))
    pos = len(text) - len(text.lstrip(_CAST_TRIM))
    if pos >= end:
        return None
    sign = 1
    if text[pos] in "+-":
        sign = -1 if text[pos] == "-" else 1
        pos += 1
    segments = [1, 1, 1]
    segment = value = digits = 0

    def valid(index: int, count: int) -> bool:
        return 4 <= count <= 7 if index == 0 else 0 < count <= 2

    while pos < end and text[pos] not in " T":
        char = text[pos]
        if segment < 2 and char == "-":
            if not valid(segment, digits):
                return None
            segments[segment] = value
            value = digits = 0
            segment += 1
        elif "0" <= char <= "9":
            value = value * 10 + ord(char) - 48
            digits += 1
        else:
            return None
        pos += 1
    if not valid(segment, digits) or (segment < 2 and pos < end):
        return None
    segments[segment] = value
    return _local_date_days(sign * segments[0], segments[1], segments[2])


# java.time.ZoneId.SHORT_IDS: the short names Spark resolves with it.
_SHORT_ZONE_IDS = {
    "ACT": "Australia/Darwin", "AET": "Australia/Sydney", "AGT": "America/Argentina/Buenos_Aires",
    "ART": "Africa/Cairo", "AST": "America/Anchorage", "BET": "America/Sao_Paulo", "BST": "Asia/Dhaka",
    "CAT": "Africa/Harare", "CNT": "America/St_Johns", "CST": "America/Chicago", "CTT": "Asia/Shanghai",
    "EAT": "Africa/Addis_Ababa", "ECT": "Europe/Paris", "IET": "America/Indiana/Indianapolis",
    "IST": "Asia/Kolkata", "JST": "Asia/Tokyo", "MIT": "Pacific/Apia", "NET": "Asia/Yerevan",
    "NST": "Pacific/Auckland", "PLT": "Asia/Karachi", "PNT": "America/Phoenix", "PRT": "America/Puerto_Rico",
    "PST": "America/Los_Angeles", "SST": "Pacific/Guadalcanal", "VST": "Asia/Ho_Chi_Minh",
    "EST": "-05:00", "MST": "-07:00", "HST": "-10:00",
}  # fmt: skip
_REGION_ID = re.compile(r"[A-Za-z][A-Za-z0-9~/._+-]+")
_SINGLE_HOUR_OFFSET = re.compile(r"([+-])(\d):", re.ASCII)
_SINGLE_MINUTE_OFFSET = re.compile(r"([+-])(\d\d):(\d)$", re.ASCII)


def _offset_seconds(offset: str) -> int | None:
    """``ZoneOffset.of``: ``Z``, ``+h``, ``+hh``, ``+hhmm``, ``+hh:mm``, ``+hhmmss``, ``+hh:mm:ss``."""
    if offset == "Z":
        return 0
    if len(offset) < 2 or offset[0] not in "+-":
        return None
    body = offset[1:]
    layouts = {1: (1, None, None), 2: (2, None, None), 4: (2, 2, None), 5: (2, 3, None), 6: (2, 2, 4), 8: (2, 3, 6)}
    layout = layouts.get(len(body))
    if layout is None or (len(body) in (5, 8) and (body[2] != ":" or (len(body) == 8 and body[5] != ":"))):
        return None
    hour_len, minute_at, second_at = layout
    parts = [body[:hour_len]]
    if minute_at is not None:
        parts.append(body[minute_at : minute_at + 2])
    if second_at is not None:
        parts.append(body[second_at : second_at + 2])
    if not all(p.isascii() and p.isdigit() for p in parts):
        return None
    hours, minutes, seconds = (int(p) for p in parts + ["0"] * (3 - len(parts)))
    if hours > 18 or minutes > 59 or seconds > 59:
        return None
    total = hours * 3600 + minutes * 60 + seconds
    if total > 18 * 3600:
        return None
    return -total if offset[0] == "-" else total


@lru_cache(maxsize=256)
def _known_regions() -> frozenset[str]:
    return frozenset(available_timezones())


@lru_cache(maxsize=1024)
def zone_of(zone_id: str) -> int | ZoneInfo | None:
    """Spark's ``getZoneId``: a fixed offset in seconds, a region, or None when Java refuses it."""
    zone_id = _SINGLE_HOUR_OFFSET.sub(r"\g<1>0\2:", zone_id, count=1)
    zone_id = _SINGLE_MINUTE_OFFSET.sub(r"\1\2:0\3", zone_id, count=1)
    zone_id = _SHORT_ZONE_IDS.get(zone_id, zone_id)
    if len(zone_id) <= 1 or zone_id[0] in "+-":
        return _offset_seconds(zone_id)
    for prefix in ("UTC", "GMT", "UT"):
        if zone_id.startswith(prefix):
            rest = zone_id[len(prefix) :]
            if rest == "":
                return 0
            if rest[0] in "+-":
                return _offset_seconds(rest)
            break
    if not _REGION_ID.fullmatch(zone_id) or zone_id not in _known_regions():
        return None
    return ZoneInfo(zone_id)


def _instant_micros(days: int, second_of_day: int, micros: int, zone: int | ZoneInfo) -> int | None:
    if isinstance(zone, int):
        offset = zone
    else:
        # java.time picks the earlier offset in an overlap and moves a time in a gap forward by
        # the gap, i.e. applies the offset before the transition: Python's fold=0 does both.
        # Outside Python's years 1..9999 the same day of a 400-year cycle (same weekday, same
        # calendar) has the same offset in java.time: the first offset before any transition,
        # the last rules after them.
        ordinal = days + 719163
        cycles = 0
        if ordinal > 3652059:
            cycles = -((ordinal - 3652059) // -146097)  # the fewest cycles back into year 9999
        elif ordinal < 1:
            cycles = (ordinal - 1) // 146097  # negative: the fewest cycles forward into year 1
        local = dt.datetime.fromordinal(ordinal - cycles * 146097) + dt.timedelta(seconds=second_of_day)
        delta = local.replace(tzinfo=zone).utcoffset()
        offset = int(delta.total_seconds()) if delta is not None else 0
    result = (days * 86400 + second_of_day - offset) * 1_000_000 + micros
    return result if _INT64[0] <= result <= _INT64[1] else None


def _parse_timestamp(text: str) -> tuple[list[int], str | None, bool] | None:
    """Spark's ``parseTimestampString``: segments (y, m, d, h, mi, s, us), zone text, time only."""
    end = len(text.rstrip(_CAST_TRIM))
    pos = len(text) - len(text.lstrip(_CAST_TRIM))
    if pos >= end:
        return None
    segments = [1, 1, 1, 0, 0, 0, 0, 0, 0]
    segment = value = digits = fraction_digits = 0
    zone: str | None = None
    just_time = False
    year_sign: int | None = None

    def valid(index: int, count: int) -> bool:
        if index == 6:
            return True
        if index == 0:
            return 4 <= count <= 6
        if index == 7:
            return count <= 2
        return 0 < count <= 2

    if text[pos] in "+-":
        year_sign = -1 if text[pos] == "-" else 1
        pos += 1
    while pos < end:
        char = text[pos]
        if "0" <= char <= "9":
            if segment == 6:
                fraction_digits += 1
            if segment != 6 or digits < 6:  # digits past microseconds are dropped
                value = value * 10 + ord(char) - 48
            digits += 1
            pos += 1
            continue
        if pos == 0 and char == "T":
            just_time = True
            segment += 3
        elif segment < 2:
            if char == "-":
                if not valid(segment, digits):
                    return None
                segments[segment] = value
                value = digits = 0
                segment += 1
            elif segment == 0 and char == ":" and year_sign is None:
                just_time = True
                if not valid(3, digits):
                    return None
                segments[3] = value
                value = digits = 0
                segment = 4
            else:
                return None
        elif segment == 2:
            if char not in " T" or not valid(segment, digits):
                return None
            segments[segment] = value
            value = digits = 0
            segment += 1
        elif segment in (3, 4):
            if char != ":" or not valid(segment, digits):
                return None
            segments[segment] = value
            value = digits = 0
            segment += 1
        elif segment in (5, 6):
            if not valid(segment, digits):
                return None
            segments[segment] = value
            value = digits = 0
            segment += 1
            if not (char == "." and segment == 6):
                zone = text[pos:end]
                pos = end - 1
            if segment == 6 and char != ".":
                segment += 1
        else:
            if not (segment < len(segments) and char in ": ") or not valid(segment, digits):
                return None
            segments[segment] = value
            value = digits = 0
            segment += 1
        pos += 1
    if not valid(segment, digits):
        return None
    segments[segment] = value
    while fraction_digits < 6:
        segments[6] *= 10
        fraction_digits += 1
    segments[0] *= year_sign or 1
    return segments, zone, just_time


def cast_timestamp(text: str, today: Callable[[int | ZoneInfo], int] | None = None) -> int | None:
    """``try_cast(text AS TIMESTAMP)`` in a UTC session, as epoch microseconds.

    Args:
        today: epoch day of the current date in a zone, for a time without a date (Spark reads
            ``T10:00`` as today); defaults to the wall clock, as Spark.
    """
    parsed = _parse_timestamp(text)
    if parsed is None:
        return None
    segments, zone_text, just_time = parsed
    zone: int | ZoneInfo | None = 0
    if zone_text is not None:
        # String.trim: every char up to U+0020.
        zone = zone_of(zone_text.strip("".join(chr(c) for c in range(0x21))))
        if zone is None:
            return None
    year, month, day, hour, minute, second, micros = segments[:7]
    if hour > 23 or minute > 59 or second > 59:
        return None
    if just_time:
        days: int | None = (today or _today)(zone)
    else:
        days = _local_date_days(year, month, day)
    if days is None:
        return None
    return _instant_micros(days, hour * 3600 + minute * 60 + second, micros, zone)


def _today(zone: int | ZoneInfo) -> int:
    tz = dt.timezone(dt.timedelta(seconds=zone)) if isinstance(zone, int) else zone
    return (dt.datetime.now(tz).date() - dt.date(1970, 1, 1)).days


_CANONICAL_TIMESTAMP = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?(Z|[+-]\d\d:\d\d)?", re.ASCII
)


@lru_cache(maxsize=4096)
def _canonical_days(year: int, month: int, day: int) -> int | None:
    return _local_date_days(year, month, day)


def cast_timestamp_fast(text: str) -> int | None:
    """:func:`cast_timestamp`, with the ISO 8601 shape nearly every feed writes parsed directly."""
    match = _CANONICAL_TIMESTAMP.fullmatch(text)
    if match is None:
        return cast_timestamp(text)
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    days = _canonical_days(int(year), int(month), int(day))
    hour_, minute_, second_ = int(hour), int(minute), int(second)
    if days is None or hour_ > 23 or minute_ > 59 or second_ > 59:
        return None
    offset = 0
    if zone and zone != "Z":
        offset = _offset_seconds(zone)
        if offset is None:
            return None
    micros = int(fraction.ljust(6, "0")) if fraction else 0
    return ((days * 86400 + hour_ * 3600 + minute_ * 60 + second_ - offset) * 1_000_000) + micros


# ---- booleans and doubles --------------------------------------------------------------------

_TRUE = frozenset({"t", "true", "y", "yes", "1"})
_FALSE = frozenset({"f", "false", "n", "no", "0"})


def cast_boolean(text: str) -> bool | None:
    """``try_cast(text AS BOOLEAN)``: t/true/y/yes/1 and f/false/n/no/0, any case."""
    lowered = text.strip(_CAST_TRIM).lower()
    return True if lowered in _TRUE else False if lowered in _FALSE else None


_DOUBLE_TEXT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[dDfF]?", re.ASCII)
_DOUBLE_SPECIAL = {"inf": float("inf"), "+inf": float("inf"), "infinity": float("inf"), "+infinity": float("inf"),
                   "-inf": float("-inf"), "-infinity": float("-inf"), "nan": float("nan"), "+nan": float("nan"),
                   "-nan": float("nan")}  # fmt: skip


def cast_double(text: str) -> float | None:
    """``try_cast(text AS DOUBLE)``: Java's decimal grammar (``d``/``f`` suffix) and inf/nan words.

    Java's hexadecimal floats (``0x1p3``) are read too.
    """
    trimmed = text.strip(_CAST_TRIM)
    special = _DOUBLE_SPECIAL.get(trimmed.lower())
    if special is not None:
        return special
    if _DOUBLE_TEXT.fullmatch(trimmed):
        return float(trimmed.rstrip("dDfF"))
    hex_match = re.fullmatch(r"([+-]?)0[xX]([0-9a-fA-F]*\.?[0-9a-fA-F]*)[pP]([+-]?[0-9]+)[dDfF]?", trimmed)
    if hex_match and hex_match[2] not in ("", "."):
        try:
            return float.fromhex(f"{hex_match[1]}0x{hex_match[2]}p{hex_match[3]}")
        except (OverflowError, ValueError):
            return None
    return None


# ---- a contract type as one function ---------------------------------------------------------

_DECIMAL_TYPE = re.compile(r"decimal\((\d+),\s*(\d+)\)")


def caster(type_text: str) -> Callable[[str], Any]:
    """The function typing a trimmed, non-blank text as contract type ``type_text`` (None: no fit)."""
    text = type_text.strip().lower()
    if text == "string":
        return str
    if text == "int":
        return lambda value: cast_integer(value, 32)
    if text == "bigint":
        return lambda value: cast_integer(value, 64)
    if text == "date":
        return cast_date
    if text == "timestamp":
        return cast_timestamp_fast
    if text == "boolean":
        return cast_boolean
    if text == "double":
        return cast_double
    if match := _DECIMAL_TYPE.fullmatch(text):
        precision, scale = int(match[1]), int(match[2])
        return lambda value: cast_exact_decimal(value, precision, scale)
    raise ValueError(f"no cast for contract type {type_text!r} in bronze parsing")


# ---- JSON scalars as text --------------------------------------------------------------------


def java_double_text(value: float) -> str:
    """``Double.toString``: plain between 1e-3 and 1e7, else ``d.dddE[-]n`` (``100.0``, ``1.0E-7``).

    Digits are Python's shortest round trip, which is what Java 19+ prints; Java 17 sometimes
    prints one more digit for the same double.
    """
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "-0.0" if str(value).startswith("-") else "0.0"
    sign, digits, exponent = Decimal(repr(value)).normalize().as_tuple()
    text_digits = "".join(map(str, digits))
    point = len(text_digits) + int(exponent)  # digits before the decimal point
    minus = "-" if sign else ""
    if 1e-3 <= abs(value) < 1e7:
        if point <= 0:
            return f"{minus}0.{'0' * -point}{text_digits}"
        whole, fraction = text_digits[:point].ljust(point, "0"), text_digits[point:]
        return f"{minus}{whole}.{fraction or '0'}"
    return f"{minus}{text_digits[0]}.{text_digits[1:] or '0'}E{point - 1}"


def json_number_text(token: str) -> str:
    """The text Spark gives a JSON number token (``parse_json`` then a cast to string).

    Integers that fit a long print as such, other numbers without an exponent that fit a
    ``decimal(38)`` print as that decimal without trailing zeros (``1.50`` -> ``1.5``), the rest
    are doubles (``1e2`` -> ``100.0``).
    """
    if "e" not in token and "E" not in token:
        number = Decimal(token)
        sign, digits, exponent = number.as_tuple()
        scale = -int(exponent)
        is_integer = scale <= 0
        if is_integer and _INT64[0] <= int(number) <= _INT64[1]:
            return str(int(number))
        if len(digits) <= _MAX_PRECISION and scale <= _MAX_PRECISION:
            if number.is_zero():
                return "0"
            return format(number.normalize(), "f")
    return java_double_text(float(token))
