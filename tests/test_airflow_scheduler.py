"""cx_nightly under the real scheduler: `cxlake airflow up`'s components, a run triggered through the REST API.

`test_airflow_e2e.py` runs the night with `airflow dags test`, every task in one process. Here the
scheduler, DAG processor and API server run as `cxlake airflow up` starts them, the LocalExecutor
runs each task in its own process, and the night is unpaused, triggered and followed through the
REST API, as a data engineer or an orchestrating system would. Same landing files, same date,
same tables (tests/e2e_night.py); exact values are test_airflow_e2e.py's.
"""

from __future__ import annotations

import datetime as dt

import psutil
import pytest
from deltalake import DeltaTable, QueryBuilder
from e2e_night import LANDING, RUN_DATE, TABLES

from jobs.devtools.airflow_local import free_port, local_airflow, run_night

pytestmark = pytest.mark.airflow

# ~11 tasks start a Spark JVM each; on two busy cores a night of these tiny files took 15 min.
RUN_TIMEOUT_SECONDS = 1800


def _row_count(path: str) -> int:
    table = QueryBuilder().register("t", DeltaTable(path))
    return table.execute("SELECT count(*) AS n FROM t").read_all().column("n")[0].as_py()


def _home_of(process: psutil.Process) -> str | None:
    try:
        return process.environ().get("CXLAKE_HOME")
    except (psutil.Error, OSError):
        return None  # gone meanwhile, or not ours to read


@pytest.fixture(scope="module")
def night(config, tmp_path_factory):
    home = tmp_path_factory.mktemp("scheduler_home")
    night_config = config.moved_to(home, landing_root=str(LANDING))
    # A free port: a developer's `cxlake airflow up` may hold 8080 while the suite runs.
    with local_airflow(night_config, port=free_port()) as airflow, airflow.api() as api:
        outcome = run_night(api, dt.date.fromisoformat(RUN_DATE), timeout=RUN_TIMEOUT_SECONDS)
    assert outcome.state == "success", outcome.describe()
    return night_config, outcome


def test_night_builds_every_table(night) -> None:
    config, _ = night
    empty = [table for table in TABLES if _row_count(config.table_path(table)) == 0]
    assert empty == []


def test_every_task_ran_in_a_process_of_its_own(night) -> None:
    _, outcome = night
    states = dict(outcome.task_states)
    # 2026-03-03 is a Tuesday: the short circuit skips maintenance (Sundays), every other task runs.
    assert states.pop("maintain_delta") == "skipped"
    assert set(states.values()) == {"success"}
    assert sorted(outcome.task_pids) == sorted(states)
    assert len(set(outcome.task_pids.values())) == len(states)


def test_run_log_has_a_row_per_task_from_parallel_processes(night) -> None:
    config, outcome = night
    # Tasks that end at once (the three sensors, the three ingests) MERGE into the run log from
    # separate processes: every one's row is there, none lost to a commit race.
    rows = DeltaTable(config.table_path("ops.pipeline_runs")).to_pyarrow_table().to_pylist()
    last_tries = sorted((r for r in rows if r["run_id"] == outcome.run_id), key=lambda r: r["try_number"])
    logged = {row["task_id"]: row["state"] for row in last_tries}  # a retried task: its last try
    ran = {task: state for task, state in outcome.task_states.items() if task in outcome.task_pids}
    assert logged == ran


def test_nothing_is_left_running(night) -> None:
    config, _ = night
    # Components, task processes and Spark JVMs all carry the night's CXLAKE_HOME.
    assert [p.info["cmdline"] for p in psutil.process_iter(["cmdline"]) if _home_of(p) == str(config.home)] == []
