"""The Spark + Delta session factory: the only place a SparkSession is built."""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import shutil
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlparse

from jobs.lake import lineage
from jobs.lake.config import LakeConfig, load_config

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)


def spark_settings(config: LakeConfig) -> dict[str, str]:
    """Every Spark setting the lakehouse needs, from config (no code edits to go to a cluster)."""
    settings = {
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.driver.memory": config.driver_memory,
        "spark.sql.shuffle.partitions": str(config.shuffle_partitions),
        # Table contents must not depend on the machine's zone: all timestamps are UTC.
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.showConsoleProgress": "false",
        "spark.ui.enabled": "false",
        # Small nightly slices: adaptive execution coalesces the few shuffle partitions further.
        "spark.sql.adaptive.enabled": "true",
        "spark.databricks.delta.schema.autoMerge.enabled": "false",
        # Delta rebuilds table state with this many tasks (default 50): on small nightly tables
        # that is pure scheduling overhead (measured: a 5-row write fell from ~5 s to ~1.2 s).
        "spark.databricks.delta.snapshotPartitions": "1",
        # Compiled query code is cached by its source text, 100 classes by default: a night's
        # queries generate more than that, so every night compiled them all again (a JFR profile of
        # a demo night's second night in one process: 25 % of the JVM's CPU in Janino). Kept, the
        # same queries on the next date mostly hit (6-12 %). Wall time: one back-to-back pair of
        # that night's data stages 70 -> 63 s; the demo bench's last night 108.5 -> 107.5 s (noise).
        "spark.sql.codegen.cache.maxEntries": "4000",
        # VACUUM lists table directories with this many tasks (default 10000): on a small lake
        # that is minutes of empty tasks per table (measured: 46 s -> 10-16 s per VACUUM).
        "spark.sql.sources.parallelPartitionDiscovery.parallelism": str(config.shuffle_partitions),
        # Python workers must run the interpreter that has our packages (pandas, pyarrow, jobs);
        # on a cluster whose nodes install elsewhere, override it in CXLAKE_SPARK_CONF.
        "spark.pyspark.python": sys.executable,
        "spark.pyspark.driver.python": sys.executable,
        # Files Spark's Hadoop client creates are private to their owner, as the process's umask
        # makes every other file (jobs.lake.config.load_config): bronze holds clear personal data.
        "spark.hadoop.fs.permissions.umask-mode": "077",
        "spark.sql.warehouse.dir": str(config.home / "spark-warehouse"),
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={config.home / 'derby'}",
    }
    if config.spark_master.startswith("local"):
        # In-process Spark serves its driver and block manager ports to nobody else: loopback only
        # (a cluster's executors must reach the driver: set spark.driver.host in CXLAKE_SPARK_CONF).
        settings["spark.driver.bindAddress"] = "127.0.0.1"
        settings["spark.driver.host"] = "127.0.0.1"
        # The driver is the only executor here, and its work is batch: the parallel collector
        # (throughput first) instead of Java 17's default G1 (pause times first). Large bench's
        # last-night journey replayed on one snapshot: 38.0, 33.6 s with G1; 34.8, 29.0 and
        # 34.0, 29.6 s with it. A cluster's executors keep their own JVM options.
        settings["spark.driver.extraJavaOptions"] += " -XX:+UseParallelGC"
    settings.update(config.extra_spark_conf)
    # OpenLineage (jobs.lake.lineage): the listener's jar is always on the class path, so that a
    # session without the listener maps the same JVM class archive; it runs with CXLAKE_LINEAGE=spark.
    listener = lineage.spark_settings(config)
    listener.pop("spark.jars.packages", None)
    java_options = listener.pop("spark.driver.extraJavaOptions", "")
    settings.update(listener)
    if java_options:
        settings["spark.driver.extraJavaOptions"] = f"{settings['spark.driver.extraJavaOptions']} {java_options}"
    extra = [p for p in settings.get("spark.jars.packages", "").split(",") if p]
    if lineage.OPENLINEAGE_SPARK_PACKAGE not in extra:
        settings["spark.jars.packages"] = ",".join([*extra, lineage.OPENLINEAGE_SPARK_PACKAGE])
    return settings


