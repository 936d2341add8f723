"""Entry points of the nightly tasks: what each Airflow task (or ``cxlake run``) calls.

Each function takes the run's logical date (``YYYY-MM-DD``) and the upstream task's result
positionally (the DAG's generated shims call ``nightly.<task_id>(run_date, ...)``), builds or
reuses the process's SparkSession from config, does I/O at this edge and delegates the logic to
pure transforms. Importing this module is cheap (no pyspark, mlflow or GX): the DAG file does it.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import partial
from typing import TYPE_CHECKING, Any

from jobs.lake.config import LakeConfig, load_config
from jobs.lake.contracts import source_names

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

# The raw contracts (schemas/raw/*.yaml): one landing sensor and one ingest task each.
SOURCES = source_names()


def settings() -> LakeConfig:
    """The configuration the tasks run with (the DAG reads its sensor timings from it)."""
    return load_config()


def table_uri(table: str, config: LakeConfig | None = None) -> str:
    """A table's location as an Airflow Asset URI (``file://`` for a local lake)."""
    path = (config or load_config()).table_path(table)
    return path if "://" in path else f"file://{path}"


def record_task_end(context: Any) -> None:
    """The DAG's task callback: one ``ops.pipeline_runs`` row per try; never raises."""
    from jobs.pipeline.ops import record_task_end as record

    record(context)


def _session(config: LakeConfig):
    from jobs.lake.spark import get_spark

    started = time.monotonic()
    spark = get_spark(config)
    log.info("SparkSession ready in %.1f s", time.monotonic() - started)
    return spark


def _session_unless_local(config: LakeConfig) -> SparkSession | None:
    """No session on a local lake, where a step reads its few rows through delta-rs and starts
    Spark only if it must (a task process saves the JVM start); the session elsewhere."""
    from jobs.lake.small_tables import is_local_lake

    return None if is_local_lake(config) else _session(config)


@contextmanager
def _recorded(stage: Callable[[str], AbstractContextManager], config: LakeConfig, name: str) -> Iterator[None]:
    """``stage(name)`` (a benchmark's meter, or nothing) around one step, whose table I/O is
    recorded as one OpenLineage run (:func:`jobs.lake.lineage.step`)."""
    from jobs.lake import lineage

    with stage(name), lineage.step(config, name):
        yield


def locked_step(step: str, *args: Any) -> Any:
    """A DAG task's body: ``<step>(*args)`` holding the lake lock shared with the night's other
    tasks, so that no whole-night command (``cxlake run``, ``import-history``) writes meanwhile
    (:mod:`jobs.lake.lock`; waits up to ``CXLAKE_LOCK_WAIT_SECONDS`` for one to finish)."""
    from jobs.lake import lineage
    from jobs.lake.lock import lake_lock

    # This task's OpenLineage run becomes the parent of its Spark jobs and of its own I/O record.
    task_id = lineage.enter_airflow_task()
    config = load_config()
    with lake_lock(config, f"cx_nightly task {step} {' '.join(map(str, args))}", True, config.lock_wait_seconds):
        with lineage.step(config, task_id or step):
            return globals()[step](*args)


def ingest(source: str, run_date: str, config: LakeConfig | None = None) -> dict[str, Any]:
    """Land one source's raw files of ``run_date`` in bronze (+ quarantine, audit)."""
    from dataclasses import asdict

    from jobs.ingest.bronze import ingest_source

    config = config or load_config()
    # On a local lake the ingest and its audit row need no Spark: the task starts none (~20 s
    # of JVM start and first Delta write saved per ingest task under the real scheduler).
    return asdict(ingest_source(_session_unless_local(config), config, source, run_date))


