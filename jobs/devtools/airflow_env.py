"""The project's Airflow settings: ``airflow dags test``, ``cxlake airflow up`` and hand-run ``airflow`` commands."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from jobs.lake import lineage
from jobs.lake.config import PROJECT_ROOT, LakeConfig

DEFAULT_API_PORT = 8080
# Tasks the local scheduler runs at once: one per core. A Spark task's JVM start is ~12 s of CPU;
# with 3 (build_gold, build_journey, build_features at once) each start took ~70 s on two busy
# cores and the gold step 7.3 min, with 2 the same step took 3.7 min (demo night, 2026-11-30;
# other jobs loaded the cores both times, more so the first). The sensors and ingests that
# wait for a slot take seconds.
DEFAULT_PARALLELISM = 2


def api_settings(port: int | str) -> dict[str, str]:
    """Where the local API server listens and where task processes reach its execution API.

    Loopback only: the simple auth manager keeps plain-text passwords, fit for a laptop, not a
    network. The base URL names 127.0.0.1, not ``localhost`` (which may resolve to ::1, where
    nothing listens); Airflow derives the execution API URL of the task processes from it.
    """
    return {
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
    }


def project_settings(config: LakeConfig, api_port: int | str = DEFAULT_API_PORT) -> dict[str, str]:
    """What Airflow and the DAG's tasks need to run this project's lake, and only that.

    Airflow's home and SQLite DB under ``$CXLAKE_HOME/airflow``, our ``dags/`` folder, no example
    DAGs; the local scheduler's executor and API server (``cxlake airflow up``); the lake, landing
    and MLflow store the config names. ``cxlake env`` prints these as ``export`` lines, so a data
    engineer's own ``airflow`` commands see what the DAG runs see.
    """
    return {
        "AIRFLOW_HOME": str(Path(config.home) / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        # Airflow 3 has no SequentialExecutor and lets LocalExecutor run on SQLite: each task is
        # its own process, as in production, and only the scheduler, DAG processor and API
        # server write the DB (task processes go through the API server).
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": str(DEFAULT_PARALLELISM),
        # The simulated landing holds past dates: an @daily run for the real yesterday would wait
        # hours for files that never come and, with max_active_runs=1, hold back the nights
        # triggered by hand. Manual runs and backfills still run.
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        **api_settings(api_port),
        "CXLAKE_HOME": str(config.home),
        "CXLAKE_LAKE_ROOT": config.lake_root,
        "CXLAKE_LANDING_ROOT": config.landing_root,
        "MLFLOW_TRACKING_URI": config.mlflow_tracking_uri,
        # The config names one MLflow store; a registry URI inherited from the caller's
        # environment would register and look up champions in another store.
        "MLFLOW_REGISTRY_URI": config.mlflow_tracking_uri,
        # The OpenLineage provider's task and DAG run events go to $CXLAKE_HOME/lineage/.
        **lineage.airflow_settings(config),
    }


# Airflow settings the caller may already have (a real deployment's): theirs win.
_AIRFLOW_DEFAULTS = (
    "AIRFLOW_HOME",
    "AIRFLOW__CORE__DAGS_FOLDER",
    "AIRFLOW__CORE__LOAD_EXAMPLES",
    "AIRFLOW__CORE__UNIT_TEST_MODE",
    "AIRFLOW__LOGGING__LOGGING_LEVEL",
    "AIRFLOW__CORE__EXECUTOR",
    "AIRFLOW__CORE__PARALLELISM",
    "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE",
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS",
    "AIRFLOW__API__HOST",
    "AIRFLOW__API__PORT",
    "AIRFLOW__API__BASE_URL",
)


def resolved_settings(config: LakeConfig) -> dict[str, str]:
    """:func:`project_settings` as this process will use them.

    Airflow variables already set by the caller win, so a real deployment's settings are never
    overridden; the lake settings are always the config's (the lake the caller configured is the
    one the DAG's tasks must use).
    """
    # A caller's port moves the base URL with it (unless they set that too).
    settings = project_settings(config, api_port=os.environ.get("AIRFLOW__API__PORT", DEFAULT_API_PORT))
    return {key: os.environ.get(key, value) if key in _AIRFLOW_DEFAULTS else value for key, value in settings.items()}


def airflow_env(config: LakeConfig) -> dict[str, str]:
    """This process's environment plus :func:`resolved_settings`."""
    return {**os.environ, **resolved_settings(config)}


def shell_exports(config: LakeConfig) -> str:
    """``export KEY=VALUE`` lines of :func:`resolved_settings` (``eval "$(cxlake env)"``): what the
    DAG runs started by ``cxlake`` see, so hand-run ``airflow`` commands see the same."""
    import shlex

    return "\n".join(f"export {key}={shlex.quote(value)}" for key, value in resolved_settings(config).items())