def get_spark(config: LakeConfig | None = None, app_name: str = "cxlake") -> SparkSession:
    """Return the process's SparkSession with Delta, creating it on first use.

    Delta's jars (the coordinates ``configure_spark_with_delta_pip`` uses) are resolved from Maven
    Central by Ivy (cached in ``~/.ivy2*``) on the first start; later starts use the resolved jar
    files (:func:`resolved_jars_cache`). Extra packages such as ``hadoop-aws`` for ``s3a://``
    lakes go in ``CXLAKE_SPARK_CONF="spark.jars.packages=..."`` and are merged with Delta's; an
    explicit ``spark.jars`` there turns the cache off.
    """
    from pyspark.sql import SparkSession

    config = config or load_config()
    settings = spark_settings(config)
    # PySpark picks the worker interpreter from this variable, not from the Spark setting.
    os.environ.setdefault("PYSPARK_PYTHON", settings["spark.pyspark.python"])
    packages = jar_packages(settings)
    settings.pop("spark.jars.packages", None)
    builder = SparkSession.builder.appName(app_name).master(config.spark_master)
    for key, value in settings.items():
        builder = builder.config(key, value)
    cache = None if "spark.jars" in settings else resolved_jars_cache(packages)
    jars = cache.read_text().split(",") if cache is not None and cache.exists() else []
    if jars and all(os.path.exists(urlparse(jar).path) for jar in jars):
        # Resolved before: start from the jar files, without asking Ivy again (measured ~1.8 s a start).
        builder = builder.config("spark.jars", ",".join(jars))
    else:
        builder = builder.config("spark.jars.packages", packages)
    java_options = _class_archive_options(jars)
    if java_options:
        builder = builder.config(
            "spark.driver.extraJavaOptions", f"{settings['spark.driver.extraJavaOptions']} {java_options}"
        )
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    if lineage.spark_listener_enabled():
        _quiet_openlineage(spark)
    conf = spark.sparkContext.getConf()
    if cache is not None and conf.get("spark.jars.packages") == packages and conf.get("spark.jars"):
        # This process asked Ivy: keep its answer for the next start (written whole, atomically).
        cache.parent.mkdir(parents=True, exist_ok=True)
        partial = cache.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(conf.get("spark.jars"))
        partial.replace(cache)
    return spark


# The listener logs, for every Spark job that runs outside a SQL execution (Delta's own log reads:
# hundreds a night), an ERROR that it has no event to emit; and once per session a multi-line
# warning about class loaders that concerns connectors we do not use. Both say nothing is wrong.
_OPENLINEAGE_NOISE = {
    "io.openlineage.spark.agent.lifecycle.ContextFactory": "OFF",
    "io.openlineage.spark.agent.lifecycle.SparkOpenLineageExtensionVisitorWrapper": "ERROR",
}


def _quiet_openlineage(spark: SparkSession) -> None:
    log4j = spark._jvm.org.apache.logging.log4j
    for logger, level in _OPENLINEAGE_NOISE.items():
        log4j.core.config.Configurator.setLevel(logger, log4j.Level.getLevel(level))


def jar_packages(settings: Mapping[str, str]) -> str:
    """Delta's Maven coordinates and any extra ``spark.jars.packages`` of ``settings``, comma-separated."""
    extra = [p for p in settings.get("spark.jars.packages", "").split(",") if p]
    return ",".join([delta_package(), *extra])


def delta_package() -> str:
    """Maven coordinates of the Delta jar matching the installed pip packages, as
    ``delta.configure_spark_with_delta_pip`` names them (``io.delta:delta-spark_4.2_2.13:4.4.0``)."""
    from importlib.metadata import version

    import pyspark

    spark_minor = ".".join(pyspark.__version__.split(".")[:2])
    return f"io.delta:delta-spark_{spark_minor}_2.13:{version('delta_spark')}"


def resolved_jars_cache(packages: str) -> Path:
    """Where the jar files that Ivy resolved for ``packages`` (Delta's and any extra) are listed.

    Every process that starts Spark with ``spark.jars.packages`` asks Ivy to resolve them, even
    when all are in ``~/.ivy2*`` already; the list is the same for the same packages, so it is
    kept per user (``$XDG_CACHE_HOME/cxlake``) under a hash of the package coordinates.
    """
    digest = hashlib.sha256(packages.encode()).hexdigest()[:16]
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "cxlake" / f"spark-jars-{digest}.txt"


