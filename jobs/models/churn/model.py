"""Churn model core: labels, a leak-free time split, calibrated LightGBM, evaluation, BG/NBD baseline.

The model is BG/NBD plus boosted corrections: BG/NBD (fitted on the training rows' purchase-timing
columns) gives each row a prior log-odds of "no order in the horizon", and LightGBM boosts from
that prior (``init_score``), learning only what delivery experience, support and engagement add.
Measured on the simulated world (``cxlake bench-models``): trees alone, without the prior, ranked
below BG/NBD itself, because a few months of weekly panels cannot teach them purchase-timing as
well as the BG/NBD structure does.

Pure pandas/numpy, so every rule here is testable without Spark; the nightly job reads
``features.customer_daily`` and the orders, converts them to pandas and calls these functions.

The question the model answers, for a customer row of ``features.customer_daily`` as of date D:
"will this customer place no order in the next ``horizon_days`` days, (D, D + horizon]?" Days are
calendar days in the feature table's clock: the window opens the day after D (an order on D itself
is already in the features) and includes the day D + horizon.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import lightgbm as lgb
import mlflow.pyfunc
import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

from jobs.lake.feature_catalog import features_of
from jobs.models import LGBM_THREADS
from jobs.models.churn import bgnbd

FEATURE_TABLE = "features.customer_daily"
# The default of LakeConfig.churn_horizon_days; the job passes the configured value.
DEFAULT_HORIZON_DAYS = 60
# label_churn records its horizon here, so time_split can default its gap to it.
HORIZON_ATTR = "churn_horizon_days"
LABEL = "churned"

# Risk bands for the CX team's queues: "high" is worth a proactive contact, "medium" a softer touch
# (voucher, survey). Thresholds are on the calibrated probability, so they keep their meaning
# across retrains.
HIGH_RISK = 0.6
MEDIUM_RISK = 0.3

CALIBRATION_SHARE = 0.25  # of the training as-of dates, the latest ones, held out for calibration
ISOTONIC_MIN_ROWS = 1000  # below this isotonic regression overfits its steps; Platt scaling instead
# Calibrated probabilities are kept off 0 and 1: isotonic steps can reach them, and one confident
# miss would then make the log loss infinite.
PROBA_CLIP = 1e-4
NUM_BOOST_ROUND = 200  # at most; train_churn_model stops earlier on its held-out dates
EARLY_STOPPING_ROUNDS = 20
ISOTONIC_TIE_BREAK = 1e-6
MIN_AUC_GAIN = 1e-4  # held-out ROC AUC a booster must add to BG/NBD's to be kept
# Small-data LightGBM settings; deterministic=True, column-wise histograms and a fixed seed give the
# same model on every run, whatever the thread count (jobs.models.LGBM_THREADS).
DEFAULT_PARAMS: dict[str, object] = {
    "objective": "binary",
    "learning_rate": 0.05,
    "num_leaves": 15,
    "min_data_in_leaf": 20,
    "lambda_l2": 1.0,
    "num_threads": LGBM_THREADS,
    "deterministic": True,
    "force_col_wise": True,
    "verbosity": -1,
}
TOP_DECILE = 0.1
# The name top_drivers gives the BG/NBD prior's push (its value is the prior P(no order)).
PRIOR_DRIVER = "bgnbd_prior"
# features.customer_daily columns that make up BG/NBD's (frequency, recency, T) history.
HISTORY_COLUMNS = ("purchase_days_total", "tenure_days", "days_since_last_order")


class ChurnInputError(ValueError):
    """Input frames or arguments the churn functions cannot use as given."""


def feature_names() -> list[str]:
    """The model features: the ``feature: true`` columns of the feature table's contract, in order."""
    return [f.name for f in features_of(FEATURE_TABLE)]


# --- helpers -------------------------------------------------------------------------------------


