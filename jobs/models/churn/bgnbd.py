"""BG/NBD customer-purchase baseline (Fader, Hardie & Lee 2005, "Counting Your Customers the Easy Way").

Written on numpy/scipy because no maintained library fits our stack: `btyd` resolves to pymc 4/aesara
with autograd 1.4, which fails to import on Python 3.11, and `lifetimes` 0.11.3 still runs on numpy 2
but its project is archived and unmaintained.

The model, in the paper's words: while active, a customer buys at Poisson rate lambda; right after
each repeat purchase they become inactive with probability p; lambda ~ Gamma(r, rate alpha) and
p ~ Beta(a, b) across customers. A customer's history is summarised by three numbers, all measured
from their first purchase (time 0, which is not counted):

- frequency x: the number of repeat purchases,
- recency t_x: the time of the last repeat purchase (0 when x == 0),
- T: the customer's age at the end of the observation window,

with times in days. Every function takes these as array-likes that broadcast against each other.
"""

# T (the customer's age) keeps the paper's capital letter in signatures, as the other libraries do.
# ruff: noqa: N803

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import betaln, expit, gammaln, hyp2f1

# Log-parameters are kept in a box so that degenerate data (say, no one ever drops out, b -> inf)
# ends at a large finite value instead of overflowing.
_LOG_BOUNDS = (-12.0, 12.0)
# (a+b+x-1)/(a-1) in the expected-purchases formula is 0/0 at a == 1; the limit is smooth, so a is
# nudged off 1 by this much rather than coding the limit separately.
_A_ONE_GUARD = 1e-7


class BgNbdInputError(ValueError):
    """Customer histories that no BG/NBD customer could have produced."""


@dataclass(frozen=True)
class BgNbdParams:
    """Population parameters: lambda ~ Gamma(r, rate alpha), p ~ Beta(a, b); alpha is in days."""

    r: float
    alpha: float
    a: float
    b: float

    def __post_init__(self) -> None:
        values = (self.r, self.alpha, self.a, self.b)
        if not all(np.isfinite(v) and v > 0 for v in values):
            raise BgNbdInputError(f"BG/NBD parameters must be finite and positive, got {self}")


def _histories(frequency, recency, T) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Broadcast and check (x, t_x, T): a bad history would otherwise give a quiet NaN or -inf."""
    x, t_x, age = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (frequency, recency, T)))
    if not (np.isfinite(x).all() and np.isfinite(t_x).all() and np.isfinite(age).all()):
        raise BgNbdInputError("frequency, recency and T must be finite (no NaN or inf)")
    if (x < 0).any() or (t_x < 0).any() or (age < 0).any():
        raise BgNbdInputError("frequency, recency and T must be non-negative")
    if (x != np.round(x)).any():
        raise BgNbdInputError("frequency counts repeat purchases and must be a whole number")
    if (t_x > age).any():
        raise BgNbdInputError("recency cannot exceed T: the last purchase lies inside the observation window")
    if ((x == 0) & (t_x != 0)).any():
        raise BgNbdInputError("a customer with no repeat purchase (frequency 0) must have recency 0")
    return x, t_x, age


def _log_dropout_odds(params: BgNbdParams, x: np.ndarray, t_x: np.ndarray, age: np.ndarray) -> np.ndarray:
    """log of P(dead at T, history) / P(alive at T, history); -inf when x == 0 (no chance to drop out yet)."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    has_repeat = x > 0
    # b + x - 1 <= 0 only when x == 0, where the term is masked out anyway.
    b_x = np.where(has_repeat, b + x - 1, 1.0)
    log_odds = np.log(a) - np.log(b_x) + (r + x) * (np.log(alpha + age) - np.log(alpha + t_x))
    return np.where(has_repeat, log_odds, -np.inf)