# Set (to a file path) in the process that :func:`build_class_archive` starts: its JVM writes the
# classes it loaded there when it exits.
_ARCHIVE_DUMP_VARIABLE = "CXLAKE_JVM_ARCHIVE_DUMP"
# The JVM reports on its class archive (unusable: another JDK, changed jars) in warnings on
# stdout; an unusable archive is simply not used, and a command's output stays clean.
_QUIET_ARCHIVE = "-Xlog:cds=off -Xlog:cds+dynamic=off"


def class_archive_path(jars: list[str]) -> Path:
    """The JVM class archive (AppCDS) for a driver started with ``jars``, next to the jars list.

    Keyed by what the JVM loads classes from: the JDK, PySpark's jars and ``jars``. The JVM checks
    the archive against its class path itself and ignores one that does not match.
    """
    import pyspark

    java = os.path.realpath(Path(os.environ["JAVA_HOME"]) / "bin" / "java") if "JAVA_HOME" in os.environ else ""
    key = "\n".join([java, pyspark.__version__, pyspark.__file__, *jars])
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "cxlake" / f"jvm-classes-{digest}.jsa"


def _resolved_jars(config: LakeConfig) -> list[str] | None:
    """The jar files Ivy resolved for ``config``'s packages (:func:`resolved_jars_cache`), None before the first start."""
    cache = resolved_jars_cache(jar_packages(spark_settings(config)))
    return cache.read_text().split(",") if cache.exists() else None


def existing_class_archive(config: LakeConfig | None = None) -> Path | None:
    """This machine's class archive for ``config``'s jars, when written already (None otherwise)."""
    jars = _resolved_jars(config or load_config())
    if not jars:
        return None
    archive = class_archive_path(jars)
    return archive if archive.exists() else None


def _class_archive_options(jars: list[str]) -> str:
    """Driver JVM options: write the archive (in :func:`build_class_archive`'s process) or use it."""
    dump = os.environ.get(_ARCHIVE_DUMP_VARIABLE)
    if dump:
        return f"-XX:ArchiveClassesAtExit={dump} {_QUIET_ARCHIVE}"
    archive = class_archive_path(jars)
    return f"-XX:SharedArchiveFile={archive} {_QUIET_ARCHIVE}" if jars and archive.exists() else ""


# What the archive's JVM runs: the classes of a session start, a Delta write, MERGE, read and
# aggregation, so every task process finds them mapped instead of loading them from the jars.
_ARCHIVE_WORKLOAD = """
import sys
import pyspark.sql.functions as F
from delta.tables import DeltaTable
from jobs.lake.spark import get_spark
spark = get_spark()
path = sys.argv[1]
rows = spark.range(100).select(F.col("id"), (F.col("id") % 7).alias("k"), F.current_date().alias("d"))
rows.write.format("delta").partitionBy("k").mode("overwrite").save(path)
(DeltaTable.forPath(spark, path).alias("t").merge(rows.alias("s"), "t.id = s.id")
    .whenMatchedUpdateAll().whenNotMatchedInsertAll().execute())
spark.read.format("delta").load(path).groupBy("k").agg(F.count("*")).localCheckpoint().toPandas()
"""


def build_class_archive(config: LakeConfig | None = None) -> Path | None:
    """Write the JVM class archive that later driver starts map instead of loading Spark's and
    Delta's classes from jar files (JDK's dynamic AppCDS).

    Every Airflow task is a new process whose JVM loads the same ~20,000 classes: measured here,
    with the archive a Spark session starts in 5.6 s instead of 9.3 s and its first Delta write
    takes 5.5 s instead of 9.5 s. Run once per machine after the install (``make``) or with
    ``cxlake jvm-archive``; a start without it works as before.

    Returns:
        The archive, or None when the archive process failed (its error is logged).
    """
    import subprocess
    import tempfile

    config = config or load_config()
    with tempfile.TemporaryDirectory() as tmp:
        partial = Path(tmp) / "classes.jsa"
        env = {**os.environ, _ARCHIVE_DUMP_VARIABLE: str(partial), "CXLAKE_HOME": str(config.home)}
        done = subprocess.run(
            [sys.executable, "-c", _ARCHIVE_WORKLOAD, str(Path(tmp) / "table")],
            env=env,
            capture_output=True,
            text=True,
        )
        jars = _resolved_jars(config)
        if done.returncode != 0 or not partial.exists() or not jars:
            log.error("JVM class archive not written (exit %s): %s", done.returncode, done.stderr[-2000:])
            return None
        archive = class_archive_path(jars)
        archive.parent.mkdir(parents=True, exist_ok=True)
        # Written whole, then moved into place: a process starting meanwhile sees none or all of it.
        staged = archive.with_suffix(f".{os.getpid()}.tmp")
        shutil.copyfile(partial, staged)
        staged.replace(archive)
        return archive


