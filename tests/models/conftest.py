"""MLflow fixtures shared by the model tests: a private SQLite store per test, copied from a template."""

from __future__ import annotations

import shutil
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from jobs.lake.config import LakeConfig


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty, migrated MLflow store that each test copies (creating one takes seconds).

    The path is fixed under the session's base temp, so the other MLflow test modules reuse it.
    """
    path = tmp_path_factory.getbasetemp() / "mlflow_template" / "mlflow.db"
    if not path.exists():
        path.parent.mkdir(exist_ok=True)
        uri = f"sqlite:///{path}"
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        client.search_experiments()
        client.search_registered_models()
    return path


@pytest.fixture()
def mlflow_config(template_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A private store per test: tracking and registry URI set explicitly, artifacts under tmp_path."""
    db = tmp_path / "mlflow.db"
    shutil.copy(template_db, db)
    uri = f"sqlite:///{db}"
    # mlflow.set_*_uri also export MLFLOW_*_URI. Set through monkeypatch first so that teardown
    # removes them again (delenv of an absent variable records nothing, and a leaked registry URI
    # sent a later Airflow child process to this test's store).
    for variable in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        monkeypatch.setenv(variable, uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    yield LakeConfig(
        home=tmp_path, lake_root=str(tmp_path / "lake"), landing_root=str(tmp_path / "landing"), mlflow_tracking_uri=uri
    )
    mlflow.set_tracking_uri(None)
    mlflow.set_registry_uri(None)
