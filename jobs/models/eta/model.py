"""The ETA model itself (pandas + LightGBM, no Spark): quantiles of delivery time, at placement and per scan.

Two stages share one object, so one registered model version answers both questions:

* *placement*: from ``features.order_eta`` -> days from ``placed_at`` to delivery;
* *scan*: from ``features.shipment_scan`` -> days from the scan to delivery (re-estimation).

Each stage is three LightGBM quantile regressions (P10, P50, P90). Predictions are sorted per row
so that the quantiles never cross. Categorical features keep the categories seen in training
(unseen values score as missing), so scoring in Spark workers matches training exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from jobs.domain import PROMISE_HOUR
from jobs.lake.feature_catalog import Feature, features_of
from jobs.models import LGBM_THREADS

QUANTILES = {"p10": 0.1, "p50": 0.5, "p90": 0.9}
PLACEMENT_TABLE = "features.order_eta"
SCAN_TABLE = "features.shipment_scan"
PLACEMENT_LABEL = "delivery_days"  # placed_at -> delivered_at
SCAN_LABEL = "remaining_days"  # scan_at -> delivered_at
LGBM_PARAMS = {
    "objective": "quantile",
    "n_estimators": 300,
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_child_samples": 20,
    "subsample": 1.0,
    "deterministic": True,
    "force_col_wise": True,
    "n_jobs": LGBM_THREADS,
    "verbose": -1,
}


def _stage_features(table: str) -> list[Feature]:
    return features_of(table)


@dataclass
class StageModel:
    """Three quantile boosters over one feature table's registered features.

    ``interval_scale`` widens (or narrows) the P10-P90 interval by that multiple of its own width
    on each side: conformalized quantile regression, scaled by the interval width so that a parcel
    five hours from the door and one just ordered each get an interval of their own size. Boosted
    quantile models cover too little on small data; this makes the 80% interval cover about 80%
    of future deliveries. The scores come from rolling origins (see `fit_stage`).
    """

    table: str
    features: list[str]
    categories: dict[str, list[str]]
    boosters: dict[str, object] = field(default_factory=dict)
    interval_scale: float = 0.0

    def frame(self, df: pd.DataFrame) -> pd.DataFrame:
        out = df[self.features].copy()
        for name, cats in self.categories.items():
            out[name] = pd.Categorical(out[name], categories=cats)
        for name in self.features:
            if name not in self.categories:
                out[name] = pd.to_numeric(out[name], errors="coerce").astype("float64")
        return out

    def predict(self, df: pd.DataFrame) -> pd.DataFrame:
        """Quantiles in days, columns ``p10, p50, p90``, non-crossing, never below zero."""
        ordered = self._raw(df)
        width = ordered[:, 2] - ordered[:, 0]
        ordered[:, 0] -= self.interval_scale * width
        ordered[:, 2] += self.interval_scale * width
        ordered = np.clip(np.sort(ordered, axis=1), 0.0, None)
        return pd.DataFrame(ordered, columns=list(QUANTILES), index=df.index)

    def _raw(self, df: pd.DataFrame) -> np.ndarray:
        x = self.frame(df)
        return np.sort(np.column_stack([self.boosters[q].predict(x) for q in QUANTILES]), axis=1)


# Rolling-origin calibration: the latest CALIBRATION_SHARE of training orders in CALIBRATION_FOLDS
# consecutive slices, each predicted by boosters fitted on the orders placed at least
# MATURITY_DAYS before it.
CALIBRATION_SHARE = 0.3
CALIBRATION_FOLDS = 4
NOMINAL_COVERAGE = QUANTILES["p90"] - QUANTILES["p10"]
# Production's gap: a model trained on the night D learns from orders placed by D - MATURITY_DAYS
# (their deliveries known) and predicts orders placed from D on. Every evaluation of the model (the
# holdout, the calibration slices, the backtest) keeps the same gap, so it is judged on a future as
# far away as the one it serves.
MATURITY_DAYS = 14


def _fit_boosters(stage: StageModel, rows: pd.DataFrame, label: str, seed: int) -> None:
    import lightgbm as lgb

    x = stage.frame(rows)
    for name, alpha in QUANTILES.items():
        booster = lgb.LGBMRegressor(alpha=alpha, random_state=seed, **LGBM_PARAMS)
        booster.fit(x, rows[label].to_numpy())
        stage.boosters[name] = booster


def _before_gap(earlier: pd.DataFrame, later: pd.DataFrame, gap_days: int) -> pd.DataFrame:
    """The rows of ``earlier`` placed at least ``gap_days`` before the first order of ``later``."""
    if not gap_days or later.empty:
        return earlier
    first = pd.to_datetime(later["placed_at"]).min()
    return earlier[pd.to_datetime(earlier["placed_at"]) < first - pd.Timedelta(days=gap_days)]


def rolling_origins(
    rows: pd.DataFrame, share: float = CALIBRATION_SHARE, folds: int = CALIBRATION_FOLDS, gap_days: int = MATURITY_DAYS
) -> list[tuple[pd.DataFrame, pd.DataFrame]]:
    """(earlier rows, next slice) pairs over the latest ``share`` of orders, in ``folds`` slices by order.

    The earlier rows end ``gap_days`` before the slice's first order (production's gap).
    """
    ordered = rows.sort_values(["placed_at", "order_id"], kind="mergesort").reset_index(drop=True)
    rank = ordered["order_id"].map({o: i for i, o in enumerate(ordered["order_id"].drop_duplicates())})
    n = int(rank.max()) + 1 if len(rank) else 0
    bounds = [int(round(n * (1 - share + share * k / folds))) for k in range(folds + 1)]
    pairs = []
    for lo, hi in zip(bounds, bounds[1:], strict=False):
        slice_ = ordered[(rank >= lo) & (rank < hi)]
        earlier = _before_gap(ordered[rank < lo], slice_, gap_days)
        if len(earlier) and len(slice_):
            pairs.append((earlier, slice_))
    return pairs


def fit_stage(train: pd.DataFrame, table: str, label: str, seed: int = 7) -> StageModel:
    """Fit P10/P50/P90 boosters of ``label`` on ``table``'s registered features, with a calibrated interval.

    Calibration mimics deployment: a model trained on everything up to a day predicts the orders
    after it. For each rolling origin the boosters are fitted on the earlier orders and score
    ``max(p10 - y, y - p90) / (p90 - p10)`` on the next slice; ``interval_scale`` is the conformal
    80% quantile of the pooled scores. The final boosters are then fitted on every training order:
    recent orders carry the most information (lane statistics mature, congestion moves), and a
    split that left the latest fifth out of the boosters cost ~5-10% MAE on the bench.
    """
    features = _stage_features(table)
    categorical = {f.name: sorted(train[f.name].dropna().astype(str).unique()) for f in features if not f.is_numeric}
    stage = StageModel(table, [f.name for f in features], categorical)
    scores = []
    for earlier, slice_ in rolling_origins(train):
        _fit_boosters(stage, earlier, label, seed)
        raw = stage._raw(slice_)
        actual = slice_[label].to_numpy()
        width = np.maximum(raw[:, 2] - raw[:, 0], 1e-6)
        scores.append(np.maximum(raw[:, 0] - actual, actual - raw[:, 2]) / width)
    if scores:
        pooled = np.concatenate(scores)
        n = len(pooled)
        level = min(1.0, np.ceil((n + 1) * NOMINAL_COVERAGE) / n)
        stage.interval_scale = float(np.quantile(pooled, level, method="higher"))
    _fit_boosters(stage, train, label, seed)
    return stage


@dataclass
class EtaModel:
    placement: StageModel
    scan: StageModel | None

    def predict_placement(self, df: pd.DataFrame) -> pd.DataFrame:
        return self.placement.predict(df)

    def predict_scan(self, df: pd.DataFrame) -> pd.DataFrame:
        if self.scan is None:
            raise ValueError("this ETA model was trained without scan rows")
        return self.scan.predict(df)

    def feature_importance(self) -> pd.DataFrame:
        """Gain importance of the P50 boosters, per stage and feature."""
        rows = []
        for stage_name, stage in (("placement", self.placement), ("scan", self.scan)):
            if stage is None:
                continue
            booster = stage.boosters["p50"].booster_
            gains = booster.feature_importance(importance_type="gain")
            rows += [
                {"stage": stage_name, "feature": f, "gain": float(g)}
                for f, g in zip(stage.features, gains, strict=True)
            ]
        return pd.DataFrame(rows).sort_values(["stage", "gain"], ascending=[True, False], ignore_index=True)


def fit(placement_rows: pd.DataFrame, scan_rows: pd.DataFrame | None, seed: int = 7) -> EtaModel:
    scan = fit_stage(scan_rows, SCAN_TABLE, SCAN_LABEL, seed) if scan_rows is not None and len(scan_rows) else None
    return EtaModel(fit_stage(placement_rows, PLACEMENT_TABLE, PLACEMENT_LABEL, seed), scan)


def time_split(
    rows: pd.DataFrame, holdout_share: float, order_col: str = "placed_at", gap_days: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train on the earliest orders, hold out the latest: the model is always judged on the future.

    Split by order (all scans of an order fall on the same side) at the ``placed_at`` quantile;
    training orders placed within ``gap_days`` before the first held-out order are left out of
    both sides (the nightly job passes MATURITY_DAYS: the holdout is as far ahead as production's).
    """
    ordered = rows.sort_values([order_col, "order_id"], kind="mergesort").reset_index(drop=True)
    orders = ordered.drop_duplicates("order_id")
    cut = int(round(len(orders) * (1 - holdout_share)))
    holdout_ids = set(orders["order_id"].iloc[cut:])
    mask = ordered["order_id"].isin(holdout_ids)
    holdout = ordered[mask].reset_index(drop=True)
    return _before_gap(ordered[~mask], holdout, gap_days).reset_index(drop=True), holdout