T = TypeVar("T")
# Steps that overlap at most: a small step keeps about one core busy on the driver; more at once
# only queue for the same cores and memory.
MAX_CONCURRENT_STEPS = 4


def in_parallel(steps: Mapping[str, Callable[[], T]], max_workers: int | None = None) -> dict[str, T]:
    """Run independent Spark steps at the same time, in threads that inherit the caller's Spark
    local properties (job group: a benchmark's meter still counts their jobs).

    A small night's Spark work is driver latency (planning, scheduling, Delta commits), so steps
    that read and write different tables overlap on a 2-core machine instead of waiting in turn;
    on a cluster their jobs share the executors. Every step runs to its end even when another
    fails (no write is abandoned half-way); then the first failure in ``steps`` order is raised
    and the others are logged. A step stopped by a ``BaseException`` that is no ``Exception``
    (an interrupt, a simulated crash) stops the steps not yet started, as a kill would.

    Args:
        max_workers: steps at once (default :data:`MAX_CONCURRENT_STEPS`, read at call time);
            1 runs them in order in the caller's thread (the crash-point tests: each commit
            then has one place in the night's order).

    Returns:
        Each step's result by name, in ``steps`` order.
    """
    import threading

    from pyspark import InheritableThread

    workers = MAX_CONCURRENT_STEPS if max_workers is None else max_workers
    if len(steps) <= 1 or workers <= 1:
        return _in_order(steps)
    results: dict[str, T] = {}
    errors: dict[str, BaseException] = {}
    slots = threading.BoundedSemaphore(workers)
    stopped = threading.Event()

    def call(name: str, step: Callable[[], T]) -> None:
        with slots:
            if stopped.is_set():
                return
            try:
                results[name] = step()
            except Exception as error:
                errors[name] = error
            except BaseException as error:  # noqa: BLE001 - re-raised below, in the caller's thread
                errors[name] = error
                stopped.set()

    threads = [InheritableThread(call, args=(name, step), daemon=True) for name, step in steps.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    failed = [name for name in steps if name in errors]
    for name in failed[1:]:
        log.error("concurrent step %s also failed: %r", name, errors[name])
    if failed:
        raise errors[failed[0]]
    return {name: results[name] for name in steps}


def _in_order(steps: Mapping[str, Callable[[], T]]) -> dict[str, T]:
    """:func:`in_parallel`'s semantics, one step after another in the caller's thread."""
    results: dict[str, T] = {}
    errors: dict[str, Exception] = {}
    for name, step in steps.items():
        try:
            results[name] = step()
        except Exception as error:
            errors[name] = error
    for name in list(errors)[1:]:
        log.error("step %s also failed: %r", name, errors[name])
    if errors:
        raise next(iter(errors.values()))
    return results


def run_concurrently(spark: SparkSession, steps: Mapping[str, Callable[[SparkSession], T]]) -> dict[str, T]:
    """:func:`in_parallel` for steps that write: each gets its own session of the one SparkContext
    (``spark.newSession()``), so runtime SQL settings such as the commit metadata a MERGE sets
    (:func:`jobs.lake.tables.commit_metadata_set`) stay its own."""
    if len(steps) <= 1:
        return {name: step(spark) for name, step in steps.items()}
    return in_parallel({name: functools.partial(step, spark.newSession()) for name, step in steps.items()})


@contextmanager
def persisted(df: DataFrame) -> Iterator[DataFrame]:
    """``df`` kept in Spark's cache (memory, else disk) for the uses inside the block, and dropped
    at its end rather than left for Spark's cleaner (a night writes dozens of slices, a test process
    hundreds)."""
    from pyspark import StorageLevel

    kept = df.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        yield kept
    finally:
        kept.unpersist()
