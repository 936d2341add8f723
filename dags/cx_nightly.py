"""
### cx_nightly — one night of the CX lakehouse

For the run's logical date **D**: wait for the three raw logs that arrived on D, land them in
bronze (in parallel), gate bronze, merge silver and gate it, then rebuild the gold KPI days D's
late arrivals can change, the journey rows they changed (+ journey_daily, funnel_daily, its tracking views) and the
point-in-time features; gate gold and features; retrain ETA and churn when due (MLflow,
champion/challenger), score tonight's rows with the champions, report ETA accuracy and drift
(PSI), and write the morning report (`$CXLAKE_HOME/reports/D/index.html`). On Sundays, then
compact (OPTIMIZE) and VACUUM every Delta table.

**Gates** (`validate_*`, GX suites declared in `jobs/quality/`): a *critical* failure fails the
gate (no retry: the same data fails the same way) with `DataQualityError` naming each expectation
and failing keys; nothing downstream runs. *Warnings* are the gate's XCom and rows of
`ops.quality_findings`. Data Docs: `$CXLAKE_HOME/data_docs/index.html`.

**Run log.** Every task try that ends is a row of `ops.pipeline_runs`, written by a callback
that never fails the task. **Assets**: tasks writing gold tables declare them as outlets.

**Backfill.** `catchup=False`; replay a range on purpose, one night at a time, in order:

    airflow backfill create --dag-id cx_nightly --from-date 2026-01-05 --to-date 2026-01-11 --max-active-runs 1

(`--reprocess-behavior completed` reruns dates that already succeeded; without a scheduler:
`airflow dags test cx_nightly D`). Every task is idempotent for its date.

**Order.** A night stops before silver when the previous night never completed (its gold gate
did not pass): it would build on the gap and mark that night's KPI rows final without its data.
Run the missing night first, or trigger with the run conf `{"allow_gap": true}` for a gap on purpose.

Thin by design: every task is one call of `jobs.pipeline.nightly.<task>`; no logic lives here.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import Asset, Param, PokeReturnValue, dag, task

# Cheap to import: Spark, MLflow and GX load inside the tasks (tests/test_dag_integrity.py).
from jobs.pipeline import nightly

RUN_DATE = "{{ ds }}"
# A night waits for its previous night (jobs.pipeline.night_order); a run conf {"allow_gap": true} overrides.
ALLOW_GAP = "{{ params.allow_gap }}"
NO_RETRY = {"retries": 0}  # quality gates: the same data fails the same way


def _record_task_end(context) -> None:
    """Task callback: one ops.pipeline_runs row per try (never fails the task)."""
    nightly.record_task_end(context)


def _run_step(step: str, *args: Any) -> Any:
    """The body of every task: ``jobs.pipeline.nightly.<step>(*args)`` under the lake lock shared
    with the night's other tasks (``nightly.locked_step``); its result is the XCom."""
    return nightly.locked_step(step, *args)


def _landing_arrived(source: str, run_date: str) -> PokeReturnValue:
    found = nightly.landing_arrived(source, run_date)
    return PokeReturnValue(is_done=found is not None, xcom_value=found)


def _writes(*tables: str) -> dict[str, list[Asset]]:
    """Outlets: the gold tables a task writes, named like the tables, URIs like their paths."""
    return {"outlets": [Asset(name=t, uri=nightly.table_uri(t)) for t in tables]}


def _step(step: str, *args: Any, task_id: str | None = None, kind=task, **options: Any):
    """A task (``kind``: task, task.short_circuit) that runs ``nightly.<step>(*args)``."""
    return kind(python_callable=_run_step, task_id=task_id or step, **options)(step, *args)


@dag(
    dag_id="cx_nightly",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # Delta writers of one table must not race across nights
    tags=["cx", "lakehouse", "nightly"],
    params={
        "allow_gap": Param(
            False, type="boolean", description="run although the previous night did not complete (a gap on purpose)"
        )
    },
    doc_md=__doc__,
    default_args={
        "owner": "data-engineering",
        "retries": 2,
        "retry_delay": timedelta(minutes=2),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=20),
        "execution_timeout": timedelta(minutes=45),
        "on_success_callback": _record_task_end,
        "on_failure_callback": _record_task_end,
        "on_retry_callback": _record_task_end,
        "on_skipped_callback": _record_task_end,
    },
)
def cx_nightly():
    settings = nightly.settings()
    landed = []
    for source in nightly.SOURCES:
        arrived = task.sensor(
            python_callable=_landing_arrived,
            task_id=f"wait_for_{source}",
            poke_interval=settings.landing_poke_seconds,
            timeout=settings.landing_wait_seconds + 24 * 3600,  # backstop; the check fails at its deadline
            mode="reschedule",  # no worker slot held while waiting
            retries=0,
        )(source, RUN_DATE)
        landed.append(arrived >> _step("ingest", source, RUN_DATE, task_id=f"ingest_{source}"))
    bronze_ok = _step("validate_bronze", RUN_DATE, **NO_RETRY)
    landed >> bronze_ok
    silver_ok = (
        bronze_ok >> _step("build_silver", RUN_DATE, None, ALLOW_GAP) >> _step("validate_silver", RUN_DATE, **NO_RETRY)
    )
    kpis = _step("build_gold", RUN_DATE, **_writes("gold.cx_kpi_daily", "gold.cx_kpi_breakdown_daily"))
    journey_tables = ("customer_journey", "journey_daily", "funnel_daily", "journey_tracking_views")
    journey = _step("build_journey", RUN_DATE, **_writes(*(f"gold.{t}" for t in journey_tables)))
    features = _step("build_features", RUN_DATE)
    # The KPIs read the journey's funnel.
    silver_ok >> [journey, features]
    journey >> kpis
    # Gold and features are gated before anything reads them: a critical failure stops training,
    # scoring and reports (all downstream of the gate). The journey rows the night wrote are validated.
    gold_ok = _step("validate_gold", RUN_DATE, journey, **NO_RETRY)
    [kpis, features] >> gold_ok
    # Retraining is on a cadence (or after drift); scoring uses whatever is champion afterwards.
    trained = [_step("train_eta", RUN_DATE), _step("train_churn", RUN_DATE)]
    scored = _step("score_models", RUN_DATE, **_writes("gold.eta_predictions", "gold.churn_scores"))
    reports = _step(
        "build_model_reports",
        RUN_DATE,
        **_writes("gold.eta_accuracy_daily", "gold.model_monitoring", "gold.cx_kpi_daily"),
    )
    gold_ok >> trained >> scored >> reports
    # The morning report (no Spark: delta-rs + DuckDB) once every table it shows is written.
    morning_report = _step("render_report", RUN_DATE)
    # Weekly compaction and VACUUM after the night's writes, never concurrently with them.
    maintenance_day = _step("is_maintenance_day", RUN_DATE, kind=task.short_circuit)
    reports >> morning_report >> maintenance_day >> _step("maintain_delta", RUN_DATE)


nightly_dag = cx_nightly()
