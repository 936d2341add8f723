"""Champion/challenger promotion on a real MLflow SQLite store under tmp_path."""

from __future__ import annotations

import mlflow
import pytest
from mlflow import MlflowClient

from jobs.lake.config import LakeConfig
from jobs.models.registry import (
    PromotionError,
    champion_model_uri,
    champion_version,
    register_and_decide,
    retrain_due,
    serving_version,
)
from jobs.models.tracking import use_experiment


class _Identity(mlflow.pyfunc.PythonModel):
    """The tiniest real model: the registry only needs something logged with an MLmodel."""

    def predict(self, context, model_input: list[float], params=None) -> list[float]:
        return model_input


def _trained_run(config: LakeConfig, as_of_date: str | None = "2026-01-05") -> str:
    """A finished run holding a tiny real model under ``model`` (and an ``as_of_date`` tag)."""
    experiment_id = use_experiment(config, "cx_eta")  # artifacts under config.home, not the repo
    with mlflow.start_run(experiment_id=experiment_id) as run:
        if as_of_date is not None:
            mlflow.set_tag("as_of_date", as_of_date)
        # Explicit requirements: skips MLflow's slow requirement inference.
        mlflow.pyfunc.log_model(name="model", python_model=_Identity(), pip_requirements=["mlflow"])
    return run.info.run_id


def _aliases(name: str) -> dict[str, str]:
    return {alias: str(version) for alias, version in MlflowClient().get_registered_model(name).aliases.items()}


def _version_tags(name: str, version: str) -> dict[str, str]:
    return MlflowClient().get_model_version(name, version).tags


def test_champion_moves_only_when_a_lower_is_better_challenger_is_clearly_better(mlflow_config) -> None:
    name, metric = "cx_eta", "mae_p50_days"
    assert champion_version(name) is None and champion_model_uri(name) is None

    # 1. No champion yet: the first version becomes champion whatever its value.
    first = register_and_decide(_trained_run(mlflow_config), "model", name, metric, 1.0, None, lower_is_better=True)
    assert (first.version, first.promoted, first.champion_value) == ("1", True, None)
    assert _aliases(name) == {"champion": "1", "challenger": "1"}
    assert champion_model_uri(name) == "models:/cx_eta@champion"
    tags = _version_tags(name, "1")
    assert (tags["promotion_decision"], tags["compared_metric"]) == ("promoted", metric)
    assert (tags["candidate_value"], tags["champion_value"]) == ("1.0", "none")

    # 2. Worse than the champion on the same holdout: challenger only.
    worse = register_and_decide(_trained_run(mlflow_config), "model", name, metric, 1.10, 1.0, lower_is_better=True)
    assert not worse.promoted and worse.previous_champion_version == "1"
    assert _aliases(name) == {"champion": "1", "challenger": "2"}
    assert _version_tags(name, "2")["promotion_decision"] == "rejected"

    # 3. Better, but by 1% < the 2% relative margin (needs <= 0.98): not promoted.
    slightly = register_and_decide(_trained_run(mlflow_config), "model", name, metric, 0.99, 1.0, lower_is_better=True)
    assert not slightly.promoted and "needed <= 0.9800" in slightly.reason
    assert _aliases(name) == {"champion": "1", "challenger": "3"}

    # 4. 10% better: the champion moves.
    run_id = _trained_run(mlflow_config)
    better = register_and_decide(run_id, "model", name, metric, 0.90, 1.0, lower_is_better=True)
    assert better.promoted and better.champion_value == 1.0
    assert _aliases(name) == {"champion": "4", "challenger": "4"}
    assert champion_version(name).run_id == run_id
    tags = _version_tags(name, "4")
    assert {k: tags[k] for k in ("promotion_decision", "candidate_value", "champion_value", "promotion_margin")} == {
        "promotion_decision": "promoted",
        "candidate_value": "0.9",
        "champion_value": "1.0",
        "promotion_margin": "0.02 relative",
    }
    assert tags["previous_champion_version"] == "1"
    # The run carries the same record, plus which version it became.
    run_tags = MlflowClient().get_run(run_id).data.tags
    assert (run_tags["promotion_decision"], run_tags["registered_model"], run_tags["registered_version"]) == (
        "promoted",
        name,
        "4",
    )


