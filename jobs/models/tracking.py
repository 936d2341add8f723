"""MLflow plumbing shared by the model jobs: tracking store, experiments, lineage tags."""

from __future__ import annotations

import contextlib
import fcntl
import subprocess
from collections.abc import Iterator
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
    with _one_process_at_a_time(config.mlflow_tracking_uri):
        experiment = mlflow.get_experiment_by_name(name)
        if experiment is not None:
            return experiment.experiment_id
        artifacts = Path(config.home) / "mlartifacts" / name
        return mlflow.create_experiment(name, artifact_location=artifacts.resolve().as_uri())


@contextlib.contextmanager
def _one_process_at_a_time(tracking_uri: str) -> Iterator[None]:
    """Hold a file lock beside a SQLite store while its tables are made and an experiment created.

    A process's first MLflow call creates or migrates the store's tables. train_eta and
    train_churn start together in processes of their own under the scheduler, and on a new store
    both migrations collided (``table _alembic_tmp_experiments already exists``, one task failed
    and retried 2 minutes later). Other stores (a tracking server) serialize this themselves.
    """
    if not tracking_uri.startswith("sqlite:///"):
        yield
        return
    lock_file = Path(tracking_uri.removeprefix("sqlite:///") + ".lock")
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with lock_file.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass(frozen=True)
class TrainingRun:
    """What a nightly training job did: its MLflow run (None when not due), metrics, promotion decision."""

    run_id: str | None
    trained: bool
    metrics: dict[str, float]
    decision: str = ""
