"""A local Airflow 3 on the project's settings: scheduler, DAG processor and API server (``cxlake airflow up``).

``airflow dags test`` runs a whole night in one process; here the real scheduler runs it, each task
in its own process (LocalExecutor), as a deployment does. The three components are the plain
``airflow scheduler``, ``airflow dag-processor`` and ``airflow api-server`` commands with the
environment of :func:`jobs.devtools.airflow_env.resolved_settings`, so ``eval "$(cxlake env)"``
gives a hand-run ``airflow`` command the same Airflow home, metadata DB, DAGs and lake.

:func:`local_airflow` starts them and waits until the API server answers, the scheduler and DAG
processor heartbeat and ``cx_nightly`` is parsed; on leaving it stops every process it started
(task processes and their Spark JVMs included). :class:`AirflowApi` unpauses, triggers and
follows a DAG run through the REST API (``/api/v2``, JWT from ``/auth/token``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import secrets
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from jobs.devtools.airflow_env import DEFAULT_API_PORT, airflow_bin, airflow_env, api_settings, ensure_airflow_db
from jobs.lake.config import PROJECT_ROOT, LakeConfig

DAG_ID = "cx_nightly"
# The plain `airflow` commands. The scheduler starts no log server (it would listen on every
# interface, on a port two local Airflows share): the API server reads the task logs from the
# same disk. Listed in stopping order: the scheduler and its tasks first, while the API server
# still takes their last state updates.
COMPONENTS = {
    "scheduler": ("scheduler", "--skip-serve-logs"),
    "dag-processor": ("dag-processor",),
    "api-server": ("api-server",),
}
FINISHED_RUN_STATES = ("success", "failed")
# Task states that mean the run will not succeed (the run itself turns failed a moment later).
FAILED_TASK_STATES = ("failed", "upstream_failed")


class AirflowStartError(RuntimeError):
    """A component exited or the DAG did not show up while the local Airflow was starting."""


@dataclass(frozen=True)
class Login:
    """A user of the simple auth manager and their password."""

    username: str
    password: str


@dataclass(frozen=True)
class LocalAirflow:
    """A running local Airflow: where it answers, who may log in, where each component logs."""

    url: str
    login: Login
    logs: dict[str, Path]
    processes: dict[str, subprocess.Popen] = field(repr=False)

    @property
    def pids(self) -> dict[str, int]:
        """Process id of each component."""
        return {name: process.pid for name, process in self.processes.items()}

    def exited_component(self) -> str | None:
        """The first component whose process has ended, or None while all three run."""
        return next((name for name, process in self.processes.items() if process.poll() is not None), None)

    def api(self) -> AirflowApi:
        """A REST client logged in as :attr:`login`."""
        return AirflowApi(self.url, self.login)


@dataclass
class RunOutcome:
    """How a DAG run ended: its state, wall time from trigger to end, and every task's state."""

    dag_id: str
    run_id: str
    state: str
    seconds: float
    task_states: dict[str, str]
    task_pids: dict[str, int] = field(default_factory=dict)
    failed_task_logs: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        """A readable account for an error message: run, task states, tails of failed tasks' logs."""
        lines = [f"{self.dag_id} {self.run_id}: {self.state} after {self.seconds:.0f} s"]
        lines += [f"  {task:<24} {state}" for task, state in sorted(self.task_states.items())]
        for task, tail in self.failed_task_logs.items():
            lines += [f"--- log tail of {task} ---", tail]
        return "\n".join(lines)


