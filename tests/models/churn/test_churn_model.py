"""Churn model core on hand cases and on a simulated panel where bad deliveries drive churn.

The panel follows BG/NBD (Poisson purchases while alive, dropout only right after a purchase) except
that bad deliveries lower the chance of staying, as in jobs.devtools.simulator.lifecycle; here frustration
accumulates: every late or failed delivery of the last 90 days counts, not only the latest parcel's.
BG/NBD sees only purchase timing, so a model that reads delivery experience must beat it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import cloudpickle
import numpy as np
import pandas as pd
import pytest

from jobs.models.churn import model as churn

START = pd.Timestamp("2025-01-06")  # day 0 of the simulation, a Monday
N_CUSTOMERS = 3000
SIM_DAYS = 420
ACQUISITION_DAYS = 360  # first purchases are spread over these days
FIRST_AS_OF_DAY = 56  # weekly as-of dates from here to the end: ~300 days of label-complete dates
HORIZON = 60
STAY_MULTIPLIER = 0.6  # per bad experience (late or failed delivery), as in the project's simulator
MEMORY_DAYS = 90  # bad experiences older than this are forgiven
PROMISED_DAYS = 3


def _day(offset: int) -> pd.Timestamp:
    return START + pd.Timedelta(days=offset)


# --- the simulated world -------------------------------------------------------------------------


def _simulate(rng: np.random.Generator) -> tuple[pd.DataFrame, np.ndarray]:
    """Orders (one row each, with their delivery story) and every customer's daily session counts."""
    acquired = rng.integers(0, ACQUISITION_DAYS, N_CUSTOMERS)
    lam = rng.gamma(2.0, 1 / 50, N_CUSTOMERS)  # purchases per day while alive, mean 0.04
    p_drop = rng.beta(1.0, 12.0, N_CUSTOMERS)  # dropout after a purchase with a good delivery
    late_prob = rng.beta(1.2, 5.0, N_CUSTOMERS)  # the customer's region/carrier: chance a parcel is late
    usage = rng.gamma(2.0, 0.15, N_CUSTOMERS)  # sessions per day while alive
    alive = np.zeros(N_CUSTOMERS, dtype=bool)
    dropped_on = np.full(N_CUSTOMERS, np.inf)
    sessions = np.zeros((N_CUSTOMERS, SIM_DAYS), dtype=np.int64)
    bad_by_day = np.zeros((N_CUSTOMERS, SIM_DAYS), dtype=np.int64)
    parts = []
    for day in range(SIM_DAYS):
        # Usage fades over a month after dropout, as browsing does in jobs.devtools.simulator.interactions.
        fade = np.exp(-np.clip(day - dropped_on, 0, None) / 30)
        sessions[:, day] = rng.poisson(np.where(acquired <= day, usage * fade + 0.02, 0.0))
        first = acquired == day
        buyers = np.flatnonzero(first | (alive & (rng.random(N_CUSTOMERS) < lam)))
        alive[first] = True
        late = rng.random(buyers.size) < late_prob[buyers]
        failed = rng.random(buyers.size) < np.where(late, 0.3, 0.04)
        bad_by_day[buyers, day] = late.astype(int) + failed
        recent_bad = bad_by_day[buyers, max(0, day - MEMORY_DAYS + 1) : day + 1].sum(axis=1)
        stay = (1 - p_drop[buyers]) * STAY_MULTIPLIER**recent_bad
        drops = buyers[rng.random(buyers.size) >= stay]
        alive[drops] = False
        dropped_on[drops] = day
        parts.append(
            pd.DataFrame(
                {
                    "customer": buyers,
                    "day": day,
                    "seconds": rng.integers(0, 86400, buyers.size),
                    "amount": np.round(rng.lognormal(np.log(1500), 0.7, buyers.size), 2),
                    "delivered_day": day
                    + np.where(late, PROMISED_DAYS + rng.integers(1, 6, buyers.size), rng.integers(1, 4, buyers.size)),
                    "failed_attempts": failed.astype(int),
                    "contacts": rng.poisson(np.where(late | failed, 0.6, 0.04)),
                    "reviewed": rng.random(buyers.size) < 0.3,
                    "rating": np.where(late, rng.integers(1, 4, buyers.size), rng.integers(3, 6, buyers.size)),
                }
            )
        )
    orders = pd.concat(parts, ignore_index=True)
    orders["customer_key"] = "c" + orders["customer"].astype(str).str.zfill(4)
    orders["placed_at"] = (
        START + pd.to_timedelta(orders["day"], unit="D") + pd.to_timedelta(orders["seconds"], unit="s")
    )
    orders["days_late"] = orders["delivered_day"] - orders["day"] - PROMISED_DAYS
    return orders, np.cumsum(np.pad(sessions, ((0, 0), (1, 0))), axis=1)


