"""A throw-away Spark standalone cluster on localhost: one master, one worker, for tests and trials.

It runs the master and worker classes of the installed pyspark (``SPARK_HOME`` is the pyspark package
folder) through its own ``bin/spark-class``, so it needs nothing beyond ``pip install pyspark`` and
a JDK. A job reaches it as any real cluster: ``CXLAKE_SPARK_MASTER=<the yielded URL>``; nothing in
the jobs knows it is a test cluster.

What executors need and get here, as on a real cluster:

- the driver's Python: ``jobs.lake.spark`` sets ``spark.pyspark.python`` to the driver's interpreter, and
  the worker is started with ``PYSPARK_PYTHON`` set to this process's interpreter as well;
- Delta's jars: the driver resolves ``spark.jars.packages`` (``~/.ivy2*`` cache) and lists the jars
  in ``spark.jars``; executors fetch them from the driver into their working folder;
- a working folder and scratch space outside the repository: everything (logs, the worker's
  ``app-*/<executor>/`` folders, ``SPARK_LOCAL_DIRS``) lives under ``work_dir``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

_LOG_TAIL_LINES = 40
# The master and worker daemons only schedule; they need far less than Spark's 1g default.
_DAEMON_MEMORY = "512m"


class ClusterStartError(RuntimeError):
    """The master or the worker did not come up (the message ends with the tail of their logs)."""


def spark_home() -> Path:
    """The installed pyspark package folder, which holds Spark's ``bin/``, ``jars/`` and ``sbin/``."""
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def free_ports(count: int = 1) -> list[int]:
    """``count`` distinct TCP ports on 127.0.0.1 that were free a moment ago (the OS picks them)."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


def worker_apps(work_dir: Path) -> list[str]:
    """Ids of the applications whose executors ran on the worker of a cluster started in ``work_dir``."""
    folder = Path(work_dir) / "worker"
    return sorted(p.name for p in folder.glob("app-*") if p.is_dir()) if folder.is_dir() else []


def _log_tail(*logs: Path) -> str:
    parts = []
    for log in logs:
        lines = log.read_text(errors="replace").splitlines() if log.exists() else ["(no log)"]
        parts.append(f"--- {log} (last {_LOG_TAIL_LINES} lines) ---\n" + "\n".join(lines[-_LOG_TAIL_LINES:]))
    return "\n".join(parts)


def _master_state(web_ui: str) -> dict:
    with urllib.request.urlopen(f"{web_ui}/json/", timeout=5) as response:
        return json.loads(response.read().decode("utf-8"))


def _start(args: list[str], log: Path, env: dict[str, str], stack: ExitStack) -> subprocess.Popen:
    handle = stack.enter_context(log.open("ab"))
    process = subprocess.Popen(
        [str(spark_home() / "bin" / "spark-class"), *args],
        stdin=subprocess.DEVNULL,
        stdout=handle,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=log.parent,
    )
    stack.callback(_stop, process)
    return process


def _stop(process: subprocess.Popen, grace_seconds: float = 15.0) -> None:
    """SIGTERM (the daemons' shutdown hooks stop their executors), then SIGKILL if still running."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace_seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=grace_seconds)


def _wait_for_worker(
    web_ui: str, processes: dict[str, subprocess.Popen], logs: list[Path], timeout_seconds: float
) -> None:
    deadline = time.monotonic() + timeout_seconds
    last_error = "the master's web UI never answered"
    while time.monotonic() < deadline:
        for name, process in processes.items():
            if process.poll() is not None:
                raise ClusterStartError(
                    f"the Spark {name} exited with code {process.returncode} while starting\n{_log_tail(*logs)}"
                )
        try:
            state = _master_state(web_ui)
            if int(state.get("aliveworkers", 0)) >= 1:
                return
            last_error = f"the master reports {state.get('aliveworkers', 0)} alive workers"
        except (urllib.error.URLError, OSError, ValueError) as error:
            last_error = f"{web_ui}/json/: {error}"
        time.sleep(0.5)
    raise ClusterStartError(
        f"no Spark worker registered with the master within {timeout_seconds:.0f} s ({last_error})\n{_log_tail(*logs)}"
    )


@contextmanager
def standalone_cluster(
    work_dir: Path, cores: int = 1, memory: str = "1g", timeout_seconds: float = 120.0
) -> Iterator[str]:
    """Start a Spark standalone master and one worker on 127.0.0.1; yield the master URL.

    Args:
        work_dir: folder for ``master.log``, ``worker.log``, the worker's application folders
            (``worker/app-*/``) and executors' scratch space (``local/``); created if missing.
        cores: cores the worker offers to executors.
        memory: memory the worker offers to executors (an executor asks for ``spark.executor.memory``,
            1g by default, so keep this at least that).
        timeout_seconds: how long to wait for the worker to register with the master.

    Yields:
        The master URL, ``spark://127.0.0.1:<port>`` (use it as ``CXLAKE_SPARK_MASTER``).

    Raises:
        ClusterStartError: a daemon exited or the worker did not register in time; the message ends
            with the tail of both logs.
    """
    work_dir = Path(work_dir).resolve()
    for folder in (work_dir / "worker", work_dir / "local"):
        folder.mkdir(parents=True, exist_ok=True)
    master_port, master_ui_port, worker_port, worker_ui_port = free_ports(4)
    master_url = f"spark://127.0.0.1:{master_port}"
    web_ui = f"http://127.0.0.1:{master_ui_port}"
    env = {
        **os.environ,
        "SPARK_HOME": str(spark_home()),
        # Executors start Python workers with this interpreter (the driver's setting wins when set).
        "PYSPARK_PYTHON": sys.executable,
        "SPARK_LOCAL_IP": "127.0.0.1",
        # Executors' block manager and shuffle files; Python workers' temp files follow TMPDIR.
        "SPARK_LOCAL_DIRS": str(work_dir / "local"),
        "TMPDIR": str(work_dir / "local"),
        "SPARK_DAEMON_MEMORY": _DAEMON_MEMORY,
        # The master's REST submission server would take the fixed port 6066: not needed here.
        "SPARK_MASTER_OPTS": "-Dspark.master.rest.enabled=false",
        # No spark-env.sh or spark-defaults.conf from elsewhere on the machine.
        "SPARK_CONF_DIR": str(work_dir),
    }
    logs = [work_dir / "master.log", work_dir / "worker.log"]
    with ExitStack() as stack:
        # Stopped in reverse order: the worker (and its executors) first, then the master.
        master = _start(
            [
                "org.apache.spark.deploy.master.Master",
                "--host", "127.0.0.1",
                "--port", str(master_port),
                "--webui-port", str(master_ui_port),
            ],
            logs[0],
            env,
            stack,
        )  # fmt: skip
        worker = _start(
            [
                "org.apache.spark.deploy.worker.Worker",
                master_url,
                "--host", "127.0.0.1",
                "--port", str(worker_port),
                "--webui-port", str(worker_ui_port),
                "--cores", str(cores),
                "--memory", memory,
                "--work-dir", str(work_dir / "worker"),
            ],
            logs[1],
            env,
            stack,
        )  # fmt: skip
        _wait_for_worker(web_ui, {"master": master, "worker": worker}, logs, timeout_seconds)
        yield master_url
