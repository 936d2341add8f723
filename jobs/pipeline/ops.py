"""Operational records of the nightly DAG: the task run log and the quality findings (``ops.*``).

:func:`record_task_end` is the DAG's task callback (success, retry, failure, skip). It writes
one ``ops.pipeline_runs`` row per (dag_id, run_date, task_id, try_number) with a MERGE, so the
same try recorded twice (a rerun of ``airflow dags test``) stays one row, and it never raises:
a lake that cannot be reached is logged, the task's own outcome stands. On a local lake it writes
through delta-rs, without Spark (:func:`write_pipeline_runs`).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from jobs.lake.config import LakeConfig, load_config

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from jobs.quality.gate import GateResult

log = logging.getLogger(__name__)

PIPELINE_RUNS = "ops.pipeline_runs"
QUALITY_FINDINGS = "ops.quality_findings"
_REASON_CHARS = 4000
_MERGE_ATTEMPTS = 3


def _state_name(state: Any) -> str:
    return str(getattr(state, "value", state)).lower()


def exception_class(error: BaseException | None) -> str | None:
    """``DataQualityError``, or ``AirflowX(CauseClass)`` when Airflow wraps the task's own error."""
    if error is None:
        return None
    name = type(error).__name__
    cause = error.__cause__ or error.__context__
    return f"{name}({type(cause).__name__})" if cause is not None and name.startswith("Airflow") else name


def pipeline_run_row(context: Mapping[str, Any], recorded_at: dt.datetime) -> dict[str, Any]:
    """The ``ops.pipeline_runs`` row of the try ``context`` (an Airflow task context) describes."""
    ti = context["ti"]
    error = context.get("exception")
    if isinstance(error, str):  # Airflow passes a message instead of an exception in some paths
        error_class, reason = "str", error
    else:
        error_class, reason = exception_class(error), (str(error) if error is not None else None)
    state = _state_name(getattr(ti, "state", None) or ("failed" if error is not None else "success"))
    dag_run = context.get("dag_run")
    return {
        "dag_id": ti.dag_id,
        "run_date": dt.date.fromisoformat(str(context["ds"])),
        "task_id": ti.task_id,
        "try_number": int(ti.try_number or 0),
        "run_id": getattr(dag_run, "run_id", None) or getattr(ti, "run_id", None),
        "state": state,
        "exception_class": error_class,
        "reason": reason[:_REASON_CHARS] if reason else None,
        "recorded_at": recorded_at,
    }


def write_pipeline_runs(config: LakeConfig, rows: list[dict[str, Any]]) -> None:
    """MERGE run-log rows on (dag_id, run_date, task_id, try_number): a repeated try replaces its row.

    Every task try ends with this call, sensors and skipped tasks included, so it must not cost a
    Spark session: on a local lake delta-rs (``deltalake``) writes the same Delta table in ~0.1 s
    (a Spark MERGE there is ~13 jobs and 3-5 s, plus ~20 s of JVM start in a task process that
    had none). Other lake roots (``s3a://``) go through Spark as the data jobs do. The run dates
    are literals in the merge condition, so only those partitions are read. Tasks of one night end
    concurrently (the three ingests): a commit that loses the race is retried.
    """
    import time

    for attempt in range(_MERGE_ATTEMPTS):
        try:
            if _is_local(config.lake_root):
                _merge_with_delta_rs(config, rows)
            else:
                _merge_with_spark(config, rows)
            return
        except Exception as error:  # Spark: Concurrent*Exception via Py4J; delta-rs: CommitFailedError
            text = type(error).__name__ + str(error)[:500]
            if not ("Concurrent" in text or "CommitFailed" in text) or attempt == _MERGE_ATTEMPTS - 1:
                raise
            time.sleep(1 + attempt)


def _is_local(root: str) -> bool:
    return "://" not in root or root.startswith("file:")


def _merge_condition(rows: list[dict[str, Any]], keys: tuple[str, ...]) -> str:
    """DataFusion SQL (delta-rs): the run dates as literals first (partition pruning), then the keys."""
    dates = ", ".join(f"DATE '{d.isoformat()}'" for d in sorted({r["run_date"] for r in rows}))
    return " AND ".join([f"t.run_date IN ({dates})", *(f"t.{k} = s.{k}" for k in keys)])


