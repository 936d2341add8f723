"""OpenLineage for every night, as JSON lines under ``$CXLAKE_HOME/lineage/`` (no server needed).

Three producers write OpenLineage run events there, each with the file transport:

* **Spark jobs**, with ``CXLAKE_LINEAGE=spark`` only: the ``openlineage-spark`` listener (Maven
  Central, like Delta's jar) in every session :func:`jobs.lake.spark.get_spark` starts: one
  ``spark-<time>-<pid>.jsonl`` per session, with each job's input and output datasets (Delta
  table paths). Checked with Spark 4.2 and Delta 4.4: MERGE, save and read jobs report their
  tables. Not by default: for every SQL execution's start and end (a night runs hundreds, most
  of them Delta's own file listings) its 1.53 listener builds an extension wrapper that calls
  ``Thread.getAllStackTraces()`` (a pause of the whole JVM, executors included on a local
  master) and rescans the class path for extension providers. Measured on the quick bench, back
  to back: night 1's data stages 40.9 s with it, 36.0 s without; the last night's 57.1 s and
  51.7 s; a warm replay of its silver 23.0-23.6 s against 17.8-19.2 s. The step records below
  already name every table a step read and wrote.
* **Airflow tasks and DAG runs**: the Airflow OpenLineage provider, configured by
  :func:`airflow_settings` (``airflow.jsonl``).
* **Writes made without Spark** (the bronze ingest of a local lake, by delta-rs):
  :func:`record_write` (``cxlake-<pid>.jsonl``), so bronze has a writer too.

Parents. A DAG task sets the process's lineage parent (:func:`enter_airflow_task`) to its own
OpenLineage run (the provider's run id of the task instance) and the root to the DAG run, before
any Spark session starts: every Spark job's event then carries ``parent`` = its Spark application
run and ``root`` = the DAG run, and the application's start event carries ``parent`` = the task.
The listener reads its parent once, when the session starts, so where tasks share one process and
one session (``airflow dags test``, the demo's nights) the application has no parent
(:data:`SHARED_SESSION_VARIABLE`: the first task's would be wrong for the rest), and a job is
tied to its task by the task's start and end events (:mod:`jobs.analytics.lineage`). Each night
step's own record (below) carries its task as parent in both cases.

Steps. Spark's events cannot see through a MERGE whose source was materialised first
(``localCheckpoint``: an RDD, no table scan), so every night step also records its own table
I/O: :func:`step` notes each table it reads (:func:`note_read`, called by
:func:`jobs.lake.tables.read_table`) and each Delta commit (:func:`note_commit`, called by
:func:`jobs.lake.commits.committed`), and emits one event at its end: job ``cxlake.<step>``,
inputs the tables (and landing folders) it read, outputs the tables it committed to.

``CXLAKE_LINEAGE=0`` turns all of it off; ``1`` (the default) writes all but the Spark listener's
events; ``spark`` writes those too.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from jobs.lake.config import LakeConfig

log = logging.getLogger(__name__)

OPENLINEAGE_SPARK_PACKAGE = "io.openlineage:openlineage-spark_2.13:1.53.0"
NAMESPACE = "cxlake"  # the namespace of our jobs (Spark application and writes)
AIRFLOW_NAMESPACE = "cxlake-airflow"
PRODUCER = "https://github.com/cxlake/cxlake"
PARENT_VARIABLE = "CXLAKE_LINEAGE_PARENT"  # namespace/job/run_id of the current task's run
ROOT_VARIABLE = "CXLAKE_LINEAGE_ROOT"  # namespace/job/run_id of the DAG run
# Set by harnesses that run a whole night's tasks in one process (one Spark session).
SHARED_SESSION_VARIABLE = "CXLAKE_LINEAGE_SHARED_SESSION"
# Facets the listener would add to every event and nobody here reads (they make events ~5x larger).
_DISABLED_FACETS = "[spark_unknown;spark.logicalPlan;debug;spark_properties;environment-properties]"


@dataclass(frozen=True)
class RunRef:
    """An OpenLineage run: its job's namespace and name, and the run id."""

    namespace: str
    job: str
    run_id: str

    def encoded(self) -> str:
        return f"{self.namespace}/{self.job}/{self.run_id}"

    @classmethod
    def decoded(cls, text: str) -> RunRef | None:
        parts = text.split("/")
        return cls(parts[0], "/".join(parts[1:-1]), parts[-1]) if len(parts) >= 3 else None


def _setting() -> str:
    return os.environ.get("CXLAKE_LINEAGE", "1").strip().lower()


