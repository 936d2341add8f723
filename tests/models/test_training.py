"""The training harness with a toy model (no Spark, no input tables) on a real MLflow store.

The real models go through the same harness in tests/models/eta and tests/models/churn; here each
branch of the outline is pinned on its own: not due, drift, too little data, trained + registered,
and the champion scored on the candidate's holdout.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from functools import partial
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from jobs.models import training
from jobs.models.promotion import PromotionMetric
from jobs.models.tracking import TrainingRun

RUN_DATE = "2026-01-05"
YESTERDAY = "2026-01-04"


class _Constant(mlflow.pyfunc.PythonModel):
    """A model predicting one value; the toy spec's metric is that value."""

    def __init__(self, value: float) -> None:
        self.value = value

    def predict(self, context, model_input: pd.DataFrame, params=None) -> list[float]:
        return [self.value] * len(model_input)


def _spec(values: list[float], rows: int = 10, seen: list | None = None) -> training.ModelTraining:
    """Each fit's candidate value is the next of ``values``; ``seen`` records the champion's holdouts."""
    seen = [] if seen is None else seen

    def too_little(n: int, config) -> training.TooLittleData | None:
        if n >= 5:
            return None
        return training.TooLittleData(f"{n} rows < 5", {"toy_rows": float(n), "toy_days": 1.0}, reported=("toy_rows",))

    def fit(n: int, config, run_date: str) -> training.Fitted:
        value = values.pop(0)
        holdout = pd.DataFrame({"x": [float(i) for i in range(n)], "fit": value})

        def write_artifacts(folder: Path) -> None:
            (folder / "toy.txt").write_text(f"{value}\n")

        return training.Fitted(
            metrics={"toy_error": value, "toy_rows": float(n)},
            holdout=holdout,
            python_model=_Constant(value),
            input_example=holdout[["x"]].head(2),
            reference=holdout[["x"]].assign(score=value),
            write_artifacts=write_artifacts,
        )

    def score_champion(champion, holdout: pd.DataFrame) -> dict[str, float]:
        seen.append(holdout)
        return {"toy_error": float(champion.predict(holdout[["x"]])[0])}

    return training.ModelTraining(
        model_name="cx_toy",
        run_prefix="toy",
        model_tag="constant",
        input_tables=(),
        promotion=PromotionMetric("toy_error", lower_is_better=True, margin_kind="relative"),
        params=lambda config: {"toy_margin": config.promotion_margin},
        read=lambda spark, config, run_date: rows,
        too_little=too_little,
        fit=fit,
        score_champion=score_champion,
    )


@pytest.fixture()
def toy_config(mlflow_config, monkeypatch: pytest.MonkeyPatch):
    # Explicit requirements: skips MLflow's slow requirement inference (a subprocess per model).
    monkeypatch.setattr(mlflow.pyfunc, "log_model", partial(mlflow.pyfunc.log_model, pip_requirements=["mlflow"]))
    # Drift is checked only when asked for (it reads a Delta table): off unless a test turns it on.
    return replace(mlflow_config, psi_triggers_retraining=False)


def test_too_little_data_keeps_a_skipped_run_and_registers_nothing(toy_config) -> None:
    result = training.train(_spec([], rows=3), None, toy_config, RUN_DATE, force=True)
    # Only the reported metric is returned; both are logged.
    assert (result.trained, result.metrics, result.decision) == (False, {"toy_rows": 3.0}, "insufficient data")
    run = mlflow.get_run(result.run_id)
    assert run.info.run_name == f"toy_{RUN_DATE}"
    assert {k: run.data.tags[k] for k in ("as_of_date", "model", "status")} == {
        "as_of_date": RUN_DATE,
        "model": "constant",
        "status": "skipped_insufficient_data",
    }
    assert run.data.params == {"toy_margin": "0.02"}
    assert run.data.metrics == {"toy_rows": 3.0, "toy_days": 1.0}
    assert MlflowClient().search_model_versions("name = 'cx_toy'") == []