def _require(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ChurnInputError(f"{what} lacks column(s) {missing}")


def _days(values: pd.Series) -> pd.Series:
    """Dates or timestamps -> midnight timestamps (datetime64[ns]), the calendar day they fall on."""
    stamps = pd.to_datetime(values)
    if stamps.dt.tz is not None:
        raise ChurnInputError("timestamps must be naive, in the feature table's clock (as Spark's toPandas gives)")
    return stamps.dt.normalize().astype("datetime64[ns]")


def _end_of_day(day) -> pd.Timestamp:
    """The last instant of ``day``: what "as of the end of D" means for `bgnbd.summarise_purchases`."""
    return pd.Timestamp(day).normalize() + pd.Timedelta(days=1) - pd.Timedelta(1, "ns")


def _gap(frame: pd.DataFrame, gap_days: int | None) -> int:
    gap = frame.attrs.get(HORIZON_ATTR) if gap_days is None else gap_days
    if gap is None:
        raise ChurnInputError(
            "no gap: pass gap_days (the label horizon); only frames from label_churn carry it themselves"
        )
    if int(gap) < 0:
        raise ChurnInputError(f"gap_days must be >= 0, got {gap}")
    return int(gap)


def _matrix(frame: pd.DataFrame, names: Sequence[str]) -> np.ndarray:
    """The feature columns as float64, nulls (None, pd.NA, NaN) as NaN: LightGBM's missing value."""
    _require(frame, names, "the frame")
    return frame[list(names)].to_numpy(dtype=np.float64, na_value=np.nan)


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, 1e-12, 1 - 1e-12)
    return np.log(q) - np.log1p(-q)


def purchase_histories(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """BG/NBD's (frequency, recency, T) in days per row, from the feature table's history columns.

    Same definitions as `bgnbd.summarise_purchases` on the order log: frequency = purchase days
    after the first, recency = first to last purchase day, T = first purchase day to the as-of day.
    """
    _require(frame, HISTORY_COLUMNS, "features")
    age = frame["tenure_days"].to_numpy(dtype=float)
    return (
        frame["purchase_days_total"].to_numpy(dtype=float) - 1,
        age - frame["days_since_last_order"].to_numpy(dtype=float),
        age,
    )


def fit_purchase_prior(rows: pd.DataFrame) -> bgnbd.BgNbdParams:
    """BG/NBD population parameters from the histories of the latest as-of date of ``rows`` (one per customer)."""
    days = _days(rows["as_of_date"])
    latest = rows[days == days.max()]
    return bgnbd.fit(*purchase_histories(latest))


def _format_value(value: float) -> str:
    if math.isnan(value):
        return "null"
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.2f}".rstrip("0").rstrip(".")


# --- labels and split ----------------------------------------------------------------------------