def log_likelihood(params: BgNbdParams, frequency, recency, T) -> np.ndarray:
    """Per-customer log-likelihood of (x, t_x, T): eq. (6) of the paper, computed in logs.

    L = B(a, b+x)/B(a, b) * G(r+x) alpha^r / (G(r) (alpha+T)^(r+x))
        + [x > 0] B(a+1, b+x-1)/B(a, b) * G(r+x) alpha^r / (G(r) (alpha+t_x)^(r+x)).
    The first term is "still alive at T", the second "dropped out right after the last purchase".
    Written with gammaln/betaln and combined with logaddexp, so large T * alpha or x cannot overflow.
    """
    x, t_x, age = _histories(frequency, recency, T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    common = gammaln(r + x) - gammaln(r) + r * np.log(alpha) - betaln(a, b)
    alive = betaln(a, b + x) - (r + x) * np.log(alpha + age)
    has_repeat = x > 0
    b_x = np.where(has_repeat, b + x - 1, 1.0)
    dropped = np.where(has_repeat, betaln(a + 1, b_x) - (r + x) * np.log(alpha + t_x), -np.inf)
    return common + np.logaddexp(alive, dropped)


def probability_alive(params: BgNbdParams, frequency, recency, T) -> np.ndarray:
    """P(alive at T | x, t_x, T), eq. (8): the ratio of the "alive" term to the whole likelihood."""
    x, t_x, age = _histories(frequency, recency, T)
    return expit(-_log_dropout_odds(params, x, t_x, age))


def expected_purchases(params: BgNbdParams, t, frequency, recency, T) -> np.ndarray:
    """Expected number of purchases in the next t days, (T, T+t], given the history: eq. (10).

    E = P(alive) * (a+b+x-1)/(a-1) * [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; z)],
    z = t/(alpha+T+t). The 2F1 there grows like (1-z)^(a-1-r-x) and overflows for large x and t, so
    Euler's transformation 2F1(A, B; C; z) = (1-z)^(C-A-B) 2F1(C-A, C-B; C; z) is used instead:
    the bracket becomes 1 - (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z), whose factors stay O(1).
    """
    x, t_x, age, horizon = np.broadcast_arrays(*_histories(frequency, recency, T), np.asarray(t, dtype=float))
    if not np.isfinite(horizon).all() or (horizon < 0).any():
        raise BgNbdInputError("the horizon t must be finite and non-negative")
    r, alpha, b = params.r, params.alpha, params.b
    a = params.a if abs(params.a - 1) > _A_ONE_GUARD else 1 + _A_ONE_GUARD
    log_one_minus_z = np.log(alpha + age) - np.log(alpha + age + horizon)
    z = horizon / (alpha + age + horizon)
    bracket = 1 - np.exp((a - 1) * log_one_minus_z) * hyp2f1(a + b - 1 - r, a - 1, a + b + x - 1, z)
    expected = (a + b + x - 1) / (a - 1) * bracket * expit(-_log_dropout_odds(params, x, t_x, age))
    return np.clip(expected, 0.0, None)


def probability_no_purchase(params: BgNbdParams, t, frequency, recency, T) -> np.ndarray:
    """P(no purchase in the next t days, (T, T+t] | history): the baseline's churn probability.

    Derivation. A customer dead at T buys nothing. A customer alive at T stays alive until their next
    purchase, because BG/NBD drops customers out only right after a purchase; so, given lambda, no
    purchase in (T, T+t] is the event "the next exponential waiting time exceeds t", probability
    exp(-lambda t) (memorylessness). Given the history and alive at T, the likelihood in lambda is
    lambda^x exp(-lambda T), so lambda's posterior is Gamma(r+x, rate alpha+T) (free of p), and
    E[exp(-lambda t)] = ((alpha+T)/(alpha+T+t))^(r+x). Hence

        P0 = (1 - P(alive)) + P(alive) * ((alpha+T)/(alpha+T+t))^(r+x)
           = 1 - P(alive) * (1 - ((alpha+T)/(alpha+T+t))^(r+x)),

    with the last factor computed as -expm1(...) so that small t keeps its precision.
    """
    x, t_x, age, horizon = np.broadcast_arrays(*_histories(frequency, recency, T), np.asarray(t, dtype=float))
    if not np.isfinite(horizon).all() or (horizon < 0).any():
        raise BgNbdInputError("the horizon t must be finite and non-negative")
    r, alpha = params.r, params.alpha
    p_buy_if_alive = -np.expm1((r + x) * (np.log(alpha + age) - np.log(alpha + age + horizon)))
    return 1 - expit(-_log_dropout_odds(params, x, t_x, age)) * p_buy_if_alive


def fit(frequency, recency, T, weights=None, l2: float = 0.0, n_starts: int = 3) -> BgNbdParams:
    """Maximum-likelihood BgNbdParams for the given histories.

    Minimises the (weighted) mean negative log-likelihood over log-parameters with L-BFGS-B, so the
    parameters stay positive without constraints. Times are divided by their mean T first: alpha is
    then of order one like r, a and b, and one set of starting points serves any time unit; alpha is
    scaled back at the end. The best of `n_starts` starts is kept, since the surface is flat in (a, b)
    when few customers have repeat purchases.

    Args:
        frequency, recency, T: customer histories (see the module docstring), in days.
        weights: optional non-negative count per history, e.g. when identical histories are grouped.
        l2: penalty on the squared log-parameters (in days), added to the mean negative log-likelihood;
            0 (off) by default. It pulls estimates towards 1 when the data cannot pin them down.
        n_starts: number of starting points tried (at most 4).

    Returns:
        The fitted parameters.

    Raises:
        BgNbdInputError: (a ValueError) on empty input, an impossible history or bad weights.
    """
    x, t_x, age = (v.ravel() for v in _histories(frequency, recency, T))
    if x.size == 0:
        raise BgNbdInputError("cannot fit BG/NBD on zero customers")
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float).ravel()
    if w.shape != x.shape or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise BgNbdInputError("weights must be finite, non-negative, one per customer, with a positive sum")
    scale = float(age.mean()) if age.mean() > 0 else 1.0
    t_x_s, age_s, w = t_x / scale, age / scale, w / w.sum()

    def objective(log_params: np.ndarray) -> float:
        r, alpha_s, a, b = np.exp(log_params)
        ll = log_likelihood(BgNbdParams(r, alpha_s, a, b), x, t_x_s, age_s)
        log_in_days = log_params + np.array([0.0, np.log(scale), 0.0, 0.0])
        return float(-(w @ ll) + l2 * np.sum(log_in_days**2))

    starts = [(1.0, 1.0, 1.0, 1.0), (0.5, 0.2, 0.5, 2.0), (2.0, 5.0, 2.0, 5.0), (0.2, 0.05, 1.0, 1.0)]
    best = None
    for start in starts[: max(1, min(n_starts, len(starts)))]:
        result = minimize(objective, np.log(start), method="L-BFGS-B", bounds=[_LOG_BOUNDS] * 4)
        if np.isfinite(result.fun) and (best is None or result.fun < best.fun):
            best = result
    if best is None:
        raise BgNbdInputError("BG/NBD likelihood was not finite at any starting point")
    r, alpha_s, a, b = np.exp(best.x)
    return BgNbdParams(r=float(r), alpha=float(alpha_s * scale), a=float(a), b=float(b))


