"""PSI of numeric and categorical features, against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from jobs.models.monitoring.psi import (
    EPSILON,
    PSI_ALERT,
    psi,
    psi_categorical,
    psi_table,
    quantile_edges,
    reference_sample,
)


def test_identical_distributions_give_psi_near_zero() -> None:
    rng = np.random.default_rng(1)
    reference = rng.normal(10.0, 2.0, 20_000)
    assert psi(reference, reference) == 0.0  # same bins, same shares: every term is 0
    # Two independent samples of one distribution differ only by sampling noise.
    assert psi(reference, rng.normal(10.0, 2.0, 20_000)) < 0.01


def test_a_one_sd_shift_is_flagged() -> None:
    rng = np.random.default_rng(2)
    value = psi(rng.normal(0.0, 1.0, 20_000), rng.normal(1.0, 1.0, 20_000))
    assert value > PSI_ALERT


def test_psi_on_a_hand_computed_case() -> None:
    # bins=2 on [1, 2, 3, 4]: one edge at the median 2.5 -> (-inf, 2.5], (2.5, inf).
    # expected shares 0.5, 0.5; actual [1, 1, 1, 4] -> 0.75, 0.25 (no NaN on either side).
    # PSI = (0.75-0.5)*ln(0.75/0.5) + (0.25-0.5)*ln(0.25/0.5) = 0.25*ln(1.5) + 0.25*ln(2) = 0.25*ln(3)
    assert psi(np.array([1.0, 2, 3, 4]), np.array([1.0, 1, 1, 4]), bins=2) == pytest.approx(0.25 * math.log(3))


def test_quantile_edges_are_deduplicated_and_bins_right_closed() -> None:
    assert quantile_edges(np.array([1.0, 2, 3, 4]), bins=4).tolist() == [1.75, 2.5, 3.25]
    # Ties: the 25/50/75% quantiles of [5, 5, 5, 5, 7] are all 5 -> one edge, two bins.
    assert quantile_edges(np.array([5.0, 5, 5, 5, 7]), bins=4).tolist() == [5.0]
    # A value equal to an edge (2.5) falls in the lower bin, so [2.5, 2.5] matches [1, 2] exactly.
    assert psi(np.array([1.0, 2, 3, 4]), np.array([2.5, 2.5, 3, 4]), bins=2) == 0.0


def test_missing_values_are_a_bin_of_their_own() -> None:
    expected = np.array([1.0, 2, 3, 4])
    # Same share of NaN on both sides: no drift.
    assert psi(np.array([1.0, 4, np.nan]), np.array([1.0, 4, np.nan]), bins=2) == 0.0
    # actual [1, 4, nan, nan]: shares 0.25, 0.25 and 0.5 missing; the reference has no missing
    # values, so its missing share is EPSILON.
    want = 2 * (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.5 - EPSILON) * math.log(0.5 / EPSILON)
    assert psi(expected, np.array([1.0, 4, np.nan, np.nan]), bins=2) == pytest.approx(want)
    # An all-missing reference leaves one value bin plus the missing bin.
    assert psi(np.array([np.nan, np.nan]), np.array([np.nan, np.nan])) == 0.0


def test_psi_needs_rows_on_both_sides() -> None:
    with pytest.raises(ValueError, match="needs rows"):
        psi(np.array([1.0]), np.array([]))
    with pytest.raises(ValueError, match="bins must be >= 1"):
        psi(np.array([1.0]), np.array([1.0]), bins=0)


def test_psi_categorical_with_an_unseen_category_and_missing_values() -> None:
    # Union {a, b, c}: expected 0.5, 0.5, EPSILON (c unseen); actual 0.25, 0.5, 0.25.
    want = (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.25 - EPSILON) * math.log(0.25 / EPSILON)
    assert psi_categorical(["a", "a", "b", "b"], ["a", "b", "b", "c"]) == pytest.approx(want)
    assert psi_categorical(["a", None, "b"], ["b", "a", None]) == 0.0  # None is a category, same shares
    # Missing in actual only: expected a 1.0, missing EPSILON; actual a 0.5, missing 0.5.
    want_missing = (0.5 - 1.0) * math.log(0.5 / 1.0) + (0.5 - EPSILON) * math.log(0.5 / EPSILON)
    assert psi_categorical(["a", "a"], ["a", np.nan]) == pytest.approx(want_missing)


def test_psi_table_kinds_counts_and_flags() -> None:
    rng = np.random.default_rng(3)
    reference = pd.DataFrame(
        {
            "distance_km": rng.normal(100.0, 20.0, 4000),
            "carrier": rng.choice(["cdek", "russian_post", "wb_express"], 4000),
            "is_weekend": rng.random(4000) < 0.3,
        }
    )
    current = pd.DataFrame(
        {
            "distance_km": rng.normal(130.0, 20.0, 3000),  # +1.5 sd: drift
            "carrier": rng.choice(["cdek", "russian_post", "wb_express"], 3000),  # same mix
            "is_weekend": rng.random(3000) < 0.3,
        }
    )
    table = psi_table(reference, current, ["distance_km", "carrier", "is_weekend"])
    assert list(table.columns) == ["feature", "psi", "kind", "flagged", "n_reference", "n_current"]
    assert table["feature"].tolist() == ["distance_km", "carrier", "is_weekend"]
    # Bools are labels, not numbers.
    assert table["kind"].tolist() == ["numeric", "categorical", "categorical"]
    assert table["flagged"].tolist() == [True, False, False]
    assert table["n_reference"].tolist() == [4000] * 3 and table["n_current"].tolist() == [3000] * 3
    assert table.loc[0, "psi"] > PSI_ALERT and (table.loc[1:, "psi"] < 0.01).all()


def test_psi_table_rejects_missing_columns() -> None:
    frame = pd.DataFrame({"x": [1.0]})
    with pytest.raises(ValueError, match=r"\['y'\]"):
        psi_table(frame, frame, ["x", "y"])


def test_reference_sample_is_deterministic_bounded_and_ordered() -> None:
    df = pd.DataFrame({"i": range(1000), "v": np.arange(1000) * 0.5}, index=range(5000, 6000))
    sample = reference_sample(df, max_rows=100, seed=7)
    assert len(sample) == 100
    pd.testing.assert_frame_equal(sample, reference_sample(df, max_rows=100, seed=7))
    assert not sample.equals(reference_sample(df, max_rows=100, seed=8))
    assert sample["i"].is_monotonic_increasing and sample.index.tolist() == list(range(100))
    # A frame within the bound is kept whole (index reset, so parquet gets no index column).
    small = reference_sample(df.head(10), max_rows=100)
    assert small["i"].tolist() == list(range(10)) and small.index.tolist() == list(range(10))


def test_only_a_champion_logged_without_a_reference_is_skipped_other_failures_are_loud(tmp_path) -> None:
    import mlflow

    from jobs.models.monitoring.job import REFERENCE_ARTIFACT, has_reference

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = mlflow.create_experiment("monitoring", artifact_location=(tmp_path / "artifacts").as_uri())
    with mlflow.start_run(experiment_id=experiment) as with_reference:
        reference = tmp_path / REFERENCE_ARTIFACT
        pd.DataFrame({"score": [0.1, 0.2]}).to_parquet(reference)
        mlflow.log_artifact(str(reference))
    with mlflow.start_run(experiment_id=experiment) as without:
        mlflow.log_metric("auc", 0.7)
    assert has_reference(with_reference.info.run_id) is True
    assert has_reference(without.info.run_id) is False  # monitoring skips it, with a warning
    # A run the tracking store does not know (or a store that cannot answer) is an error, not
    # "no reference": the night fails instead of reporting no drift.
    with pytest.raises(mlflow.exceptions.MlflowException):
        has_reference("0" * 32)
