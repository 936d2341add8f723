"""
### cx_nightly — one night of the CX lakehouse

For the run's logical date **D**: land the three raw logs that arrived on D in bronze (in
parallel), gate bronze with Great Expectations, merge the silver tables, then (independently)
recompute the gold `cx_kpi_daily` days that D's late arrivals can still change, merge the
customer-journey rows they changed (+ journey_daily, funnel_daily), and build the point-in-time
feature tables; retrain the ETA and churn models when due (MLflow, champion/challenger), score
tonight's rows with the champions, and report ETA accuracy and feature drift (PSI). On Sundays, compact (OPTIMIZE) and VACUUM every Delta table afterwards.

Thin by design: every task calls `jobs.nightly`; no logic lives here. Each task is its own
process in production and so pays Spark's start-up (measured in the README); tasks are cut at
the points a data engineer wants to retry or inspect on their own, not finer.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, task

SOURCES = ("orders", "tracking_scans", "interactions")


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
    },
)
def cx_nightly():
    @task
    def ingest(source: str, run_date: str) -> dict:
        from jobs import nightly

        return nightly.ingest(source, run_date)

    @task
    def validate_bronze(run_date: str) -> dict:
        from jobs import nightly

        return nightly.validate_bronze(run_date)

    @task
    def build_silver(run_date: str) -> None:
        from jobs import nightly

        nightly.build_silver(run_date)

    @task
    def build_gold(run_date: str) -> None:
        from jobs import nightly

        nightly.build_gold(run_date)

    @task
    def build_journey(run_date: str) -> dict:
        from jobs import nightly

        return nightly.build_journey(run_date)

    @task
    def build_features(run_date: str) -> dict:
        from jobs import nightly

        return nightly.build_features(run_date)

    @task
    def train_eta(run_date: str) -> dict:
        from jobs import nightly

        return nightly.train_eta(run_date)

    @task
    def train_churn(run_date: str) -> dict:
        from jobs import nightly

        return nightly.train_churn(run_date)

    @task
    def score_models(run_date: str) -> dict:
        from jobs import nightly

        return nightly.score_models(run_date)

    @task
    def build_model_reports(run_date: str) -> dict:
        from jobs import nightly

        return nightly.build_model_reports(run_date)

    @task.short_circuit
    def is_maintenance_day(run_date: str) -> bool:
        from jobs import nightly

        return nightly.is_maintenance_day(run_date)

    @task
    def maintain_delta(run_date: str) -> list:
        from jobs import nightly

        return nightly.maintain_delta(run_date)

    run_date = "{{ ds }}"
    landed = [ingest.override(task_id=f"ingest_{source}")(source, run_date) for source in SOURCES]
    gate = validate_bronze(run_date)
    landed >> gate
    silver = gate >> build_silver(run_date)
    kpis, journey, features = build_gold(run_date), build_journey(run_date), build_features(run_date)
    silver >> [kpis, journey, features]
    # Retraining is on a cadence (or after drift); scoring uses whatever is champion afterwards.
    trained = [train_eta(run_date), train_churn(run_date)]
    features >> trained
    scored = score_models(run_date)
    trained >> scored
    reports = build_model_reports(run_date)
    [scored, kpis, journey] >> reports
    # Weekly compaction and VACUUM after the night's writes, never concurrently with them.
    reports >> is_maintenance_day(run_date) >> maintain_delta(run_date)


nightly_dag = cx_nightly()
