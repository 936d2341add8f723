"""
### cx_nightly — one night of the CX lakehouse

For the run's logical date **D**: wait for the three raw logs that arrived on D (one sensor per
source), land them in bronze (in parallel), gate bronze with Great Expectations, merge the silver
tables and gate them, then recompute the gold `cx_kpi_daily` days that D's late arrivals can
still change, merge the customer-journey rows they changed (+ journey_daily, funnel_daily), and
build the point-in-time feature tables; gate gold and features; retrain the ETA and churn models
when due (MLflow, champion/challenger), score tonight's rows with the champions, and report ETA
accuracy and feature drift (PSI). On Sundays, compact (OPTIMIZE) and VACUUM every Delta table.

**Gates.** `validate_bronze`, `validate_silver`, `validate_gold` run GX suites derived from
`schemas/` on the rows the night touched. A *critical* failure fails the gate (no retry: the same
data fails the same way) with `DataQualityError` naming each expectation and sample failing keys;
nothing downstream runs. *Warnings* are returned by the gate and stored in `ops.quality_findings`.
Data Docs: `$CXLAKE_HOME/data_docs/index.html`.

**Run log.** Every task try that ends (success, retry, failure, skip) is a row of
`ops.pipeline_runs` (key dag_id, run_date, task_id, try_number; MERGEd), written by
`jobs.pipeline.ops.record_task_end`, which never fails the task.

**Assets.** Tasks writing gold tables declare them as outlets (`file://<lake>/gold/<table>`), so
downstream DAGs can `schedule=[Asset(...)]` on them.

**Backfill.** `catchup=False`: a deployment does not replay every day since `start_date` by
itself; ranges are replayed on purpose, one night at a time (`max_active_runs=1` guards the Delta
writers), in calendar order:

    airflow backfill create --dag-id cx_nightly --from-date 2026-01-05 --to-date 2026-01-11 --max-active-runs 1
    airflow backfill create --dag-id cx_nightly --from-date 2026-01-05 --to-date 2026-01-11 --reprocess-behavior completed

(the second reruns dates that already succeeded). Without a scheduler: `airflow dags test
cx_nightly D` per date. Every task is idempotent for its date, so reruns leave gold unchanged.

Thin by design: every task calls `jobs.pipeline.nightly`; no logic lives here. Each task is its own
process in production and so pays Spark's start-up (measured in the README); tasks are cut at
the points a data engineer wants to retry or inspect on their own, not finer.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Asset, PokeReturnValue, dag, task

SOURCES = ("orders", "tracking_scans", "interactions")


def _record_task_end(context) -> None:
    """Task callback: one ops.pipeline_runs row per try (imported lazily: parsing stays light)."""
    from jobs.pipeline.ops import record_task_end

    record_task_end(context)


def _settings():
    from jobs.lake.config import load_config

    return load_config()


def _gold_assets(*tables: str) -> list[Asset]:
    """Assets of gold tables, named like the tables, URIs like their paths (local lake: file://)."""
    lake = _settings().lake_root.rstrip("/")
    prefix = "" if "://" in lake else "file://"
    return [Asset(name=t, uri=f"{prefix}{lake}/{t.replace('.', '/')}") for t in tables]


@dag(
    dag_id="cx_nightly",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # Delta writers of one table must not race across nights
    tags=["cx", "lakehouse", "nightly"],
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
    settings = _settings()

    @task.sensor(
        poke_interval=settings.landing_poke_seconds,
        timeout=settings.landing_wait_seconds + 24 * 3600,  # backstop; the check fails itself at its deadline
        mode="reschedule",
        retries=0,
    )
    def wait_for_landing(source: str, run_date: str) -> PokeReturnValue:
        from jobs.pipeline import nightly

        found = nightly.landing_arrived(source, run_date)
        return PokeReturnValue(is_done=found is not None, xcom_value=found)

    @task
    def ingest(source: str, run_date: str) -> dict:
        from jobs.pipeline import nightly

        return nightly.ingest(source, run_date)

    @task(retries=0)
    def validate_bronze(run_date: str) -> dict:
        from jobs.pipeline import nightly

        return nightly.validate_bronze(run_date)

    @task
    def build_silver(run_date: str) -> None:
        from jobs.pipeline import nightly

        nightly.build_silver(run_date)

    @task(retries=0)
    def validate_silver(run_date: str) -> dict:
        from jobs.pipeline import nightly

        return nightly.validate_silver(run_date)

    @task(outlets=_gold_assets("gold.cx_kpi_daily"))
    def build_gold(run_date: str) -> None:
        from jobs.pipeline import nightly

        nightly.build_gold(run_date)

    @task(outlets=_gold_assets("gold.customer_journey", "gold.journey_daily", "gold.funnel_daily"))
    def build_journey(run_date: str) -> dict:
        from jobs.pipeline import nightly

        return nightly.build_journey(run_date)

    @task
    def build_features(run_date: str) -> dict:
        from jobs.pipeline import nightly

        return nightly.build_features(run_date)

    @task(retries=0)
    def validate_gold(run_date: str, journey: dict) -> dict:
        from jobs.pipeline import nightly

        return nightly.validate_gold(run_date, journey=journey)

    @task
    def train_eta(run_date: str) -> dict:
        from jobs.pipeline import nightly

        return nightly.train_eta(run_date)

    @task
    def train_churn(run_date: str) -> dict:
        from jobs.pipeline import nightly

        return nightly.train_churn(run_date)

    @task(outlets=_gold_assets("gold.eta_predictions", "gold.churn_scores"))
    def score_models(run_date: str) -> dict:
        from jobs.pipeline import nightly

        return nightly.score_models(run_date)

    @task(outlets=_gold_assets("gold.eta_accuracy_daily", "gold.model_monitoring"))
    def build_model_reports(run_date: str) -> dict:
        from jobs.pipeline import nightly

        return nightly.build_model_reports(run_date)

    @task.short_circuit
    def is_maintenance_day(run_date: str) -> bool:
        from jobs.pipeline import nightly

        return nightly.is_maintenance_day(run_date)

    @task
    def maintain_delta(run_date: str) -> list:
        from jobs.pipeline import nightly

        return nightly.maintain_delta(run_date)

    run_date = "{{ ds }}"
    landed = []
    for source in SOURCES:
        arrived = wait_for_landing.override(task_id=f"wait_for_{source}")(source, run_date)
        landed.append(arrived >> ingest.override(task_id=f"ingest_{source}")(source, run_date))
    gate = validate_bronze(run_date)
    landed >> gate
    silver_ok = gate >> build_silver(run_date) >> validate_silver(run_date)
    kpis, journey, features = build_gold(run_date), build_journey(run_date), build_features(run_date)
    silver_ok >> [kpis, journey, features]
    # Gold and features are gated before anything reads them: a critical failure stops training,
    # scoring and reports (all downstream of the gate).
    gold_ok = validate_gold(run_date, journey)
    [kpis, features] >> gold_ok
    # Retraining is on a cadence (or after drift); scoring uses whatever is champion afterwards.
    trained = [train_eta(run_date), train_churn(run_date)]
    gold_ok >> trained
    scored = score_models(run_date)
    trained >> scored
    reports = build_model_reports(run_date)
    scored >> reports
    # Weekly compaction and VACUUM after the night's writes, never concurrently with them.
    reports >> is_maintenance_day(run_date) >> maintain_delta(run_date)


nightly_dag = cx_nightly()
