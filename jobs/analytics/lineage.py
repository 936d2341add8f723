"""``cxlake lineage TABLE``: where a table's rows come from, read from the OpenLineage events.

The events are the JSON lines under ``$CXLAKE_HOME/lineage/`` (:mod:`jobs.lake.lineage`: Spark
jobs, Airflow tasks and DAG runs, writes made without Spark). For a table, this finds the last
run that wrote it (the latest completed job with the table among its outputs; when several tasks
of a night write it, each task's last write in that DAG run), the tables that run read (every job
of that run writing the table: a night's MERGE and its follow-up writes), and the same for each of
those tables, down to the landing files: the upstream tree, each table with the Spark job, Airflow
task and DAG run that last wrote it.

A Spark job's event names its Spark application run as parent; the application's own events name
the task that started the session (a task per process: the scheduler), or nothing (one session
for many tasks: ``airflow dags test``, the demo). In the second case the task is the one whose
start and end events bracket the job, and the output says it was found so. A night step's own
record (``cxlake.<step>``) names its task directly.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jobs.analytics.catalog import lake_table_names
from jobs.lake.config import LakeConfig
from jobs.lake.lineage import lineage_dir

_COMPACTION = ("optimize", "vacuum")


@dataclass(frozen=True)
class RunLink:
    job: str
    run_id: str


@dataclass
class TableWrite:
    """The last run that wrote a table, and what it read."""

    table: str
    written_at: dt.datetime
    jobs: list[str]  # the jobs of that run that wrote the table
    run_id: str  # the writing run: the task's, else the Spark application's or the write's own
    task: RunLink | None  # the Airflow task (or None outside Airflow)
    task_by_time: bool  # the task was found by time (one session for the whole night)
    dag_run: RunLink | None
    inputs: list[str] = field(default_factory=list)  # tables, or paths that are no lake table

    def describe(self) -> str:
        task = (
            "no Airflow task (cxlake run / import)"
            if self.task is None
            else f"task {self.task.job} run {self.task.run_id}"
        )
        if self.task is not None and self.task_by_time:
            task += " (by time: one Spark session ran the whole night)"
        dag = f"; DAG run {self.dag_run.job} {self.dag_run.run_id}" if self.dag_run else ""
        stamp = self.written_at.strftime("%Y-%m-%d %H:%M:%S UTC")
        return f"last written {stamp} by {', '.join(sorted(set(self.jobs)))} (run {self.run_id}); {task}{dag}"


def read_events(folder: Path) -> Iterator[dict[str, Any]]:
    """Every OpenLineage event in ``folder``'s ``*.jsonl`` files (lines that are no JSON skipped:
    a file being appended to may end in half a line)."""
    for path in sorted(folder.glob("*.jsonl")):
        with open(path, encoding="utf-8") as lines:
            for line in lines:
                try:
                    event = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(event, dict) and "eventType" in event and "run" in event:
                    yield event


def _time(event: dict[str, Any]) -> dt.datetime:
    stamp = event["eventTime"].replace("Z", "+00:00")
    parsed = dt.datetime.fromisoformat(stamp)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _parent(event: dict[str, Any]) -> tuple[RunLink | None, RunLink | None]:
    facet = event["run"].get("facets", {}).get("parent")
    if not facet:
        return None, None
    parent = RunLink(facet["job"]["name"], facet["run"]["runId"])
    root = facet.get("root")
    return parent, RunLink(root["job"]["name"], root["run"]["runId"]) if root else None


@dataclass(frozen=True)
class _Observed:
    """A completed job that read or wrote lake data: a Spark job, or a write made without Spark."""

    at: dt.datetime
    job: str
    run_id: str
    parent: RunLink | None
    root: RunLink | None
    is_spark_job: bool
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


class LineageGraph:
    """The events of a lake: what each run read and wrote, and the task each run belongs to.

    A table's upstream is what the task run that last wrote it had read by then: every job of
    that run up to the write. A night's writes go through intermediate steps that OpenLineage
    cannot see through (a MERGE's source materialised by ``localCheckpoint`` is an RDD, not a
    table scan), while the job that materialised it did read the tables; within one task run the
    order of the jobs is the order of the data.
    """

    def __init__(self, config: LakeConfig, events: Iterable[dict[str, Any]]) -> None:
        self.config = config
        self._paths = {self._normal(config.table_path(t)): t for t in lake_table_names()}
        self._parents: dict[str, tuple[RunLink | None, RunLink | None]] = {}
        self._tasks: list[tuple[dt.datetime, dt.datetime, RunLink, RunLink | None]] = []
        self._observed: list[_Observed] = []
        starts: dict[str, dt.datetime] = {}
        for event in events:
            run_id = event["run"]["runId"]
            parent, root = _parent(event)
            if parent is not None:
                self._parents.setdefault(run_id, (parent, root))
            if event["eventType"] == "START":
                starts.setdefault(run_id, _time(event))
            if event["eventType"] != "COMPLETE":
                continue
            if self._is_airflow_task(event):
                dag_run = root or parent  # a task's parent is its DAG run
                self._tasks.append(
                    (starts.get(run_id, _time(event)), _time(event), RunLink(event["job"]["name"], run_id), dag_run)
                )
                # Its outputs are the task's declared outlets (Assets), not a write anyone saw:
                # the Spark jobs and the ingest's own events say what was read and written.
                continue
            inputs = tuple(self._table(i) or self._path(i) for i in event.get("inputs", []))
            outputs = tuple(t for t in (self._table(o) for o in event.get("outputs", [])) if t)
            if any(word in event["job"]["name"] for word in _COMPACTION):
                continue  # OPTIMIZE / VACUUM rewrite files, not content: not "the last write"
            if inputs or outputs:
                self._observed.append(
                    _Observed(
                        _time(event),
                        event["job"]["name"],
                        run_id,
                        parent,
                        root,
                        self._is_spark_job(event),
                        inputs,
                        outputs,
                    )
                )
        self._tasks.sort(key=lambda task: task[0])
        # Each job's scope once (a walk asks for the scope of every job, for every table it visits).
        self._scope_ids = {seen: self._scope(seen)[0] for seen in self._observed}

    @staticmethod
    def _is_airflow_task(event: dict[str, Any]) -> bool:
        kind = event["job"].get("facets", {}).get("jobType", {})
        return kind.get("integration") == "AIRFLOW" and kind.get("jobType") == "TASK"

    @staticmethod
    def _is_spark_job(event: dict[str, Any]) -> bool:
        kind = event["job"].get("facets", {}).get("jobType", {})
        return kind.get("integration") == "SPARK" and kind.get("jobType") != "APPLICATION"

    @staticmethod
    def _normal(path: str) -> str:
        path = path.removeprefix("file:")
        return path.replace("s3a://", "s3://").rstrip("/")

    def _path(self, dataset: dict[str, Any]) -> str:
        namespace, name = dataset["namespace"], dataset["name"]
        if namespace == "file":
            return self._normal(name)
        return self._normal(f"{namespace.rstrip('/')}/{name.lstrip('/')}")

    def _table(self, dataset: dict[str, Any]) -> str | None:
        return self._paths.get(self._path(dataset))

    def _scope(self, seen: _Observed) -> tuple[str, RunLink | None, bool, RunLink | None]:
        """(scope id, task, task found by time, DAG run) of an observed job.

        The task: the job's own parent when it is a task (a write recorded by the ingest), else
        its Spark application's parent when that is a task (a task per process), else the task
        running when it completed (one process for the whole night). Outside Airflow the scope is
        the run itself (its Spark application for a Spark job)."""
        parent, root = seen.parent, seen.root
        if seen.is_spark_job and parent is not None:
            parent, root = self._parents.get(parent.run_id, (None, None))
            application = seen.parent.run_id
        else:
            application = seen.run_id
        if parent is not None and "." in parent.job:
            return parent.run_id, parent, False, root
        task = self._task_at(seen.at)
        if task is not None:
            return task[2].run_id, task[2], True, task[3]
        return application, None, False, root or (parent if parent is not None else None)

    def last_write(self, table: str) -> TableWrite | None:
        """The last run that wrote ``table``, and what that run had read by then."""
        writes = self.last_writes(table)
        return writes[-1] if writes else None

    def last_writes(self, table: str) -> list[TableWrite]:
        """The last write of ``table`` by each task of the DAG run that last wrote it, oldest first
        (a table with several writers in a night: ``gold.cx_kpi_daily``'s data KPIs by
        ``build_gold``, its model KPIs by ``build_model_reports``); outside a DAG run, the last write."""
        writes = [seen for seen in self._observed if table in seen.outputs]
        if not writes:
            return []
        last = max(writes, key=lambda seen: seen.at)
        dag_run = self._scope(last)[3]
        # Per task (a retried task's later try replaces its earlier one); no task: the last write.
        latest_of_task: dict[str | None, _Observed] = {}
        for seen in sorted(writes, key=lambda seen: seen.at):
            _, task, _, of_dag_run = self._scope(seen)
            if seen is last or (dag_run is not None and of_dag_run == dag_run):
                latest_of_task[task.job if task else None] = seen
        return [self._write_of(table, seen) for seen in sorted(latest_of_task.values(), key=lambda seen: seen.at)]

    def _write_of(self, table: str, write: _Observed) -> TableWrite:
        """``write`` of ``table`` with what its scope had read by then."""
        scope, task, by_time, dag_run = self._scope(write)
        of_scope = [seen for seen in self._observed if seen.at <= write.at and self._scope_ids[seen] == scope]
        inputs = sorted({i for seen in of_scope for i in seen.inputs if i != table and i not in seen.outputs})
        jobs = [seen.job for seen in of_scope if table in seen.outputs]
        return TableWrite(table, write.at, jobs, scope, task, by_time, dag_run, inputs)

    def _task_at(self, when: dt.datetime) -> tuple[dt.datetime, dt.datetime, RunLink, RunLink | None] | None:
        """The Airflow task running at ``when`` (one process runs its tasks one at a time)."""
        for task in self._tasks:
            if task[0] <= when <= task[1]:
                return task
        return None


def upstream(graph: LineageGraph, table: str, depth: int = 6) -> list[tuple[int, str, TableWrite | None]]:
    """``table`` and every table upstream of it, depth first: (level, table or path, last write),
    one entry per writer of the last DAG run when a table has several."""
    out: list[tuple[int, str, TableWrite | None]] = []
    seen: set[str] = set()

    def walk(name: str, level: int) -> None:
        writes: list[TableWrite | None] = list(graph.last_writes(name)) if name in lake_table_names() else []
        for write in writes or [None]:
            out.append((level, name, write))
        if name in seen or not writes or level >= depth:
            return
        seen.add(name)
        for source in sorted({source for write in writes if write for source in write.inputs}):
            walk(source, level + 1)

    walk(table, 0)
    return out


def render(tree: list[tuple[int, str, TableWrite | None]]) -> str:
    lines = []
    for level, name, write in tree:
        pad = "  " * level
        arrow = "" if level == 0 else "<- "
        if write is None:
            what = "" if name in lake_table_names() else " (landing files)"
            lines.append(f"{pad}{arrow}{name}{what}" + ("  (no write recorded)" if not what else ""))
            continue
        lines.append(f"{pad}{arrow}{name}")
        lines.append(f"{pad}   {write.describe()}")
    return "\n".join(lines)


def lineage_of(config: LakeConfig, table: str) -> list[tuple[int, str, TableWrite | None]]:
    """The upstream tree of ``table`` from the lake's lineage events."""
    return upstream(LineageGraph(config, read_events(lineage_dir(config))), table)