def label_churn(
    features: pd.DataFrame,
    orders: pd.DataFrame,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    *,
    observed_until: dt.date | str | pd.Timestamp,
) -> pd.DataFrame:
    """Label each feature row: 1 when the customer placed no order in (as_of_date, as_of_date + horizon].

    Days are whole calendar days: an order on as_of_date itself is history (the features saw it), an
    order on as_of_date + horizon_days still counts. A row whose window is not over by
    ``observed_until`` is dropped rather than labelled: "no order yet" in an unfinished window would
    read as churn (right-censoring), and the latest rows would all look like churners.

    Args:
        features: rows of ``features.customer_daily``: customer_key, as_of_date (date or datetime64)
            and the feature columns.
        orders: customer_key and placed_at (naive timestamps in the feature table's clock); every
            order known up to ``observed_until``, not only those of the featured customers.
        horizon_days: the label window length in days.
        observed_until: the last date whose orders are complete in ``orders`` (for the lake: the last
            run date minus the allowed lateness of raw events).

    Returns:
        The kept feature rows (input order, new index) plus ``churned`` (int64 0/1). The frame's
        ``attrs`` record the horizon, which `time_split` uses as its default gap.

    Raises:
        ChurnInputError: missing columns, a non-positive horizon or tz-aware timestamps.
    """
    if horizon_days < 1:
        raise ChurnInputError(f"horizon_days must be >= 1, got {horizon_days}")
    _require(features, ["customer_key", "as_of_date"], "features")
    _require(orders, ["customer_key", "placed_at"], "orders")
    as_of = _days(features["as_of_date"])
    horizon = pd.Timedelta(days=horizon_days)
    complete = (as_of + horizon <= pd.Timestamp(observed_until).normalize()).to_numpy()
    kept = features.loc[complete].reset_index(drop=True)

    rows = pd.DataFrame(
        {
            "_row": np.arange(len(kept)),
            "customer_key": kept["customer_key"].astype(object).to_numpy(),
            "_as_of": as_of[complete].to_numpy(),
        }
    ).sort_values("_as_of", kind="mergesort")
    log = orders[["customer_key", "placed_at"]].dropna()
    order_days = (
        pd.DataFrame(
            {"customer_key": log["customer_key"].astype(object).to_numpy(), "_day": _days(log["placed_at"]).to_numpy()}
        )
        .drop_duplicates()
        .sort_values("_day", kind="mergesort")
    )
    # Each row's first order day strictly after as_of_date; churned when there is none in the window.
    matched = pd.merge_asof(
        rows,
        order_days,
        left_on="_as_of",
        right_on="_day",
        by="customer_key",
        direction="forward",
        allow_exact_matches=False,
    ).sort_values("_row")
    bought = (matched["_day"] <= matched["_as_of"] + horizon).to_numpy()  # NaT (no later order) -> False
    labelled = kept.assign(**{LABEL: (~bought).astype(np.int64)})
    labelled.attrs[HORIZON_ATTR] = horizon_days
    return labelled


