"""What makes a model version champion: the promotion rule, as a pure function (no MLflow here).

Every trained model is registered as a new version and gets the ``challenger`` alias. The
``champion`` alias (what scoring loads: ``models:/<name>@champion``) moves to it only when

* there is no champion yet, or
* it beats the champion's value of the model's declared :class:`PromotionMetric`, scored by the
  training run **on the same holdout** (tonight's), by the margin ``CXLAKE_PROMOTION_MARGIN``
  (``LakeConfig.promotion_margin``, default 0.02).

Comparing against the champion's own training-time metric would compare two different holdouts,
so the training harness (:mod:`jobs.models.training`) loads the champion and scores it on the rows
the candidate was judged on.

Declared per model in its job module (``TRAINING.promotion``, a :class:`PromotionMetric`):

* ``cx_eta`` (``jobs/models/eta/job.py``): ``mae_p50_days``, lower is better, relative margin;
  guard: its ``p10_p90_coverage`` within 0.80 +/- 0.08 (intervals that are honest about their
  width, not just a sharper median).
* ``cx_churn`` (``jobs/models/churn/job.py``): ``roc_auc``, higher is better, absolute margin;
  guard: its ``brier`` not worse than the champion's on the same holdout (a better ranking must
  not cost the probabilities the risk bands read).

A :class:`Guard` is a further condition on the declared set of metrics: a band the candidate's
value must lie in, or a metric where it must not be worse than the champion's on the same
holdout. A candidate that beats the champion but misses a guard stays challenger, with the guard
named in the reason. Without a champion the candidate is promoted whatever its guards (scoring
needs a model), and the reason says which it missed.

The holdout is the model's own time split of tonight's training data: for ETA the latest matured
orders (at placement), for churn the latest weekly as-of dates (after a horizon-long gap).

Margin kinds:

* ``"relative"``: the candidate must improve by ``margin * |champion|``. For scale-dependent error
  metrics (MAE, pinball loss, RMSE): 2% better whatever the unit.
* ``"absolute"``: the candidate must improve by ``margin`` in the metric's own unit. For bounded
  scores (AUC, accuracy, 0..1), where "2% of the value" shrinks as the score nears 0.

Lower is better: promote when ``candidate <= champion - required``; higher is better: promote
when ``candidate >= champion + required``. Reaching the threshold exactly counts as beating it.

The decision implies tags, written by :func:`jobs.models.registry.register_and_decide` on the new
model version and on the training run: ``promotion_decision`` (``promoted``/``rejected``),
``promotion_reason``, ``compared_metric``, ``candidate_value``, ``champion_value`` (``none``
without a champion), ``promotion_margin`` (e.g. ``0.02 relative``), ``promotion_guards`` (``met``,
``none declared``, or the missed guards) and ``previous_champion_version`` (``none``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

MarginKind = Literal["relative", "absolute"]
MARGIN_KINDS = ("relative", "absolute")
DEFAULT_MARGIN = 0.02


class PromotionError(ValueError):
    """The promotion cannot be decided from the values given (nothing was registered)."""


def _check_margin_kind(margin_kind: str) -> None:
    if margin_kind not in MARGIN_KINDS:
        raise PromotionError(f"margin_kind must be one of {MARGIN_KINDS}, not {margin_kind!r}")


def _check_margin(margin: float, margin_kind: str) -> None:
    _check_margin_kind(margin_kind)
    if not math.isfinite(margin) or margin < 0:
        raise PromotionError(f"margin must be a finite number >= 0, not {margin!r}")


@dataclass(frozen=True)
class Guard:
    """A condition besides the compared metric: ``metric`` in ``[low, high]`` (either bound
    optional), and/or not worse than the champion's on the same holdout."""

    metric: str
    low: float | None = None
    high: float | None = None
    not_worse_than_champion: bool = False
    lower_is_better: bool = True  # for not_worse_than_champion

    def missed(self, candidate: Mapping[str, float], champion: Mapping[str, float] | None) -> str | None:
        """Why the candidate misses this guard, or None when it meets it.

        Raises:
            PromotionError: the candidate's metrics (or, when compared, the champion's) lack it.
        """
        if self.metric not in candidate or not math.isfinite(float(candidate[self.metric])):
            raise PromotionError(f"guard on {self.metric}: the candidate's {self.metric} is not a finite number")
        value = float(candidate[self.metric])
        if self.low is not None and value < self.low:
            return f"{self.metric} {value:.4f} < {self.low:g}"
        if self.high is not None and value > self.high:
            return f"{self.metric} {value:.4f} > {self.high:g}"
        if self.not_worse_than_champion and champion is not None:
            if self.metric not in champion:
                raise PromotionError(f"guard on {self.metric}: the champion was not scored on it")
            other = float(champion[self.metric])
            worse = value > other if self.lower_is_better else value < other
            if worse:
                return f"{self.metric} {value:.4f} worse than the champion's {other:.4f}"
        return None


