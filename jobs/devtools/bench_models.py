"""Model-quality benchmark (``cxlake bench-models``): the issue's targets on the simulator's default world.

Simulates ``days`` days, imports all but the last night at once (``nightly.import_history``),
then runs the last night in full (``nightly.run_all``: the models train because there is no
champion yet, then score). Prints the ETA and churn figures next to their targets, and the
command that produced them. A report, not a test: nothing is asserted.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time
from dataclasses import replace
from pathlib import Path

from jobs.lake.config import load_config

TARGETS = (
    ("ETA P50 MAE at placement / static promise MAE", "eta_mae_ratio", "<= 0.60"),
    ("ETA P10-P90 coverage (holdout)", "eta_coverage", "0.80 +/- 0.05"),
    ("ETA MAE after out_for_delivery / MAE at placement", "eta_ofd_ratio", "<= 0.30"),
    ("churn ROC-AUC minus BG/NBD ROC-AUC (same holdout)", "churn_auc_gain", "> 0"),
)


def _verdict(key: str, value: float | None) -> str:
    if value is None:
        return "n/a"
    ok = {
        "eta_mae_ratio": value <= 0.60,
        "eta_coverage": abs(value - 0.80) <= 0.05,
        "eta_ofd_ratio": value <= 0.30,
        "churn_auc_gain": value > 0,
    }[key]
    return "PASS" if ok else "FAIL"


def main(days: int, customers: int, seed: int, churn_horizon_days: int, reuse_history: bool = False) -> int:
    from jobs.devtools.simulator import SimulationConfig, simulate
    from jobs.pipeline import nightly

    base = load_config()
    home = Path(base.home) / "bench_models"
    # The imported history is a pure function of the world's parameters: an ML engineer iterating
    # on the models can keep it (--reuse-history) and rerun only the last night.
    world = json.dumps({"days": days, "customers": customers, "seed": seed}, sort_keys=True)
    marker = home / "history.json"
    reuse = reuse_history and marker.exists() and marker.read_text() == world
    if not reuse:
        shutil.rmtree(home, ignore_errors=True)
    else:  # fresh models: the last night trains them with no earlier champion to beat
        (home / "mlflow.db").unlink(missing_ok=True)
        shutil.rmtree(home / "mlartifacts", ignore_errors=True)
    config = replace(base.moved_to(home), churn_horizon_days=churn_horizon_days)
    started = time.monotonic()
    sim = SimulationConfig(days=days, customers=customers, seed=seed)
    first = sim.start_date
    last = first + dt.timedelta(days=days - 1)
    if reuse:
        simulated = time.monotonic()
        history = {"nights": f"{days - 1} (reused)"}
    else:
        simulate(sim, Path(config.landing_root))
        simulated = time.monotonic()
        history = nightly.import_history(first.isoformat(), (last - dt.timedelta(days=1)).isoformat(), config)
        marker.write_text(world)
    imported = time.monotonic()
    report = nightly.run_all(last.isoformat(), config)
    finished = time.monotonic()

    eta, churn = report["train_eta"], report["train_churn"]
    figures = {
        "eta_mae_ratio": eta.get("mae_ratio_model_vs_promise"),
        "eta_coverage": eta.get("p10_p90_coverage"),
        "eta_ofd_ratio": eta.get("mae_ratio_out_for_delivery_vs_placement"),
        "churn_auc_gain": churn.get("roc_auc_gain_vs_bgnbd"),
    }
    print(f"\n# cxlake bench-models --days {days} --customers {customers} --seed {seed} "
          f"--churn-horizon {churn_horizon_days}{' --reuse-history' if reuse else ''}")  # fmt: skip
    print(f"simulate {simulated - started:.0f} s; import_history of {history['nights']} nights "
          f"{imported - simulated:.0f} s; last night in full {finished - imported:.0f} s")  # fmt: skip
    print(f"ETA run {eta.get('mlflow_run_id')} ({eta.get('decision')}): "
          f"MAE P50 {eta.get('mae_p50_days', float('nan')):.3f} d vs promise {eta.get('mae_promise_days', float('nan')):.3f} d, "
          f"after out_for_delivery {eta.get('mae_after_out_for_delivery_days', float('nan')):.3f} d, "
          f"{eta.get('holdout_orders', 0):.0f} holdout orders")  # fmt: skip
    print(f"churn run {churn.get('mlflow_run_id')} ({churn.get('decision')}): "
          f"ROC-AUC {churn.get('roc_auc', float('nan')):.3f} vs BG/NBD {churn.get('bgnbd_roc_auc', float('nan')):.3f}, "
          f"PR-AUC {churn.get('pr_auc', float('nan')):.3f}, Brier {churn.get('brier', float('nan')):.3f}, "
          f"lift@10% {churn.get('lift_top_decile', float('nan')):.2f}, {churn.get('holdout_rows', 0):.0f} holdout rows")  # fmt: skip
    print(f"scored: {report['score']}")
    print(f"\n{'target':55s} {'value':>8s}  {'goal':>14s}  verdict")
    for label, key, goal in TARGETS:
        value = figures[key]
        shown = f"{value:8.3f}" if value is not None else "     n/a"
        print(f"{label:55s} {shown}  {goal:>14s}  {_verdict(key, value)}")
    return 0