def landing_arrived(
    source: str, run_date: str, config: LakeConfig | None = None, now: dt.datetime | None = None
) -> dict[str, Any] | None:
    """The landing sensor's check: ``source``'s files of arrival date ``run_date``, or None to wait.

    Looks where ingestion reads (:func:`jobs.ingest.bronze.landing_files`) and waits while a file
    may still be being written (:mod:`jobs.ingest.landing`: changed after the folder's
    ``_SUCCESS`` marker, or, without one, within ``CXLAKE_LANDING_SETTLE_SECONDS``). The files of
    day D are due by the end of D plus ``CXLAKE_LANDING_WAIT_SECONDS``; past that (a late night, or
    a backfill of an old date) a missing or unfinished source fails at once instead of waiting in vain.

    Raises:
        MissingSourceError: naming the source and the folder looked at, once the wait is over.
        LandingIncompleteError: a file still changing once the wait is over.
        LandingFileError: a file that no wait can fix (a symbolic link, not UTF-8, ...).
    """
    from jobs.ingest.bronze import MissingSourceError, check_landed, landing_files
    from jobs.ingest.landing import LandingIncompleteError
    from jobs.lake.contracts import load_contract

    config = config or load_config()
    folder, files = landing_files(config, source, run_date)
    due = dt.datetime.combine(dt.date.fromisoformat(run_date) + dt.timedelta(days=1), dt.time(), dt.UTC)
    deadline = due + dt.timedelta(seconds=config.landing_wait_seconds)
    # The sensor's clock: when to stop waiting, never an input of table content.
    now = now or dt.datetime.now(dt.UTC)
    if files:
        try:
            check_landed(config, folder, files, is_csv=load_contract(f"raw.{source}").format == "csv")
        except LandingIncompleteError as unfinished:
            if now >= deadline:
                raise
            log.info("source %r: waiting until %s for %s", source, deadline.isoformat(), unfinished)
            return None
        return {"source": source, "folder": folder, "files": len(files)}
    if now >= deadline:
        raise MissingSourceError(
            f"source {source!r}: no file arrived for {run_date} in {folder} (waited until {deadline.isoformat()})"
        )
    log.info("source %r: no file yet for %s in %s; waiting until %s", source, run_date, folder, deadline.isoformat())
    return None


def _gate(
    layer: str,
    run_date: str,
    config: LakeConfig | None,
    journey_days: list[str] | None = None,
    journey_version: int | None = None,
) -> dict[str, Any]:
    """Validate the night's slices of ``layer``'s declared gates (``jobs.quality.gates``), record the
    findings and the Data Docs, then stop on critical failures.

    Returns per suite the number of expectations evaluated and the warnings (for the task's XCom).

    Raises:
        DataQualityError: naming every failed critical expectation of every suite.
    """
    from jobs.pipeline.ops import record_findings
    from jobs.quality.gate import format_failure, locked_quality_context, raise_critical, run_checks
    from jobs.quality.gates import GATES, Night, build_checks

    config = config or load_config()
    spark = _session(config)
    landing_now = None
    if layer == "bronze":
        from jobs.ingest.bronze import landing_snapshot
        from jobs.lake.contracts import source_names

        # Listed now, after the ingests: a file that arrived or changed since fails the gate.
        landing_now = {source: landing_snapshot(config, source, run_date) for source in source_names()}
    night = Night(spark, config, run_date, journey_days, journey_version, landing_now)
    checks = build_checks(GATES[layer], night)
    with locked_quality_context(config) as context:
        results = run_checks(checks, context)
    record_findings(spark, config, run_date, results)
    raise_critical(results)
    return {
        r.suite: {"evaluated": r.evaluated, "warnings": [format_failure(r.suite, w) for w in r.warnings]}
        for r in results
    }


def validate_bronze(run_date: str, config: LakeConfig | None = None) -> dict[str, Any]:
    """Great Expectations gate on the bronze slices of ``run_date`` (raises on a critical failure)."""
    return _gate("bronze", run_date, config)


def validate_silver(run_date: str, config: LakeConfig | None = None) -> dict[str, Any]:
    """Great Expectations gate on the silver rows ``run_date`` touched.

    Raises:
        DataQualityError: a critical expectation failed; gold must not be built from this night.
    """
    return _gate("silver", run_date, config)


def validate_gold(
    run_date: str, journey: dict[str, Any] | None = None, config: LakeConfig | None = None
) -> dict[str, Any]:
    """Great Expectations gate on the gold and feature rows ``run_date`` wrote, before models read them.

    Args:
        journey: ``build_journey``'s result: the journey rows its ``version`` wrote (change data
            feed) are validated, and the journey_daily and funnel rows of its ``changed_days``.

    Raises:
        DataQualityError: a critical expectation failed; scoring and reports must not run.
    """
    from jobs.pipeline.night_order import record_completed

    journey = journey or {}
    config = config or load_config()
    result = _gate("gold", run_date, config, journey.get("changed_days"), journey.get("version"))
    # The night's data is complete: the next night may build on it (jobs.pipeline.night_order).
    record_completed(config, [run_date], os.environ.get("AIRFLOW_CTX_DAG_ID", "cxlake run"))
    return result


