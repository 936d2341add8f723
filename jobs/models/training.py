"""One training harness for every model: due? -> read -> fit -> score the champion -> log -> register.

A model declares its parts in a :class:`ModelTraining` (``TRAINING`` in its job module) and
:func:`train` runs them in the same order for every model, so every training run has the same
outline in MLflow (experiment = registered model name, run ``<run_prefix>_<run date>``):

* tags ``as_of_date`` (the run date; drives the retraining cadence), ``git_commit``, ``model``,
  then ``status`` (``trained`` or ``skipped_insufficient_data``) and the promotion tags
  (:mod:`jobs.models.promotion`);
* params ``delta_version.<table>`` of every input table, then the model's own;
* metrics: the model's evaluation on its holdout (or, when skipped, the counts that were too small);
* artifacts: the model's plots and tables, ``reference.parquet`` (the drift monitor's sample of the
  training rows, :mod:`jobs.models.monitoring`) and the pyfunc model ``model``, registered as a new
  version; it becomes champion only if it beats the current champion, which is scored on the same
  holdout here.
"""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Generic, TypeVar

import numpy as np
import pandas as pd
import pyspark.sql.functions as F
from pyspark.sql import Column, DataFrame, SparkSession

from jobs.lake.config import LakeConfig
from jobs.lake.tables import table_version
from jobs.models.promotion import PromotionMetric, missed_guards
from jobs.models.tracking import TrainingRun, git_commit, use_experiment

if TYPE_CHECKING:
    from mlflow.pyfunc import PyFuncModel, PythonModel

log = logging.getLogger(__name__)

MODEL_ARTIFACT = "model"  # the pyfunc model's name in the run (``runs:/<run id>/model``)
_SAMPLE_KEY = "_sample_key"
Rows = TypeVar("Rows")  # what a model reads for training (driver-side frames)


@dataclass(frozen=True)
class TooLittleData:
    """Too few rows to train on tonight: the run is kept, with ``status=skipped_insufficient_data``."""

    reason: str  # for the log, e.g. "12 matured orders < 50"
    metrics: dict[str, float]  # logged on the run
    reported: tuple[str, ...]  # the metrics the TrainingRun returns (nightly's task result)


@dataclass(frozen=True)
class Fitted:
    """A model fitted and evaluated on its holdout: what the harness logs and registers."""

    metrics: dict[str, float]  # logged; holds the candidate's promotion metric
    holdout: pd.DataFrame  # the rows the current champion is scored on as well
    python_model: PythonModel  # logged as the pyfunc model ``model``
    input_example: pd.DataFrame
    reference: pd.DataFrame  # training rows' features + ``score``, sampled into reference.parquet
    write_artifacts: Callable[[Path], None]  # plots and tables into a folder, logged at the run's root


@dataclass(frozen=True)
class ModelTraining(Generic[Rows]):
    """What a model declares to be trained by :func:`train`."""

    model_name: str  # registered model and MLflow experiment, e.g. ``cx_eta``
    run_prefix: str  # runs are named ``<run_prefix>_<run date>``
    model_tag: str  # the run's ``model`` tag, e.g. ``lightgbm_quantile``
    input_tables: tuple[str, ...]  # their Delta versions are logged as ``delta_version.<table>``
    promotion: PromotionMetric  # what makes a version champion (jobs.models.promotion)
    params: Callable[[LakeConfig], dict[str, object]]  # the model's own params
    read: Callable[[SparkSession, LakeConfig, str], Rows]  # (spark, config, run_date) -> training rows
    too_little: Callable[[Rows, LakeConfig], TooLittleData | None]  # None: enough to train
    fit: Callable[[Rows, LakeConfig, str], Fitted]  # (rows, config, run_date) -> fitted and evaluated
    # A loaded model's metrics on the holdout: the promotion metric and its guards' (by name).
    score_champion: Callable[[PyFuncModel, pd.DataFrame], dict[str, float]]


def sample_key(key: str) -> Column:
    """A stable pseudo-random number per key (64-bit xxhash): all rows of a key share it, on every run."""
    return F.xxhash64(F.col(key))


def sample_cut(hashes: pd.Series, max_keys: int) -> int | None:
    """The :func:`sample_key` value below which ``max_keys`` of the keys lie (``hashes``: their values, per row).

    Keeping the rows whose key is below the cut trains on a deterministic sample of whole keys
    (every scan of a sampled order, every as-of date of a sampled customer), spread evenly over
    time. None when there are no more than ``max_keys`` distinct keys: everything is kept.
    """
    distinct = np.unique(hashes.to_numpy())
    if len(distinct) <= max_keys:
        return None
    return int(distinct[max_keys])


