"""Source-system simulator: daily raw orders, carrier tracking scans and customer interactions.

``simulate(config, out_dir)`` writes, per simulated day, the three raw logs (with configurable,
exactly counted dirt) and a manifest. The world behind them has learnable structure: lane,
carrier, hub congestion and weekday effects on transit; BG/NBD purchasing whose churn rises with
bad delivery experience; support contacts and reviews that react to late or failed deliveries.

Modules: ``config`` (run settings), ``world`` (static network, carriers, contract enums),
``season`` (demand and sale calendar), ``customers``, ``logistics`` (congestion, promise,
transit, scans), ``lifecycle`` (purchases and churn feedback), ``interactions`` (sessions and
events), ``dirt`` (corruption and arrival), ``writers`` (rendering and files), ``engine``.
"""

from __future__ import annotations

from .config import DirtRates, SimulationConfig
from .engine import SimulationSummary, simulate

__all__ = ["DirtRates", "SimulationConfig", "SimulationSummary", "simulate"]
