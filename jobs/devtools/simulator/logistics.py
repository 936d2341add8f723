"""Parcels: hub congestion, the static promise, transit times and the carrier scan trail.

Transit = pick delay (warehouse shifts: short Saturday, closed Sunday) + wait for the carrier's
collection slot + legs through 1-3 hubs (lane nominal time x carrier factor x hub congestion on
the day the leg starts x lognormal noise) + roll to the next courier morning + delivery attempts.
All of it is structure a model can learn; the static promise ignores carrier, congestion and
weekday, which is what a model is supposed to beat.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .clock import DAY, HOUR, MINUTE, weekday
from .season import Season
from .world import HUBS, REGIONS, WAREHOUSES, CarrierProfile, Lane, haversine_km

PROMISE_BUFFER_DAYS = 2  # shops pad checkout promises
LINEHAUL_SHARE = 0.8  # share of the nominal lane time spent moving between hubs
RETURN_PROB = 0.02  # refused or unreachable: the parcel goes back, no ``delivered``
MAX_FAILED_ATTEMPTS = 2  # the third attempt always succeeds
CONGESTION_TAIL_DAYS = 60  # congestion is tabulated this far past the run for parcels in transit

# Warehouse shifts in UTC by weekday: (start hour, end hour, speed). Saturday runs a half-staffed
# short shift and Sunday is closed, so Friday-evening and weekend orders are picked later.
_SHIFTS: tuple[tuple[int, int, float], ...] = (
    (5, 21, 1.0),
    (5, 21, 1.0),
    (5, 21, 1.0),
    (5, 21, 1.0),
    (5, 21, 1.0),
    (6, 14, 0.5),
    (0, 0, 0.0),
)
_PLACES = {p.code: p for p in (*WAREHOUSES, *REGIONS, *HUBS)}
_HUB_INDEX = {h.code: i for i, h in enumerate(HUBS)}


def promised_day(placed_at: int, lane: Lane) -> int:
    """The shop's static promise (epoch day): placed date + ceil(nominal days) + buffer.

    Deliberately carrier-, congestion- and weekday-agnostic.
    """
    return placed_at // DAY + math.ceil(lane.nominal_days) + PROMISE_BUFFER_DAYS


@dataclass(frozen=True)
class Congestion:
    """Daily congestion multiplier of every hub (>= ~0.7, 1 = normal, spikes above 2).

    Attributes:
        first_day: epoch day of column 0.
        table: ``(len(HUBS), n_days)`` multipliers.
    """

    first_day: int
    table: np.ndarray

    def at(self, hub: int, t: int) -> float:
        """Multiplier of hub index ``hub`` on the day containing epoch second ``t``."""
        col = min(max(t // DAY - self.first_day, 0), self.table.shape[1] - 1)
        return float(self.table[hub, col])


def build_congestion(season: Season, rng: np.random.Generator) -> Congestion:
    """AR(1) log-congestion per hub with random spikes, plus the sale-week load.

    Args:
        season: the run's calendar (period and sale week).
        rng: stream for congestion.
    """
    n_days = season.days + CONGESTION_TAIL_DAYS
    phi, sd = 0.75, 0.07
    x = np.zeros((len(HUBS), n_days))
    x[:, 0] = rng.normal(0.0, sd / math.sqrt(1 - phi * phi), len(HUBS))
    shocks = rng.normal(0.0, sd, (len(HUBS), n_days))
    # Occasional local incidents (a broken sorter, a snow storm) that decay with the AR memory.
    spikes = (rng.random((len(HUBS), n_days)) < 0.02) * rng.uniform(0.3, 0.7, (len(HUBS), n_days))
    for d in range(1, n_days):
        x[:, d] = phi * x[:, d - 1] + shocks[:, d] + spikes[:, d]
    # Big hubs take the sale harder; each hub has its own sensitivity.
    sensitivity = rng.uniform(0.4, 0.9, len(HUBS))
    pressure = np.array([season.sale_pressure(season.start_day + d) for d in range(n_days)])
    table = np.exp(x) * (1.0 + sensitivity[:, None] * pressure[None, :])
    return Congestion(first_day=season.start_day, table=np.clip(table, 0.7, 4.0))


@dataclass(slots=True)
class Shipment:
    """What happened to a parcel.

    Attributes:
        scans: ``(scan_at, event, location)`` in time order, strictly increasing times.
        delivered_at: epoch second of ``delivered`` (``None`` if returned).
        returned_at: epoch second of ``returned``.
        failed_at: epoch seconds of ``delivery_failed`` scans.
        promised_day: the static promise (epoch day).
    """

    scans: list[tuple[int, str, str]] = field(default_factory=list)
    delivered_at: int | None = None
    returned_at: int | None = None
    failed_at: list[int] = field(default_factory=list)
    promised_day: int = 0

    @property
    def end_at(self) -> int:
        """When the parcel's journey ended (delivered or returned)."""
        return self.delivered_at if self.delivered_at is not None else int(self.returned_at or 0)

    @property
    def late(self) -> bool:
        """Delivered on a later date than promised."""
        return self.delivered_at is not None and self.delivered_at // DAY > self.promised_day

    @property
    def promise_deadline(self) -> int:
        """First second after the promised date: from then on the customer is waiting."""
        return (self.promised_day + 1) * DAY