def free_port() -> int:
    """A TCP port nothing listens on at 127.0.0.1 now (for tests beside a running Airflow)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def local_settings(config: LakeConfig, port: int | None = None, parallelism: int | None = None) -> dict[str, str]:
    """The environment of the components: :func:`airflow_env`, optionally on another port or parallelism."""
    env = airflow_env(config)
    if port is not None:
        env.update(api_settings(port))
    if parallelism is not None:
        env["AIRFLOW__CORE__PARALLELISM"] = str(parallelism)
    return env


def admin_login(env: dict[str, str]) -> Login:
    """The first user of ``simple_auth_manager_users`` and its password, made once and kept.

    The simple auth manager reads passwords from its passwords file and only generates one for a
    user missing there, so writing it first gives a login we can print before the API server runs
    (and the same one on every start).
    """
    username = env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"].split(",")[0].split(":")[0].strip()
    passwords_file = Path(
        env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE")
        or Path(env["AIRFLOW_HOME"]) / "simple_auth_manager_passwords.json.generated"
    )
    passwords = json.loads(passwords_file.read_text() or "{}") if passwords_file.exists() else {}
    if username not in passwords:
        passwords[username] = secrets.token_urlsafe(12)
        passwords_file.parent.mkdir(parents=True, exist_ok=True)
        passwords_file.write_text(json.dumps(passwords) + "\n")
        passwords_file.chmod(0o600)
    return Login(username, passwords[username])


@contextlib.contextmanager
def local_airflow(
    config: LakeConfig,
    port: int | None = None,
    parallelism: int | None = None,
    ready_timeout: float = 240.0,
) -> Iterator[LocalAirflow]:
    """Run scheduler, DAG processor and API server for the ``with`` block; stop them all after.

    Args:
        config: the lake whose settings the components and their tasks get.
        port: the API server's port (default: ``AIRFLOW__API__PORT`` or 8080).
        parallelism: tasks run at once (default: ``AIRFLOW__CORE__PARALLELISM`` or the project's 2).
        ready_timeout: seconds to wait for the API server, the heartbeats and the parsed DAG.

    Yields:
        The running Airflow: URL, login, log files, process ids.

    Raises:
        AirflowStartError: the port is taken, a component exited, or the DAG was not parsed in time.
    """
    env = local_settings(config, port, parallelism)
    url = env["AIRFLOW__API__BASE_URL"]
    api_port = int(env["AIRFLOW__API__PORT"])
    if not _port_is_free(env["AIRFLOW__API__HOST"], api_port):
        raise AirflowStartError(f"port {api_port} is taken (another Airflow?); choose one with --port")
    ensure_airflow_db(config)
    login = admin_login(env)
    log_dir = Path(config.home) / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    logs = {name: log_dir / f"airflow-{name}.log" for name in COMPONENTS}
    processes: dict[str, subprocess.Popen] = {}
    try:
        for name, command in COMPONENTS.items():
            with logs[name].open("w") as sink:
                processes[name] = subprocess.Popen(
                    [airflow_bin(), *command],
                    env=env,
                    cwd=PROJECT_ROOT,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    # Their own session: Ctrl-C reaches only us, and we stop them in order.
                    start_new_session=True,
                )
        airflow = LocalAirflow(url, login, logs, processes)
        _wait_until_ready(airflow, ready_timeout)
        yield airflow
    finally:
        stop_processes(list(processes.values()))


def log_tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a log file ('' when there is none)."""
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def stop_processes(processes: list[subprocess.Popen], grace_seconds: float = 20.0) -> None:
    """Stop the components, in order, and everything they started; nothing outlives this call.

    Task processes run in process groups of their own (Airflow's supervisor sets them) and start
    Spark JVMs, so each component's whole tree is listed first. A component and its tree get
    SIGTERM (the scheduler's tasks stop with it instead of finishing their night) and
    ``grace_seconds`` to end; whatever is left at the end is killed.
    """
    trees = []
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            root = psutil.Process(process.pid)
            trees.append([root, *root.children(recursive=True)])
    for tree in trees:
        for member in tree:
            with contextlib.suppress(psutil.NoSuchProcess):
                member.terminate()
        psutil.wait_procs(tree, timeout=grace_seconds)
    for member in (m for tree in trees for m in tree):
        with contextlib.suppress(psutil.NoSuchProcess):
            member.kill()
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)  # reap, so no zombie is left in this process