def time_split(
    labelled: pd.DataFrame, holdout_share: float = 0.25, gap_days: int | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split by as-of date so that the model is judged on a future it could not have seen.

    Rule: the holdout is the latest ``round(holdout_share * n_dates)`` distinct as-of dates (at least
    one, and one date is always left for training). Training keeps only as-of dates D with
    D + gap_days <= H, H the first holdout date. With gap_days = the label horizon, every training
    label window (D, D + horizon] has ended by H, so:

    - no training label uses an order placed in the holdout period;
    - a customer's training and holdout windows never overlap (a row at D and one at D + 7 would
      otherwise share 53 of 60 days of outcome, and the holdout would reward memorising them);
    - the model is trained exactly as it will be used: on dates whose outcome is known at scoring.

    The dates strictly between H - gap_days and H are in neither part.

    Args:
        labelled: rows with as_of_date, e.g. from `label_churn`.
        holdout_share: share of the distinct as-of dates held out, in (0, 1).
        gap_days: the label horizon; None takes it from `label_churn`'s ``attrs``.

    Returns:
        (train, holdout), each with a fresh index.

    Raises:
        ChurnInputError: a bad share, fewer than two dates, no gap known, or no date early enough to
            train on.
    """
    if not 0 < holdout_share < 1:
        raise ChurnInputError(f"holdout_share must be in (0, 1), got {holdout_share}")
    gap = pd.Timedelta(days=_gap(labelled, gap_days))
    as_of = _days(labelled["as_of_date"])
    dates = np.sort(as_of.unique())
    if len(dates) < 2:
        raise ChurnInputError("a time split needs at least two as-of dates")
    n_holdout = min(len(dates) - 1, max(1, int(len(dates) * holdout_share + 0.5)))
    first_holdout = pd.Timestamp(dates[-n_holdout])
    is_train = (as_of + gap <= first_holdout).to_numpy()
    if not is_train.any():
        raise ChurnInputError(
            f"no as-of date is at least {gap.days} days before the first holdout date {first_holdout.date()}: "
            "the data must span more than the label horizon"
        )
    is_holdout = (as_of >= first_holdout).to_numpy()
    return labelled[is_train].reset_index(drop=True), labelled[is_holdout].reset_index(drop=True)


# --- the model -----------------------------------------------------------------------------------


@dataclass
class ChurnModel:
    """A LightGBM churn booster and the calibrator of its scores.

    Attributes:
        booster: LightGBM booster boosted from the prior's log-odds; None when boosting did not
            beat the prior alone on the held-out dates (the model is then BG/NBD, calibrated).
        calibrator: maps raw scores to calibrated probabilities (isotonic, or Platt on the logit).
        feature_names: the booster's features, in its column order.
        calibration: "isotonic" or "sigmoid".
        n_fit_rows, n_calibration_rows: rows the booster and the calibrator were fitted on.
    """

    booster: lgb.Booster | None
    calibrator: IsotonicRegression | LogisticRegression
    feature_names: list[str]
    calibration: str
    prior: bgnbd.BgNbdParams
    horizon_days: int
    prior_logit_mean: float  # over the fit rows: the prior's push in top_drivers is relative to it
    n_fit_rows: int = 0
    n_calibration_rows: int = 0

    def prior_logit(self, frame: pd.DataFrame) -> np.ndarray:
        """BG/NBD's log-odds of no order in the horizon, from each row's purchase-timing history."""
        return _logit(bgnbd.probability_no_purchase(self.prior, self.horizon_days, *purchase_histories(frame)))

    def raw_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Uncalibrated prior + booster probabilities; for diagnostics (calibration gain), not for decisions."""
        score = self.prior_logit(frame)
        if self.booster is not None:
            score = score + self.booster.predict(_matrix(frame, self.feature_names), raw_score=True)
        return 1 / (1 + np.exp(-score))

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated P(no order in the next horizon days) per row of ``frame`` (needs the feature columns)."""
        return self._calibrate(self.raw_proba(frame))

    def _calibrate(self, raw: np.ndarray) -> np.ndarray:
        if self.calibration == "isotonic":
            # Isotonic steps tie every score of a step; a nudge far below any figure's rounding keeps
            # the model's own order inside a step, so calibration never costs ranking (AUC).
            # (After the clip, which would tie the extreme steps again; it stays inside (0, 1).)
            stepped = np.clip(self.calibrator.predict(raw), PROBA_CLIP, 1 - PROBA_CLIP)
            return stepped + ISOTONIC_TIE_BREAK * (raw - 0.5)
        calibrated = self.calibrator.predict_proba(_logit(raw)[:, None])[:, 1]
        return np.clip(calibrated, PROBA_CLIP, 1 - PROBA_CLIP)

    def top_drivers(self, frame: pd.DataFrame, k: int = 3) -> list[list[str]]:
        """Per row, the (at most) k features pushing its score most towards churn, largest first.

        Contributions are LightGBM's TreeSHAP values (``pred_contrib``) of the booster, in log-odds,
        plus the BG/NBD prior's push (its log-odds minus its mean over the training rows), named
        ``bgnbd_prior``. Only positive pushes are drivers, so a low-risk row may have fewer than k.
        Each entry reads like ``"late_deliveries_90d=2 (+0.41)"``: the feature, its value, its push.
        """
        values = _matrix(frame, self.feature_names)
        if self.booster is None:
            contrib = np.zeros_like(values, dtype="float64")
        else:
            contrib = self.booster.predict(values, pred_contrib=True)[:, :-1]  # the last column is the bias
        prior = self.prior_logit(frame)
        names = [*self.feature_names, PRIOR_DRIVER]
        values = np.column_stack([values, 1 / (1 + np.exp(-prior))])
        contrib = np.column_stack([contrib, prior - self.prior_logit_mean])
        order = np.argsort(-contrib, axis=1, kind="stable")[:, :k]
        return [
            [f"{names[j]}={_format_value(values[i, j])} ({contrib[i, j]:+.2f})" for j in row if contrib[i, j] > 0]
            for i, row in enumerate(order)
        ]


def train_churn_model(
    train: pd.DataFrame,
    feature_names: Sequence[str],
    params: dict | None = None,
    seed: int = 7,
    *,
    gap_days: int | None = None,
    calibration_share: float = CALIBRATION_SHARE,
    prior_histories: pd.DataFrame | None = None,
) -> ChurnModel:
    """Fit a LightGBM churn classifier on the earlier training dates and calibrate it on the later ones.

    Tree scores are ranked well but their probabilities are off (boosting over-/under-shoots, and
    churn drifts over time), while risk bands and expected-churn sums need real probabilities. So
    the training rows are split again with `time_split` (same gap rule): the booster learns on the
    earlier dates and the calibrator on the latest ``calibration_share`` of dates, whose labels the
    booster never saw. It sees the booster's scores as they will look on new dates.
    Isotonic regression with >= ISOTONIC_MIN_ROWS calibration rows, otherwise Platt scaling. The
    returned prior and booster are then refitted on all of ``train`` (the calibrator is kept).

    Args:
        train: labelled rows (``churned`` plus the feature columns and as_of_date).
        feature_names: the model features, normally `feature_names()`.
        params: LightGBM parameters overriding DEFAULT_PARAMS; ``num_boost_round`` is accepted too.
        seed: LightGBM's seed (with deterministic=True the model is reproducible).
        gap_days: the label horizon, for the inner split; None takes it from ``train.attrs``.
        calibration_share: share of the training dates used for calibration.
        prior_histories: rows (HISTORY_COLUMNS, as_of_date) of a later as-of date than any labelled
            one, e.g. the night's own: the shipped model's BG/NBD prior is fitted on the latest of
            them. BG/NBD needs no label, so its parameters need not be a horizon old; the booster
            is refitted from that prior. None: the training rows' latest date.

    Returns:
        The fitted ChurnModel.

    Raises:
        ChurnInputError: missing columns, too few dates, or a part with only one class.
    """
    names = list(feature_names)
    _require(train, [LABEL, *names, *HISTORY_COLUMNS], "train")
    horizon = _gap(train, gap_days)
    fit_rows, calibration_rows = time_split(train, calibration_share, horizon)
    for part, what in ((fit_rows, "fit"), (calibration_rows, "calibration")):
        if part[LABEL].nunique() < 2:
            raise ChurnInputError(f"the {what} rows hold only one class; more dates are needed")

    settings = {**DEFAULT_PARAMS, **(params or {}), "seed": seed}
    max_rounds = int(settings.pop("num_boost_round", NUM_BOOST_ROUND))
    held_out = _fit_prior_and_booster(fit_rows, names, horizon, settings, max_rounds, calibration_rows)
    # The shipped model is the one the calibrator is fitted for: the booster of the earlier dates
    # (its rounds chosen on the later ones), with the freshest prior BG/NBD can have. A refit on
    # every date would be a model the calibrator never saw (its scores are sharper on the rows it
    # learnt from): it showed as calibration making the Brier score worse on the holdout.
    shipped = held_out
    if prior_histories is not None:
        prior = fit_purchase_prior(prior_histories)
        shipped = replace(held_out, prior=prior)
        shipped = replace(shipped, prior_logit_mean=float(shipped.prior_logit(fit_rows).mean()))

    raw = shipped.raw_proba(calibration_rows)
    y = calibration_rows[LABEL].to_numpy()
    if len(calibration_rows) >= ISOTONIC_MIN_ROWS:
        calibrator = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(raw, y)
        method = "isotonic"
    else:
        calibrator = _platt(raw, y)
        method = "sigmoid"
    return replace(
        shipped,
        calibrator=calibrator,
        calibration=method,
        n_fit_rows=len(fit_rows),
        n_calibration_rows=len(calibration_rows),
    )


def _fit_prior_and_booster(
    rows: pd.DataFrame,
    names: list[str],
    horizon: int,
    settings: dict,
    rounds: int,
    held_out: pd.DataFrame | None = None,
    prior_rows: pd.DataFrame | None = None,
) -> ChurnModel:
    """BG/NBD prior from ``rows``' latest histories, then LightGBM boosted from it (no calibrator yet).

    With ``held_out`` rows, at most ``rounds`` rounds, stopped once EARLY_STOPPING_ROUNDS more do
    not raise the held-out ROC AUC, and the booster kept (at its best round) only when that AUC is
    above the prior's own on the same rows; otherwise no booster. The booster's job is the ranking
    (what delivery experience, support and engagement add to purchase timing); the calibrator sets
    the level. Without ``held_out``, exactly ``rounds``.
    """
    prior = fit_purchase_prior(rows if prior_rows is None else prior_rows)

    def prior_logit_of(frame: pd.DataFrame) -> np.ndarray:
        return _logit(bgnbd.probability_no_purchase(prior, horizon, *purchase_histories(frame)))

    prior_logit = prior_logit_of(rows)
    mean_logit = float(prior_logit.mean())
    if rounds <= 0:
        return ChurnModel(None, None, names, "", prior, horizon, mean_logit)
    data = lgb.Dataset(_matrix(rows, names), label=rows[LABEL].to_numpy(), init_score=prior_logit, feature_name=names)
    if held_out is None:
        booster = lgb.train(settings, data, num_boost_round=rounds)
        return ChurnModel(booster, None, names, "", prior, horizon, mean_logit)
    held_logit = prior_logit_of(held_out)
    y = held_out[LABEL].to_numpy()
    valid = lgb.Dataset(_matrix(held_out, names), label=y, init_score=held_logit, reference=data)
    booster = lgb.train(
        {**settings, "metric": "auc"},
        data,
        num_boost_round=rounds,
        valid_sets=[valid],
        valid_names=["held_out"],
        callbacks=[lgb.early_stopping(EARLY_STOPPING_ROUNDS, verbose=False)],
    )
    # Beating the prior by a rounding's width is not beating it (LightGBM scores in float32).
    if booster.best_score["held_out"]["auc"] <= roc_auc_score(y, held_logit) + MIN_AUC_GAIN:
        return ChurnModel(None, None, names, "", prior, horizon, mean_logit)
    # Keep the best round only: the rounds after it are dropped, so current_iteration() is it.
    kept = lgb.train(settings, data, num_boost_round=booster.best_iteration)
    return ChurnModel(kept, None, names, "", prior, horizon, mean_logit)


def _platt(raw: np.ndarray, y: np.ndarray) -> LogisticRegression:
    """Platt scaling on the logit, never reversing the order of the scores: a calibrator bends
    probabilities; one whose slope came out negative (held-out scores that rank badly) would turn
    the model's ranking upside down, so then only the level is fitted (slope 1)."""
    logit = _logit(raw)[:, None]
    platt = LogisticRegression(C=np.inf).fit(logit, y)
    if platt.coef_[0, 0] > 0:
        return platt
    # Intercept only, on the logit as offset: one-dimensional, solved by bisection on its score.
    low, high = -20.0, 20.0
    for _ in range(100):
        middle = (low + high) / 2
        if np.mean(1 / (1 + np.exp(-(logit[:, 0] + middle)))) < y.mean():
            low = middle
        else:
            high = middle
    platt.coef_ = np.array([[1.0]])
    platt.intercept_ = np.array([(low + high) / 2])
    return platt