def airflow_bin() -> str:
    """The ``airflow`` command of this interpreter's environment (else the one on PATH)."""
    candidate = Path(sys.executable).parent / "airflow"
    return str(candidate) if candidate.exists() else "airflow"


def airflow(config: LakeConfig, *args: str, capture: bool = False) -> subprocess.CompletedProcess:
    """Run the ``airflow`` CLI of this interpreter's environment with :func:`airflow_env`."""
    env = airflow_env(config)
    Path(env["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [airflow_bin(), *args], env=env, check=False, text=True, capture_output=capture, cwd=PROJECT_ROOT
    )


def ensure_airflow_db(config: LakeConfig) -> None:
    """Create or upgrade Airflow's metadata DB (idempotent)."""
    done = airflow(config, "db", "migrate", capture=True)
    if done.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed:\n{done.stdout}\n{done.stderr}")


def dags_test(config: LakeConfig, dag_id: str, run_date: str, capture: bool = False) -> subprocess.CompletedProcess:
    """``airflow dags test DAG_ID DATE``: one full DAG run for the logical date, tasks in process."""
    # One process, one Spark session for every task: its lineage parent is the DAG run.
    os.environ[lineage.SHARED_SESSION_VARIABLE] = "1"
    return airflow(config, "dags", "test", dag_id, run_date, capture=capture)


def load_dag(dag_file: str = "cx_nightly.py"):
    """Import a DAG file of ``dags/`` the way Airflow's parser does and return its DAG object."""
    import importlib.util

    path = PROJECT_ROOT / "dags" / dag_file
    spec = importlib.util.spec_from_file_location(f"cxlake_dag_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.nightly_dag


def test_dag_in_process(config: LakeConfig, run_dates: list[str]) -> list[tuple[str, str, float]]:
    """Run ``dag.test()`` (what ``airflow dags test`` runs) for each date in this one process.

    One process keeps one warm JVM across dates: a cold Spark start and the first Delta writes
    cost ~50 s, a warm night ~30 s on 2 cores, so a week's demo takes minutes, not a quarter hour.
    Returns ``(date, state, seconds)`` per run and stops at the first failed run.
    """
    import time

    os.environ.update(airflow_env(config))
    os.environ[lineage.SHARED_SESSION_VARIABLE] = "1"  # one Spark session: its lineage parent is the DAG run
    import pendulum

    dag = load_dag()
    results = []
    for run_date in run_dates:
        started = time.monotonic()
        dag_run = dag.test(logical_date=pendulum.parse(run_date, tz="UTC"))
        state = str(getattr(dag_run.state, "value", dag_run.state))
        results.append((run_date, state, time.monotonic() - started))
        if state != "success":
            break
    return results


def run_dates_logged(
    config: LakeConfig,
    run_dates: list[str],
    log_file: Path,
    on_result: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Run :func:`test_dag_in_process` in a child process whose (very chatty) output goes to ``log_file``.

    Returns one ``{"date", "state", "seconds"}`` per run, read from the child's result file; each is
    also handed to ``on_result`` as soon as its run ends (a long command's progress).
    """
    import json
    import time

    log_file.parent.mkdir(parents=True, exist_ok=True)
    results_file = log_file.with_suffix(".results.jsonl")
    results_file.unlink(missing_ok=True)
    results: list[dict] = []

    def read_new() -> None:
        text = results_file.read_text() if results_file.exists() else ""
        # Lines end with a newline once written whole; a line being written waits for the next look.
        complete = [line for line in text.split("\n")[:-1] if line.strip()]
        for line in complete[len(results) :]:
            results.append(json.loads(line))
            if on_result is not None:
                on_result(results[-1])

    with log_file.open("w") as sink:
        child = subprocess.Popen(
            [sys.executable, "-m", "jobs.devtools.airflow_env", str(results_file), *run_dates],
            env=airflow_env(config),
            stdout=sink,
            stderr=subprocess.STDOUT,
            cwd=PROJECT_ROOT,
        )
        while child.poll() is None:
            time.sleep(1)
            read_new()
    read_new()
    return results


def _main(argv: list[str]) -> int:
    import json

    from jobs.lake.config import load_config

    results_file, run_dates = Path(argv[0]), argv[1:]
    config = load_config()
    for run_date in run_dates:
        ((day, state, seconds),) = test_dag_in_process(config, [run_date])
        with results_file.open("a") as out:
            out.write(json.dumps({"date": day, "state": state, "seconds": round(seconds, 1)}) + "\n")
        if state != "success":
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