class AirflowApi:
    """The few REST calls a night needs (Airflow 3 public API, ``/api/v2``), with a JWT login."""

    def __init__(self, url: str, login: Login, timeout: float = 30.0) -> None:
        self._http = httpx.Client(base_url=url, timeout=timeout)
        self._login = login
        self._token: str | None = None

    def __enter__(self) -> AirflowApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if self._token is None:
            answer = self._http.post(
                "/auth/token", json={"username": self._login.username, "password": self._login.password}
            )
            answer.raise_for_status()
            self._token = answer.json()["access_token"]
        headers = {"Authorization": f"Bearer {self._token}", **kwargs.pop("headers", {})}
        return self._http.request(method, path, headers=headers, **kwargs)

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        answer = self._request(method, path, **kwargs)
        if answer.is_error:
            raise httpx.HTTPStatusError(
                f"{method} {path}: {answer.status_code} {answer.text[:500]}", request=answer.request, response=answer
            )
        return answer.json()

    def health(self) -> dict[str, Any]:
        """``/api/v2/monitor/health`` (no login needed): metadata DB, scheduler, DAG processor."""
        return self._http.get("/api/v2/monitor/health").raise_for_status().json()

    def dag_is_parsed(self, dag_id: str) -> bool:
        """True once the DAG processor has serialized the DAG (the API knows it)."""
        return self._request("GET", f"/api/v2/dags/{dag_id}").status_code == 200

    def import_errors(self) -> list[dict[str, Any]]:
        """DAG files that failed to import: file name and stack trace."""
        return self._json("GET", "/api/v2/importErrors")["import_errors"]

    def unpause(self, dag_id: str) -> None:
        """Unpause the DAG (new DAGs start paused; a paused DAG's runs stay queued)."""
        self._json("PATCH", f"/api/v2/dags/{dag_id}", params={"update_mask": "is_paused"}, json={"is_paused": False})

    def trigger(self, dag_id: str, logical_date: dt.date) -> str:
        """Queue a manual run for the logical date (midnight UTC); returns its run id.

        Raises:
            httpx.HTTPStatusError: 409 when the DAG already has a run for that date.
        """
        stamp = dt.datetime.combine(logical_date, dt.time(), tzinfo=dt.UTC).isoformat()
        return self._json("POST", f"/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": stamp})["dag_run_id"]

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        """The run as the API returns it: ``state``, ``queued_at``, ``start_date``, ``end_date`` ..."""
        return self._json("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """The run's task instances: ``task_id``, ``state``, ``try_number``, ``pid`` ..."""
        return self._json("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 100})[
            "task_instances"
        ]

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int) -> list[str]:
        """A task try's log, one line per event (level and message)."""
        content = self._json(
            "GET",
            f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
            params={"full_content": "true"},
            headers={"Accept": "application/json"},
        )["content"]
        return [line if isinstance(line, str) else _log_line(line) for line in content]

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float, poll_seconds: float = 3.0) -> RunOutcome:
        """Poll the run until it succeeds or fails (or ``timeout`` seconds pass).

        Returns the outcome; on anything but success it carries the last 40 log lines of every
        failed task. ``seconds`` is the run's own queued-to-end time from the API when it ended.
        """
        deadline = time.monotonic() + timeout
        while True:
            run = self.dag_run(dag_id, run_id)
            tasks = self.task_instances(dag_id, run_id)
            if run["state"] in FINISHED_RUN_STATES or time.monotonic() > deadline:
                break
            time.sleep(poll_seconds)
        outcome = RunOutcome(
            dag_id=dag_id,
            run_id=run_id,
            state=run["state"] if run["state"] in FINISHED_RUN_STATES else f"{run['state']} (timed out)",
            seconds=_run_seconds(run),
            task_states={t["task_id"]: str(t["state"]) for t in tasks},
            task_pids={t["task_id"]: t["pid"] for t in tasks if t.get("pid")},
        )
        if outcome.state != "success":
            for task in tasks:
                if task["state"] in FAILED_TASK_STATES and task["try_number"]:
                    lines = self.task_log(dag_id, run_id, task["task_id"], task["try_number"])
                    outcome.failed_task_logs[task["task_id"]] = "\n".join(lines[-40:])
        return outcome