def promise_error_days(rows: pd.DataFrame) -> np.ndarray:
    """Absolute error of the static promise (promised date at midday) vs the real delivery, in days."""
    promised_at = pd.to_datetime(rows["promised_delivery_date"]) + pd.Timedelta(hours=PROMISE_HOUR)
    delivered_at = pd.to_datetime(rows["delivered_at"])
    return np.abs((delivered_at - promised_at).dt.total_seconds().to_numpy() / 86400.0)


def evaluate_placement(model: EtaModel, holdout: pd.DataFrame) -> dict[str, float]:
    predicted = model.predict_placement(holdout)
    actual = holdout[PLACEMENT_LABEL].to_numpy()
    error = np.abs(predicted["p50"].to_numpy() - actual)
    # An imported order without a promise has no promise error: the promise's figures are over the
    # orders that have one (NaN when none has), the model's ratio to it over the same orders.
    promise = promise_error_days(holdout)
    promised = ~np.isnan(promise)
    promise_mae = float(promise[promised].mean()) if promised.any() else float("nan")
    return {
        "holdout_orders": float(len(holdout)),
        "mae_p50_days": float(error.mean()),
        "median_ae_p50_days": float(np.median(error)),
        "mae_promise_days": promise_mae,
        "median_ae_promise_days": float(np.median(promise[promised])) if promised.any() else float("nan"),
        "mae_ratio_model_vs_promise": (
            float(error[promised].mean() / max(promise_mae, 1e-9)) if promised.any() else float("nan")
        ),
        "p10_p90_coverage": float(
            np.mean((actual >= predicted["p10"].to_numpy()) & (actual <= predicted["p90"].to_numpy()))
        ),
        "share_within_1_day": float(np.mean(error <= 1.0)),
        "share_within_1_day_promise": float(np.mean(promise <= 1.0)),
    }


