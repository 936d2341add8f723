"""Shared simulator runs, session-scoped so each tree is written and parsed once."""

from __future__ import annotations

import pytest

from jobs.devtools.simulator import DirtRates, SimulationConfig, simulate

from .rawtree import Tree, read_tree

DIRTY_RATES = DirtRates(
    duplicate=0.03, late=0.04, malformed=0.02, missing_required=0.02, unknown_enum=0.02, bad_type=0.02
)


@pytest.fixture(scope="session")
def dirty_tree(tmp_path_factory: pytest.TempPathFactory) -> Tree:
    """Small run with raised dirt rates, so every kind shows up in every source."""
    config = SimulationConfig(days=10, customers=1000, seed=11, dirt=DIRTY_RATES)
    root = tmp_path_factory.mktemp("dirty")
    simulate(config, root)
    return read_tree(root, config)


@pytest.fixture(scope="session")
def default_tree(tmp_path_factory: pytest.TempPathFactory) -> Tree:
    """Small run with the default dirt rates."""
    config = SimulationConfig(days=14, customers=600, seed=3)
    root = tmp_path_factory.mktemp("default")
    simulate(config, root)
    return read_tree(root, config)


@pytest.fixture(scope="session")
def clean_tree(tmp_path_factory: pytest.TempPathFactory) -> Tree:
    """Moderate clean run (60 days x 1500 customers) for the world-structure checks."""
    config = SimulationConfig(days=60, customers=1500, seed=7, dirt=DirtRates.clean())
    root = tmp_path_factory.mktemp("clean")
    simulate(config, root)
    return read_tree(root, config)
