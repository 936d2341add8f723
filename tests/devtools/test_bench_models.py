"""bench-models' summary: mean and sample sd over worlds, and never the tuning world."""

from __future__ import annotations

import pytest

from jobs.devtools import bench_models


def test_reported_worlds_are_never_the_tuning_one() -> None:
    assert bench_models.reported_seeds(3) == [101, 102, 103]
    assert bench_models.TUNING_SEED not in bench_models.reported_seeds(50)


def test_each_figure_is_a_mean_and_sample_sd_over_the_worlds_that_report_it() -> None:
    reports = {
        101: {"train_eta": {"mae_p50_days": 1.0, "mae_baseline_days": 2.0}, "train_churn": {"roc_auc": 0.6}},
        102: {"train_eta": {"mae_p50_days": 2.0, "mae_baseline_days": 2.0}, "train_churn": {}},  # churn skipped
    }
    summary = bench_models.summarise(reports)
    # (1 + 2) / 2 = 1.5; sample sd of {1, 2} = sqrt(((-0.5)^2 + 0.5^2) / 1) = 0.7071.
    assert summary["train_eta.mae_p50_days"] == {
        "label": "ETA P50 MAE at placement (days)",
        "mean": 1.5,
        "sd": pytest.approx(0.70710678),
        "worlds": 2,
    }
    assert summary["train_eta.mae_baseline_days"]["sd"] == 0.0  # the same in both worlds
    # One world reported churn: a mean, no sd.
    assert summary["train_churn.roc_auc"] == {"label": "churn ROC-AUC", "mean": 0.6, "sd": None, "worlds": 1}
    assert summary["train_churn.brier"]["mean"] is None and summary["train_churn.brier"]["worlds"] == 0
