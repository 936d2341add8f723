"""Configuration of a simulation run: size, seed, calendar and dirt rates."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field, fields
from typing import Any

#: Dirt kinds in the order in which one uniform draw is mapped onto them (see ``dirt.py``).
#: ``duplicate`` is last because only an otherwise clean line can be duplicated.
DIRT_KINDS: tuple[str, ...] = (
    "late",
    "malformed",
    "missing_required",
    "unknown_enum",
    "bad_type",
    "duplicate",
)
#: Dirt kinds as listed per file in the manifest.
MANIFEST_KINDS: tuple[str, ...] = (
    "duplicate",
    "late",
    "malformed",
    "missing_required",
    "unknown_enum",
    "bad_type",
)


@dataclass(frozen=True)
class DirtRates:
    """Per-line probabilities of each kind of dirt injected into the raw files.

    The kinds are mutually exclusive: a line carries at most one kind, so the manifest counts
    are exact. Their sum must not exceed 1.

    Attributes:
        duplicate: the exact same line is emitted again (same file, or for scans the next day's
            file as a carrier resend).
        late: the line lands 1-3 days after its event date.
        malformed: the line is syntactically broken (truncated JSON, wrong CSV field count or an
            unclosed quote).
        missing_required: a non-nullable field is null or absent.
        unknown_enum: an enum field holds a value outside the contract.
        bad_type: a value cannot be parsed as the contract type.
    """

    duplicate: float = 0.01
    late: float = 0.02
    malformed: float = 0.002
    missing_required: float = 0.002
    unknown_enum: float = 0.002
    bad_type: float = 0.002

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"DirtRates.{f.name} must be within [0, 1], got {value!r}")
        if self.total > 1.0:
            raise ValueError(f"DirtRates sum to {self.total:.4f} > 1; the kinds are exclusive")

    @classmethod
    def clean(cls) -> DirtRates:
        """Rates that produce perfectly clean files."""
        return cls(**{f.name: 0.0 for f in fields(cls)})

    @property
    def total(self) -> float:
        """Probability that a line carries some dirt."""
        return float(sum(getattr(self, f.name) for f in fields(self)))

    def rate(self, kind: str) -> float:
        """The rate of one dirt kind by name."""
        return float(getattr(self, kind))


@dataclass(frozen=True)
class SimulationConfig:
    """What to simulate.

    Attributes:
        days: number of simulated days (arrival dates ``start_date`` .. ``start_date + days - 1``).
        customers: size of the customer base (existing at start plus sign-ups during the run).
        seed: seed of the single ``numpy`` seed sequence every random stream derives from.
        start_date: first simulated day (default a Monday).
        dirt: rates of the injected dirt.
    """

    days: int = 14
    customers: int = 2000
    seed: int = 7
    start_date: dt.date = dt.date(2026, 1, 5)
    dirt: DirtRates = field(default_factory=DirtRates)

    def __post_init__(self) -> None:
        if isinstance(self.days, bool) or not isinstance(self.days, int) or self.days < 1:
            raise ValueError(f"days must be a positive int, got {self.days!r}")
        if isinstance(self.customers, bool) or not isinstance(self.customers, int) or self.customers < 1:
            raise ValueError(f"customers must be a positive int, got {self.customers!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {self.seed!r}")
        # datetime is a subclass of date; a datetime would silently carry a time of day.
        if not isinstance(self.start_date, dt.date) or isinstance(self.start_date, dt.datetime):
            raise ValueError(f"start_date must be a datetime.date, got {self.start_date!r}")
        if not isinstance(self.dirt, DirtRates):
            raise ValueError(f"dirt must be a DirtRates, got {self.dirt!r}")

    @property
    def end_date(self) -> dt.date:
        """Last simulated day (inclusive)."""
        return self.start_date + dt.timedelta(days=self.days - 1)

    @property
    def dates(self) -> list[dt.date]:
        """All simulated days, in order."""
        return [self.start_date + dt.timedelta(days=i) for i in range(self.days)]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable view, as recorded in the manifest."""
        out = asdict(self)
        out["start_date"] = self.start_date.isoformat()
        return out