def build_silver(run_date: str, config: LakeConfig | None = None, allow_gap: bool | str = False) -> None:
    """Merge the day's arrivals into every silver table, once the previous night completed.

    Order matters for the session starts, which read the night's identified interactions, and for
    customers, which reads every attributed one and the orders (:func:`_silver`); the
    interactions maintain ``silver.device_links`` (identity) themselves.

    Args:
        allow_gap: build even though the previous night did not complete (a rendered DAG param
            arrives as text: ``"True"``).

    Raises:
        PreviousNightIncompleteError: see :mod:`jobs.pipeline.night_order`.
    """
    from jobs.pipeline.night_order import allowed, require_previous_night

    config = config or load_config()
    require_previous_night(config, run_date, allowed(allow_gap))
    _silver(_session(config), config, run_date)


def _silver(spark: SparkSession, config: LakeConfig, first: str, last: str | None = None) -> None:
    """Silver for the nights ``first`` to ``last``, each table once its inputs are written.

    Two chains side by side: the scans (tracking events, then shipments and delivery states),
    and orders with the interactions' arrivals (which write the device links they read), then
    the session starts beside the re-resolution of re-linked devices' anonymous events followed
    by customers. The session starts read only identified events, final once the arrivals are
    merged; customers reads the orders and every attributed event, so it waits for both.
    """
    from jobs.lake.spark import run_concurrently
    from jobs.silver import (
        customers,
        delivery_states,
        interactions,
        orders,
        session_starts,
        shipments,
        tracking_events,
    )

    def tonight(run: Callable[..., None], **inputs: Any) -> Callable[[SparkSession], None]:
        """``run`` as a step of these nights (``inputs``: what an earlier step handed on)."""
        return partial(run, config=config, run_date=first, through=last, **inputs)

    def scans(session: SparkSession) -> None:
        # Shipments and delivery states recompute the orders tracking_events did (those it
        # retracted scans of included), from the same read of the bronze window, side by side.
        touched = tracking_events.run(session, config, first, last)
        run_concurrently(
            session,
            {
                "jobs.silver.shipments": tonight(shipments.run, touched=touched),
                "jobs.silver.delivery_states": tonight(delivery_states.run, touched=touched),
            },
        )

    def people(session: SparkSession) -> None:
        # The critical path of the large bench's last night: the interactions (identity ~6 s,
        # arrivals ~5 s, re-resolution ~6 s), then customers (~9 s); the session starts (~7 s)
        # overlap the re-resolution instead of waiting for it (replayed: ~1 s less, as the two
        # cores are busy either way).
        arrived = run_concurrently(
            session,
            {
                "jobs.silver.orders": tonight(orders.run),
                "jobs.silver.interactions": tonight(interactions.merge_arrivals),
            },
        )["jobs.silver.interactions"]

        def attributed(step_session: SparkSession) -> None:
            interactions.re_resolve(step_session, config, first, last, arrived)
            customers.run(step_session, config, first, last)

        run_concurrently(
            session,
            {
                "jobs.silver.session_starts": tonight(session_starts.run),
                "jobs.silver.interactions(re-resolution)+customers": attributed,
            },
        )

    run_concurrently(
        spark,
        {"jobs.silver.orders+interactions+session_starts+customers": people, "jobs.silver.scans": scans},
    )


def build_gold(run_date: str, config: LakeConfig | None = None) -> None:
    """Recompute the daily CX KPIs (overall and by segment) that ``run_date``'s arrivals can change.

    After the journey build: the funnel KPIs read its ``gold.funnel_daily``."""
    from jobs.gold import kpi

    config = config or load_config()
    kpi.run(_session(config), config, run_date)


def build_journey(run_date: str, config: LakeConfig | None = None) -> dict[str, Any]:
    """Merge the journey rows the night's arrivals changed; rebuild those days' daily and funnel rows."""
    from jobs.gold import journey

    config = config or load_config()
    written = journey.run(_session(config), config, run_date)  # the daily and funnel rows included
    return {"changed_days": [d.isoformat() for d in written.days], "version": written.version}


def build_features(run_date: str, config: LakeConfig | None = None) -> dict[str, Any]:
    """Point-in-time feature tables for ``run_date`` (customer_daily, order_eta, shipment_scan)."""
    config = config or load_config()
    return _features(_session(config), config, run_date)