def simulate(
    params: BgNbdParams, n_customers: int, T, rng: np.random.Generator, horizon: float | None = None
) -> pd.DataFrame:
    """Draw customer histories from the BG/NBD story, observed for T days after each first purchase.

    Vectorised rather than event by event: a customer's purchases until dropout number
    N ~ Geometric(p) (they drop out right after the N-th), and the Poisson process puts
    K ~ Poisson(lambda T) purchases in (0, T], so x = min(N, K); given K, purchase times are K sorted
    uniforms on (0, T], so t_x = T * Beta(x, K - x + 1), the x-th of them.

    Args:
        params: population parameters.
        n_customers: number of customers.
        T: observation length in days, a scalar or one value per customer.
        rng: the random generator (pass a seeded one for reproducible draws).
        horizon: if given, also count each customer's purchases in (T, T + horizon] as
            `future_purchases`; they are the same customers' continuation, for checking predictions.

    Returns:
        Columns frequency (int), recency and T (float days), and future_purchases (int) with a horizon.
    """
    age = np.broadcast_to(np.asarray(T, dtype=float), (n_customers,)).copy()
    lam = rng.gamma(shape=params.r, scale=1 / params.alpha, size=n_customers)
    # p == 0 exactly would be an endless customer; 1e-12 keeps Geometric's draws inside int64.
    p = np.clip(rng.beta(params.a, params.b, size=n_customers), 1e-12, 1.0)
    purchases_until_dropout = rng.geometric(p)
    in_window = rng.poisson(lam * age)
    x = np.minimum(purchases_until_dropout, in_window)
    recency = np.zeros(n_customers)
    has_repeat = x > 0
    recency[has_repeat] = age[has_repeat] * rng.beta(x[has_repeat], in_window[has_repeat] - x[has_repeat] + 1)
    out = pd.DataFrame({"frequency": x.astype(np.int64), "recency": recency, "T": age})
    if horizon is not None:
        # Poisson increments are independent: the future window gets its own draw, and only customers
        # still alive at T (all N > K purchases not yet made) can use the N - x remaining ones.
        later = rng.poisson(lam * horizon)
        out["future_purchases"] = np.minimum(purchases_until_dropout - x, later).astype(np.int64)
    return out


def summarise_purchases(purchases: pd.DataFrame, customer_col: str, time_col: str, as_of) -> pd.DataFrame:
    """Turn a transaction log into one BG/NBD history (frequency, recency, T) per customer as of `as_of`.

    Purchases after `as_of` are ignored, and so are rows without a customer or a timestamp. Time is
    counted in calendar days, as in the paper: purchases on one day count once, because several
    orders on a day are one shopping occasion rather than independent Poisson events, and
    `frequency` is the number of distinct purchase days after the first. `recency` and `T` run from
    the first purchase day to the last purchase day and to the day of `as_of`, so both are whole
    numbers of days (as floats) and recency <= T. Customers with no purchase by `as_of` are absent.

    Returns:
        Columns customer_col, frequency (int), recency and T (float days), sorted by customer.
    """
    as_of = pd.Timestamp(as_of)
    log = purchases[[customer_col, time_col]].dropna()
    times = pd.to_datetime(log[time_col])
    days = pd.DataFrame({customer_col: log[customer_col], "day": times.dt.normalize()})[times <= as_of]
    days = days.drop_duplicates()
    per_customer = days.groupby(customer_col, sort=True)["day"].agg(["min", "max", "count"])
    one_day = pd.Timedelta(days=1)
    return pd.DataFrame(
        {
            customer_col: per_customer.index,
            "frequency": (per_customer["count"] - 1).astype(np.int64).to_numpy(),
            "recency": ((per_customer["max"] - per_customer["min"]) / one_day).astype(float).to_numpy(),
            "T": ((as_of.normalize() - per_customer["min"]) / one_day).astype(float).to_numpy(),
        }
    )
