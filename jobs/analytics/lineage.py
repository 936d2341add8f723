"""``cxlake lineage TABLE``: where a table's rows come from, read from the OpenLineage events.

The events are the JSON lines under ``$CXLAKE_HOME/lineage/`` (:mod:`jobs.lake.lineage`: Spark
jobs, Airflow tasks and DAG runs, writes made without Spark). For a table, this finds the last
run that wrote it (the latest completed job with the table among its outputs), the tables that
run read (every job of that run writing the table: a night's MERGE and its follow-up writes),
and the same for each of those tables, down to the landing files: the upstream tree, each table
with the Spark job, Airflow task and DAG run that last wrote it.

A Spark job's event names its Spark application run as parent; the application's own events name
the task that started the session (a task per process: the scheduler) or the DAG run (one
session for a whole night: ``airflow dags test``, ``cxlake run``). In the second case the task
is the one whose start and end events bracket the job, and the output says it was found so.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jobs.analytics.catalog import lake_table_names
from jobs.lake.config import LakeConfig
from jobs.lake.lineage import lineage_dir


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
    run_id: str  # the writing run (a Spark application, or a write made without Spark)
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


class LineageGraph:
    """The events of a lake, indexed by table written and by run."""

    def __init__(self, config: LakeConfig, events: Iterable[dict[str, Any]]) -> None:
        self.config = config
        self._paths = {self._normal(config.table_path(t)): t for t in lake_table_names()}
        self._writes: dict[str, list[tuple[dt.datetime, str, str, list[str]]]] = defaultdict(list)
        self._parents: dict[str, tuple[RunLink | None, RunLink | None]] = {}
        self._tasks: list[tuple[dt.datetime, dt.datetime, RunLink, RunLink | None]] = []
        starts: dict[str, tuple[dt.datetime, dict[str, Any]]] = {}
        for event in events:
            run_id = event["run"]["runId"]
            parent, root = _parent(event)
            if parent is not None:
                self._parents.setdefault(run_id, (parent, root))
            if event["eventType"] == "START":
                starts[run_id] = (_time(event), event)
            if event["eventType"] != "COMPLETE":
                continue
            job = event["job"]["name"]
            if self._is_airflow_task(event):
                began = starts.get(run_id, (_time(event), event))[0]
                self._tasks.append((began, _time(event), RunLink(job, run_id), root))
                # Its outputs are the task's declared outlets (Assets), not a write anyone saw:
                # the Spark jobs and the ingest's own events say what was read and written.
                continue
            outputs = [self._table(o) for o in event.get("outputs", [])]
            inputs = [self._table(i) or self._path(i) for i in event.get("inputs", [])]
            # A Spark job belongs to its application's run (whose own parent is the task or DAG run).
            owner = parent.run_id if parent is not None and self._is_spark_job(event) else run_id
            for table in filter(None, outputs):
                self._writes[table].append((_time(event), job, owner, [i for i in inputs if i != table]))

    @staticmethod
    def _is_airflow_task(event: dict[str, Any]) -> bool:
        facets = event["job"].get("facets", {})
        kind = facets.get("jobType", {})
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

    def last_write(self, table: str) -> TableWrite | None:
        """The last run that wrote ``table``: all its jobs writing it and their inputs."""
        writes = self._writes.get(table)
        if not writes:
            return None
        when, _, run_id, _ = max(writes)
        of_run = [w for w in writes if w[2] == run_id]
        inputs = sorted({i for w in of_run for i in w[3]})
        # A Spark job's run id is its own; `owner` made it its application's: look that up.
        parent, root = self._parents.get(run_id, (None, None))
        task, by_time = (parent, False) if parent is not None and "." in parent.job else (None, False)
        dag_run = root if root is not None else (parent if parent is not None and "." not in parent.job else None)
        if task is None:
            task = self._task_at(when, dag_run)
            by_time = task is not None
        return TableWrite(table, when, [w[1] for w in of_run], run_id, task, by_time, dag_run, inputs)

    def _task_at(self, when: dt.datetime, dag_run: RunLink | None) -> RunLink | None:
        """The Airflow task of ``dag_run`` running at ``when`` (tasks of one process run one at a time)."""
        for began, ended, task, root in self._tasks:
            if began <= when <= ended and (dag_run is None or root is None or root.run_id == dag_run.run_id):
                return task
        return None


def upstream(graph: LineageGraph, table: str, depth: int = 6) -> list[tuple[int, str, TableWrite | None]]:
    """``table`` and every table upstream of it, depth first: (level, table or path, last write)."""
    out: list[tuple[int, str, TableWrite | None]] = []
    seen: set[str] = set()

    def walk(name: str, level: int) -> None:
        write = graph.last_write(name) if name in lake_table_names() else None
        out.append((level, name, write))
        if name in seen or write is None or level >= depth:
            return
        seen.add(name)
        for source in write.inputs:
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