def is_enabled() -> bool:
    """Lineage is on unless ``CXLAKE_LINEAGE`` is 0/false/no."""
    return _setting() not in ("0", "false", "no")


def spark_listener_enabled() -> bool:
    """The ``openlineage-spark`` listener runs in each session: ``CXLAKE_LINEAGE=spark`` only (its
    cost on every SQL execution: the module docstring)."""
    return _setting() == "spark"


def lineage_dir(config: LakeConfig) -> Path:
    return Path(config.home) / "lineage"


def current_parent() -> tuple[RunRef | None, RunRef | None]:
    """The process's lineage parent and root (set by :func:`set_parent`), if any."""
    parent = RunRef.decoded(os.environ.get(PARENT_VARIABLE, ""))
    root = RunRef.decoded(os.environ.get(ROOT_VARIABLE, ""))
    return parent, root


def set_parent(parent: RunRef | None, root: RunRef | None) -> None:
    """Make ``parent`` (and ``root``) the lineage parent of what this process runs from now on
    (environment variables: child processes inherit them)."""
    for variable, ref in ((PARENT_VARIABLE, parent), (ROOT_VARIABLE, root)):
        if ref is None:
            os.environ.pop(variable, None)
        else:
            os.environ[variable] = ref.encoded()


def spark_settings(config: LakeConfig) -> dict[str, str]:
    """Spark settings of the OpenLineage listener (empty unless :func:`spark_listener_enabled`).

    ``spark.jars.packages`` holds only the listener's coordinates: the caller merges them.
    """
    if not spark_listener_enabled():
        return {}
    folder = lineage_dir(config)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    settings = {
        "spark.jars.packages": OPENLINEAGE_SPARK_PACKAGE,
        # The listener probes connectors through reflection into java.security: without this it
        # prints an InaccessibleObjectException stack at every session start (and finds nothing).
        "spark.driver.extraJavaOptions": "--add-opens=java.base/java.security=ALL-UNNAMED",
        "spark.extraListeners": "io.openlineage.spark.agent.OpenLineageSparkListener",
        "spark.openlineage.transport.type": "file",
        "spark.openlineage.transport.location": str(folder / f"spark-{stamp}-{os.getpid()}.jsonl"),
        "spark.openlineage.namespace": NAMESPACE,
        "spark.openlineage.facets.disabled": _DISABLED_FACETS,
    }
    parent, root = current_parent()
    if os.environ.get(SHARED_SESSION_VARIABLE):
        # One session for every task of one or more nights: no run is its parent (the first
        # task's would be wrong for the rest); its jobs are tied to tasks by time instead.
        parent = root = None
    for prefix, ref in (("parent", parent), ("rootParent", root or parent)):
        if ref is not None:
            settings[f"spark.openlineage.{prefix}JobNamespace"] = ref.namespace
            settings[f"spark.openlineage.{prefix}JobName"] = ref.job
            settings[f"spark.openlineage.{prefix}RunId"] = ref.run_id
    return settings


def airflow_settings(config: LakeConfig) -> dict[str, str]:
    """``AIRFLOW__OPENLINEAGE__*`` settings: the provider's events to ``lineage/airflow.jsonl``."""
    if not is_enabled():
        return {"AIRFLOW__OPENLINEAGE__DISABLED": "true"}
    transport = {"type": "file", "log_file_path": str(lineage_dir(config) / "airflow.jsonl"), "append": True}
    return {
        "AIRFLOW__OPENLINEAGE__DISABLED": "false",
        "AIRFLOW__OPENLINEAGE__NAMESPACE": AIRFLOW_NAMESPACE,
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(transport),
    }


def enter_airflow_task() -> str | None:
    """Inside a DAG task: make its OpenLineage run (as the provider names it) this process's
    lineage parent, and its DAG run the root; return the task id. Does nothing (None) outside
    Airflow, without the provider, or with lineage off."""
    if not is_enabled():
        return None
    try:
        from airflow.providers.openlineage.plugins import macros
        from airflow.sdk import get_current_context

        task_instance = get_current_context()["ti"]
        parent = RunRef(
            macros.lineage_job_namespace(), macros.lineage_job_name(task_instance), macros.lineage_run_id(task_instance)
        )
        root = RunRef(
            macros.lineage_root_job_namespace(task_instance),
            macros.lineage_root_job_name(task_instance),
            macros.lineage_root_run_id(task_instance),
        )
    except (ImportError, KeyError, RuntimeError):
        return None
    set_parent(parent, root)
    return task_instance.task_id


