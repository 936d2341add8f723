"""BG/NBD baseline: the paper's formulas written out independently, recovery and Monte-Carlo checks."""

# T keeps the paper's capital letter, so the formulas below read as printed.
# ruff: noqa: N803, N806

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.special import hyp2f1

from jobs.models.churn import bgnbd
from jobs.models.churn.bgnbd import BgNbdParams

# The paper's CDNOW estimates (time in weeks); any positive values would do for the formula checks.
PAPER = BgNbdParams(r=0.243, alpha=4.414, a=0.793, b=2.426)
# Set A is like the paper's (most customers never drop out, heavy-tailed rates); set B has a > 1 and
# few one-off customers, so the hypergeometric terms and the fit are exercised in another regime.
TRUE_A = BgNbdParams(r=0.25, alpha=4.0, a=0.8, b=2.5)
TRUE_B = BgNbdParams(r=1.2, alpha=15.0, a=2.0, b=6.0)


def _paper_likelihood(p: BgNbdParams, x: int, t_x: float, T: float) -> float:
    """Eq. (6) of the paper as printed, in plain floats: the reference the module must reproduce."""

    def beta(u: float, v: float) -> float:
        return math.exp(math.lgamma(u) + math.lgamma(v) - math.lgamma(u + v))

    gamma_ratio = math.exp(math.lgamma(p.r + x) - math.lgamma(p.r))
    alive = beta(p.a, p.b + x) / beta(p.a, p.b) * gamma_ratio * p.alpha**p.r / (p.alpha + T) ** (p.r + x)
    if x == 0:
        return alive
    dropped = beta(p.a + 1, p.b + x - 1) / beta(p.a, p.b) * gamma_ratio * p.alpha**p.r / (p.alpha + t_x) ** (p.r + x)
    return alive + dropped


def test_log_likelihood_matches_the_papers_closed_form() -> None:
    # One customer without repeat purchases, one still-likely-alive regular, one long-silent buyer.
    x, t_x, T = [0, 2, 1], [0.0, 30.43, 1.71], [38.86, 38.86, 38.86]
    expected = sum(math.log(_paper_likelihood(PAPER, *h)) for h in zip(x, t_x, T, strict=True))
    assert bgnbd.log_likelihood(PAPER, x, t_x, T).sum() == pytest.approx(expected, rel=1e-12)


def test_log_likelihood_stays_finite_for_huge_ages() -> None:
    # Rescaling time by c (alpha too) changes each log-likelihood by exactly -x log c: checked at
    # c = 1e8, where alpha^r and (alpha+T)^(r+x) computed directly would overflow for x = 500.
    x, t_x, T, c = np.array([0, 3, 500]), np.array([0.0, 20.0, 30.0]), np.array([40.0, 40.0, 40.0]), 1e8
    scaled = BgNbdParams(PAPER.r, PAPER.alpha * c, PAPER.a, PAPER.b)
    ll = bgnbd.log_likelihood(PAPER, x, t_x, T)
    ll_scaled = bgnbd.log_likelihood(scaled, x, t_x * c, T * c)
    assert np.isfinite(ll_scaled).all()
    np.testing.assert_allclose(ll_scaled, ll - x * math.log(c), rtol=1e-10)


@pytest.mark.parametrize("params", [PAPER, TRUE_B, BgNbdParams(0.7, 3.0, 0.3, 4.0)], ids=["paper", "a>1", "a<1"])
def test_expected_purchases_matches_the_papers_eq_10(params: BgNbdParams) -> None:
    # The module uses Euler's transformation of the 2F1; here is eq. (10) exactly as printed.
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    x, t_x, T, t = np.array([0, 1, 4, 12]), np.array([0.0, 5.0, 20.0, 35.0]), np.full(4, 40.0), 39.0
    bracket = 1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + T + t))
    dropout = np.where(x > 0, a / np.maximum(b + x - 1, 1e-300) * ((alpha + T) / (alpha + t_x)) ** (r + x), 0.0)
    expected = (a + b + x - 1) / (a - 1) * bracket / (1 + dropout)
    np.testing.assert_allclose(bgnbd.expected_purchases(params, t, x, t_x, T), expected, rtol=1e-10)


