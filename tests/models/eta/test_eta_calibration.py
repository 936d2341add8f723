"""The ETA interval's calibration scale, on a world whose truth is known (pure pandas, no Spark).

Delivery days = a carrier's base + a tenth of a day per item + Gamma noise (right-skewed, like
real transit times). Orders arrive evenly over 150 days; the latest fifth is held out behind
production's 14-day gap, as the nightly job splits. The calibrated P10-P90 interval must hold
about 80 % of the held-out deliveries; the uncalibrated boosters' must not.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from jobs.models.eta import model as eta_model

ORDERS = 3000
SEED = 20261204
CARRIER_BASE_DAYS = {"wb_express": 1.5, "cdek": 3.0, "boxberry": 4.0, "russian_post": 6.0}


def _world() -> pd.DataFrame:
    rng = np.random.default_rng(SEED)
    features = eta_model.features_of(eta_model.PLACEMENT_TABLE)
    rows = pd.DataFrame(
        {
            "order_id": [f"O{i:05d}" for i in range(ORDERS)],
            "placed_at": pd.Timestamp("2026-01-01") + pd.to_timedelta(np.sort(rng.uniform(0, 150, ORDERS)), unit="D"),
            "carrier": rng.choice(list(CARRIER_BASE_DAYS), ORDERS),
            "items": rng.integers(1, 6, ORDERS),
        }
    )
    # Every other registered feature: present, uninformative (one value, or noise).
    for feature in features:
        if feature.name in rows:
            continue
        rows[feature.name] = "x" if not feature.is_numeric else rng.normal(size=ORDERS)
    noise = rng.gamma(shape=2.0, scale=0.5, size=ORDERS)  # mean 1 day, P10 0.27, P90 1.94
    base = rows["carrier"].map(CARRIER_BASE_DAYS).to_numpy()
    rows[eta_model.PLACEMENT_LABEL] = base + 0.1 * rows["items"].to_numpy() + noise
    return rows


def _coverage(model: eta_model.EtaModel, rows: pd.DataFrame) -> float:
    predicted = model.predict_placement(rows)
    actual = rows[eta_model.PLACEMENT_LABEL].to_numpy()
    return float(np.mean((actual >= predicted["p10"].to_numpy()) & (actual <= predicted["p90"].to_numpy())))


def test_the_calibrated_interval_holds_eighty_percent_of_future_deliveries() -> None:
    train, holdout = eta_model.time_split(_world(), 0.2, gap_days=eta_model.MATURITY_DAYS)
    assert len(holdout) == 600 and len(train) < 2400  # the gap leaves ~14 days of orders out
    model = eta_model.fit(train, None)
    coverage = _coverage(model, holdout)
    # 600 held-out orders: coverage's standard error is sqrt(0.8 * 0.2 / 600) = 0.016; 3 of them.
    assert coverage == pytest.approx(eta_model.NOMINAL_COVERAGE, abs=0.05), coverage
    # Without the conformal scale, boosted quantiles on ~2,000 rows are too narrow: the scale is
    # what brings them to 80 % (it widens them).
    scale = model.placement.interval_scale
    model.placement.interval_scale = 0.0
    raw = _coverage(model, holdout)
    assert scale > 0 and raw < eta_model.NOMINAL_COVERAGE - 0.05, (scale, raw)