def run_night(api: AirflowApi, run_date: dt.date, timeout: float, dag_id: str = DAG_ID) -> RunOutcome:
    """Unpause the DAG, trigger it for ``run_date`` and wait for the run to end."""
    api.unpause(dag_id)
    run_id = api.trigger(dag_id, run_date)
    return api.wait_for_run(dag_id, run_id, timeout)


def banner(airflow: LocalAirflow) -> str:
    """What ``cxlake airflow up`` prints once Airflow is ready: URL, login, logs, how to use it."""
    port = str(httpx.URL(airflow.url).port)
    # On a port of its own (--port), hand-run commands need it too to reach this API server.
    same_port = (
        "" if os.environ.get("AIRFLOW__API__PORT", str(DEFAULT_API_PORT)) == port else f"AIRFLOW__API__PORT={port} "
    )
    return "\n".join(
        [
            f"Airflow is up: {airflow.url}  (login: {airflow.login.username} / {airflow.login.password})",
            "  components: " + ", ".join(f"{name} (pid {pid})" for name, pid in airflow.pids.items()),
            *(f"  log: {path}" for path in airflow.logs.values()),
            f"  trigger a night: {same_port}cxlake airflow trigger --date YYYY-MM-DD [--wait], or Trigger on {DAG_ID} in the UI",
            f'  hand-run airflow commands: eval "$({same_port}cxlake env)"',
            "Ctrl-C stops everything.",
        ]
    )


def serve_until_interrupted(airflow: LocalAirflow) -> int:
    """Stay in the foreground until Ctrl-C (0) or until a component exits on its own (1)."""
    try:
        while (gone := airflow.exited_component()) is None:
            time.sleep(2)
    except KeyboardInterrupt:
        print("\nstopping Airflow ...", flush=True)
        return 0
    print(f"airflow {gone} exited; its log ({airflow.logs[gone]}) ends with:\n{log_tail(airflow.logs[gone])}")
    return 1


def credentials(config: LakeConfig) -> tuple[str, Login]:
    """URL and login of the project's Airflow (what ``cxlake airflow up`` prints), for a client."""
    env = airflow_env(config)
    return env["AIRFLOW__API__BASE_URL"], admin_login(env)


def _log_line(event: dict[str, Any]) -> str:
    line = f"{event.get('level', '')} {event.get('event', '')}".strip()
    # "Task failed with exception" carries the exception itself as structured detail.
    for error in event.get("error_detail") or []:
        line += f"\n  {error.get('exc_type')}: {error.get('exc_value')}"
    return line


def _run_seconds(run: dict[str, Any]) -> float:
    if run.get("queued_at") and run.get("end_date"):
        queued = dt.datetime.fromisoformat(run["queued_at"])
        return (dt.datetime.fromisoformat(run["end_date"]) - queued).total_seconds()
    return float("nan")


def _port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _wait_until_ready(airflow: LocalAirflow, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    status = "API server not answering yet"
    with airflow.api() as api:
        while time.monotonic() < deadline:
            if (gone := airflow.exited_component()) is not None:
                raise AirflowStartError(
                    f"airflow {gone} exited; {airflow.logs[gone]} ends with:\n{log_tail(airflow.logs[gone])}"
                )
            try:
                health = api.health()
                waiting = [
                    c for c in ("metadatabase", "scheduler", "dag_processor") if health[c]["status"] != "healthy"
                ]
                if waiting:
                    status = "waiting for " + ", ".join(waiting)
                elif api.dag_is_parsed(DAG_ID):
                    return
                else:
                    status = f"{DAG_ID} not parsed yet"
                    broken = [e for e in api.import_errors() if "cx_nightly" in e.get("filename", "")]
                    if broken:
                        raise AirflowStartError(f"{DAG_ID} does not import:\n{broken[0].get('stack_trace', '')}")
            except httpx.TransportError:
                pass  # the API server is still starting
            time.sleep(2)
    raise AirflowStartError(f"Airflow not ready after {timeout:.0f} s ({status}); logs: {list(airflow.logs.values())}")
