"""Feature drift: population stability index (PSI) of tonight's rows against a model's reference.

``PSI = sum_i (a_i - e_i) * ln(a_i / e_i)`` over bins ``i``, with ``e_i``/``a_i`` the shares of the
expected (reference, training-time) and actual (current) rows in bin ``i``.

* Numeric features: bin edges are the ``1/bins .. (bins-1)/bins`` quantiles of the *expected*
  non-missing values (numpy's default linear interpolation), deduplicated (ties make fewer bins),
  with ``-inf``/``+inf`` ends so every actual value falls somewhere. Bins are right-closed: a value
  equal to an edge falls in the lower bin.
* Categorical features: one bin per category in the union of both sides.
* Missing values (NaN/None/NA) are a bin of their own on both kinds, so a feature that starts
  arriving empty shows up as drift.
* Smoothing: a bin share below :data:`EPSILON` (``1e-4``, i.e. an empty bin) counts as
  :data:`EPSILON`, without renormalising, so the log stays finite and identical inputs give
  exactly 0. An empty bin on one side against share ``p`` on the other contributes
  ``(p - 1e-4) * ln(p / 1e-4)``: about 0.05 for p = 1%, 0.69 for p = 10%.

Rule of thumb: < 0.1 stable, 0.1-0.2 moderate shift, > 0.2 (:data:`PSI_ALERT`) significant.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

EPSILON = 1e-4
PSI_ALERT = 0.2
MISSING = "<missing>"


def _psi_from_counts(expected_counts: np.ndarray, actual_counts: np.ndarray) -> float:
    expected_share = np.clip(expected_counts / expected_counts.sum(), EPSILON, None)
    actual_share = np.clip(actual_counts / actual_counts.sum(), EPSILON, None)
    return float(np.sum((actual_share - expected_share) * np.log(actual_share / expected_share)))


def _as_float(values) -> np.ndarray:
    if isinstance(values, pd.Series | pd.Index):
        return pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    return np.asarray(values, dtype=float).ravel()


def _check_not_empty(expected_size: int, actual_size: int) -> None:
    if expected_size == 0 or actual_size == 0:
        raise ValueError(f"PSI needs rows on both sides (expected {expected_size}, actual {actual_size})")


def quantile_edges(expected: np.ndarray, bins: int = 10) -> np.ndarray:
    """Interior bin edges: the expected values' quantiles, deduplicated (no ``±inf`` ends)."""
    if bins < 1:
        raise ValueError(f"bins must be >= 1, not {bins}")
    values = _as_float(expected)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return np.array([], dtype=float)
    return np.unique(np.quantile(values, np.linspace(0.0, 1.0, bins + 1)[1:-1]))


def _numeric_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    missing = np.isnan(values)
    # side="left": index i such that edges[i-1] < x <= edges[i], i.e. right-closed bins.
    index = np.searchsorted(edges, values[~missing], side="left")
    return np.append(np.bincount(index, minlength=edges.size + 1), missing.sum()).astype(float)


def psi(expected: np.ndarray, actual: np.ndarray, bins: int = 10) -> float:
    """PSI of a numeric feature (module docstring: quantile bins of ``expected``, NaN bin, epsilon).

    Args:
        expected: Reference values (e.g. the training holdout); NaN allowed.
        actual: Current values; NaN allowed.
        bins: Number of quantile bins before deduplication.

    Returns:
        The PSI, >= 0.

    Raises:
        ValueError: either side has no rows, or ``bins < 1``.
    """
    expected_values, actual_values = _as_float(expected), _as_float(actual)
    _check_not_empty(expected_values.size, actual_values.size)
    edges = quantile_edges(expected_values, bins)
    return _psi_from_counts(_numeric_counts(expected_values, edges), _numeric_counts(actual_values, edges))


def _category_counts(values) -> pd.Series:
    series = pd.Series(values, dtype="object")
    return series.where(series.notna(), MISSING).value_counts(sort=False)


def psi_categorical(expected, actual) -> float:
    """PSI of a categorical feature: one bin per category in the union, missing values as one bin.

    A category seen on one side only gets :data:`EPSILON` share on the other.

    Args:
        expected: Reference values (array-like of labels).
        actual: Current values.

    Returns:
        The PSI, >= 0.

    Raises:
        ValueError: either side has no rows.
    """
    expected_counts, actual_counts = _category_counts(expected), _category_counts(actual)
    _check_not_empty(int(expected_counts.sum()), int(actual_counts.sum()))
    categories = expected_counts.index.union(actual_counts.index, sort=False)
    return _psi_from_counts(
        expected_counts.reindex(categories, fill_value=0).to_numpy(dtype=float),
        actual_counts.reindex(categories, fill_value=0).to_numpy(dtype=float),
    )


def _is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def psi_table(reference: pd.DataFrame, current: pd.DataFrame, columns: list[str], bins: int = 10) -> pd.DataFrame:
    """PSI of each column, one row per feature, in the order given.

    The kind follows the *reference* column's dtype: numeric (not bool) -> :func:`psi`, anything
    else (strings, categories, bools) -> :func:`psi_categorical`. A current column that no longer
    parses as numbers counts its unparsable values as missing, which shows up as drift.

    Args:
        reference: The reference sample stored with the model.
        current: Tonight's rows.
        columns: Features to compare.
        bins: Quantile bins for numeric features.

    Returns:
        Columns ``feature``, ``psi``, ``kind`` (``numeric``/``categorical``), ``flagged``
        (``psi >`` :data:`PSI_ALERT`), ``n_reference``, ``n_current`` (row counts, missing included).

    Raises:
        ValueError: a column is missing from either frame, or either frame has no rows.
    """
    missing = [c for c in columns if c not in reference.columns or c not in current.columns]
    if missing:
        raise ValueError(f"columns missing from the reference or current frame: {missing}")
    rows = []
    for column in columns:
        numeric = _is_numeric(reference[column])
        value = (
            psi(reference[column], current[column], bins)
            if numeric
            else psi_categorical(reference[column], current[column])
        )
        rows.append(
            {
                "feature": column,
                "psi": value,
                "kind": "numeric" if numeric else "categorical",
                "flagged": bool(value > PSI_ALERT),
                "n_reference": len(reference),
                "n_current": len(current),
            }
        )
    return pd.DataFrame(rows, columns=["feature", "psi", "kind", "flagged", "n_reference", "n_current"])


def reference_sample(df: pd.DataFrame, max_rows: int = 20000, seed: int = 7) -> pd.DataFrame:
    """A deterministic sample of at most ``max_rows`` rows, to store with the model (e.g. parquet).

    The same frame and seed always give the same rows; rows keep their original order and the
    index is reset (so ``to_parquet`` writes no index column).

    Args:
        df: The model's reference rows (e.g. the training holdout's features).
        max_rows: Upper bound on the rows kept; smaller frames are kept whole.
        seed: Seed of the row choice.

    Returns:
        The sample.

    Raises:
        ValueError: ``max_rows < 1``.
    """
    if max_rows < 1:
        raise ValueError(f"max_rows must be >= 1, not {max_rows}")
    if len(df) <= max_rows:
        return df.reset_index(drop=True)
    positions = np.sort(np.random.default_rng(seed).choice(len(df), size=max_rows, replace=False))
    return df.iloc[positions].reset_index(drop=True)