def scan_errors(model: EtaModel, scan_holdout: pd.DataFrame) -> pd.DataFrame:
    """Per holdout scan: the milestone reached and the absolute error (days) of the re-estimated P50."""
    predicted = model.predict_scan(scan_holdout)
    actual = scan_holdout[SCAN_LABEL].to_numpy()
    return pd.DataFrame(
        {
            "event": scan_holdout["event"].to_numpy(),
            "milestone_rank": scan_holdout["milestone_rank"].to_numpy(),
            "abs_error_days": np.abs(predicted["p50"].to_numpy() - actual),
            "covered": (actual >= predicted["p10"].to_numpy()) & (actual <= predicted["p90"].to_numpy()),
        }
    )


def evaluate_scans(model: EtaModel, scan_holdout: pd.DataFrame) -> dict[str, float]:
    """MAE of the arrival estimate after each milestone (how the error shrinks as the parcel moves)."""
    if model.scan is None or scan_holdout.empty:
        return {}
    errors = scan_errors(model, scan_holdout)
    metrics = {"scan_holdout_rows": float(len(errors))}
    for event, group in errors.groupby("event"):
        metrics[f"mae_after_{event}_days"] = float(group["abs_error_days"].mean())
    metrics["scan_p10_p90_coverage"] = float(errors["covered"].mean())
    return metrics