def _features_as_of(orders: pd.DataFrame, session_totals: np.ndarray, as_of_days: list[int]) -> pd.DataFrame:
    """features.customer_daily rows (as of the end of each day) computed from the simulated orders."""
    frames = []
    for d in as_of_days:
        o = orders[orders["day"] <= d]
        o = o.assign(
            in30=o["day"] > d - 30,
            in90=o["day"] > d - 90,
            in365=o["day"] > d - 365,
            delivered90=(o["delivered_day"] <= d) & (o["delivered_day"] > d - 90),
            reviewed365=o["reviewed"] & (o["delivered_day"] + 1 <= d) & (o["delivered_day"] > d - 365),
        )
        o = o.assign(
            late90=o["delivered90"] & (o["days_late"] > 0),
            days_late90=o["days_late"].where(o["delivered90"]),
            failed90=o["failed_attempts"] * o["delivered90"],
            contacts90=o["contacts"] * o["delivered90"],
            rating365=o["rating"].where(o["reviewed365"]),
        )
        for w in (30, 90, 365):
            o[f"amount{w}"] = o["amount"] * o[f"in{w}"]
        g = o.groupby("customer")
        f = pd.DataFrame(
            {
                "days_since_last_order": d - g["day"].max(),
                "tenure_days": d - g["day"].min(),
                "purchase_days_total": g["day"].nunique(),
                "orders_30d": g["in30"].sum(),
                "orders_90d": g["in90"].sum(),
                "orders_365d": g["in365"].sum(),
                "amount_30d": g["amount30"].sum().round(2),
                "amount_90d": g["amount90"].sum().round(2),
                "amount_365d": g["amount365"].sum().round(2),
                "deliveries_90d": g["delivered90"].sum(),
                "late_deliveries_90d": g["late90"].sum(),
                "mean_days_late_90d": g["days_late90"].mean(),
                "failed_attempts_90d": g["failed90"].sum(),
                "support_contacts_90d": g["contacts90"].sum(),
                "reviews_365d": g["reviewed365"].sum(),
                "mean_review_rating_365d": g["rating365"].mean(),
            }
        )
        f = f[f["orders_365d"] >= 1]  # the table's population: an order in the last 365 days
        customers = f.index.to_numpy()
        f["contact_rate_90d"] = (f["support_contacts_90d"] / f["orders_90d"]).where(f["orders_90d"] > 0)
        f["sessions_7d"] = session_totals[customers, d + 1] - session_totals[customers, d - 6]
        f["sessions_prev_28d"] = session_totals[customers, d - 6] - session_totals[customers, d - 34]
        f["engagement_trend"] = (f["sessions_7d"] + 1) / (f["sessions_prev_28d"] / 4 + 1)
        f.insert(0, "as_of_date", _day(d).date())
        f.insert(0, "customer_key", "c" + pd.Series(customers, index=f.index).astype(str).str.zfill(4))
        frames.append(f.reset_index(drop=True))
    features = pd.concat(frames, ignore_index=True)
    names = churn.feature_names()
    # If the contract gains a feature, this simulator must learn to compute it.
    assert set(names) <= set(features.columns), set(names) - set(features.columns)
    return features[["customer_key", "as_of_date", *names]]


@dataclass
class World:
    orders: pd.DataFrame
    features: pd.DataFrame
    labelled: pd.DataFrame
    train: pd.DataFrame
    holdout: pd.DataFrame
    model: churn.ChurnModel


