"""SimulationConfig / DirtRates: defaults, immutability, validation, manifest view."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from jobs.devtools.simulator import DirtRates, SimulationConfig


def test_defaults_match_the_cli_contract() -> None:
    c = SimulationConfig()
    assert (c.days, c.customers, c.seed) == (14, 2000, 7)
    assert c.start_date == dt.date(2026, 1, 5) and c.start_date.weekday() == 0
    assert c.dirt == DirtRates(0.01, 0.02, 0.002, 0.002, 0.002, 0.002)
    assert c.dates[0] == c.start_date and c.dates[-1] == c.end_date == dt.date(2026, 1, 18)


def test_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        SimulationConfig().days = 3  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        DirtRates().late = 0.5  # type: ignore[misc]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"days": 0},
        {"customers": 0},
        {"seed": -1},
        {"days": 2.5},
        {"start_date": "2026-01-05"},
        {"start_date": dt.datetime(2026, 1, 5, 12)},
    ],
)
def test_invalid_config_rejected(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        SimulationConfig(**kwargs)


def test_invalid_rates_rejected() -> None:
    with pytest.raises(ValueError):
        DirtRates(late=-0.1)
    with pytest.raises(ValueError):
        DirtRates(duplicate=0.6, late=0.6)  # exclusive kinds cannot sum above 1


def test_clean_rates_and_manifest_view() -> None:
    assert DirtRates.clean().total == 0.0
    view = SimulationConfig(days=3, dirt=DirtRates.clean()).to_dict()
    assert view["start_date"] == "2026-01-05" and view["days"] == 3
    assert set(view["dirt"]) == {"duplicate", "late", "malformed", "missing_required", "unknown_enum", "bad_type"}
