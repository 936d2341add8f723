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

    Every task try ends with this call, sensors and skipped tasks included, so on a local lake it
    costs no Spark session (:mod:`jobs.lake.small_tables`). The run dates are literals in the merge
    condition, so only those partitions are read.
    """
    from jobs.lake.small_tables import merge_small

    merge_small(config, PIPELINE_RUNS, rows, prune={"run_date": sorted({r["run_date"] for r in rows})})


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
    would only say that nothing changed. Written without Spark jobs on a local lake
    (:mod:`jobs.lake.small_tables`).
    """
    from jobs.lake.small_tables import replace_small

    if not results:
        return 0
    rows = finding_rows(run_date, results, dt.datetime.now(dt.UTC).replace(tzinfo=None))
    where = {"run_date": [dt.date.fromisoformat(run_date)], "suite": [r.suite for r in results]}
    replace_small(config, QUALITY_FINDINGS, rows, where, spark=spark)
    return len(rows)
