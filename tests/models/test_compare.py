"""`cxlake models compare`: recent runs side by side, on a real MLflow SQLite store under tmp_path."""

from __future__ import annotations

import math

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from jobs.cli import main
from jobs.lake.config import LakeConfig
from jobs.models.compare import compare_runs, format_table
from jobs.models.registry import register_and_decide
from jobs.models.tracking import use_experiment

# Fixed start times (ms since epoch, UTC) so "newest first" does not depend on the clock.
OLDER_MS = 1_767_600_000_000  # 2026-01-05 08:00 UTC
NEWER_MS = OLDER_MS + 86_400_000  # a day later


class _Identity(mlflow.pyfunc.PythonModel):
    """The tiniest real model: the registry only needs something logged with an MLmodel."""

    def predict(self, context, model_input: list[float], params=None) -> list[float]:
        return model_input


@pytest.fixture()
def two_runs(mlflow_config: LakeConfig) -> tuple[str, str]:
    """cx_eta: an older run registered as v1 (champion) and a newer one with other metrics, no model."""
    client = MlflowClient()
    experiment_id = use_experiment(mlflow_config, "cx_eta")
    older = client.create_run(experiment_id, start_time=OLDER_MS, tags={"as_of_date": "2026-01-05"})
    with mlflow.start_run(run_id=older.info.run_id):
        mlflow.set_tag("status", "trained")
        mlflow.log_metrics({"mae_p50_days": 1.25, "training_orders": 1200.0})
        mlflow.pyfunc.log_model(name="model", python_model=_Identity(), pip_requirements=["mlflow"])
    register_and_decide(older.info.run_id, "model", "cx_eta", "mae_p50_days", 1.25, None, lower_is_better=True)
    newer = client.create_run(experiment_id, start_time=NEWER_MS, tags={"as_of_date": "2026-01-06"})
    client.log_metric(newer.info.run_id, "mae_p50_days", 1.1)
    client.log_metric(newer.info.run_id, "coverage_p10_p90", 0.8123456)
    client.set_tag(newer.info.run_id, "status", "skipped_insufficient_data")
    client.set_terminated(newer.info.run_id)
    return older.info.run_id, newer.info.run_id


def test_compare_runs_lists_runs_newest_first_with_the_union_of_metrics(mlflow_config, two_runs) -> None:
    older, newer = two_runs
    table = compare_runs("eta", tracking_uri=mlflow_config.mlflow_tracking_uri)
    # Fixed columns, then every metric key of either run, sorted.
    assert list(table.columns) == [
        "run_id",
        "start_time",
        "as_of_date",
        "status",
        "registered",
        "coverage_p10_p90",
        "mae_p50_days",
        "training_orders",
    ]
    assert table["run_id"].tolist() == [newer, older]
    assert table["start_time"].tolist() == [
        pd.Timestamp("2026-01-06 08:00", tz="UTC"),
        pd.Timestamp("2026-01-05 08:00", tz="UTC"),
    ]
    assert table["as_of_date"].tolist() == ["2026-01-06", "2026-01-05"]
    assert table["status"].tolist() == ["skipped_insufficient_data", "trained"]
    # The first registered version has no champion to beat: both aliases. The newer run has none.
    assert table["registered"].tolist() == ["", "v1 (challenger, champion)"]
    assert table["mae_p50_days"].tolist() == [1.1, 1.25]
    assert table.loc[0, "coverage_p10_p90"] == 0.8123456 and math.isnan(table.loc[1, "coverage_p10_p90"])
    assert math.isnan(table.loc[0, "training_orders"]) and table.loc[1, "training_orders"] == 1200.0

    assert compare_runs("cx_eta", last=1, tracking_uri=mlflow_config.mlflow_tracking_uri)["run_id"].tolist() == [newer]


def test_format_table_is_fixed_width_and_compact(mlflow_config, two_runs) -> None:
    older, newer = two_runs
    lines = format_table(compare_runs("eta", tracking_uri=mlflow_config.mlflow_tracking_uri)).splitlines()
    assert len(lines) == 4  # header, rule, two runs
    assert lines[0].split() == [
        "run_id",
        "start_time",
        "as_of_date",
        "status",
        "registered",
        "coverage_p10_p90",
        "mae_p50_days",
        "training_orders",
    ]
    assert set(lines[1]) <= {"-", " "}
    # 8-char run ids, minutes, 4 significant digits, integers as such, "-" where a run lacks a value.
    assert lines[2].split() == [
        newer[:8],
        "2026-01-06",
        "08:00",
        "2026-01-06",
        "skipped_insufficient_data",
        "-",
        "0.8123",
        "1.1",
        "-",
    ]
    assert lines[3].split() == [
        older[:8],
        "2026-01-05",
        "08:00",
        "2026-01-05",
        "trained",
        "v1",
        "(challenger,",
        "champion)",
        "-",
        "1.25",
        "1200",
    ]
    # Numbers are right-aligned under their header: each metric cell ends where its header ends.
    header_end = lines[0].index("mae_p50_days") + len("mae_p50_days")
    assert lines[2][header_end - len("1.1") : header_end] == "1.1"


def test_compare_runs_on_an_unknown_experiment_is_an_error(mlflow_config) -> None:
    with pytest.raises(ValueError, match="no MLflow experiment 'cx_nope'"):
        compare_runs("nope", tracking_uri=mlflow_config.mlflow_tracking_uri)


def test_cli_models_compare_prints_the_table(mlflow_config, two_runs, monkeypatch, capsys) -> None:
    older, newer = two_runs
    # The CLI reads the store from the environment (jobs.lake.config.load_config: MLFLOW_TRACKING_URI).
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_config.mlflow_tracking_uri)
    monkeypatch.setenv("CXLAKE_HOME", str(mlflow_config.home))
    assert main(["models", "compare", "--model", "eta"]) == 0
    out = capsys.readouterr().out
    assert "cx_eta: 2 most recent run(s), newest first" in out
    assert out.index(newer[:8]) < out.index(older[:8])
    assert "v1 (challenger, champion)" in out and "mae_p50_days" in out

    assert main(["models", "compare", "--model", "churn"]) == 1
    assert "no MLflow experiment 'cx_churn'" in capsys.readouterr().out
