"""The domain vocabulary: milestones, delivery time, lateness, customers and sessions, said once.

Silver, gold, features and models all speak of a parcel's milestones, of how long a delivery took,
of whether it kept its promise and of which customer did what. Each of those words is defined
here, once, so that two tables can never disagree about it: a tie on scan time broken in another
order, a delivery counted late in the KPIs but on time in the features, a customer hashed two ways.
Layers import their vocabulary from this module and from :mod:`jobs.lake` only, never from each
other (``tests/test_layering.py``).

Two rules are worth stating up front:

* **Durations** (:func:`days_between`, :func:`hours_between`, :func:`delivery_days`) are the
  difference of the two instants in epoch *microseconds* (``unix_micros``), divided by the unit.
  Not ``unix_timestamp``, which truncates each instant to whole seconds before subtracting: a
  delivery 0.9 s after placement would last 0 s. The raw contracts accept fractional seconds, so
  the exact rule is the only safe one. On whole-second instants (everything the lake holds today:
  the simulator writes whole seconds and the ETA scorer floors its predictions to the second) both
  rules give bit-identical doubles: the numerator and the divisor are exact integers in a double
  and IEEE division rounds the same real quotient the same way.
* **Promises** are whole UTC days (the session time zone is UTC, :mod:`jobs.lake.spark`): an
  instant is late when its UTC date is after the promised date (:func:`days_late`,
  :func:`is_late`), whatever its time of day. Only a point estimate of the promise (the ETA's
  yardstick) needs an hour: :data:`PROMISE_HOUR`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import pyspark.sql.functions as F
from pyspark.sql import Column

from jobs.lake.contracts import load_contract

# ---- milestones ---------------------------------------------------------------------------------

# A parcel's milestones in journey order. Carriers send scans with the same second (a pick and a
# departure booked together), so scan time alone cannot order a journey: on a tie, the earlier
# milestone comes first. The contracts list which events exist (the ``event`` enum of the tracking
# contracts); this tuple says in which order they happen. Both are checked against each other below.
MILESTONES = (
    "created",
    "picked",
    "left_warehouse",
    "arrived_hub",
    "out_for_delivery",
    "delivery_failed",
    "delivered",
    "returned",
)

# Position of each milestone in the journey (0 = created): the tie-breaker on equal scan times and
# the ``milestone_rank`` feature ("how far the parcel has come").
MILESTONE_RANK = {milestone: rank for rank, milestone in enumerate(MILESTONES)}

# The ``silver.shipments`` column holding the first scan of each milestone. ``arrived_hub`` is the
# *first* hub of several (``hubs_passed`` counts them); failed attempts are counted
# (``failed_attempts``), not timed, so ``delivery_failed`` has no column.
MILESTONE_AT = {
    "created": "created_at",
    "picked": "picked_at",
    "left_warehouse": "left_warehouse_at",
    "arrived_hub": "first_hub_at",
    "out_for_delivery": "out_for_delivery_at",
    "delivered": "delivered_at",
    "returned": "returned_at",
}

# The milestones a parcel passes in transit, between placement and the door: each ends one leg of
# the journey (placed -> picked -> left warehouse -> first hub -> out for delivery), which is what
# the leg statistics time and where the ETA is re-estimated and judged.
TRANSIT_MILESTONES = ("picked", "left_warehouse", "arrived_hub", "out_for_delivery")

# The scan that ends a delivery: its first ``delivered`` scan is the delivery time.
DELIVERED = "delivered"
# A courier's attempt at the door that did not deliver (counted: ``failed_attempts``).
DELIVERY_FAILED = "delivery_failed"

# Contracts whose ``event`` column enumerates the milestones (the raw feed and silver).
# The enum value of carrier, payment_method and channel (raw.orders, raw.tracking_scans) for "the
# source does not say": an imported export (Olist names no carrier) lands as it is, not guessed.
UNKNOWN = "unknown"

MILESTONE_CONTRACTS = ("raw.tracking_scans", "silver.tracking_events")
SHIPMENTS_CONTRACT = "silver.shipments"


class VocabularyError(ValueError):
    """Raised when the vocabulary and the contracts in ``schemas/`` disagree."""


def check_milestones(allowed: Iterable[str] | None, contract_name: str) -> None:
    """Check that a contract's ``event`` enum holds exactly :data:`MILESTONES`.

    Args:
        allowed: the enum of the contract's ``event`` column (``None``: the column has no enum).
        contract_name: named in the error.

    Raises:
        VocabularyError: the enum lacks a milestone, has an unknown one, or is missing. A new
            event in a contract needs its place in the journey order here, or silver could not
            rank it (its rank would be null and ``seq`` would depend on the scan id).
    """
    if allowed is None:
        raise VocabularyError(f"{contract_name}: column 'event' has no 'allowed' list; expected {list(MILESTONES)}")
    missing = [m for m in MILESTONES if m not in set(allowed)]
    unknown = [e for e in allowed if e not in MILESTONE_RANK]
    if missing or unknown:
        raise VocabularyError(
            f"{contract_name}: the event enum and jobs.domain.MILESTONES disagree: "
            f"not in the contract {missing}, not in MILESTONES {unknown}"
        )


def check_milestone_columns(columns: Iterable[str], contract_name: str = SHIPMENTS_CONTRACT) -> None:
    """Check that every :data:`MILESTONE_AT` column exists in ``silver.shipments``.

    Raises:
        VocabularyError: naming the columns the contract lacks.
    """
    absent = [c for c in MILESTONE_AT.values() if c not in set(columns)]
    if absent:
        raise VocabularyError(f"{contract_name} lacks the milestone columns {absent} (jobs.domain.MILESTONE_AT)")


def check_against_contracts() -> None:
    """Check the milestone vocabulary against ``schemas/`` (run once at import).

    Raises:
        VocabularyError: see :func:`check_milestones` and :func:`check_milestone_columns`.
    """
    for name in MILESTONE_CONTRACTS:
        check_milestones(load_contract(name).column("event").allowed, name)
    check_milestone_columns(load_contract(SHIPMENTS_CONTRACT).column_names)


def milestone_rank(event: Column) -> Column:
    """The journey rank of a milestone (:data:`MILESTONE_RANK`); null for null or an unknown event.

    Args:
        event: a milestone name (a tracking scan's ``event``).

    Returns:
        An int column, ``created`` = 0 ... ``returned`` = 7.
    """
    ranks = F.create_map(*[x for milestone, rank in MILESTONE_RANK.items() for x in (F.lit(milestone), F.lit(rank))])
    return ranks[event]


def first_scan_at(milestone: str, event: Column, scan_at: Column) -> Column:
    """Aggregate: the time of the first scan of ``milestone`` in the group; null if it has none.

    A milestone is reached once, at its first scan: a carrier resending or repeating it (a second
    hub, a second delivered scan) must not move it.

    Args:
        milestone: one of :data:`MILESTONES`.
        event: the scans' ``event``.
        scan_at: the scans' time.
    """
    return F.min(F.when(event == milestone, scan_at))


# ---- durations ----------------------------------------------------------------------------------

MICROS_PER_HOUR = 3_600_000_000
MICROS_PER_DAY = 24 * MICROS_PER_HOUR


def _micros_between(start: Column, end: Column) -> Column:
    return F.unix_micros(end) - F.unix_micros(start)


def hours_between(start: Column, end: Column) -> Column:
    """Hours from ``start`` to ``end`` as a double (negative if ``end`` is earlier; null if either is).

    Epoch microseconds, not ``unix_timestamp`` (see the module docstring: one timestamp rule).
    """
    return _micros_between(start, end) / F.lit(MICROS_PER_HOUR)


def days_between(start: Column, end: Column) -> Column:
    """Days from ``start`` to ``end`` as a double (negative if ``end`` is earlier; null if either is).

    Epoch microseconds, not ``unix_timestamp`` (see the module docstring: one timestamp rule).
    """
    return _micros_between(start, end) / F.lit(MICROS_PER_DAY)


def delivery_days(placed_at: Column, delivered_at: Column) -> Column:
    """How long a delivery took: days from placement to the first delivered scan (a double).

    The customer's wait, not the carrier's: it starts when the order is placed, so time in the
    warehouse counts. The ETA model's label and the KPIs' average delivery time.
    """
    return days_between(placed_at, delivered_at)


# ---- promises -----------------------------------------------------------------------------------

# The static promise is a date; as a point estimate of the arrival time it stands for midday
# (what the ETA is compared with: the promise's own error in hours needs an instant).
PROMISE_HOUR = 12


def days_late(at: Column, promised_delivery_date: Column) -> Column:
    """Whole days from the promised date to the UTC date of ``at`` (int; 0 = that day, negative = early).

    A promise is a day, not an instant: anything on the promised date, even at 23:59, keeps it.
    """
    return F.datediff(F.to_date(at), promised_delivery_date)


def is_late(at: Column, promised_delivery_date: Column) -> Column:
    """``at`` falls on a (UTC) day after the promised date; null if either is null."""
    return days_late(at, promised_delivery_date) > 0


def is_on_time(delivered_at: Column, promised_delivery_date: Column) -> Column:
    """Delivered on or before the promised (UTC) date; null if either is null (not delivered yet)."""
    return days_late(delivered_at, promised_delivery_date) <= 0


def promised_at(promised_delivery_date: Column) -> Column:
    """The promise as an instant: the promised date at :data:`PROMISE_HOUR`:00 UTC; null stays null."""
    return promised_delivery_date.cast("timestamp") + F.expr(f"INTERVAL {PROMISE_HOUR} HOURS")


# ---- customers and sessions ---------------------------------------------------------------------

# customer_key = the first 20 hex characters of sha2('cxlake-customer:' || customer_id, 256):
# deterministic across runs and machines, no secret (customer_id is an internal id, not PII), and
# the prefix keeps it from matching any other hash of the same id.
CUSTOMER_KEY_PREFIX = "cxlake-customer:"
CUSTOMER_KEY_LENGTH = 20

# A customer's visit ends after this long without a customer-initiated touchpoint (the common web
# analytics convention). Gaps are compared in whole seconds (``unix_seconds``), in the journey's
# sessions and in the feature window that counts them alike.
SESSION_GAP_MINUTES = 30

# An anonymous event (device only) is attributed to its device's linked customer when it happened
# at most this long before the link (the device's first login): the pre-login browsing that led to
# it. Older anonymous activity stays anonymous. The bound is what keeps a night's cost following
# the day: a new link re-resolves at most this many days (plus the lateness bound) of history,
# never every partition since the device first appeared (measured on the 30-day bench world:
# ~850 links a night whose anonymous events reached back to day 1, so every night rewrote every
# silver.interactions and journey partition).
PRE_LOGIN_ATTRIBUTION_DAYS = 7


def oldest_arrival_date(run_date: str, lateness_days: int) -> dt.date:
    """The oldest event date a row first arriving on ``run_date`` can have.

    Bronze quarantines a line dated more than ``lateness_days`` before its arrival (reason
    ``too_late``), so a night's arrivals lie in the event-date partitions from this date on: a
    scan for them reads those partitions, not the whole history.
    """
    return dt.date.fromisoformat(run_date) - dt.timedelta(days=lateness_days)


def oldest_attributable_date(run_date: str, lateness_days: int) -> dt.date:
    """The oldest event date a device link arriving on ``run_date`` can attribute.

    The linking event happened at most ``lateness_days`` before its arrival (older lines are
    quarantined), and attributes :data:`PRE_LOGIN_ATTRIBUTION_DAYS` before itself.
    """
    return dt.date.fromisoformat(run_date) - dt.timedelta(days=lateness_days + PRE_LOGIN_ATTRIBUTION_DAYS)


def customer_key(customer_id: Column) -> Column:
    """The customer's join key: first 20 hex chars of ``sha2('cxlake-customer:' || id, 256)``; null stays null."""
    return F.substring(F.sha2(F.concat(F.lit(CUSTOMER_KEY_PREFIX), customer_id), 256), 1, CUSTOMER_KEY_LENGTH)


def is_new_session(previous_at: Column, at: Column, gap_minutes: int = SESSION_GAP_MINUTES) -> Column:
    """A touchpoint opens a session: no previous one, or the previous one more than the gap before.

    Args:
        previous_at: the customer's previous customer-initiated touchpoint (null for the first).
        at: this touchpoint's time.
        gap_minutes: the session gap (:data:`SESSION_GAP_MINUTES`).

    Returns:
        A boolean column; exactly the gap apart is still the same session.
    """
    return previous_at.isNull() | (F.unix_seconds(at) - F.unix_seconds(previous_at) > gap_minutes * 60)


check_against_contracts()