@pytest.fixture(scope="module")
def world() -> World:
    orders, session_totals = _simulate(np.random.default_rng(2025))
    features = _features_as_of(orders, session_totals, list(range(FIRST_AS_OF_DAY, SIM_DAYS, 7)))
    labelled = churn.label_churn(
        features, orders[["customer_key", "placed_at"]], HORIZON, observed_until=_day(SIM_DAYS - 1)
    )
    train, holdout = churn.time_split(labelled)
    model = churn.train_churn_model(train, churn.feature_names())
    return World(orders[["customer_key", "placed_at"]], features, labelled, train, holdout, model)


# --- label_churn ---------------------------------------------------------------------------------


def test_label_churn_counts_whole_days_after_as_of_and_drops_unfinished_windows() -> None:
    features = pd.DataFrame(
        {
            "customer_key": ["a", "b", "c", "d", "e"],
            "as_of_date": [dt.date(2026, 1, 10)] * 4 + [dt.date(2026, 1, 11)],
            "orders_30d": [1, 2, 3, 4, 5],
        }
    )
    orders = pd.DataFrame(
        {
            "customer_key": ["a", "b", "c", "c", "d", "e", None],
            "placed_at": pd.to_datetime(
                [
                    "2026-01-10 23:59",  # a: on the as-of day itself, already history -> churned
                    "2026-01-15 23:30",  # b: on as_of + horizon, the window's last day -> not churned
                    "2026-01-16 00:00",  # c: the day after the window -> churned...
                    "2026-01-05 12:00",  # c: ...and an old order does not help either
                    "2026-01-11 00:00",  # d: the window's first instant -> not churned
                    "2026-01-12 10:00",  # e: window (01-11, 01-16] is not over by 01-15 -> row dropped
                    "2026-01-12 10:00",  # no customer: ignored
                ]
            ),
        }
    )
    labelled = churn.label_churn(features, orders, horizon_days=5, observed_until=dt.date(2026, 1, 15))
    expected = features.iloc[:4].assign(churned=np.array([1, 0, 1, 0], dtype=np.int64))
    pd.testing.assert_frame_equal(labelled, expected)
    assert labelled.attrs[churn.HORIZON_ATTR] == 5


def test_label_churn_rejects_timezone_aware_orders() -> None:
    features = pd.DataFrame({"customer_key": ["a"], "as_of_date": [dt.date(2026, 1, 1)]})
    orders = pd.DataFrame({"customer_key": ["a"], "placed_at": pd.to_datetime(["2026-01-02 10:00"]).tz_localize("UTC")})
    with pytest.raises(churn.ChurnInputError, match="naive"):
        churn.label_churn(features, orders, observed_until="2026-12-31")


# --- time_split ----------------------------------------------------------------------------------


def test_time_split_holds_out_the_latest_dates_and_leaves_a_horizon_gap() -> None:
    dates = [dt.date(2026, 1, 1) + dt.timedelta(weeks=w) for w in range(8)]  # Jan 1 ... Feb 19
    rows = pd.DataFrame({"as_of_date": dates, "churned": 0})
    train, holdout = churn.time_split(rows, holdout_share=0.25, gap_days=14)
    # 2 of 8 dates held out (Feb 12, Feb 19); training dates must be <= Feb 12 - 14 days = Jan 29.
    assert list(holdout.as_of_date) == dates[6:]
    assert list(train.as_of_date) == dates[:5]


def test_time_split_needs_a_gap_when_the_frame_does_not_carry_one() -> None:
    rows = pd.DataFrame({"as_of_date": [dt.date(2026, 1, 1), dt.date(2026, 3, 1)]})
    with pytest.raises(churn.ChurnInputError, match="gap_days"):
        churn.time_split(rows)


def test_time_split_on_the_panel_has_no_shared_dates_and_no_overlapping_windows(world: World) -> None:
    train_dates = pd.to_datetime(world.train.as_of_date)
    holdout_dates = pd.to_datetime(world.holdout.as_of_date)
    assert not set(train_dates) & set(holdout_dates)
    # Every training label window (D, D + 60] has ended by the first holdout date.
    assert (train_dates + pd.Timedelta(days=HORIZON)).max() <= holdout_dates.min()
    assert holdout_dates.nunique() == round(0.25 * pd.to_datetime(world.labelled.as_of_date).nunique())


# --- the model against the BG/NBD baseline -------------------------------------------------------