def _features(spark: SparkSession, config: LakeConfig, first: str, last: str | None = None) -> dict[str, Any]:
    """The three feature tables for the nights ``first`` to ``last``, built at once: customer_daily
    beside the two tables that share the night's lane statistics (each reads only silver and
    writes its own tables)."""
    from jobs.features import customer_daily, delivery_features
    from jobs.lake.spark import run_concurrently

    built = run_concurrently(
        spark,
        {
            "customer_daily_partitions": partial(customer_daily.run, config=config, run_date=first, through=last),
            "delivery": partial(delivery_features.run, config=config, run_date=first, through=last),
        },
    )
    return {"customer_daily_partitions": built["customer_daily_partitions"], **built["delivery"]}


def train_eta(run_date: str, config: LakeConfig | None = None, force: bool = False) -> dict[str, Any]:
    """Retrain the ETA model when due (cadence or drift, jobs.models.training); champion only if better."""
    from jobs.models.eta import job as eta

    config = config or load_config()
    result = eta.train(_session_unless_local(config), config, run_date, force=force)
    return {"mlflow_run_id": result.run_id, "trained": result.trained, "decision": result.decision, **result.metrics}


def train_churn(run_date: str, config: LakeConfig | None = None, force: bool = False) -> dict[str, Any]:
    """Retrain the churn model (and its BG/NBD baseline) when due (cadence or drift); champion only if better."""
    from jobs.models.churn import job as churn_job

    config = config or load_config()
    result = churn_job.train(_session_unless_local(config), config, run_date, force=force)
    return {"mlflow_run_id": result.run_id, "trained": result.trained, "decision": result.decision, **result.metrics}


def score_models(run_date: str, config: LakeConfig | None = None) -> dict[str, Any]:
    """Score tonight's feature rows with each champion: gold.eta_predictions and gold.churn_scores."""
    from jobs.models.churn import job as churn_job
    from jobs.models.eta import job as eta

    config = config or load_config()
    spark = _session(config)
    return {"eta": eta.score(spark, config, run_date), "churn": churn_job.score(spark, config, run_date)}


def build_model_reports(run_date: str, config: LakeConfig | None = None) -> dict[str, Any]:
    """ETA accuracy of the days tonight can change, and PSI monitoring of both models."""
    from jobs.gold import eta_accuracy
    from jobs.models.monitoring import job as monitoring_job

    config = config or load_config()
    spark = _session(config)
    from jobs.gold import kpi

    eta_accuracy.run(spark, config, run_date)
    kpi.run_model_kpis(spark, config, run_date)
    return {"monitoring": monitoring_job.run(spark, config, run_date)}


def render_report(run_date: str, config: LakeConfig | None = None) -> dict[str, Any]:
    """The morning report of ``run_date`` (``$CXLAKE_HOME/reports/<D>/index.html``; no Spark)."""
    from jobs.report.morning import write_report

    config = config or load_config()
    path, report = write_report(config, dt.date.fromisoformat(run_date))
    return {"path": str(path), "charts": report.chart_count}


def import_history(
    first: str,
    last: str,
    config: LakeConfig | None = None,
    stage: Callable[[str], AbstractContextManager] | None = None,
    allow_gap: bool = False,
    completed_by: str = "import-history",
) -> dict[str, Any]:
    """Every night from ``first`` to ``last`` at once: bronze, silver, gold, journey, features.

    The tables end exactly as if each night had run in order (tests/pipeline/test_simulated_nights.py
    checks it), at the cost of a few nights instead of one per night: for loading a history
    before the nightly DAG takes over. Models are not trained here; the first DAG night does.

    Args:
        stage: wraps each step (``with stage("silver"): ...``): a benchmark's meter; default none.
        allow_gap: import even though the night before ``first`` did not complete
            (:mod:`jobs.pipeline.night_order`); the imported nights are recorded as completed.
        completed_by: what ``ops.night_runs`` records as having completed the nights.
    """
    from jobs.lake.lock import lake_lock
    from jobs.pipeline.night_order import record_completed, require_previous_night

    config = config or load_config()
    with lake_lock(config, f"import-history {first}..{last}"):
        require_previous_night(config, first, allow_gap)
        report = _import_history(first, last, config, stage or (lambda name: nullcontext()))
        record_completed(config, list(report["dates"]), completed_by)
    report.pop("dates")
    return report