def missed_guards(
    guards: tuple[Guard, ...], candidate: Mapping[str, float], champion: Mapping[str, float] | None
) -> tuple[str, ...]:
    """The guards the candidate misses (:meth:`Guard.missed`), in declaration order."""
    return tuple(reason for guard in guards if (reason := guard.missed(candidate, champion)) is not None)


@dataclass(frozen=True)
class PromotionMetric:
    """The metric a model's versions are compared on, and how much better a challenger must be.

    Attributes:
        name: The metric as logged by the training run, e.g. ``roc_auc``.
        lower_is_better: True for errors and losses, False for scores such as AUC.
        margin_kind: ``relative`` (``margin * |champion|``) or ``absolute`` (``margin`` in metric units).
        guards: further conditions (:class:`Guard`) a candidate must meet to replace a champion.

    Raises:
        PromotionError: an unknown ``margin_kind``.
    """

    name: str
    lower_is_better: bool
    margin_kind: MarginKind = "relative"
    guards: tuple[Guard, ...] = field(default=())

    def __post_init__(self) -> None:
        _check_margin_kind(self.margin_kind)


@dataclass(frozen=True)
class PromotionDecision:
    """What becomes of a newly registered version, and why."""

    model_name: str
    version: str
    promoted: bool
    metric: str
    candidate_value: float
    champion_value: float | None  # None: there was no champion
    margin: float
    reason: str
    margin_kind: str = "relative"
    previous_champion_version: str | None = None
    threshold: float | None = None  # None: there was no champion
    guards: str = "none declared"  # "met", or the missed guards

    @property
    def tags(self) -> dict[str, str]:
        """The tags recording the decision (on the model version and on the training run)."""
        return {
            "promotion_decision": "promoted" if self.promoted else "rejected",
            "promotion_reason": self.reason,
            "compared_metric": self.metric,
            "candidate_value": _tag_value(self.candidate_value),
            "champion_value": _tag_value(self.champion_value),
            "promotion_margin": _margin_text(self.margin, self.margin_kind),
            "promotion_guards": self.guards,
            "previous_champion_version": self.previous_champion_version or "none",
        }


def promotion_threshold(champion_value: float, lower_is_better: bool, margin: float, margin_kind: str) -> float:
    """The value a candidate must reach (<= when lower is better, >= otherwise) to be promoted.

    Args:
        champion_value: The champion's metric on the same holdout.
        lower_is_better: True for errors and losses, False for scores such as AUC.
        margin: Required improvement, >= 0 (a fraction for ``relative``, metric units for ``absolute``).
        margin_kind: ``relative`` (``margin * |champion_value|``) or ``absolute`` (``margin``).

    Returns:
        The threshold.

    Raises:
        PromotionError: margin negative or not finite, or an unknown ``margin_kind``.
    """
    _check_margin(margin, margin_kind)
    required = margin * abs(champion_value) if margin_kind == "relative" else margin
    return champion_value - required if lower_is_better else champion_value + required


def _margin_text(margin: float, margin_kind: str) -> str:
    return f"{margin:.4g} {margin_kind}"


def _tag_value(value: float | None) -> str:
    return "none" if value is None else repr(float(value))


