"""The Spark + Delta session factory: the only place a SparkSession is built."""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlparse

from jobs.lake.config import LakeConfig, load_config

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

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
        # same queries on the next date mostly hit (6-12 %; that night's data stages 70 -> 63 s).
        "spark.sql.codegen.cache.maxEntries": "4000",
        # VACUUM lists table directories with this many tasks (default 10000): on a small lake
        # that is minutes of empty tasks per table (measured: 46 s -> 10-16 s per VACUUM).
        "spark.sql.sources.parallelPartitionDiscovery.parallelism": str(config.shuffle_partitions),
        # Python workers must run the interpreter that has our packages (pandas, pyarrow, jobs);
        # on a cluster whose nodes install elsewhere, override it in CXLAKE_SPARK_CONF.
        "spark.pyspark.python": sys.executable,
        "spark.pyspark.driver.python": sys.executable,
        "spark.sql.warehouse.dir": str(config.home / "spark-warehouse"),
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={config.home / 'derby'}",
    }
    settings.update(config.extra_spark_conf)
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
    extra_packages = [p for p in settings.pop("spark.jars.packages", "").split(",") if p]
    builder = SparkSession.builder.appName(app_name).master(config.spark_master)
    for key, value in settings.items():
        builder = builder.config(key, value)
    packages = ",".join([delta_package(), *extra_packages])
    cache = None if "spark.jars" in settings else resolved_jars_cache(packages)
    jars = cache.read_text().split(",") if cache is not None and cache.exists() else []
    if jars and all(os.path.exists(urlparse(jar).path) for jar in jars):
        # Resolved before: start from the jar files, without asking Ivy again (measured ~1.8 s a start).
        builder = builder.config("spark.jars", ",".join(jars))
    else:
        builder = builder.config("spark.jars.packages", packages)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    conf = spark.sparkContext.getConf()
    if cache is not None and conf.get("spark.jars.packages") == packages and conf.get("spark.jars"):
        # This process asked Ivy: keep its answer for the next start (written whole, atomically).
        cache.parent.mkdir(parents=True, exist_ok=True)
        partial = cache.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(conf.get("spark.jars"))
        partial.replace(cache)
    return spark


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


T = TypeVar("T")
# Steps that overlap at most: a small step keeps about one core busy on the driver; more at once
# only queue for the same cores and memory.
MAX_CONCURRENT_STEPS = 4


def in_parallel(steps: Mapping[str, Callable[[], T]], max_workers: int = MAX_CONCURRENT_STEPS) -> dict[str, T]:
    """Run independent Spark steps at the same time, in threads that inherit the caller's Spark
    local properties (job group: a benchmark's meter still counts their jobs).

    A small night's Spark work is driver latency (planning, scheduling, Delta commits), so steps
    that read and write different tables overlap on a 2-core machine instead of waiting in turn;
    on a cluster their jobs share the executors. Every step runs to its end even when another
    fails (no write is abandoned half-way); then the first failure in ``steps`` order is raised
    and the others are logged.

    Returns:
        Each step's result by name, in ``steps`` order.
    """
    import threading

    from pyspark import InheritableThread

    if len(steps) <= 1:
        return {name: step() for name, step in steps.items()}
    results: dict[str, T] = {}
    errors: dict[str, BaseException] = {}
    slots = threading.BoundedSemaphore(max(1, max_workers))

    def call(name: str, step: Callable[[], T]) -> None:
        with slots:
            try:
                results[name] = step()
            except BaseException as error:  # noqa: BLE001 - re-raised below, in the caller's thread
                errors[name] = error

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


def run_concurrently(spark: SparkSession, steps: Mapping[str, Callable[[SparkSession], T]]) -> dict[str, T]:
    """:func:`in_parallel` for steps that write: each gets its own session of the one SparkContext
    (``spark.newSession()``), so runtime SQL settings such as the commit metadata a MERGE sets
    (:func:`jobs.lake.tables.commit_metadata_set`) stay its own."""
    if len(steps) <= 1:
        return {name: step(spark) for name, step in steps.items()}
    return in_parallel({name: functools.partial(step, spark.newSession()) for name, step in steps.items()})