def _import_history(
    first: str, last: str, config: LakeConfig, stage: Callable[[str], AbstractContextManager]
) -> dict[str, Any]:
    from jobs.gold import journey, kpi
    from jobs.ingest.bronze import ingest_nights, record_audit
    from jobs.lake.tables import nights

    spark = _session(config)
    dates = nights(first, last)
    landed = {}
    results = []
    for source in SOURCES:
        with _recorded(stage, config, f"ingest_{source}"):
            results += ingest_nights(spark, config, source, dates, audit=False)
            landed[source] = sum(r.raw_rows for r in results if r.source == source)
    with _recorded(stage, config, "ingest_audit"):
        record_audit(spark, config, results)
    with _recorded(stage, config, "silver"):
        _silver(spark, config, first, last)
    with _recorded(stage, config, "journey"):
        journey.run(spark, config, first, last)  # the daily and funnel rows included
    with _recorded(stage, config, "kpis"):
        kpi.run(spark, config, first, last)
    with _recorded(stage, config, "features"):
        _features(spark, config, first, last)
    return {"nights": len(dates), "raw_lines": landed, "dates": dates}


def run_all(
    run_date: str,
    config: LakeConfig | None = None,
    stage: Callable[[str], AbstractContextManager] | None = None,
    allow_gap: bool = False,
) -> dict[str, Any]:
    """The whole night in one process, in DAG order (``cxlake run``; the DAG is the scheduler's view).

    Args:
        stage: wraps each step (``with stage("silver"): ...``): a benchmark's meter; default none.
    """
    from jobs.lake.lock import lake_lock

    config = config or load_config()
    stage = stage or (lambda name: nullcontext())
    with lake_lock(config, f"cxlake run --date {run_date}"):
        report = run_data_stages(run_date, config, stage, allow_gap)
        with _recorded(stage, config, "training"):
            report["train_eta"] = train_eta(run_date, config)
            report["train_churn"] = train_churn(run_date, config)
        with _recorded(stage, config, "scoring"):
            report["score"] = score_models(run_date, config)
        with _recorded(stage, config, "model_reports"):
            report["reports"] = build_model_reports(run_date, config)
        with _recorded(stage, config, "morning_report"):
            report["morning_report"] = render_report(run_date, config)
    return report


def run_data_stages(
    run_date: str,
    config: LakeConfig | None = None,
    stage: Callable[[str], AbstractContextManager] | None = None,
    allow_gap: bool = False,
) -> dict[str, Any]:
    """A night's data stages, ingest to the gold gate (:func:`run_all` without the models)."""
    from jobs.lake.lock import lake_lock

    config = config or load_config()
    with lake_lock(config, f"cxlake run --date {run_date} (data stages)"):
        return _run_data_stages(run_date, config, stage or (lambda name: nullcontext()), allow_gap)


def _run_data_stages(
    run_date: str, config: LakeConfig, stage: Callable[[str], AbstractContextManager], allow_gap: bool
) -> dict[str, Any]:
    from dataclasses import asdict

    from jobs.ingest.bronze import ingest_nights, record_audit

    spark = _session(config)
    ingested = []
    for source in SOURCES:
        with _recorded(stage, config, f"ingest_{source}"):
            ingested += ingest_nights(spark, config, source, [run_date], audit=False)
    with _recorded(stage, config, "ingest_audit"):
        record_audit(spark, config, ingested)  # the three sources' rows in one commit
    report: dict[str, Any] = {"ingest": [asdict(result) for result in ingested]}
    with _recorded(stage, config, "bronze_gate"):
        report["validate_bronze"] = validate_bronze(run_date, config)
    with _recorded(stage, config, "silver"):
        build_silver(run_date, config, allow_gap)
    with _recorded(stage, config, "silver_gate"):
        report["validate_silver"] = validate_silver(run_date, config)
    with _recorded(stage, config, "journey"):
        report["journey"] = build_journey(run_date, config)
    with _recorded(stage, config, "kpis"):
        build_gold(run_date, config)
    with _recorded(stage, config, "features"):
        report["features"] = build_features(run_date, config)
    with _recorded(stage, config, "gold_gate"):
        report["validate_gold"] = validate_gold(run_date, report["journey"], config)
    return report


def is_maintenance_day(run_date: str) -> bool:
    from jobs.lake.maintenance import is_maintenance_day as weekly

    return weekly(run_date)


def maintain_delta(run_date: str, config: LakeConfig | None = None) -> list[dict[str, Any]]:
    """Weekly OPTIMIZE + VACUUM of every lake table (``run_date`` only names the night)."""
    from dataclasses import asdict

    from jobs.lake import maintenance

    config = config or load_config()
    # A local lake is maintained through delta-rs: the task starts no Spark.
    return [asdict(r) for r in maintenance.run(_session_unless_local(config), config)]
