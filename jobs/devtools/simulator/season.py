"""The calendar: daily/weekly demand rhythm and the yearly "sale week".

Demand intensity is a multiplier on every customer's purchase and browsing rate. It averages 1
over an ordinary week, so a customer's latent rate keeps its meaning (orders per day).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .clock import DAY, HOUR, weekday

# UTC hours: Russian shoppers (UTC+3..+7) are busiest in the (local) evening.
_HOUR_PROFILE = np.array(
    [
        0.25,
        0.20,
        0.20,
        0.30,
        0.50,
        0.70,
        0.90,
        1.00,
        1.10,
        1.20,
        1.20,
        1.20,
        1.30,
        1.40,
        1.50,
        1.60,
        1.70,
        1.80,
        1.70,
        1.50,
        1.20,
        0.90,
        0.60,
        0.40,
    ]
)
_HOUR_PROFILE = _HOUR_PROFILE / _HOUR_PROFILE.mean()
# Monday .. Sunday: weekend-evening shopping, a quieter Friday.
_WEEKDAY_PROFILE = np.array([1.05, 1.00, 0.95, 0.95, 0.90, 1.00, 1.15])
_WEEKDAY_PROFILE = _WEEKDAY_PROFILE / _WEEKDAY_PROFILE.mean()

SALE_DAYS = 7
SALE_DEMAND = 1.8  # purchase intensity multiplier during the sale week
# How much the sale loads the logistics network on each day from its start: the peak is mid-week
# and the backlog takes a few days after the sale to clear.
_SALE_PRESSURE = (0.4, 0.7, 0.9, 1.0, 1.0, 0.9, 0.8, 0.6, 0.4, 0.25, 0.1)


@dataclass(frozen=True)
class Season:
    """Demand and sale calendar of one run.

    Attributes:
        start_day: epoch day of the first simulated day.
        days: number of simulated days.
        sale_start: epoch day on which the sale week starts.
        hourly: demand intensity for each hour of the run (``days * 24`` values).
    """

    start_day: int
    days: int
    sale_start: int
    hourly: np.ndarray

    @property
    def start(self) -> int:
        """First simulated second."""
        return self.start_day * DAY

    @property
    def end(self) -> int:
        """First second after the simulated period (exclusive)."""
        return (self.start_day + self.days) * DAY

    @cached_property
    def peak(self) -> float:
        """Maximum hourly intensity (the envelope for thinning; computed once per run)."""
        return float(self.hourly.max())

    def intensity(self, t: np.ndarray) -> np.ndarray:
        """Demand intensity at epoch seconds ``t`` (which must lie in the simulated period)."""
        return self.hourly[(np.asarray(t) - self.start) // HOUR]

    def in_sale(self, day: int) -> bool:
        """Whether an epoch day is one of the sale days."""
        return self.sale_start <= day < self.sale_start + SALE_DAYS

    def sale_pressure(self, day: int) -> float:
        """Logistics load of the sale on an epoch day, 0 (none) .. 1 (peak)."""
        k = day - self.sale_start
        return _SALE_PRESSURE[k] if 0 <= k < len(_SALE_PRESSURE) else 0.0


def build_season(start_day: int, days: int, rng: np.random.Generator) -> Season:
    """Place the sale week and tabulate hourly demand.

    The sale week is put inside the run (a seed-dependent week, away from the edges when the run
    is long enough) so every run shows a congestion peak.

    Args:
        start_day: epoch day of the first simulated day.
        days: number of simulated days.
        rng: stream to place the sale week.
    """
    if days >= 28:
        offset = int(rng.integers(7, days - SALE_DAYS - 6))
    else:
        offset = int(rng.integers(0, max(1, days - SALE_DAYS + 1)))
    sale_start = start_day + offset
    day_index = np.arange(days * 24) // 24 + start_day
    weekdays = np.array([weekday(int(d)) for d in range(start_day, start_day + days)])
    hourly = _HOUR_PROFILE[np.arange(days * 24) % 24] * _WEEKDAY_PROFILE[np.repeat(weekdays, 24)]
    in_sale = (day_index >= sale_start) & (day_index < sale_start + SALE_DAYS)
    hourly = np.where(in_sale, hourly * SALE_DEMAND, hourly)
    return Season(start_day=start_day, days=days, sale_start=sale_start, hourly=hourly)
