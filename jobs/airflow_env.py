"""Environment for running the project's Airflow (``airflow dags test``) on the embedded default."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from jobs.config import PROJECT_ROOT, LakeConfig


def airflow_env(config: LakeConfig) -> dict[str, str]:
    """Airflow settings: home and SQLite DB under ``$CXLAKE_HOME/airflow``, our ``dags/`` folder.

    Variables already set by the caller win, so a real deployment's settings are never overridden.
    """
    home = Path(config.home) / "airflow"
    defaults = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "CXLAKE_HOME": str(config.home),
    }
    env = dict(os.environ)
    for key, value in defaults.items():
        env.setdefault(key, value)
    return env


def _airflow_bin() -> str:
    candidate = Path(sys.executable).parent / "airflow"
    return str(candidate) if candidate.exists() else "airflow"


def airflow(config: LakeConfig, *args: str, capture: bool = False) -> subprocess.CompletedProcess:
    """Run the ``airflow`` CLI of this interpreter's environment with :func:`airflow_env`."""
    env = airflow_env(config)
    Path(env["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [_airflow_bin(), *args], env=env, check=False, text=True, capture_output=capture, cwd=PROJECT_ROOT
    )


def ensure_airflow_db(config: LakeConfig) -> None:
    """Create or upgrade Airflow's metadata DB (idempotent)."""
    done = airflow(config, "db", "migrate", capture=True)
    if done.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed:\n{done.stdout}\n{done.stderr}")


def dags_test(config: LakeConfig, dag_id: str, run_date: str, capture: bool = False) -> subprocess.CompletedProcess:
    """``airflow dags test DAG_ID DATE``: one full DAG run for the logical date, tasks in process."""
    return airflow(config, "dags", "test", dag_id, run_date, capture=capture)