def test_expected_purchases_is_continuous_at_a_equal_one() -> None:
    # eq. (10) is 0/0 at a = 1; the guarded value must sit between its neighbours' values.
    at_one = bgnbd.expected_purchases(BgNbdParams(0.7, 3.0, 1.0, 4.0), 39.0, [0, 2, 20], [0, 10, 30], [40, 40, 40])
    near = bgnbd.expected_purchases(BgNbdParams(0.7, 3.0, 1.0 + 1e-5, 4.0), 39.0, [0, 2, 20], [0, 10, 30], [40, 40, 40])
    np.testing.assert_allclose(at_one, near, rtol=1e-4)


def test_probability_alive_and_no_purchase_edge_cases() -> None:
    # No repeat purchase yet means no chance to have dropped out; a zero-length window has no purchase.
    assert bgnbd.probability_alive(PAPER, 0, 0.0, 50.0) == 1.0
    assert bgnbd.probability_no_purchase(PAPER, 0.0, [0, 3], [0.0, 10.0], [50.0, 50.0]).tolist() == [1.0, 1.0]
    # Same frequency, older last purchase: less likely alive, so more likely to buy nothing.
    recent, stale = bgnbd.probability_no_purchase(PAPER, 10.0, [3, 3], [49.0, 5.0], [50.0, 50.0])
    assert recent < stale


@pytest.mark.parametrize("true", [TRUE_A, TRUE_B], ids=["A", "B"])
def test_simulate_matches_the_papers_unconditional_mean(true: BgNbdParams) -> None:
    # Eq. (9): E[X(T)] for a fresh customer, checked against the simulator at a fixed age. 200k draws
    # put the standard error near 0.6% of the mean; 3% would catch a wrong dropout or rate draw.
    r, alpha, a, b = true.r, true.alpha, true.a, true.b
    for T in (30.0, 365.0):
        mean_x = (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + T)) ** r * hyp2f1(r, b, a + b - 1, T / (alpha + T)))
        simulated = bgnbd.simulate(true, 200_000, T, np.random.default_rng(7))
        assert simulated.frequency.mean() == pytest.approx(mean_x, rel=0.03)
        assert (simulated.recency <= simulated["T"]).all() and (simulated.recency[simulated.frequency == 0] == 0).all()


@pytest.mark.parametrize("true", [TRUE_A, TRUE_B], ids=["A", "B"])
def test_fit_recovers_simulated_parameters(true: BgNbdParams) -> None:
    # Over 12 seeds of 20k customers the estimates were unbiased with relative SDs of about 1% for
    # r and alpha and 2-4.5% for a and b; the tolerances are about 4 SDs or more, so a fit that is
    # off by more than sampling noise fails.
    rng = np.random.default_rng(2005)
    histories = bgnbd.simulate(true, 20_000, rng.uniform(30, 365, 20_000), rng)
    fitted = bgnbd.fit(histories.frequency, histories.recency, histories["T"])
    assert fitted.r == pytest.approx(true.r, rel=0.06)
    assert fitted.alpha == pytest.approx(true.alpha, rel=0.06)
    assert fitted.a == pytest.approx(true.a, rel=0.15)
    assert fitted.b == pytest.approx(true.b, rel=0.20)


def test_fit_with_weights_equals_fit_on_repeated_rows() -> None:
    # Grouping identical histories with a count must not change the estimate.
    x, t_x, T = (
        np.array([0, 1, 2, 5, 0]),
        np.array([0.0, 10.0, 30.0, 50.0, 0.0]),
        np.array([60.0, 40.0, 90.0, 55.0, 20.0]),
    )
    counts = np.array([30, 10, 5, 2, 20])
    grouped = bgnbd.fit(x, t_x, T, weights=counts)
    repeated = bgnbd.fit(np.repeat(x, counts), np.repeat(t_x, counts), np.repeat(T, counts))
    np.testing.assert_allclose(
        [grouped.r, grouped.alpha, grouped.a, grouped.b],
        [repeated.r, repeated.alpha, repeated.a, repeated.b],
        rtol=1e-3,
    )