class ChurnPyfunc(mlflow.pyfunc.PythonModel):
    """MLflow pyfunc face of a ChurnModel: ``predict`` returns calibrated churn probabilities.

    Log it with ``mlflow.pyfunc.log_model(python_model=ChurnPyfunc(model), ...)``; the model is
    pickled (cloudpickle) with it, so no artifacts are needed at load time.
    """

    def __init__(self, model: ChurnModel) -> None:
        self.model = model

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> np.ndarray:
        return self.model.predict_proba(model_input)


# --- evaluation ----------------------------------------------------------------------------------


def evaluate(y_true, proba, n_bins: int = 10) -> dict:
    """Ranking, probability and calibration metrics of churn probabilities on labelled rows.

    Ranking (ROC-AUC, PR-AUC = average precision, top-decile lift) says whom to contact first;
    Brier, log loss and the reliability table say whether the probabilities can be taken at face
    value (risk bands, expected churners). Top-decile lift = churn rate among the ceil(10%) highest
    scores (ties broken by row order) / base rate. The reliability table uses equal-frequency bins
    (sorted by score, split into n_bins near-equal parts), so every bin has the same weight of
    evidence; the expected calibration error is the count-weighted mean |observed - predicted|.

    Args:
        y_true: 0/1 labels.
        proba: predicted churn probabilities, same length.
        n_bins: reliability bins (fewer when there are fewer rows).

    Returns:
        Scalars n, base_rate, roc_auc, pr_auc, brier, log_loss, lift_top_decile,
        expected_calibration_error (ROC/PR-AUC are NaN with one class, lift NaN without churners),
        and ``reliability``: a list of {bin (1 = lowest scores), mean_predicted, observed_rate, count}.

    Raises:
        ChurnInputError: empty or mismatched inputs, labels other than 0/1, probabilities outside [0, 1].
    """
    y = np.asarray(y_true, dtype=float).ravel()
    p = np.asarray(proba, dtype=float).ravel()
    if y.size == 0 or y.shape != p.shape:
        raise ChurnInputError(f"need equally long, non-empty labels and probabilities, got {y.size} and {p.size}")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ChurnInputError("labels must be 0 or 1")
    if not (np.isfinite(p).all() and (p >= 0).all() and (p <= 1).all()):
        raise ChurnInputError("probabilities must be finite and within [0, 1]")
    n = y.size
    base_rate = float(y.mean())
    both_classes = 0 < base_rate < 1
    top = np.argsort(-p, kind="stable")[: math.ceil(TOP_DECILE * n)]
    reliability = [
        {
            "bin": b + 1,
            "mean_predicted": float(p[idx].mean()),
            "observed_rate": float(y[idx].mean()),
            "count": int(idx.size),
        }
        for b, idx in enumerate(np.array_split(np.argsort(p, kind="stable"), min(n_bins, n)))
    ]
    ece = sum(r["count"] * abs(r["observed_rate"] - r["mean_predicted"]) for r in reliability) / n
    return {
        "n": n,
        "base_rate": base_rate,
        "roc_auc": float(roc_auc_score(y, p)) if both_classes else float("nan"),
        "pr_auc": float(average_precision_score(y, p)) if both_classes else float("nan"),
        "brier": float(brier_score_loss(y, p)),
        "log_loss": float(log_loss(y, np.clip(p, PROBA_CLIP, 1 - PROBA_CLIP), labels=[0, 1])),
        "lift_top_decile": float(y[top].mean() / base_rate) if base_rate > 0 else float("nan"),
        "expected_calibration_error": float(ece),
        "reliability": reliability,
    }


