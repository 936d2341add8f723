"""cx_nightly parses, has the expected tasks and wiring, and holds no business logic."""

from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path

import pytest

from jobs.airflow_env import load_dag

DAG_FILE = Path(__file__).resolve().parent.parent / "dags" / "cx_nightly.py"


@pytest.fixture(scope="module")
def dag():
    return load_dag()


def test_tasks_and_dependencies(dag) -> None:
    assert dag.dag_id == "cx_nightly"
    assert sorted(dag.task_ids) == sorted(
        [
            "ingest_orders",
            "ingest_tracking_scans",
            "ingest_interactions",
            "validate_bronze",
            "build_silver",
            "build_gold",
            "build_journey",
            "build_features",
            "train_eta",
            "train_churn",
            "score_models",
            "build_model_reports",
            "is_maintenance_day",
            "maintain_delta",
        ]
    )
    for source in ("orders", "tracking_scans", "interactions"):
        assert dag.get_task(f"ingest_{source}").downstream_task_ids == {"validate_bronze"}
    assert dag.get_task("validate_bronze").downstream_task_ids == {"build_silver"}
    assert dag.get_task("build_silver").downstream_task_ids == {"build_gold", "build_journey", "build_features"}
    assert dag.get_task("build_features").downstream_task_ids == {"train_eta", "train_churn"}
    for trainer in ("train_eta", "train_churn"):
        assert dag.get_task(trainer).downstream_task_ids == {"score_models"}
    for upstream in ("score_models", "build_gold", "build_journey"):
        assert dag.get_task(upstream).downstream_task_ids == {"build_model_reports"}
    assert dag.get_task("build_model_reports").downstream_task_ids == {"is_maintenance_day"}
    assert dag.get_task("is_maintenance_day").downstream_task_ids == {"maintain_delta"}


def test_schedule_and_defaults(dag) -> None:
    assert dag.schedule == "@daily" or str(dag.timetable.summary) == "@daily"
    assert dag.catchup is False
    assert dag.max_active_runs == 1
    assert dag.start_date.tzinfo is not None
    assert dag.doc_md and "cx_nightly" in dag.doc_md
    task = dag.get_task("build_silver")
    assert task.retries == 2
    assert task.retry_exponential_backoff
    assert task.execution_timeout == dt.timedelta(minutes=45)


def test_dag_file_is_thin() -> None:
    """No heavy imports at module level and no Spark/pandas code in the DAG file."""
    tree = ast.parse(DAG_FILE.read_text())
    top_level_imports = {
        alias.name.split(".")[0]
        for node in tree.body
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")])
    }
    assert top_level_imports <= {"__future__", "datetime", "pendulum", "airflow"}
    assert "pyspark" not in DAG_FILE.read_text()
