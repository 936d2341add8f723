"""The ETA model's conformal P10-P90 interval covers about 80 % of later deliveries (pure pandas).

A synthetic world whose truth is known: delivery days = a carrier's base + 0.5 x the lane's mean
transit days + Gaussian noise whose spread grows with that mean, so the true P10-P90 interval of
each order is ``mean +/- z90 * sigma`` and covers 80 % by construction. Six more registered features
are pure noise, as many of production's are weak: the boosters overfit them, which is what
``interval_scale`` (:func:`jobs.models.eta.model.fit_stage`, conformal over rolling origins) corrects.

The model is fitted the way the nightly job's ``_fit`` does it: ``time_split`` with the job's
holdout share and a ``MATURITY_DAYS`` gap, ``fit`` on the older orders, ``evaluate_placement`` (the
metric the promotion guard reads) on the latest ones.

Measured when this test was written (numpy seed 1, 6000 orders, holdout 1200): coverage 0.803 with
``interval_scale`` 0.146; the raw boosters (scale 0) 0.693; scale forced to 1 (3x the raw width)
close to 1. Over seeds 1-12: calibrated 0.774-0.852 (mean 0.814, sd 0.021: the conformal scale
errs on the wide side), raw 0.675-0.725, width 1.06-1.16x the truth's.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from jobs.lake.feature_catalog import features_of
from jobs.models.eta import job as eta
from jobs.models.eta import model as eta_model

SEED = 1
ORDERS = 6000  # ~30 a day over 200 days
Z90 = 1.2815515655446004  # standard normal 90th percentile: P10-P90 = mean +/- Z90 * sigma
CARRIER_BASE_DAYS = {"wb_express": 1.0, "cdek": 2.0, "boxberry": 3.0}
NOISE_FEATURES = (
    "placed_weekday",
    "placed_hour",
    "items",
    "amount",
    "lane_carrier_deliveries_90d",
    "carrier_deliveries_90d",
)
# Holdout: the latest 20 % = 1200 orders. Binomial standard error of a coverage of 0.80 on them:
# sqrt(0.8 * 0.2 / 1200) = 0.0115; the conformal scale is itself estimated from ~1300 rolling-origin
# scores, about as noisy, so the coverage's error is ~0.016 (sqrt of the summed variances); over
# 12 seeds it was 0.021 around 0.814. The band, 0.80 +/- 0.05, is ~2.4 of those (1 seed in 12
# landed at 0.852), while the uncalibrated boosters (~0.69) sit ~3 of them below its floor.
BAND = (0.75, 0.85)


def _world(seed: int = SEED, n: int = ORDERS) -> pd.DataFrame:
    """Placement rows with every registered feature of features.order_eta, the label and the truth."""
    rng = np.random.default_rng(seed)
    carriers = np.array(list(CARRIER_BASE_DAYS))
    carrier = carriers[rng.integers(0, len(carriers), n)]
    lane_mean = rng.uniform(1.0, 5.0, n)
    mean = np.array([CARRIER_BASE_DAYS[c] for c in carrier]) + 0.5 * lane_mean
    sigma = 0.3 + 0.1 * lane_mean
    days = mean + sigma * rng.standard_normal(n)
    placed = pd.Timestamp("2026-01-01") + pd.to_timedelta(np.sort(rng.uniform(0.0, 200.0, n)), unit="D")
    rows = pd.DataFrame(
        {f.name: np.nan if f.is_numeric else "unused" for f in features_of(eta_model.PLACEMENT_TABLE)}, index=range(n)
    )
    rows["carrier"] = carrier
    rows["lane_carrier_transit_days_mean"] = lane_mean
    for name in NOISE_FEATURES:
        rows[name] = rng.uniform(0.0, 1.0, n)
    rows["order_id"] = [f"O{i:05d}" for i in range(n)]
    rows["placed_at"] = placed
    rows[eta_model.PLACEMENT_LABEL] = days
    rows["delivered_at"] = placed + pd.to_timedelta(days, unit="D")
    rows["promised_delivery_date"] = (placed + pd.Timedelta(days=4)).normalize()
    rows["true_p10"] = mean - Z90 * sigma
    rows["true_p90"] = mean + Z90 * sigma
    return rows


@pytest.fixture(scope="module")
def fitted() -> tuple[eta_model.EtaModel, pd.DataFrame]:
    train, holdout = eta_model.time_split(_world(), eta.HOLDOUT_SHARE, gap_days=eta_model.MATURITY_DAYS)
    # The holdout is the future of the training orders, MATURITY_DAYS or more ahead (production's gap).
    assert train["placed_at"].max() < holdout["placed_at"].min() - pd.Timedelta(days=eta_model.MATURITY_DAYS)
    return eta_model.fit(train, None), holdout


def _coverage(model: eta_model.EtaModel, holdout: pd.DataFrame) -> float:
    return eta_model.evaluate_placement(model, holdout)["p10_p90_coverage"]


def _with_scale(model: eta_model.EtaModel, scale: float) -> eta_model.EtaModel:
    return eta_model.EtaModel(replace(model.placement, interval_scale=scale), None)


def test_the_true_interval_covers_80_percent_of_the_holdout_within_the_band(fitted) -> None:
    # The generator's own check: the truth's P10-P90 on these 1200 orders is inside the band (the
    # band is about sampling noise, not about the model).
    _, holdout = fitted
    y = holdout[eta_model.PLACEMENT_LABEL]
    truth = float(((y >= holdout["true_p10"]) & (y <= holdout["true_p90"])).mean())
    assert len(holdout) == 1200
    assert BAND[0] <= truth <= BAND[1], truth


def test_the_calibrated_interval_covers_80_percent_of_later_orders(fitted) -> None:
    model, holdout = fitted
    coverage = _coverage(model, holdout)
    # The rolling-origin scores found the raw boosters too narrow and widened them (measured 0.146).
    assert model.placement.interval_scale > 0.05
    assert BAND[0] <= coverage <= BAND[1], f"P10-P90 coverage {coverage:.3f} outside {BAND}"


def test_the_calibrated_interval_is_about_as_wide_as_the_truths(fitted) -> None:
    # Coverage alone could come from a badly placed interval; here the truth is known, so the
    # width is checked too: the mean calibrated width within 20 % of the true mean width
    # (2 * Z90 * sigma, ~1.54 days; measured 1.65, wider since the boosters' centre is estimated).
    model, holdout = fitted
    predicted = model.predict_placement(holdout)
    width = float((predicted["p90"] - predicted["p10"]).mean())
    true_width = float((holdout["true_p90"] - holdout["true_p10"]).mean())
    assert 1.0 <= width / true_width <= 1.2, (width, true_width)


@pytest.mark.parametrize(
    ("scale", "direction"),
    [
        # Calibration off: the boosters' own P10-P90, too narrow out of sample (measured 0.693).
        (0.0, "below"),
        # Scale forced to 1: each side widened by the whole raw width, 3x as wide (covers ~all).
        (1.0, "above"),
    ],
)
def test_a_mis_scaled_interval_fails_the_band(fitted, scale: float, direction: str) -> None:
    # The same boosters with another scale: proves the band can fail, and in the right direction.
    model, holdout = fitted
    coverage = _coverage(_with_scale(model, scale), holdout)
    assert coverage < BAND[0] if direction == "below" else coverage > BAND[1], coverage