def test_model_beats_bgnbd_on_the_holdout(world: World) -> None:
    y = world.holdout["churned"].to_numpy()
    model = churn.evaluate(y, world.model.predict_proba(world.holdout))
    baseline = churn.evaluate(y, churn.bgnbd_baseline(world.orders, world.holdout, HORIZON))
    print(f"\nmodel    {_summary(model)}\nBG/NBD   {_summary(baseline)}")
    assert model["roc_auc"] > 0.7
    assert model["roc_auc"] > baseline["roc_auc"]


def _summary(m: dict) -> str:
    keys = ("n", "base_rate", "roc_auc", "pr_auc", "brier", "log_loss", "lift_top_decile", "expected_calibration_error")
    return " ".join(f"{k}={m[k]:.4f}" if isinstance(m[k], float) else f"{k}={m[k]}" for k in keys)


def test_bgnbd_baseline_ignores_orders_after_each_rows_as_of_date(world: World) -> None:
    rows = world.holdout.iloc[:200]  # all of the first holdout date
    last = pd.to_datetime(rows.as_of_date).max()
    fit_as_of = last - pd.Timedelta(days=HORIZON)
    # Orders after the rows' as-of date (hence after the fit date too) must not move any probability.
    future = world.orders.placed_at >= last + pd.Timedelta(days=1)
    assert future.any()
    with_future = churn.bgnbd_baseline(world.orders, rows, HORIZON, fit_as_of=fit_as_of)
    without = churn.bgnbd_baseline(world.orders[~future], rows, HORIZON, fit_as_of=fit_as_of)
    np.testing.assert_array_equal(with_future, without)
    assert ((with_future > 0) & (with_future < 1)).all()


def test_calibration_improves_brier_and_is_calibrated_on_the_holdout(world: World) -> None:
    y = world.holdout["churned"].to_numpy()
    raw = churn.evaluate(y, world.model.raw_proba(world.holdout))
    calibrated = churn.evaluate(y, world.model.predict_proba(world.holdout))
    print(f"\nraw        {_summary(raw)}\ncalibrated {_summary(calibrated)}")
    assert world.model.calibration == "isotonic"  # thousands of calibration rows
    assert calibrated["brier"] <= raw["brier"]
    assert calibrated["expected_calibration_error"] < 0.05
    # Calibration bends the probabilities, never the order: isotonic steps keep the model's ranking.
    assert calibrated["roc_auc"] == pytest.approx(raw["roc_auc"], abs=1e-9)


def test_platt_scaling_never_turns_the_ranking_upside_down() -> None:
    # Held-out scores that rank backwards (the riskier the score, the fewer churners) would give
    # Platt scaling a negative slope; the calibrator keeps slope 1 and fits only the level.
    raw = np.array([0.2, 0.3, 0.4, 0.6, 0.7, 0.8])
    y = np.array([1, 1, 1, 0, 0, 1])  # base rate 4 / 6
    platt = churn._platt(raw, y)
    calibrated = platt.predict_proba(churn._logit(raw)[:, None])[:, 1]
    assert platt.coef_[0, 0] == 1.0
    assert np.all(np.diff(calibrated) > 0)  # the scores' order, kept
    # The level: the intercept alone is fitted, so the mean probability is the base rate.
    assert calibrated.mean() == pytest.approx(4 / 6, abs=1e-9)
    # Scores that rank the right way keep their own fitted (positive) slope.
    assert churn._platt(raw, 1 - y).coef_[0, 0] > 0


def test_no_booster_when_no_round_ranks_the_held_out_dates_better_than_the_prior(world: World) -> None:
    # A feature that never varies cannot split: no round can add to BG/NBD's ranking, so the model
    # is the prior alone (then calibrated), and predicts without a booster.
    model = churn.train_churn_model(world.train.assign(flat=0.0), ["flat"])
    assert model.booster is None
    rows = world.holdout.iloc[:200].assign(flat=0.0)
    prior = 1 / (1 + np.exp(-model.prior_logit(rows)))
    np.testing.assert_array_equal(model.raw_proba(rows), prior)
    assert model.top_drivers(rows.iloc[:3], k=2) is not None