def _pick(t: int, work_hours: float) -> int:
    """Finish time of ``work_hours`` of picking started at ``t`` under the shift calendar."""
    remaining = work_hours * HOUR
    while True:
        day, sod = divmod(t, DAY)
        start, end, speed = _SHIFTS[weekday(day)]
        if speed == 0.0 or sod >= end * HOUR:
            t = (day + 1) * DAY
            continue
        sod = max(sod, start * HOUR)
        capacity = (end * HOUR - sod) * speed
        if remaining <= capacity:
            return day * DAY + sod + int(remaining / speed)
        remaining -= capacity
        t = (day + 1) * DAY


def _next_slot(t: int, carrier: CarrierProfile) -> int:
    """First carrier collection at or after ``t``."""
    day = t // DAY
    while True:
        if carrier.sunday_pickup or weekday(day) != 6:
            for h in carrier.pickup_hours:
                if day * DAY + h * HOUR >= t:
                    return day * DAY + h * HOUR
        day += 1


def _courier_day(day: int, carrier: CarrierProfile) -> int:
    """First day on or after ``day`` on which the carrier's couriers go out."""
    return day + 1 if not carrier.sunday_delivery and weekday(day) == 6 else day


def ship(
    placed_at: int,
    lane: Lane,
    carrier: CarrierProfile,
    congestion: Congestion,
    season: Season,
    rng: np.random.Generator,
) -> Shipment:
    """Simulate one parcel from checkout to delivery or return.

    Args:
        placed_at: checkout time (epoch second); the ``created`` scan.
        lane: origin -> destination lane.
        carrier: who carries it.
        congestion: hub congestion table.
        season: calendar (sale-week backlog in the warehouse).
        rng: stream for this parcel's randomness.
    """
    # One block of draws per parcel: cheaper than many scalar calls, and the stream layout stays
    # fixed whatever branch the parcel takes. Layout: 0-1 pick work, 2 handoff jitter, 3-5 hub
    # dwell, 6-8 courier departure, 9-14 delivery hour (two per attempt), 15 return, 16-17 failure.
    u = rng.random(18).tolist()
    z = rng.standard_normal(1).tolist()
    ship_ = Shipment(promised_day=promised_day(placed_at, lane))
    scans = ship_.scans
    origin = lane.origin
    scans.append((placed_at, "created", origin))

    # Picking: ~3 work hours (Gamma(2) via two exponentials), more while the sale backlog lasts.
    work = -1.5 * (math.log(1 - u[0]) + math.log(1 - u[1]))
    work *= 1.0 + 1.5 * season.sale_pressure(placed_at // DAY)
    picked = max(_pick(placed_at, work), placed_at + 5 * MINUTE)
    scans.append((picked, "picked", origin))
    left = _next_slot(picked + 30 * MINUTE, carrier) + int(u[2] * 20 * MINUTE)
    scans.append((left, "left_warehouse", origin))

    # Legs: warehouse -> hub1 -> ... -> hubN -> delivery station. Each leg's share of the lane
    # time is its length plus a fixed handling overhead; congestion of the hub a leg enters
    # (the last hub for the final leg) stretches it.
    stops = [origin, *lane.hubs, lane.destination]
    lengths = [haversine_km(_PLACES[a], _PLACES[b]) + 150.0 for a, b in zip(stops, stops[1:], strict=False)]
    total = sum(lengths)
    noise = math.exp(carrier.noise_sd * z[0])
    base = lane.nominal_days * 24 * HOUR * LINEHAUL_SHARE * carrier.speed_factor * noise
    hub_idx = [_HUB_INDEX[code] for code in lane.hubs]
    t = left
    for k, length in enumerate(lengths):
        hub = hub_idx[min(k, len(hub_idx) - 1)]
        t += int(base * length / total * congestion.at(hub, t))
        if k < len(lane.hubs):
            scans.append((t, "arrived_hub", lane.hubs[k]))
            # Sorting dwell, also longer when the hub is congested.
            t += int((1.5 + 2.5 * u[3 + k]) * HOUR * congestion.at(hub, t))
    station = t

    # Couriers leave at 06:00-08:00 UTC; a parcel must reach the station by ~03:00 to make it.
    day = station // DAY + (1 if station % DAY > 3 * HOUR else 0)
    region = lane.destination
    attempt = 0
    while True:
        day = _courier_day(day, carrier)
        ofd = day * DAY + 6 * HOUR + int(u[6 + attempt] * 2 * HOUR)
        scans.append((ofd, "out_for_delivery", region))
        # Delivery a few hours into the round (Gamma(2, 1.5h) + 1h, capped within the day).
        gamma2 = -(math.log(1 - u[9 + 2 * attempt]) + math.log(1 - u[10 + 2 * attempt]))
        after = int(min(11.0, 1.0 + 1.5 * gamma2) * HOUR)
        if attempt == 0 and u[15] < RETURN_PROB:
            ship_.returned_at = ofd + after
            scans.append((ship_.returned_at, "returned", region))
            return ship_
        if attempt < MAX_FAILED_ATTEMPTS and u[16 + attempt] < carrier.fail_prob:
            failed = ofd + after
            ship_.failed_at.append(failed)
            scans.append((failed, "delivery_failed", region))
            attempt += 1
            day += 1
            continue
        ship_.delivered_at = ofd + after
        scans.append((ship_.delivered_at, "delivered", region))
        return ship_
