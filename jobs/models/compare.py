"""Recent runs of a model's experiment side by side (``cxlake models compare --model eta``).

One row per run, newest first: run id, start time (UTC), the ``as_of_date`` and ``status`` tags,
the registered versions of ``cx_<model>`` made from the run with their aliases, then every metric
logged by any of the runs (one column per metric key, sorted; ``-`` where a run lacks it).
"""

from __future__ import annotations

import math
import numbers
from collections import defaultdict

import pandas as pd

FIXED_COLUMNS = ["run_id", "start_time", "as_of_date", "status", "registered"]
RUN_ID_CHARS = 8


def experiment_name(model: str) -> str:
    """``eta`` -> ``cx_eta`` (a name already starting with ``cx_`` is kept)."""
    return model if model.startswith("cx_") else f"cx_{model}"


def _versions_by_run(client, name: str) -> dict[str, list[str]]:
    """``run_id -> ["v3 (champion, challenger)", ...]`` for the registered model ``name``."""
    from mlflow.exceptions import MlflowException

    try:
        aliases = client.get_registered_model(name).aliases or {}
    except MlflowException as error:
        if error.error_code == "RESOURCE_DOES_NOT_EXIST":
            return {}
        raise
    by_version: dict[str, list[str]] = defaultdict(list)
    for alias, version in aliases.items():
        by_version[str(version)].append(alias)
    by_run: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for model_version in client.search_model_versions(f"name = '{name}'"):
        version = str(model_version.version)
        labels = sorted(by_version.get(version, []))
        text = f"v{version}" + (f" ({', '.join(labels)})" if labels else "")
        by_run[model_version.run_id].append((int(version), text))
    return {run_id: [text for _, text in sorted(items)] for run_id, items in by_run.items()}


def compare_runs(model: str, last: int = 10, tracking_uri: str | None = None) -> pd.DataFrame:
    """The ``last`` most recent runs of experiment ``cx_<model>``, newest first.

    Args:
        model: ``eta``, ``churn`` (or the experiment name itself).
        last: How many runs.
        tracking_uri: MLflow store; default: the current one. The registry is MLflow's default
            for it (``MLFLOW_REGISTRY_URI`` if set, else the same store).

    Returns:
        Columns ``run_id`` (full id), ``start_time`` (UTC timestamp), ``as_of_date``, ``status``,
        ``registered`` (``"v3 (champion)"``, several joined by ``"; "``, empty if none), then one
        float column per metric key, sorted (NaN where a run did not log it).

    Raises:
        ValueError: ``last < 1``, or the experiment does not exist in the store.
    """
    from mlflow import MlflowClient

    if last < 1:
        raise ValueError(f"last must be >= 1, not {last}")
    client = MlflowClient(tracking_uri=tracking_uri)
    name = experiment_name(model)
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        raise ValueError(f"no MLflow experiment {name!r} in {client.tracking_uri}")
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"], max_results=last)
    versions = _versions_by_run(client, name) if runs else {}
    metric_keys = sorted({key for run in runs for key in run.data.metrics})
    rows = [
        {
            "run_id": run.info.run_id,
            "start_time": pd.Timestamp(run.info.start_time, unit="ms", tz="UTC"),
            "as_of_date": run.data.tags.get("as_of_date"),
            "status": run.data.tags.get("status"),
            "registered": "; ".join(versions.get(run.info.run_id, [])),
            **{key: float(run.data.metrics.get(key, math.nan)) for key in metric_keys},
        }
        for run in runs
    ]
    return pd.DataFrame(rows, columns=[*FIXED_COLUMNS, *metric_keys])


def _number(value: float) -> str:
    """Compact: integers as such, large values to 0.1, others to 4 significant digits."""
    if math.isnan(value):
        return "-"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    if abs(value) >= 1000:
        return f"{value:.1f}"
    return f"{value:.4g}"


def _cell(value, column: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return "-"
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, numbers.Real):
        return _number(float(value))
    text = str(value)
    if column == "run_id":
        return text[:RUN_ID_CHARS]
    return text or "-"


def format_table(df: pd.DataFrame) -> str:
    """Plain fixed-width text: a header, a rule, one line per row; numbers right-aligned.

    ``run_id`` is cut to its first 8 characters, timestamps to the minute, missing values are ``-``.
    """
    columns = [str(c) for c in df.columns]
    cells = [
        [_cell(value, column) for value, column in zip(row, columns, strict=True)]
        for row in df.itertuples(index=False, name=None)
    ]
    widths = [max([len(column), *(len(row[i]) for row in cells)]) for i, column in enumerate(columns)]
    numeric = [
        pd.api.types.is_numeric_dtype(df[column]) and not pd.api.types.is_bool_dtype(df[column])
        for column in df.columns
    ]

    def line(values: list[str]) -> str:
        parts = [v.rjust(w) if right else v.ljust(w) for v, w, right in zip(values, widths, numeric, strict=True)]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(columns), rule, *(line(row) for row in cells)])