def test_higher_is_better_metric_with_an_absolute_margin(mlflow_config) -> None:
    name, metric = "cx_churn", "auc"

    def decide(value: float, champion: float | None):
        return register_and_decide(
            _trained_run(mlflow_config),
            "model",
            name,
            metric,
            value,
            champion,
            lower_is_better=False,
            margin=0.01,
            margin_kind="absolute",
        )

    assert decide(0.70, None).promoted
    lower = decide(0.65, 0.70)  # worse AUC
    within = decide(0.705, 0.70)  # better by 0.005 < 0.01
    clearly = decide(0.75, 0.70)  # better by 0.05
    assert (lower.promoted, within.promoted, clearly.promoted) == (False, False, True)
    assert _aliases(name) == {"champion": "4", "challenger": "4"}
    assert [_version_tags(name, v)["promotion_decision"] for v in ("1", "2", "3", "4")] == [
        "promoted",
        "rejected",
        "rejected",
        "promoted",
    ]
    assert _version_tags(name, "3")["promotion_margin"] == "0.01 absolute"


def test_a_champion_without_a_comparable_value_is_an_error_and_registers_nothing(mlflow_config) -> None:
    name = "cx_eta"
    register_and_decide(_trained_run(mlflow_config), "model", name, "mae", 1.0, None, lower_is_better=True)
    run_id = _trained_run(mlflow_config)
    with pytest.raises(PromotionError, match="has a champion"):
        register_and_decide(run_id, "model", name, "mae", 0.5, None, lower_is_better=True)
    with pytest.raises(PromotionError, match="not a finite number"):
        register_and_decide(run_id, "model", name, "mae", float("nan"), 1.0, lower_is_better=True)
    with pytest.raises(PromotionError, match="differs"):
        other = MlflowClient(tracking_uri="http://127.0.0.1:9")  # another store (never contacted)
        register_and_decide(run_id, "model", name, "mae", 0.5, 1.0, lower_is_better=True, client=other)
    # Still only version 1, still champion.
    assert [str(v.version) for v in MlflowClient().search_model_versions(f"name = '{name}'")] == ["1"]
    assert _aliases(name) == {"champion": "1", "challenger": "1"}


def test_retrain_due(mlflow_config) -> None:
    name = "cx_eta"
    assert retrain_due(name, "2026-01-06", 7)  # no registered model at all
    register_and_decide(
        _trained_run(mlflow_config, "2026-01-05"), "model", name, "mae", 1.0, None, lower_is_better=True
    )
    assert not retrain_due(name, "2026-01-11", 7)  # champion is 6 days old
    assert retrain_due(name, "2026-01-12", 7)  # 7 days: due
    assert retrain_due(name, "2026-01-12")  # default cadence is weekly
    assert not retrain_due(name, "2026-01-12", 14)
    assert not retrain_due(name, "2026-01-01", 7)  # a backfill before the champion's data

    # A champion whose run says nothing of its data date: age unknown, retrain.
    register_and_decide(_trained_run(mlflow_config, None), "model", name, "mae", 0.5, 1.0, lower_is_better=True)
    assert str(champion_version(name).version) == "2"
    assert retrain_due(name, "2026-01-06", 7)


def test_a_past_night_is_scored_by_the_version_that_served_it(mlflow_config) -> None:
    name, metric = "cx_eta", "mae_p50_days"

    def trained(as_of: str, mae: float, champion: float | None) -> str:
        run = _trained_run(mlflow_config, as_of)
        return register_and_decide(run, "model", name, metric, mae, champion, lower_is_better=True).version

    assert serving_version(name, "2026-01-10") is None  # nothing registered
    # v1 trained on 01-05 (champion), v2 on 01-12 (rejected: not better), v3 on 01-19 (champion).
    assert (trained("2026-01-05", 1.0, None), trained("2026-01-12", 1.0, 1.0), trained("2026-01-19", 0.5, 1.0)) == (
        "1",
        "2",
        "3",
    )
    assert _aliases(name)["champion"] == "3"

    def served(night: str, recorded: str | None = None) -> str | None:
        version = serving_version(name, night, recorded)
        return None if version is None else str(version.version)

    # Tonight and later: the champion. A backfill of 01-12..01-18: v1, the champion of those
    # nights (v2 never was; v3 learnt from deliveries after them). Before 01-05: no model served.
    assert [served(d) for d in ("2026-01-19", "2026-02-01", "2026-01-18", "2026-01-12", "2026-01-05")] == [
        "3",
        "3",
        "1",
        "1",
        "1",
    ]
    assert served("2026-01-04") is None
    # A rerun: the version the night's rows already name, whatever the champion is now.
    assert served("2026-01-25", recorded="2") == "2"
    # An engineer moving the champion back by hand: nights from then on follow the alias.
    MlflowClient().set_registered_model_alias(name, "champion", "1")
    assert served("2026-01-26") == "1"