def sampled_by_key(
    rows_df: DataFrame, companion_df: DataFrame, key: str, max_keys: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``rows_df`` and ``companion_df`` on the driver, both cut to the same sample of at most ``max_keys`` keys.

    The sample is chosen from ``rows_df`` (one or a few rows per key: e.g. one per order) once on
    the driver; ``companion_df`` (e.g. several scans per order) is cut in Spark before it is
    collected, so the driver never holds more than the sample's rows.
    """
    rows = rows_df.withColumn(_SAMPLE_KEY, sample_key(key)).toPandas()
    cut = sample_cut(rows[_SAMPLE_KEY], max_keys)
    if cut is not None:
        log.info("training on %d of %d %s values (a sample by key)", max_keys, rows[key].nunique(), key)
        rows = rows[rows[_SAMPLE_KEY] < cut].reset_index(drop=True)
        companion_df = companion_df.filter(sample_key(key) < F.lit(cut))
    return rows.drop(columns=_SAMPLE_KEY), companion_df.toPandas()


def _drift_flagged(spark: SparkSession, config: LakeConfig, model_name: str, experiment_id: str, run_date: str) -> bool:
    """A PSI above the alert level on the previous night, that no training since answered, retrains
    now (``CXLAKE_PSI_RETRAIN``; :func:`jobs.models.monitoring.job.unanswered_drift`)."""
    if not config.psi_triggers_retraining:
        return False
    from jobs.models.monitoring import job as monitoring_job

    last_trained = _last_trained(experiment_id, run_date)
    return monitoring_job.drift_flagged(spark, config, model_name, run_date, last_trained=last_trained)


def _last_trained(experiment_id: str, run_date: str) -> dt.date | None:
    """The as-of date of the model's latest trained run before ``run_date`` (None: never trained)."""
    from mlflow.tracking import MlflowClient

    runs = MlflowClient().search_runs([experiment_id], filter_string="tags.status = 'trained'", max_results=5000)
    earlier = [tag for run in runs if (tag := run.data.tags.get("as_of_date", "")) and tag[:10] < run_date]
    return dt.date.fromisoformat(max(earlier)[:10]) if earlier else None


def _settle_earlier_tries(experiment_id: str, name: str, run_date: str) -> str | None:
    """Runs of ``run_date`` left behind by a killed try, put right; the one that registered, if any.

    A killed process leaves its run RUNNING: it ends as KILLED, or as FINISHED (status ``trained``)
    when it got as far as recording its registered version on the run, whose aliases are then
    completed (:func:`jobs.models.registry.finish_registration`). Returns the newest run of the
    night that registered a version: that night has its model, and a retry must not register another.

    A kill after the registry created the version but before the run recorded it leaves a
    version no alias points to yet (aliases move last): it is deleted with its killed run, and the
    retry registers the night's one version.
    """
    from mlflow.tracking import MlflowClient

    from jobs.models.registry import finish_registration

    client = MlflowClient()
    tonight = client.search_runs(
        [experiment_id], filter_string=f"tags.as_of_date = '{run_date}'", order_by=["attributes.start_time DESC"]
    )
    registered = None
    for run in tonight:
        has_version = "registered_version" in run.data.tags
        if run.info.status == "RUNNING":
            if has_version:
                client.set_tag(run.info.run_id, "status", "trained")
            else:
                for stray in client.search_model_versions(f"name = '{name}' and run_id = '{run.info.run_id}'"):
                    client.delete_model_version(name, stray.version)
                    log.warning(
                        "%s: v%s, registered by a try killed before it recorded it, deleted", name, stray.version
                    )
            client.set_terminated(run.info.run_id, "FINISHED" if has_version else "KILLED")
            log.warning("%s: run %s of %s was left running by a killed try", name, run.info.run_id, run_date)
        if has_version and registered is None:
            registered = run.info.run_id
    if registered is not None:
        finish_registration(name, registered, client)
    return registered


def _champion_metrics(spec: ModelTraining, holdout: pd.DataFrame) -> dict[str, float] | None:
    """The current champion's promotion metrics on *this* holdout (None without a champion)."""
    import mlflow

    from jobs.models.registry import champion_model_uri

    uri = champion_model_uri(spec.model_name)
    if uri is None:
        return None
    return spec.score_champion(mlflow.pyfunc.load_model(uri), holdout)


def _log_artifacts(fitted: Fitted) -> None:
    import mlflow

    from jobs.models.monitoring.job import REFERENCE_ARTIFACT
    from jobs.models.monitoring.psi import reference_sample

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        fitted.write_artifacts(folder)
        reference_sample(fitted.reference).to_parquet(folder / REFERENCE_ARTIFACT)
        mlflow.log_artifacts(str(folder))


def train(
    spec: ModelTraining[Rows], spark: SparkSession | None, config: LakeConfig, run_date: str, force: bool = False
) -> TrainingRun:
    """Train, evaluate and register a version of ``spec``'s model when due, in one MLflow run.

    Due: ``force``, or the previous night's drift monitoring flagged a feature that no training
    since answered (when ``config.psi_triggers_retraining``; a drift that outlived a retraining
    waits for the cadence: :func:`jobs.models.monitoring.job.unanswered_drift`), or the champion
    is ``config.retrain_cadence_days`` old (:func:`jobs.models.registry.retrain_due`). The new version becomes champion only if it beats
    the current champion on the same holdout by ``config.promotion_margin``.

    Once per night unless forced: a night that registered a version already (a retried task)
    returns that run, after putting right what a killed try left (:func:`_settle_earlier_tries`).

    Args:
        spec: The model's declaration.
        spark: The session the input tables are read with (None: made once training is due; on a
            local lake the due check reads through delta-rs and MLflow only).
        config: Lake, MLflow store, cadence and margin.
        run_date: The night, ``YYYY-MM-DD``: the data's as-of date.
        force: Train even when not due.

    Returns:
        The run (None when not due), whether a model was trained, its metrics and the decision.
    """
    import mlflow

    from jobs.models.registry import register_and_decide, retrain_due

    name, metric = spec.model_name, spec.promotion
    experiment_id = use_experiment(config, name)
    registered_tonight = _settle_earlier_tries(experiment_id, name, run_date)
    if registered_tonight is not None and not force:
        # A retried task (a kill, a timeout, a drift-triggered retry): the night has its model.
        decision = f"{name} was trained for {run_date} already (run {registered_tonight}): not trained again"
        log.info("%s", decision)
        return TrainingRun(registered_tonight, False, {}, decision)
    due = force or _drift_flagged(spark, config, name, experiment_id, run_date)
    if not due and not retrain_due(name, run_date, config.retrain_cadence_days):
        log.info("%s: champion is recent enough on %s; scoring only", name, run_date)
        return TrainingRun(None, False, {}, "not due")
    if spark is None and spec.input_tables:
        # The task started no Spark to ask whether training is due (jobs.pipeline.nightly.train_*):
        # most nights it is not, and a task process saves the JVM start. Due: the session now.
        from jobs.lake.spark import get_spark

        spark = get_spark(config)
    versions = {table: table_version(spark, config, table) for table in spec.input_tables}
    rows = spec.read(spark, config, run_date)

    with mlflow.start_run(experiment_id=experiment_id, run_name=f"{spec.run_prefix}_{run_date}") as run:
        run_id = run.info.run_id
        mlflow.set_tags({"as_of_date": run_date, "git_commit": git_commit(), "model": spec.model_tag})
        mlflow.log_params({f"delta_version.{t}": v for t, v in versions.items()})
        mlflow.log_params(spec.params(config))
        too_little = spec.too_little(rows, config)
        if too_little is not None:
            mlflow.set_tag("status", "skipped_insufficient_data")
            mlflow.log_metrics(too_little.metrics)
            log.warning("%s not trained for %s: %s", name, run_date, too_little.reason)
            reported = {key: too_little.metrics[key] for key in too_little.reported}
            return TrainingRun(run_id, False, reported, "insufficient data")

        fitted = spec.fit(rows, config, run_date)
        mlflow.log_metrics(fitted.metrics)
        _log_artifacts(fitted)
        mlflow.pyfunc.log_model(
            name=MODEL_ARTIFACT, python_model=fitted.python_model, input_example=fitted.input_example
        )
        champion = _champion_metrics(spec, fitted.holdout)
        decision = register_and_decide(
            run_id,
            MODEL_ARTIFACT,
            name,
            metric.name,
            fitted.metrics[metric.name],
            None if champion is None else champion[metric.name],
            lower_is_better=metric.lower_is_better,
            margin=config.promotion_margin,
            margin_kind=metric.margin_kind,
            missed=missed_guards(metric.guards, fitted.metrics, champion) if metric.guards else None,
        )
        mlflow.set_tag("status", "trained")
        log.info("%s run %s for %s: %s; %s", name, run_id, run_date, fitted.metrics, decision.reason)
        return TrainingRun(run_id, True, fitted.metrics, decision.reason)
