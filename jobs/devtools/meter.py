"""Per-stage figures of a pipeline run, for benchmarks: where a night's seconds go.

A :class:`StageMeter` wraps each stage (``with meter.stage("silver"): ...``) and records its wall
seconds, the Spark jobs it ran (a job group per stage, counted by Spark's status tracker), the
Delta commits it made and the files and rows those commits added (read from the new
``_delta_log`` entries: each ``add`` action carries ``numRecords``), the files its Spark scans
read once partitions and file statistics had pruned them (Spark's own "number of files read" of
each scan, data files and Delta log files apart: what shows whether a night reads the slice it
needs or the whole history), the CPU seconds the Python driver and the Spark JVM used (user +
system time of each process, every thread included: the work a stage did, which an hour of slow
or shared cores inflates far less than its wall seconds), and the peak resident memory of the
Python driver and of the Spark JVM, sampled apart (a JVM started by PySpark is a child process
that ``getrusage`` of the driver cannot see). Local lakes only (the log is read from disk).

Measured, never asserted: benchmarks print these figures, tests do not time anything.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

_SAMPLE_SECONDS = 0.1
_MIB = 2**20


@dataclass
class StageFigures:
    """What one stage cost."""

    name: str
    seconds: float
    spark_jobs: int
    delta_commits: int
    files_written: int
    rows_written: int
    rows_in: int | None = None
    files_read: int = 0
    log_files_read: int = 0
    driver_peak_rss_mb: float = 0.0
    jvm_peak_rss_mb: float = 0.0
    driver_cpu_seconds: float = 0.0
    jvm_cpu_seconds: float = 0.0

    @property
    def cpu_seconds(self) -> float:
        """CPU seconds of the driver and the JVM together."""
        return self.driver_cpu_seconds + self.jvm_cpu_seconds

    @property
    def rows_per_second(self) -> float | None:
        rows = self.rows_in if self.rows_in is not None else self.rows_written
        return rows / self.seconds if self.seconds > 0 and rows else None

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rows_per_second": self.rows_per_second, "cpu_seconds": round(self.cpu_seconds, 2)}


def _jvms(driver: psutil.Process) -> list[psutil.Process]:
    try:
        return [p for p in driver.children(recursive=True) if p.name().startswith("java")]
    except psutil.Error:
        return []


def _cpu_seconds(proc: psutil.Process) -> float:
    """User + system CPU seconds ``proc`` has used so far (all its threads; 0 once it exited)."""
    try:
        times = proc.cpu_times()
    except psutil.Error:
        return 0.0
    return times.user + times.system


class _ProcessSampler:
    """Samples the driver's and the JVM's RSS every 0.1 s in a daemon thread and keeps the peaks;
    reads their CPU seconds on entry and on exit (``driver_cpu``, ``jvm_cpu``: the time between).
    A JVM started meanwhile counts from zero; one that exited meanwhile is not counted."""

    def __init__(self) -> None:
        self._driver = psutil.Process(os.getpid())
        self.driver_peak = 0
        self.jvm_peak = 0
        self.driver_cpu = 0.0
        self.jvm_cpu = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _sample(self) -> None:
        try:
            self.driver_peak = max(self.driver_peak, self._driver.memory_info().rss)
        except psutil.Error:
            pass
        jvm = 0
        for proc in _jvms(self._driver):
            try:
                jvm += proc.memory_info().rss
            except psutil.Error:
                pass  # exited between listing and reading
        self.jvm_peak = max(self.jvm_peak, jvm)

    def _run(self) -> None:
        while not self._stop.wait(_SAMPLE_SECONDS):
            self._sample()

    def __enter__(self) -> _ProcessSampler:
        self._driver_cpu_start = _cpu_seconds(self._driver)
        self._jvm_cpu_start = {p.pid: _cpu_seconds(p) for p in _jvms(self._driver)}
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.driver_cpu = _cpu_seconds(self._driver) - self._driver_cpu_start
        self.jvm_cpu = sum(max(_cpu_seconds(p) - self._jvm_cpu_start.get(p.pid, 0.0), 0.0) for p in _jvms(self._driver))
        self._sample()


# Spark's SQL metric of a file scan (FileSourceScanExec's ``numFiles``): the files it read after
# partition pruning and data skipping.
_FILES_READ_METRIC = "number of files read"
# The file index a Delta log scan (commit JSON, checkpoint Parquet) goes through; a table's own
# data files go through Delta's other indexes (``PreparedDeltaFileIndex``, ``TahoeLogFileIndex``...).
_DELTA_LOG_INDEX = "DeltaLogFileIndex"


def _sql_store(spark: SparkSession) -> Any:
    """The session's SQL status store: every SQL execution's plan and metrics, kept whether or not
    the UI runs (the last ``spark.sql.ui.retainedExecutions`` of them)."""
    return spark._jsparkSession.sharedState().statusStore()  # noqa: SLF001 - no Python API for it


def _execution_id(store: Any, index: int) -> int:
    """The id of the ``index``-th execution the store keeps (in execution order)."""
    return store.executionsList(index, 1).apply(0).executionId()


def _last_execution_id(spark: SparkSession) -> int:
    store = _sql_store(spark)
    count = store.executionsCount()
    return _execution_id(store, count - 1) if count else -1


def _executions_after(store: Any, after_execution: int) -> list[int]:
    """The ids of the executions after ``after_execution`` that the store still keeps, newest first."""
    ids = []
    for index in range(store.executionsCount() - 1, -1, -1):
        execution_id = _execution_id(store, index)
        if execution_id <= after_execution:
            return ids
        ids.append(execution_id)
    if ids and ids[-1] > after_execution + 1:
        # The stage ran more executions than the store keeps: its oldest are gone.
        log.warning(
            "files read undercounted: executions %d..%d no longer kept (spark.sql.ui.retainedExecutions)",
            after_execution + 1,
            ids[-1] - 1,
        )
    return ids


def _scan_files(store: Any, execution_id: int) -> Iterator[tuple[str, int]]:
    """Each file scan of an execution: its plan description and the files it read."""
    values = store.executionMetrics(execution_id)
    nodes = store.planGraph(execution_id).allNodes()
    for node in (nodes.apply(n) for n in range(nodes.size())):
        if not node.name().startswith("Scan"):
            continue
        metrics = node.metrics()
        for metric in (metrics.apply(m) for m in range(metrics.size())):
            if metric.name() == _FILES_READ_METRIC:
                value = values.get(metric.accumulatorId())
                yield node.desc(), int(value.get().replace(",", "")) if value.isDefined() else 0


def _files_read(spark: SparkSession, after_execution: int) -> tuple[int, int]:
    """Files the file scans of SQL executions after ``after_execution`` read: (data files, Delta log files)."""
    store = _sql_store(spark)
    data_files = log_files = 0
    for execution_id in _executions_after(store, after_execution):
        for description, files in _scan_files(store, execution_id):
            if _DELTA_LOG_INDEX in description:
                log_files += files
            else:
                data_files += files
    return data_files, log_files


def _commit_files(lake_root: Path) -> set[Path]:
    return set(lake_root.glob("*/*/_delta_log/*.json"))


def _added(commits: set[Path]) -> tuple[int, int, int]:
    """Files and rows the ``add`` actions of these commit files bring (``numRecords`` of their
    stats), and the target files their delta-rs MERGEs scanned (:mod:`jobs.lake.local_merge`:
    reads no Spark scan reports)."""
    files = rows = scanned = 0
    for commit in commits:
        for line in commit.read_text().splitlines():
            action = json.loads(line)
            if "add" in action:
                files += 1
                stats = action["add"].get("stats")
                rows += json.loads(stats).get("numRecords", 0) if stats else 0
            elif "commitInfo" in action:
                metrics = action["commitInfo"].get("operationMetrics") or {}
                scanned += int(metrics.get("num_target_files_scanned", 0))
    return files, rows, scanned


class StageMeter:
    """Records :class:`StageFigures` for each ``with meter.stage(name)`` block, in order."""

    def __init__(self, spark: SparkSession, lake_root: str | Path, progress: bool = True) -> None:
        self.spark = spark
        self.lake_root = Path(lake_root)
        self.progress = progress
        self.stages: list[StageFigures] = []

    @contextmanager
    def stage(self, name: str, rows_in: int | None = None) -> Iterator[None]:
        """Measure the block as stage ``name`` (``rows_in``: input rows, when the caller knows them)."""
        context = self.spark.sparkContext
        # Unique per meter too: Spark keeps a group's jobs for the session, so two meters (night 1,
        # last night) reusing "ingest_orders:0" would count each other's jobs.
        group = f"bench:{id(self):x}:{name}:{len(self.stages)}"
        context.setJobGroup(group, name)
        before = _commit_files(self.lake_root)
        last_execution = _last_execution_id(self.spark)
        if self.progress:
            print(f"  {name} ...", end="", flush=True)
        started = time.monotonic()
        with _ProcessSampler() as sampler:
            try:
                yield
            finally:
                context.setLocalProperty("spark.jobGroup.id", None)
        seconds = time.monotonic() - started
        commits = _commit_files(self.lake_root) - before
        files, rows, merge_files_read = _added(commits)
        data_files_read, log_files_read = _files_read(self.spark, last_execution)
        data_files_read += merge_files_read
        figures = StageFigures(
            name=name,
            seconds=round(seconds, 2),
            spark_jobs=len(context.statusTracker().getJobIdsForGroup(group)),
            delta_commits=len(commits),
            files_written=files,
            rows_written=rows,
            rows_in=rows_in,
            files_read=data_files_read,
            log_files_read=log_files_read,
            driver_peak_rss_mb=round(sampler.driver_peak / _MIB, 1),
            jvm_peak_rss_mb=round(sampler.jvm_peak / _MIB, 1),
            driver_cpu_seconds=round(sampler.driver_cpu, 2),
            jvm_cpu_seconds=round(sampler.jvm_cpu, 2),
        )
        self.stages.append(figures)
        if self.progress:
            print(
                f" {figures.seconds:.1f} s (CPU: driver {figures.driver_cpu_seconds:.1f} s, JVM "
                f"{figures.jvm_cpu_seconds:.1f} s), {figures.spark_jobs} Spark jobs, {figures.delta_commits} commits, "
                f"{figures.rows_written} rows written, {figures.files_read} data files read",
                flush=True,
            )

    def table(self) -> str:
        """The stages as an aligned text table (what ``cxlake bench`` prints)."""
        head = (
            f"{'stage':28s} {'seconds':>8s} {'CPU s':>7s} {'rows in':>10s} {'rows out':>10s} {'rows/s':>9s} "
            f"{'jobs':>5s} {'commits':>7s} {'files':>6s} {'read':>6s} {'log read':>8s} {'driver MB':>9s} {'JVM MB':>7s}"
        )
        lines = [head, "-" * len(head)]
        for s in self.stages:
            rate = s.rows_per_second
            lines.append(
                f"{s.name:28s} {s.seconds:8.1f} {s.cpu_seconds:7.1f} {'' if s.rows_in is None else s.rows_in:>10} "
                f"{s.rows_written:>10d} "
                f"{'' if rate is None else f'{rate:,.0f}':>9s} {s.spark_jobs:5d} {s.delta_commits:7d} "
                f"{s.files_written:6d} {s.files_read:6d} {s.log_files_read:8d} "
                f"{s.driver_peak_rss_mb:9.0f} {s.jvm_peak_rss_mb:7.0f}"
            )
        total = sum(s.seconds for s in self.stages)
        cpu = sum(s.cpu_seconds for s in self.stages)
        lines.append(f"{'total':28s} {total:8.1f} {cpu:7.1f}")
        return "\n".join(lines)