def validate_promotion(
    metric: PromotionMetric,
    candidate_value: float,
    champion_value: float | None,
    margin: float,
    *,
    model_name: str,
    champion_version: str | None,
) -> None:
    """Check that a promotion can be decided from these values (before anything is registered).

    Args:
        metric: The declared metric.
        candidate_value: The new model's metric on the holdout.
        champion_value: The champion's metric on the same holdout; ignored without a champion.
        margin: Required improvement, >= 0 (see ``metric.margin_kind``).
        model_name: Registered model name, for the messages.
        champion_version: The current champion's version; None when there is none.

    Raises:
        PromotionError: the margin is invalid, a value is not finite, or there is a champion but no
            champion value.
    """
    _check_margin(margin, metric.margin_kind)
    if not math.isfinite(candidate_value):
        raise PromotionError(f"{model_name}: candidate {metric.name} is {candidate_value!r}, not a finite number")
    if champion_version is None:
        return
    if champion_value is None:
        raise PromotionError(
            f"{model_name} has a champion (v{champion_version}) but no champion {metric.name} on the same holdout "
            "was given"
        )
    if not math.isfinite(float(champion_value)):
        raise PromotionError(f"{model_name}: champion {metric.name} is {float(champion_value)!r}, not a finite number")


def decide_promotion(
    metric: PromotionMetric,
    candidate_value: float,
    champion_value: float | None,
    margin: float,
    *,
    model_name: str,
    candidate_version: str,
    champion_version: str | None,
    missed: tuple[str, ...] | None = None,
) -> PromotionDecision:
    """Whether ``candidate_version`` becomes champion (module docstring), with the reason and tags.

    Args:
        metric: The declared metric (name, direction, margin kind).
        candidate_value: The new model's metric on the holdout.
        champion_value: The current champion's metric on the same holdout; ignored when there is
            no champion (``champion_version`` None).
        margin: Required improvement, >= 0 (a fraction for ``relative``, metric units for ``absolute``).
        model_name: Registered model name, e.g. ``cx_churn``.
        candidate_version: The new version.
        champion_version: The current champion's version; None when there is none.
        missed: the guards the candidate misses (:func:`missed_guards`); None: ``metric`` declares
            none.

    Returns:
        The decision.

    Raises:
        PromotionError: as :func:`validate_promotion`.
    """
    validate_promotion(
        metric, candidate_value, champion_value, margin, model_name=model_name, champion_version=champion_version
    )
    name, candidate = metric.name, float(candidate_value)
    if champion_version is None:
        champion, threshold, promoted = None, None, True
        reason = f"No champion yet: {model_name} v{candidate_version} ({name} {candidate_value:.4f}) becomes champion."
    else:
        champion = float(champion_value)
        threshold = promotion_threshold(champion, metric.lower_is_better, margin, metric.margin_kind)
        promoted = candidate_value <= threshold if metric.lower_is_better else candidate_value >= threshold
        direction = "<=" if metric.lower_is_better else ">="
        verdict = "promoted to champion" if promoted else "stays challenger"
        beats = "beats" if promoted else "does not beat"
        reason = (
            f"{model_name} v{candidate_version} {verdict}: {name} {candidate_value:.4f} {beats} champion "
            f"v{champion_version}'s {champion:.4f} on the same holdout by the "
            f"{_margin_text(margin, metric.margin_kind)} margin (needed {direction} {threshold:.4f})."
        )
    guards = "none declared" if missed is None else ("; ".join(missed) or "met")
    if missed:
        if champion_version is None:
            reason += f" Guards missed: {guards}; promoted all the same, there is no champion to keep."
        else:
            if promoted:
                reason = reason.replace("promoted to champion", "stays challenger", 1)
            promoted = False
            reason += f" Guards missed: {guards}."
    return PromotionDecision(
        model_name=model_name,
        version=candidate_version,
        promoted=promoted,
        metric=name,
        candidate_value=candidate,
        champion_value=champion,
        margin=margin,
        reason=reason,
        margin_kind=metric.margin_kind,
        previous_champion_version=champion_version,
        threshold=threshold,
        guards=guards,
    )