def _merge_with_delta_rs(config: LakeConfig, rows: list[dict[str, Any]]) -> None:
    import pyarrow as pa
    from deltalake import CommitProperties, DeltaTable, write_deltalake
    from deltalake.exceptions import TableNotFoundError

    from jobs.lake.contracts import load_contract
    from jobs.lake.tables import commit_metadata

    contract = load_contract(PIPELINE_RUNS)
    schema = contract.arrow_schema()
    # Delta stores timestamps as UTC instants; the row's naive wall clock is UTC (as Spark reads it).
    utc = [{**r, "recorded_at": r["recorded_at"].replace(tzinfo=dt.UTC)} for r in rows]
    source = pa.Table.from_pylist(utc, schema=schema)
    path = config.table_path(PIPELINE_RUNS).removeprefix("file:")
    commit = CommitProperties(custom_metadata={"userMetadata": commit_metadata(PIPELINE_RUNS)})
    try:
        table = DeltaTable(path)
    except TableNotFoundError:
        # First try ever: create the table with these rows (a concurrent creator makes this fail
        # with a commit conflict, and the retry merges into the table it made).
        write_deltalake(path, source, mode="error", partition_by=list(contract.partition_by), commit_properties=commit)
        return
    (
        table.merge(
            source,
            _merge_condition(rows, contract.keys),
            source_alias="s",
            target_alias="t",
            commit_properties=commit,
        )
        .when_matched_update_all()
        .when_not_matched_insert_all()
        .execute()
    )


def _merge_with_spark(config: LakeConfig, rows: list[dict[str, Any]]) -> None:
    from jobs.lake.contracts import load_contract
    from jobs.lake.spark import get_spark
    from jobs.lake.tables import merge_rows, sql_dates

    contract = load_contract(PIPELINE_RUNS)
    spark = get_spark(config)
    dates = sql_dates(sorted({r["run_date"] for r in rows}))
    merge_rows(
        spark,
        spark.createDataFrame(rows, contract.spark_schema()),
        config,
        PIPELINE_RUNS,
        contract.keys,
        partition_by=contract.partition_by,
        target_filter=f"t.run_date IN ({dates})",
    )


def record_task_end(context: Mapping[str, Any], config: LakeConfig | None = None) -> dict[str, Any] | None:
    """Airflow task callback: log the try's end and record it in ``ops.pipeline_runs``; never raises.

    Returns the recorded row (None when even building it failed).
    """
    try:
        # Wall clock is a recorded fact of the run log, never an input of table content.
        row = pipeline_run_row(context, dt.datetime.now(dt.UTC).replace(tzinfo=None))
    except Exception:
        log.exception("ops.pipeline_runs: could not read the task context")
        return None
    level = logging.INFO if row["state"] in ("success", "skipped") else logging.ERROR
    log.log(level, "task end %s", {k: v for k, v in row.items() if k != "recorded_at"})
    try:
        write_pipeline_runs(config or load_config(), [row])
    except Exception:
        log.exception(
            "ops.pipeline_runs: could not record %s/%s try %s", row["task_id"], row["run_date"], row["try_number"]
        )
    return row


def finding_rows(run_date: str, results: list[GateResult], recorded_at: dt.datetime) -> list[dict[str, Any]]:
    """One ``ops.quality_findings`` row per failed expectation of ``results``."""

    def text(value: Any) -> str | None:
        return None if value is None else json.dumps(value, sort_keys=True, default=str)

    return [
        {
            "run_date": dt.date.fromisoformat(run_date),
            "suite": result.suite,
            "expectation": failure["expectation"],
            "kwargs": text(failure["kwargs"]),
            "severity": failure["severity"],
            "check": failure.get("check"),
            "unexpected_count": failure["unexpected_count"],
            "observed": text(failure["observed"]),
            "sample": text(failure["sample"]),
            "recorded_at": recorded_at,
        }
        for result in results
        for failure in result.failures
    ]


def record_findings(spark: SparkSession, config: LakeConfig, run_date: str, results: list[GateResult]) -> int:
    """Replace the (run_date, suite) findings of the validated suites; returns the rows written.

    Replacing the slice (not merging) makes a rerun that now passes leave no stale finding. A
    clean gate whose slice holds no finding commits nothing: the usual night, where a commit
    (~2 s) would only say that nothing changed.
    """
    from jobs.lake.contracts import load_contract
    from jobs.lake.tables import read_table_or_empty, replace_where, sql_literal

    if not results:
        return 0
    contract = load_contract(QUALITY_FINDINGS)
    rows = finding_rows(run_date, results, dt.datetime.now(dt.UTC).replace(tzinfo=None))
    suites = ", ".join(sql_literal(r.suite) for r in results)
    predicate = f"`run_date` = DATE{sql_literal(run_date)} AND `suite` IN ({suites})"
    stored = read_table_or_empty(spark, config, QUALITY_FINDINGS, contract.spark_schema())
    if not rows and stored.filter(predicate).isEmpty():
        return 0
    df = spark.createDataFrame(rows, contract.spark_schema())
    replace_where(df, config, QUALITY_FINDINGS, predicate, contract.partition_by)
    return len(rows)
