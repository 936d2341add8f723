"""The promotion rule on its own: thresholds, decisions at and around them, reasons, tags, errors.

Values are chosen so that the thresholds are exact binary fractions (0.25 of 2.0 is 0.5), so "at
the threshold" really is at it and ``math.nextafter`` is the closest value on either side.
"""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from jobs.models.promotion import (
    Guard,
    PromotionError,
    PromotionMetric,
    decide_promotion,
    missed_guards,
    promotion_threshold,
    validate_promotion,
)

MAE = PromotionMetric("mae_p50_days", lower_is_better=True, margin_kind="relative")
AUC_ABSOLUTE = PromotionMetric("roc_auc", lower_is_better=False, margin_kind="absolute")


def _decide(metric: PromotionMetric, candidate: float, champion: float | None, margin: float, previous="3"):
    return decide_promotion(
        metric, candidate, champion, margin, model_name="cx_test", candidate_version="4", champion_version=previous
    )


def test_threshold_rules() -> None:
    # Relative: 2% of the champion's magnitude; absolute: the margin in metric units.
    assert promotion_threshold(1.0, True, 0.02, "relative") == pytest.approx(0.98)
    assert promotion_threshold(0.8, False, 0.02, "relative") == pytest.approx(0.816)
    assert promotion_threshold(0.8, False, 0.01, "absolute") == pytest.approx(0.81)
    assert promotion_threshold(1.0, True, 0.05, "absolute") == pytest.approx(0.95)
    # A negative champion value (e.g. a log-likelihood) still needs a real improvement.
    assert promotion_threshold(-2.0, True, 0.1, "relative") == pytest.approx(-2.2)
    with pytest.raises(PromotionError, match="margin_kind"):
        promotion_threshold(1.0, True, 0.02, "percent")
    with pytest.raises(PromotionError, match="margin must be"):
        promotion_threshold(1.0, True, -0.01, "relative")


@pytest.mark.parametrize(
    ("lower_is_better", "margin_kind", "champion", "margin", "threshold"),
    [
        (True, "relative", 2.0, 0.25, 1.5),  # 2.0 - 0.25 * 2.0
        (True, "relative", -2.0, 0.25, -2.5),  # the magnitude counts: -2.0 - 0.25 * |-2.0|
        (False, "relative", 0.5, 0.25, 0.625),  # 0.5 + 0.25 * 0.5
        (True, "absolute", 2.0, 0.25, 1.75),  # 2.0 - 0.25
        (False, "absolute", 0.5, 0.125, 0.625),  # 0.5 + 0.125
    ],
)
def test_reaching_the_threshold_exactly_promotes_and_the_next_value_does_not(
    lower_is_better: bool, margin_kind: str, champion: float, margin: float, threshold: float
) -> None:
    metric = PromotionMetric("m", lower_is_better=lower_is_better, margin_kind=margin_kind)
    worse = math.inf if lower_is_better else -math.inf  # the direction in which the candidate gets worse
    better = -worse
    assert promotion_threshold(champion, lower_is_better, margin, margin_kind) == threshold
    at = _decide(metric, threshold, champion, margin)
    assert (at.promoted, at.threshold) == (True, threshold)
    assert _decide(metric, math.nextafter(threshold, better), champion, margin).promoted
    assert not _decide(metric, math.nextafter(threshold, worse), champion, margin).promoted
    # Equal to the champion is not better by a positive margin.
    assert not _decide(metric, champion, champion, margin).promoted


def test_a_zero_margin_promotes_a_tie() -> None:
    assert _decide(MAE, 1.0, 1.0, 0.0).promoted
    assert not _decide(MAE, math.nextafter(1.0, math.inf), 1.0, 0.0).promoted


def test_a_rejection_and_a_promotion_with_their_reasons_and_tags() -> None:
    rejected = _decide(MAE, 0.99, 1.0, 0.02)  # 1% better < the 2% relative margin (needs <= 0.98)
    assert rejected.reason == (
        "cx_test v4 stays challenger: mae_p50_days 0.9900 does not beat champion v3's 1.0000 on the same "
        "holdout by the 0.02 relative margin (needed <= 0.9800)."
    )
    assert rejected.tags == {
        "promotion_decision": "rejected",
        "promotion_reason": rejected.reason,
        "compared_metric": "mae_p50_days",
        "candidate_value": "0.99",
        "champion_value": "1.0",
        "promotion_margin": "0.02 relative",
        "promotion_guards": "none declared",
        "previous_champion_version": "3",
    }
    promoted = _decide(AUC_ABSOLUTE, 0.75, 0.70, 0.01)  # 0.05 better >= the 0.01 absolute margin
    assert promoted.reason == (
        "cx_test v4 promoted to champion: roc_auc 0.7500 beats champion v3's 0.7000 on the same holdout by the "
        "0.01 absolute margin (needed >= 0.7100)."
    )
    assert (promoted.promoted, promoted.tags["promotion_decision"], promoted.tags["promotion_margin"]) == (
        True,
        "promoted",
        "0.01 absolute",
    )
    assert (promoted.model_name, promoted.version, promoted.metric, promoted.margin_kind) == (
        "cx_test",
        "4",
        "roc_auc",
        "absolute",
    )
    assert (promoted.candidate_value, promoted.champion_value, promoted.previous_champion_version) == (0.75, 0.7, "3")
    assert promoted.threshold == pytest.approx(0.71)