@pytest.mark.parametrize("true", [TRUE_A, TRUE_B], ids=["A", "B"])
def test_no_purchase_probability_matches_simulated_futures(true: BgNbdParams) -> None:
    # Whole lifetimes are simulated; the history is what happened in [0, T] and the outcome is the
    # count in (T, T+60]. With the true parameters the predictions must match the simulated shares:
    # overall (SE ~0.0012 at 100k customers) and within frequency groups (SE <= 0.003).
    rng = np.random.default_rng(11)
    n, horizon = 100_000, 60.0
    sim = bgnbd.simulate(true, n, rng.uniform(30, 365, n), rng, horizon=horizon)
    p_none = bgnbd.probability_no_purchase(true, horizon, sim.frequency, sim.recency, sim["T"])
    bought_nothing = (sim.future_purchases == 0).to_numpy()
    assert abs(p_none.mean() - bought_nothing.mean()) < 0.01
    for group in (sim.frequency == 0, sim.frequency.between(1, 3), sim.frequency >= 4):
        mask = group.to_numpy()
        assert abs(p_none[mask].mean() - bought_nothing[mask].mean()) < 0.015
    # The same continuation checks eq. (10): mean future count, SE about 1.5% of it.
    expected = bgnbd.expected_purchases(true, horizon, sim.frequency, sim.recency, sim["T"])
    assert expected.mean() == pytest.approx(sim.future_purchases.mean(), rel=0.05)


def test_summarise_purchases_counts_distinct_days_up_to_as_of() -> None:
    log = pd.DataFrame(
        {
            "customer_id": ["c1", "c1", "c1", "c1", "c2", "c3", "c3", "c3", "c4", None, "c2"],
            "placed_at": pd.to_datetime(
                [
                    "2026-01-01 09:00",
                    "2026-01-01 18:00",  # same day as the first: one shopping occasion
                    "2026-01-05 10:00",
                    "2026-01-20 08:00",  # after as_of: ignored
                    "2026-01-03 12:00",
                    "2026-01-02 08:00",
                    "2026-01-04 08:00",
                    "2026-01-10 23:59",  # on the as_of day but after the as_of moment: ignored
                    "2026-01-11 08:00",  # c4's only purchase is after as_of, so c4 is absent
                    "2026-01-02 08:00",  # no customer: dropped
                    None,  # no timestamp: dropped
                ]
            ),
        }
    )
    summary = bgnbd.summarise_purchases(log, "customer_id", "placed_at", "2026-01-10 12:00")
    expected = pd.DataFrame(
        {
            "customer_id": ["c1", "c2", "c3"],
            "frequency": np.array([1, 0, 1], dtype=np.int64),  # c1: Jan 1 and Jan 5; c3: Jan 2 and Jan 4
            "recency": [4.0, 0.0, 2.0],  # last purchase day minus first purchase day
            "T": [9.0, 7.0, 8.0],  # Jan 10 minus the first purchase day
        }
    )
    pd.testing.assert_frame_equal(summary, expected)


@pytest.mark.parametrize(
    ("frequency", "recency", "T", "message"),
    [
        ([], [], [], "zero customers"),
        ([1], [40.0], [30.0], "recency cannot exceed T"),
        ([-1], [0.0], [30.0], "non-negative"),
        ([1], [-2.0], [30.0], "non-negative"),
        ([0], [5.0], [30.0], "frequency 0"),
        ([1.5], [5.0], [30.0], "whole number"),
        ([1], [np.nan], [30.0], "finite"),
    ],
)
def test_fit_rejects_impossible_histories(frequency, recency, T, message: str) -> None:
    with pytest.raises(bgnbd.BgNbdInputError, match=message):
        bgnbd.fit(frequency, recency, T)


def test_input_errors_are_value_errors() -> None:
    with pytest.raises(ValueError, match="weights"):
        bgnbd.fit([0, 1], [0.0, 1.0], [5.0, 5.0], weights=[1.0, -1.0])
    with pytest.raises(ValueError, match="positive"):
        BgNbdParams(r=0.0, alpha=1.0, a=1.0, b=1.0)
    with pytest.raises(ValueError, match="horizon"):
        bgnbd.probability_no_purchase(PAPER, -1.0, [0], [0.0], [5.0])