def test_top_drivers_name_real_features_and_find_bad_deliveries(world: World) -> None:
    model, holdout = world.model, world.holdout
    names = {*churn.feature_names(), churn.PRIOR_DRIVER}
    riskiest = holdout.iloc[np.argsort(-model.predict_proba(holdout))[:50]]
    drivers = model.top_drivers(riskiest, k=3)
    # The riskiest rows have at least 3 features pushing towards churn, so exactly k each.
    assert [len(d) for d in drivers] == [3] * 50
    for row in drivers:
        for driver in row:
            name, rest = driver.split("=", 1)
            assert name in names and rest.endswith(")") and " (+" in rest
    assert all(len(d) <= 2 for d in model.top_drivers(holdout.iloc[:100], k=2))

    # The customer with the most late deliveries: those are among the reasons given for their risk.
    worst = holdout.loc[[holdout["late_deliveries_90d"].idxmax()]]
    late = worst["late_deliveries_90d"].iloc[0]
    assert late >= 3
    (worst_drivers,) = model.top_drivers(worst, k=3)
    print(f"\n{worst['customer_key'].iloc[0]} with {late} late deliveries -> {worst_drivers}")
    assert any(d.startswith(f"late_deliveries_90d={late} (+") for d in worst_drivers)
    # Not a lucky row: so it is for nearly every customer with two or more late deliveries.
    repeated = holdout[holdout["late_deliveries_90d"] >= 2]
    named = [any(d.startswith("late_deliveries_90d=") for d in row) for row in model.top_drivers(repeated, k=3)]
    print(f"late_deliveries_90d is a top-3 driver for {np.mean(named):.1%} of {len(repeated)} rows with >= 2")
    assert np.mean(named) > 0.8


def test_pyfunc_round_trips_through_cloudpickle(world: World) -> None:
    rows = world.holdout.iloc[:500]
    restored = cloudpickle.loads(cloudpickle.dumps(churn.ChurnPyfunc(world.model)))
    np.testing.assert_array_equal(restored.predict(None, rows), world.model.predict_proba(rows))


def test_plots_write_png_files(world: World, tmp_path) -> None:
    y = world.holdout["churned"].to_numpy()
    table = churn.evaluate(y, world.model.predict_proba(world.holdout))["reliability"]
    for path in (
        churn.plot_reliability(table, tmp_path / "reliability.png"),
        churn.plot_feature_importance(world.model, tmp_path / "importance.png"),
    ):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- evaluate and risk bands ---------------------------------------------------------------------


def test_evaluate_on_a_hand_case() -> None:
    # 10 rows, 4 churners. Ranked by score: 0.9 (churner), 0.8 (no), 0.7 (churner), ...
    y = [1, 0, 1, 0, 1, 0, 0, 1, 0, 0]
    p = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05]
    m = churn.evaluate(y, p, n_bins=2)
    # Pairs (churner, non-churner) ranked correctly: 0.9 beats 6, 0.7 beats 5, 0.5 beats 4,
    # 0.2 beats 2 -> 17 of 4 * 6 = 24.
    assert m["roc_auc"] == pytest.approx(17 / 24)
    # Top decile = the single highest score, a churner: rate 1 / base rate 0.4.
    assert m["lift_top_decile"] == pytest.approx(2.5)
    assert m["base_rate"] == pytest.approx(0.4)
    assert m["brier"] == pytest.approx(np.mean((np.array(p) - np.array(y)) ** 2))
    # Equal-frequency halves: the 5 lowest scores (1 churner) and the 5 highest (3 churners).
    assert m["reliability"] == [
        {"bin": 1, "mean_predicted": pytest.approx(0.21), "observed_rate": pytest.approx(0.2), "count": 5},
        {"bin": 2, "mean_predicted": pytest.approx(0.7), "observed_rate": pytest.approx(0.6), "count": 5},
    ]
    assert m["expected_calibration_error"] == pytest.approx((5 * 0.01 + 5 * 0.1) / 10)


def test_evaluate_rejects_labels_other_than_zero_and_one() -> None:
    with pytest.raises(churn.ChurnInputError, match="0 or 1"):
        churn.evaluate([0, 2], [0.1, 0.2])


def test_risk_band_boundaries() -> None:
    bands = churn.risk_band(np.array([0.0, 0.2999, 0.3, 0.5999, 0.6, 1.0]))
    # The thresholds belong to the higher band.
    assert bands.tolist() == ["low", "low", "medium", "medium", "high", "high"]
    with pytest.raises(churn.ChurnInputError):
        churn.risk_band(np.array([np.nan]))