def bgnbd_baseline(
    orders: pd.DataFrame,
    holdout: pd.DataFrame,
    horizon_days: int,
    *,
    fit_as_of: dt.date | str | pd.Timestamp | None = None,
) -> np.ndarray:
    """BG/NBD's P(no order in the next horizon_days) for each holdout row: the bar the model must clear.

    BG/NBD sees only each customer's purchase timing, so beating it shows what the other features
    (delivery experience, support, engagement) add. Its population parameters are fitted on every
    customer's history as of the end of ``fit_as_of`` (training data only); each holdout row is then
    scored from its customer's history as of the end of that row's as_of_date, one summary per date.

    Args:
        orders: customer_key, placed_at: the order log up to at least the last holdout as-of date
            (later orders are ignored).
        holdout: rows with customer_key and as_of_date.
        horizon_days: the label horizon.
        fit_as_of: the training period's last as-of date; None means the first holdout as-of date
            minus horizon_days, the latest training date `time_split` allows.

    Returns:
        Probabilities aligned with the rows of ``holdout``.

    Raises:
        ChurnInputError: a holdout customer without any order by their as-of date (features.customer_daily
            never has such a row).
    """
    _require(holdout, ["customer_key", "as_of_date"], "holdout")
    _require(orders, ["customer_key", "placed_at"], "orders")
    as_of = _days(holdout["as_of_date"])
    if fit_as_of is None:
        fit_as_of = as_of.min() - pd.Timedelta(days=horizon_days)
    fitted = bgnbd.summarise_purchases(orders, "customer_key", "placed_at", _end_of_day(fit_as_of))
    params = bgnbd.fit(fitted["frequency"], fitted["recency"], fitted["T"])

    result = np.full(len(holdout), np.nan)
    rows = pd.DataFrame({"customer_key": holdout["customer_key"].to_numpy(), "_as_of": as_of.to_numpy()})
    for day, group in rows.groupby("_as_of", sort=True):
        histories = bgnbd.summarise_purchases(orders, "customer_key", "placed_at", _end_of_day(day))
        found = histories.set_index("customer_key").reindex(group["customer_key"])
        if found["frequency"].isna().any():
            raise ChurnInputError(f"holdout customers without an order by {pd.Timestamp(day).date()}")
        result[group.index.to_numpy()] = bgnbd.probability_no_purchase(
            params, horizon_days, found["frequency"], found["recency"], found["T"]
        )
    return result


