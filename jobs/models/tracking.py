"""MLflow plumbing shared by the model jobs: tracking store, experiments, lineage tags."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from jobs.lake.config import PROJECT_ROOT, LakeConfig


def git_commit() -> str:
    """The code version that produced a run (``unknown`` outside a git checkout)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10, check=True
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def use_experiment(config: LakeConfig, name: str) -> str:
    """Point MLflow at the configured store and return the experiment id (created if needed).

    Artifacts go under ``$CXLAKE_HOME/mlartifacts`` rather than MLflow's default ``./mlruns``
    relative to whatever the working directory happens to be.
    """
    import mlflow

    mlflow.set_tracking_uri(config.mlflow_tracking_uri)
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    artifacts = Path(config.home) / "mlartifacts" / name
    return mlflow.create_experiment(name, artifact_location=artifacts.resolve().as_uri())


@dataclass(frozen=True)
class TrainingRun:
    """What a nightly training job did: its MLflow run (None when not due), metrics, promotion decision."""

    run_id: str | None
    trained: bool
    metrics: dict[str, float]
    decision: str = ""