def test_trained_runs_are_registered_and_the_champion_is_scored_on_the_same_holdout(toy_config) -> None:
    seen: list[pd.DataFrame] = []
    first = training.train(_spec([1.0], seen=seen), None, toy_config, RUN_DATE, force=True)
    assert (first.trained, first.metrics) == (True, {"toy_error": 1.0, "toy_rows": 10.0})
    assert first.decision == "No champion yet: cx_toy v1 (toy_error 1.0000) becomes champion."
    assert seen == []  # no champion to score yet
    run = mlflow.get_run(first.run_id)
    assert (run.data.tags["status"], run.data.tags["registered_version"]) == ("trained", "1")
    assert {a.path for a in MlflowClient().list_artifacts(first.run_id)} >= {"toy.txt", "reference.parquet"}

    # 0.99 vs the champion's 1.0 on the same holdout: 1% better < the 2% relative margin.
    second = training.train(_spec([0.99], seen=seen), None, toy_config, RUN_DATE, force=True)
    assert second.trained and "stays challenger" in second.decision and "needed <= 0.9800" in second.decision
    assert len(seen) == 1 and seen[0]["fit"].unique().tolist() == [0.99]  # the candidate's own holdout
    client = MlflowClient()
    assert client.get_model_version_by_alias("cx_toy", "champion").run_id == first.run_id
    assert client.get_model_version_by_alias("cx_toy", "challenger").run_id == second.run_id


def test_not_due_unless_forced_or_drifted(toy_config, monkeypatch: pytest.MonkeyPatch) -> None:
    training.train(_spec([1.0]), None, toy_config, YESTERDAY, force=True)
    # The champion's data is as of yesterday: not due on the 7-day cadence, no run at all.
    assert training.train(_spec([]), None, toy_config, RUN_DATE) == TrainingRun(None, False, {}, "not due")

    # Yesterday's monitoring flagged drift: retrain now (only when the config says drift retrains).
    asked = []
    from jobs.models.monitoring import job as monitoring_job

    monkeypatch.setattr(
        monitoring_job,
        "drift_flagged",
        lambda spark, config, name, run_date, last_trained: asked.append((name, last_trained)) or True,
    )
    assert not training.train(_spec([]), None, toy_config, RUN_DATE).trained
    drifted = training.train(_spec([0.5]), None, replace(toy_config, psi_triggers_retraining=True), RUN_DATE)
    # The monitor is told when the model last trained (yesterday's forced run) to judge the drift new.
    assert drifted.trained and asked == [("cx_toy", dt.date.fromisoformat(YESTERDAY))]

    # The task retried (a timeout after its registration): the night has its model already.
    retried = training.train(_spec([0.4]), None, replace(toy_config, psi_triggers_retraining=True), RUN_DATE)
    assert retried == TrainingRun(
        drifted.run_id,
        False,
        {},
        f"cx_toy was trained for {RUN_DATE} already (run {drifted.run_id}): not trained again",
    )
    assert [v.version for v in MlflowClient().search_model_versions("name = 'cx_toy'")] == [2, 1]


def test_a_try_killed_after_registering_leaves_a_run_a_retry_completes(toy_config) -> None:
    first = training.train(_spec([1.0]), None, toy_config, RUN_DATE, force=True)
    client = MlflowClient()
    # What a kill between the registration and the aliases leaves: a RUNNING run, a version
    # without its aliases (here: v1's champion and challenger aliases removed again).
    client.update_run(first.run_id, status="RUNNING")
    client.delete_registered_model_alias("cx_toy", "champion")
    client.delete_registered_model_alias("cx_toy", "challenger")
    # A run killed before it registered anything.
    experiment_id = mlflow.get_run(first.run_id).info.experiment_id
    orphan = client.create_run(experiment_id, tags={"as_of_date": RUN_DATE}).info.run_id

    retried = training.train(_spec([0.5]), None, toy_config, RUN_DATE)
    assert (retried.run_id, retried.trained) == (first.run_id, False)
    assert (mlflow.get_run(first.run_id).info.status, mlflow.get_run(first.run_id).data.tags["status"]) == (
        "FINISHED",
        "trained",
    )
    assert mlflow.get_run(orphan).info.status == "KILLED"
    assert client.get_registered_model("cx_toy").aliases == {"champion": 1, "challenger": 1}
    assert len(client.search_model_versions("name = 'cx_toy'")) == 1  # no second version