def risk_band(p: np.ndarray) -> np.ndarray:
    """ "high" (p >= HIGH_RISK = 0.6), "medium" (p >= MEDIUM_RISK = 0.3) or "low", per calibrated probability.

    Raises:
        ChurnInputError: on NaN, which would otherwise land silently in "low".
    """
    p = np.asarray(p, dtype=float)
    if np.isnan(p).any():
        raise ChurnInputError("cannot band a missing probability")
    return np.where(p >= HIGH_RISK, "high", np.where(p >= MEDIUM_RISK, "medium", "low"))


# --- plots (pyplot-free Figures, so no global backend state and no display needed) ---------------


def plot_reliability(table: list[dict], path: str | Path) -> Path:
    """Save the reliability diagram of an `evaluate` table as a PNG: points on the diagonal = calibrated."""
    from matplotlib.figure import Figure  # only the training job draws; scoring needs no matplotlib

    fig = Figure(figsize=(4.5, 4.5), dpi=100, layout="constrained")
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfectly calibrated")
    ax.plot(
        [r["mean_predicted"] for r in table],
        [r["observed_rate"] for r in table],
        marker="o",
        label="model (equal-frequency bins)",
    )
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="mean predicted churn probability", ylabel="observed churn rate")
    ax.set_title("Churn reliability", fontsize=11)
    ax.legend(loc="upper left", fontsize=8)
    fig.savefig(path, format="png")
    return Path(path)


def plot_feature_importance(model: ChurnModel, path: str | Path) -> Path:
    """Save the booster's gain importance (share of total split gain per feature) as a PNG bar chart."""
    from matplotlib.figure import Figure

    gain = (
        np.zeros(len(model.feature_names))
        if model.booster is None
        else model.booster.feature_importance(importance_type="gain")
    )
    share = gain / gain.sum() if gain.sum() > 0 else gain
    order = np.argsort(share, kind="stable")  # barh draws bottom-up: the largest ends on top
    fig = Figure(figsize=(6, 1 + 0.28 * len(order)), dpi=100, layout="constrained")
    ax = fig.subplots()
    ax.barh([model.feature_names[i] for i in order], share[order], color="tab:blue")
    ax.set_xlabel("share of split gain")
    ax.set_title("Churn model feature importance", fontsize=11)
    ax.tick_params(axis="y", labelsize=8)
    fig.savefig(path, format="png")
    return Path(path)