def test_without_a_champion_the_candidate_becomes_champion_whatever_its_value() -> None:
    # A champion value given without a champion is ignored (even a non-finite one).
    for champion_value in (None, 0.5, math.nan):
        first = _decide(MAE, 7.0, champion_value, 0.02, previous=None)
        assert (first.promoted, first.champion_value, first.threshold, first.previous_champion_version) == (
            True,
            None,
            None,
            None,
        )
        assert first.reason == "No champion yet: cx_test v4 (mae_p50_days 7.0000) becomes champion."
        assert first.tags == {
            "promotion_decision": "promoted",
            "promotion_reason": first.reason,
            "compared_metric": "mae_p50_days",
            "candidate_value": "7.0",
            "champion_value": "none",
            "promotion_margin": "0.02 relative",
            "promotion_guards": "none declared",
            "previous_champion_version": "none",
        }


@pytest.mark.parametrize(
    ("candidate", "champion", "previous", "margin", "message"),
    [
        (math.nan, 1.0, "3", 0.02, "cx_test: candidate mae_p50_days is nan, not a finite number"),
        (math.inf, None, None, 0.02, "cx_test: candidate mae_p50_days is inf, not a finite number"),
        (1.0, -math.inf, "3", 0.02, "cx_test: champion mae_p50_days is -inf, not a finite number"),
        (
            1.0,
            None,
            "3",
            0.02,
            "cx_test has a champion (v3) but no champion mae_p50_days on the same holdout was given",
        ),
        # The margin is checked even without a champion: a bad setting fails on the first night.
        (1.0, 1.0, "3", -0.01, "margin must be a finite number >= 0, not -0.01"),
        (1.0, None, None, -0.01, "margin must be a finite number >= 0, not -0.01"),
        (1.0, 1.0, "3", math.nan, "margin must be a finite number >= 0, not nan"),
        (1.0, 1.0, "3", math.inf, "margin must be a finite number >= 0, not inf"),
    ],
)
def test_undecidable_inputs_raise_promotion_error(
    candidate: float, champion: float | None, previous: str | None, margin: float, message: str
) -> None:
    for check in (
        lambda: validate_promotion(MAE, candidate, champion, margin, model_name="cx_test", champion_version=previous),
        lambda: _decide(MAE, candidate, champion, margin, previous=previous),
    ):
        with pytest.raises(PromotionError) as raised:
            check()
        assert str(raised.value) == message


def test_an_unknown_margin_kind_is_refused_where_the_metric_is_declared() -> None:
    with pytest.raises(PromotionError) as raised:
        PromotionMetric("roc_auc", lower_is_better=False, margin_kind="percent")
    assert str(raised.value) == "margin_kind must be one of ('relative', 'absolute'), not 'percent'"
    assert isinstance(raised.value, ValueError)  # a domain error


def test_the_models_declare_what_the_promotion_docstring_says() -> None:
    # jobs/models/promotion.py documents these: ETA on MAE (relative) with its coverage in its band,
    # churn on AUC (absolute) with a Brier score not worse than the champion's.
    from jobs.models.churn import job as churn_job
    from jobs.models.eta import job as eta_job

    assert eta_job.TRAINING.promotion == PromotionMetric(
        "mae_p50_days", lower_is_better=True, margin_kind="relative", guards=(Guard("p10_p90_coverage", 0.72, 0.88),)
    )
    assert churn_job.TRAINING.promotion == PromotionMetric(
        "roc_auc", lower_is_better=False, margin_kind="absolute", guards=(Guard("brier", not_worse_than_champion=True),)
    )


def test_a_candidate_that_beats_the_champion_but_misses_a_guard_stays_challenger() -> None:
    guards = (Guard("coverage", low=0.72, high=0.88), Guard("brier", not_worse_than_champion=True))
    # Sharper and honest: both guards met.
    assert missed_guards(guards, {"coverage": 0.80, "brier": 0.10}, {"brier": 0.10}) == ()
    # Intervals too narrow (0.70 < 0.72) and probabilities worse than the champion's.
    missed = missed_guards(guards, {"coverage": 0.70, "brier": 0.12}, {"brier": 0.10})
    assert missed == ("coverage 0.7000 < 0.72", "brier 0.1200 worse than the champion's 0.1000")
    decision = decide_promotion(
        MAE, 0.50, 1.0, 0.02, model_name="cx_test", candidate_version="4", champion_version="3", missed=missed
    )
    assert not decision.promoted and decision.tags["promotion_decision"] == "rejected"
    assert decision.reason == (
        "cx_test v4 stays challenger: mae_p50_days 0.5000 beats champion v3's 1.0000 on the same holdout by the "
        "0.02 relative margin (needed <= 0.9800). Guards missed: coverage 0.7000 < 0.72; brier 0.1200 worse than "
        "the champion's 0.1000."
    )
    assert decision.tags["promotion_guards"] == "coverage 0.7000 < 0.72; brier 0.1200 worse than the champion's 0.1000"
    # Without a champion there is nothing to keep: promoted, the missed guard said.
    first = decide_promotion(
        MAE, 0.50, None, 0.02, model_name="cx_test", candidate_version="1", champion_version=None, missed=missed[:1]
    )
    assert first.promoted and first.reason.endswith(
        "Guards missed: coverage 0.7000 < 0.72; promoted all the same, there is no champion to keep."
    )
    # Met guards are recorded as such; a champion not scored on a compared guard is an error.
    met = decide_promotion(MAE, 0.5, 1.0, 0.02, model_name="m", candidate_version="2", champion_version="1", missed=())
    assert met.promoted and met.tags["promotion_guards"] == "met"
    with pytest.raises(PromotionError, match="the champion was not scored on it"):
        missed_guards(guards, {"coverage": 0.8, "brier": 0.1}, {"roc_auc": 0.7})


def test_the_rule_imports_no_mlflow() -> None:
    code = "import sys, jobs.models.promotion; print('mlflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