def test_sample_cut_keeps_whole_keys_below_the_cut() -> None:
    # Four distinct hashes (30 is one key's three rows): for two keys the cut is the third smallest
    # distinct value, so keys -7 and 12 are kept and every row of 30 goes with it.
    hashes = pd.Series([30, 12, 30, 99, -7, 30])
    assert training.sample_cut(hashes, 2) == 30
    assert training.sample_cut(hashes, 3) == 99
    # No more distinct keys than allowed: no cut, everything is trained on.
    assert training.sample_cut(hashes, 4) is None


def test_sample_key_is_one_stable_value_per_key(spark) -> None:
    rows = spark.createDataFrame([("o1", 1), ("o2", 1), ("o1", 2)], "order_id string, scan int")
    keys = {
        (r.order_id, r.key) for r in rows.select("order_id", training.sample_key("order_id").alias("key")).collect()
    }
    # One value per order whatever its other columns; the values are Spark's xxhash64 (seed 42) of
    # the key, pinned so that a changed hash (a different training sample) shows up here.
    assert keys == {("o1", 536870201476573235), ("o2", -1406476341037154058)}


def test_sampled_by_key_cuts_both_frames_to_the_same_whole_keys(spark) -> None:
    orders = spark.createDataFrame([("o1",), ("o2",)], "order_id string")
    scans = spark.createDataFrame([("o1", 1), ("o2", 1), ("o2", 2)], "order_id string, scan int")
    # One key allowed: o2 has the smaller hash (pinned above), so o2 and both its scans stay.
    kept_orders, kept_scans = training.sampled_by_key(orders, scans, "order_id", 1)
    assert kept_orders.to_dict("records") == [{"order_id": "o2"}]
    assert sorted(map(tuple, kept_scans.to_numpy().tolist())) == [("o2", 1), ("o2", 2)]
    # Room for both: everything, untouched.
    all_orders, all_scans = training.sampled_by_key(orders, scans, "order_id", 2)
    assert (len(all_orders), len(all_scans), list(all_orders.columns)) == (2, 3, ["order_id"])


def test_a_try_killed_between_the_registration_and_its_record_on_the_run_leaves_one_version(toy_config) -> None:
    """The registry made the version, the kill came before the run's ``registered_version`` tag
    (and before any alias): the retry deletes that version with its killed run and registers one."""
    first = training.train(_spec([1.0]), None, toy_config, YESTERDAY, force=True)  # the champion, v1
    client = MlflowClient()
    experiment_id = mlflow.get_run(first.run_id).info.experiment_id
    killed = client.create_run(experiment_id, tags={"as_of_date": RUN_DATE}).info.run_id
    with mlflow.start_run(run_id=killed):
        mlflow.log_text("model", "toy.txt")
    stray = client.create_model_version("cx_toy", f"runs:/{killed}/toy.txt", run_id=killed)
    client.update_run(killed, status="RUNNING")

    retried = training.train(_spec([0.5]), None, toy_config, RUN_DATE, force=True)
    assert retried.trained and retried.run_id != killed
    assert mlflow.get_run(killed).info.status == "KILLED"
    versions = {v.version: v.run_id for v in client.search_model_versions("name = 'cx_toy'")}
    assert stray.version not in {int(v) for v in versions}
    assert sorted(versions.values()) == sorted([first.run_id, retried.run_id])  # one version per night
    assert client.get_model_version_by_alias("cx_toy", "champion").run_id == retried.run_id