def in_step() -> bool:
    """A night step is recording its table I/O (:func:`step`)."""
    return bool(_current)


def _dataset(config: LakeConfig, name_or_path: str) -> tuple[str, str]:
    """An OpenLineage dataset (namespace, name) as the Spark listener names a table: namespace
    ``file`` and the path, or the bucket's URI and the key."""
    path = config.table_path(name_or_path) if "/" not in name_or_path else name_or_path
    if "://" in path and not path.startswith("file:"):
        scheme, rest = path.split("://", 1)
        bucket, _, key = rest.partition("/")
        return f"{scheme.replace('s3a', 's3')}://{bucket}", key
    return "file", path.removeprefix("file:")


def record_write(
    config: LakeConfig,
    job: str,
    inputs: Iterable[str],
    outputs: Iterable[str],
    started: dt.datetime,
    ended: dt.datetime,
) -> None:
    """Record a write made without Spark (e.g. the delta-rs ingest) as a START and a COMPLETE
    event of job ``job``, its parent the process's current one. ``inputs``/``outputs``: table
    names (``bronze.orders``) or paths (landing folders)."""
    if not is_enabled():
        return
    from openlineage.client import OpenLineageClient
    from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
    from openlineage.client.facet_v2 import parent_run
    from openlineage.client.transport.file import FileConfig, FileTransport
    from openlineage.client.uuid import generate_new_uuid

    folder = lineage_dir(config)
    folder.mkdir(parents=True, exist_ok=True)
    parent, root = current_parent()
    facets = {}
    if parent is not None:
        top = root or parent
        facets["parent"] = parent_run.ParentRunFacet(
            run=parent_run.Run(runId=parent.run_id),
            job=parent_run.Job(namespace=parent.namespace, name=parent.job),
            root=parent_run.Root(
                run=parent_run.RootRun(runId=top.run_id), job=parent_run.RootJob(namespace=top.namespace, name=top.job)
            ),
        )
    run = Run(runId=str(generate_new_uuid(started)), facets=facets)
    client = OpenLineageClient(
        transport=FileTransport(FileConfig(log_file_path=str(folder / f"cxlake-{os.getpid()}.jsonl"), append=True))
    )
    for state, at in ((RunState.START, started), (RunState.COMPLETE, ended)):
        client.emit(
            RunEvent(
                eventType=state,
                eventTime=at.isoformat(),
                run=run,
                job=Job(namespace=NAMESPACE, name=job),
                producer=PRODUCER,
                inputs=[InputDataset(*_dataset(config, i)) for i in inputs],
                outputs=[OutputDataset(*_dataset(config, o)) for o in outputs],
            )
        )


@dataclass
class _Step:
    config: LakeConfig
    job: str
    started: dt.datetime
    reads: dict[str, None] = field(default_factory=dict)  # ordered sets
    writes: dict[str, None] = field(default_factory=dict)


_current: list[_Step] = []


@contextmanager
def step(config: LakeConfig, name: str) -> Iterator[None]:
    """Record the lake I/O of one night step as one OpenLineage run ``cxlake.<name>`` (at its end,
    when it wrote something). Steps do not nest: an inner one is part of the outer."""
    if not is_enabled() or _current:
        yield
        return
    current = _Step(config, f"cxlake.{name}", dt.datetime.now(dt.UTC))
    _current.append(current)
    try:
        yield
    finally:
        _current.clear()
    if current.writes:
        try:
            record_write(config, current.job, current.reads, current.writes, current.started, dt.datetime.now(dt.UTC))
        except OSError as error:  # lineage is a record of the night, never a reason to fail it
            log.warning("lineage of %s not recorded: %s", current.job, error)


def note_read(table_or_path: str) -> None:
    """The current step read a table (``silver.orders``) or a landing folder (a path)."""
    if _current:
        _current[0].reads[table_or_path] = None


def note_commit(path: str) -> None:
    """The current step committed to the Delta table at ``path`` (a table name is accepted too)."""
    if not _current:
        return
    current = _current[0]
    table = path if "/" not in path else _table_of(current.config, path)
    if table is not None:
        current.writes[table] = None


def _table_of(config: LakeConfig, path: str) -> str | None:
    root = config.lake_root.rstrip("/")
    if not path.startswith(root + "/"):
        return None
    layer_table = path[len(root) + 1 :].strip("/").split("/")
    return ".".join(layer_table[:2]) if len(layer_table) >= 2 else None