def plot_feature_importance(model: EtaModel, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    importance = model.feature_importance()
    stages = list(importance["stage"].unique())
    fig, axes = plt.subplots(1, len(stages), figsize=(6 * len(stages), 5), squeeze=False)
    for ax, stage in zip(axes[0], stages, strict=True):
        top = importance[importance["stage"] == stage].head(12).iloc[::-1]
        ax.barh(top["feature"], top["gain"])
        ax.set_title(f"ETA {stage} model: P50 gain")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def plot_error_by_scan(metrics: dict[str, float], placement_mae: float, path: str) -> None:
    """Bar chart: MAE at placement, then after each milestone."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from jobs.domain import MILESTONE_RANK

    stages = [("placement", placement_mae)] + [
        (event, metrics[f"mae_after_{event}_days"])
        for event in sorted(MILESTONE_RANK, key=MILESTONE_RANK.get)
        if f"mae_after_{event}_days" in metrics
    ]
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.bar([s for s, _ in stages], [v for _, v in stages])
    ax.set_ylabel("MAE of P50 arrival (days)")
    ax.set_title("ETA error shrinks with each scan (holdout)")
    ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def plot_interval_calibration(model: EtaModel, holdout: pd.DataFrame, path: str) -> None:
    """Observed share below each predicted quantile (ideal: 0.1, 0.5, 0.9)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    predicted = model.predict_placement(holdout)
    actual = holdout[PLACEMENT_LABEL].to_numpy()
    nominal = list(QUANTILES.values())
    observed = [float(np.mean(actual <= predicted[q].to_numpy())) for q in QUANTILES]
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey")
    ax.plot(nominal, observed, marker="o")
    ax.set_xlabel("nominal quantile")
    ax.set_ylabel("observed share of deliveries below it")
    ax.set_title("ETA quantile calibration (holdout)")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


try:  # The pyfunc wrapper only when MLflow is importable (it is in every install of this project).
    import mlflow.pyfunc

    class EtaPyfunc(mlflow.pyfunc.PythonModel):
        """MLflow wrapper: ``predict`` takes rows with a ``stage`` column (``placement`` or ``scan``)."""

        def __init__(self, model: EtaModel) -> None:
            self.model = model

        def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:  # noqa: ARG002
            out = pd.DataFrame(index=model_input.index, columns=list(QUANTILES), dtype="float64")
            placement = model_input["stage"] == "placement"
            if placement.any():
                out.loc[placement] = self.model.predict_placement(model_input[placement]).to_numpy()
            if (~placement).any():
                out.loc[~placement] = self.model.predict_scan(model_input[~placement]).to_numpy()
            return out

except ImportError:  # pragma: no cover
    pass
