"""cx_nightly parses, has the expected tasks and wiring, and holds no business logic."""

from __future__ import annotations

import ast
import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

from jobs.devtools.airflow_env import load_dag

DAG_FILE = Path(__file__).resolve().parent.parent / "dags" / "cx_nightly.py"


@pytest.fixture(scope="module")
def dag():
    return load_dag()


def test_tasks_and_dependencies(dag) -> None:
    assert dag.dag_id == "cx_nightly"
    assert sorted(dag.task_ids) == sorted(
        [
            "wait_for_orders",
            "wait_for_tracking_scans",
            "wait_for_interactions",
            "ingest_orders",
            "ingest_tracking_scans",
            "ingest_interactions",
            "validate_bronze",
            "build_silver",
            "validate_silver",
            "build_gold",
            "build_journey",
            "build_features",
            "validate_gold",
            "train_eta",
            "train_churn",
            "score_models",
            "build_model_reports",
            "render_report",
            "is_maintenance_day",
            "maintain_delta",
        ]
    )
    for source in ("orders", "tracking_scans", "interactions"):
        assert dag.get_task(f"wait_for_{source}").downstream_task_ids == {f"ingest_{source}"}
        assert dag.get_task(f"ingest_{source}").downstream_task_ids == {"validate_bronze"}
    assert dag.get_task("validate_bronze").downstream_task_ids == {"build_silver"}
    assert dag.get_task("build_silver").downstream_task_ids == {"validate_silver"}
    assert dag.get_task("validate_silver").downstream_task_ids == {"build_journey", "build_features"}
    # The KPIs read the journey's funnel.
    assert dag.get_task("build_journey").downstream_task_ids == {"build_gold", "validate_gold"}
    for upstream in ("build_gold", "build_features"):
        assert dag.get_task(upstream).downstream_task_ids == {"validate_gold"}
    # Nothing reads gold or features before the gold gate: models, scores and reports all wait.
    assert dag.get_task("validate_gold").downstream_task_ids == {"train_eta", "train_churn"}
    for trainer in ("train_eta", "train_churn"):
        assert dag.get_task(trainer).downstream_task_ids == {"score_models"}
    assert dag.get_task("score_models").downstream_task_ids == {"build_model_reports"}
    assert dag.get_task("build_model_reports").downstream_task_ids == {"render_report"}
    assert dag.get_task("render_report").downstream_task_ids == {"is_maintenance_day"}
    assert dag.get_task("is_maintenance_day").downstream_task_ids == {"maintain_delta"}


def test_landing_sensors_reschedule_and_gates_do_not_retry(dag) -> None:
    for source in ("orders", "tracking_scans", "interactions"):
        sensor = dag.get_task(f"wait_for_{source}")
        assert sensor.mode == "reschedule"  # no worker slot held while waiting
        assert sensor.poke_interval == 300 and sensor.timeout >= 6 * 3600
        assert sensor.retries == 0
    for gate in ("validate_bronze", "validate_silver", "validate_gold"):
        assert dag.get_task(gate).retries == 0  # the same data fails the same way


def test_gold_writers_declare_their_tables_as_assets(dag) -> None:
    outlets = {task.task_id: sorted(asset.name for asset in task.outlets) for task in dag.tasks if task.outlets}
    for task in dag.tasks:
        for asset in task.outlets:  # the URI is the table's path in the configured lake
            assert asset.uri.startswith("file:///") and asset.uri.endswith("/lake/" + asset.name.replace(".", "/"))

    def assets(*tables: str) -> list[str]:
        return sorted(tables)

    assert outlets == {
        "build_gold": assets("gold.cx_kpi_daily", "gold.cx_kpi_breakdown_daily"),
        "build_journey": assets(
            "gold.customer_journey", "gold.journey_daily", "gold.funnel_daily", "gold.journey_tracking_views"
        ),
        "score_models": assets("gold.eta_predictions", "gold.churn_scores"),
        # ... and the model KPIs of gold.cx_kpi_daily.
        "build_model_reports": assets("gold.eta_accuracy_daily", "gold.model_monitoring", "gold.cx_kpi_daily"),
    }


def test_every_task_records_its_end_in_the_run_log(dag) -> None:
    for task in dag.tasks:
        for kind in ("on_success_callback", "on_failure_callback", "on_retry_callback", "on_skipped_callback"):
            callbacks = getattr(task, kind)
            callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
            assert [c.__name__ for c in callbacks] == ["_record_task_end"], (task.task_id, kind)


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
    """No heavy imports at module level, no Spark/pandas code, under 150 lines: shims are generated."""
    source = DAG_FILE.read_text()
    tree = ast.parse(source)
    top_level_imports = {
        alias.name if isinstance(node, ast.Import) else node.module or ""
        for node in tree.body
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")])
    }
    roots = {name.split(".")[0] for name in top_level_imports}
    assert roots <= {"__future__", "datetime", "typing", "pendulum", "airflow", "jobs"}
    # The only project import is the cheap task-entry module; every task calls into it.
    assert {name for name in top_level_imports if name.startswith("jobs")} == {"jobs.pipeline"}
    assert "pyspark" not in source and "mlflow" not in source
    assert len(source.splitlines()) < 150


def test_parsing_the_dag_imports_neither_spark_nor_mlflow() -> None:
    """What the DAG processor pays on every parse: a fresh interpreter imports the DAG file."""
    probe = (
        "import sys; from jobs.devtools.airflow_env import load_dag; load_dag(); "
        "heavy = [m for m in ('pyspark', 'mlflow', 'great_expectations', 'lightgbm', 'delta') if m in sys.modules]; "
        "print('HEAVY=' + ','.join(heavy))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, check=True)
    (heavy,) = [line for line in done.stdout.splitlines() if line.startswith("HEAVY=")]
    assert heavy == "HEAVY=", done.stdout


def test_the_airflow_cli_finds_the_dag_after_cxlake_env(dag, tmp_path: Path) -> None:
    """A data engineer's own `airflow` commands see cx_nightly once `cxlake env` is evaluated.

    A bare environment (no AIRFLOW_* variables), as in a new shell: only the lake's home is set.
    """
    bin_dir = Path(sys.executable).parent
    shell = f'eval "$({bin_dir}/cxlake env)" && {bin_dir}/airflow tasks list cx_nightly'
    done = subprocess.run(
        ["bash", "-c", shell],
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(Path.home()), "CXLAKE_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert sorted(done.stdout.split()) == sorted(dag.task_ids)
