"""Champion/challenger promotion for registered models (``cx_eta``, ``cx_churn``), by alias.

Every trained model is registered as a new version and gets the ``challenger`` alias. The
``champion`` alias (what scoring loads: ``models:/<name>@champion``) moves to it only when

* there is no champion yet, or
* it beats the champion's value of the same metric **on the same holdout** by the margin.

The caller scores the current champion on tonight's holdout (load :func:`champion_model_uri`),
so both numbers come from the same rows: comparing against the champion's own training-time
metric would compare two different holdouts.

Margin rule (``margin_kind``):

* ``"relative"`` (default): the candidate must improve by ``margin * |champion|``. For
  scale-dependent error metrics (MAE, pinball loss, RMSE): 2% better whatever the unit.
* ``"absolute"``: the candidate must improve by ``margin`` in the metric's own unit. For bounded
  scores (AUC, accuracy, 0..1), where "2% of the value" shrinks as the score nears 0.

Lower is better: promote when ``candidate <= champion - required``; higher is better: promote
when ``candidate >= champion + required``. Reaching the threshold exactly counts as beating it.

The decision is written as tags on the new model version and on the training run:
``promotion_decision`` (``promoted``/``rejected``), ``promotion_reason``, ``compared_metric``,
``candidate_value``, ``champion_value`` (``none`` without a champion), ``promotion_margin``
(e.g. ``0.02 relative``) and ``previous_champion_version`` (``none``); the run also gets
``registered_model`` and ``registered_version``. A run that registers versions of two models keeps
the tags of the last one.

Defaults (:data:`DEFAULT_MARGIN`, :data:`DEFAULT_RETRAIN_CADENCE_DAYS`) are module constants;
the jobs pass the configured values (``LakeConfig``).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from dataclasses import dataclass
from typing import Literal

log = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"
DEFAULT_MARGIN = 0.02
# Weekly: a champion trained on data as of D is retrained on D + 7 (and not before).
DEFAULT_RETRAIN_CADENCE_DAYS = 7
AS_OF_DATE_TAG = "as_of_date"
MarginKind = Literal["relative", "absolute"]
MARGIN_KINDS = ("relative", "absolute")


class PromotionError(ValueError):
    """The promotion cannot be decided from the values given (nothing was registered)."""


@dataclass(frozen=True)
class PromotionDecision:
    """What :func:`register_and_decide` did with a newly registered version."""

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


def _client(client=None):
    if client is not None:
        return client
    from mlflow import MlflowClient

    return MlflowClient()


def champion_version(model_name: str, client=None):
    """The model version the ``champion`` alias points to.

    Args:
        model_name: Registered model name, e.g. ``cx_eta``.
        client: An ``MlflowClient``; default: one on the current tracking/registry URI.

    Returns:
        The ``ModelVersion``, or None when the model is not registered or has no champion.
    """
    from mlflow.exceptions import MlflowException

    client = _client(client)
    try:
        registered = client.get_registered_model(model_name)
    except MlflowException as error:
        if error.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise
    version = (registered.aliases or {}).get(CHAMPION)
    if version is None:
        return None
    return client.get_model_version(model_name, str(version))


def champion_model_uri(model_name: str, client=None) -> str | None:
    """``models:/<name>@champion`` when the model has a champion, else None."""
    if champion_version(model_name, client) is None:
        return None
    return f"models:/{model_name}@{CHAMPION}"


def _check_margin(margin: float, margin_kind: str) -> None:
    if margin_kind not in MARGIN_KINDS:
        raise PromotionError(f"margin_kind must be one of {MARGIN_KINDS}, not {margin_kind!r}")
    if not math.isfinite(margin) or margin < 0:
        raise PromotionError(f"margin must be a finite number >= 0, not {margin!r}")


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


def _check_same_store(client) -> None:
    """``mlflow.register_model`` always uses the process-wide URIs; a passed client must agree."""
    import mlflow

    client_registry = getattr(client, "_registry_uri", None)
    if client.tracking_uri != mlflow.get_tracking_uri() or (
        client_registry is not None and client_registry != mlflow.get_registry_uri()
    ):
        raise PromotionError(
            "the client's tracking/registry URI differs from the process-wide one that "
            "mlflow.register_model uses; call mlflow.set_tracking_uri/set_registry_uri first"
        )


def register_and_decide(
    run_id: str,
    artifact_path: str,
    model_name: str,
    metric: str,
    candidate_value: float,
    champion_value_on_same_holdout: float | None,
    lower_is_better: bool,
    margin: float = DEFAULT_MARGIN,
    client=None,
    *,
    margin_kind: MarginKind = "relative",
    await_registration_for: int = 300,
) -> PromotionDecision:
    """Register ``runs:/<run_id>/<artifact_path>`` as a new version, alias it, and decide promotion.

    The new version always becomes ``challenger``; it becomes ``champion`` too when there is no
    champion yet or it beats the champion's value on the same holdout by the margin (module
    docstring). Everything is checked before anything is registered, so an error leaves the
    registry untouched.

    Args:
        run_id: The training run (its ``as_of_date`` tag drives :func:`retrain_due`).
        artifact_path: The model's name within the run (``log_model(name=...)``).
        model_name: Registered model name, e.g. ``cx_eta``.
        metric: Name of the compared metric, recorded in the tags.
        candidate_value: The new model's metric on the holdout.
        champion_value_on_same_holdout: The current champion's metric on the same holdout; None
            only when there is no champion (ignored, with a warning, when there is none).
        lower_is_better: True for errors and losses, False for scores such as AUC.
        margin: Required improvement (see ``margin_kind``); default :data:`DEFAULT_MARGIN`.
        client: An ``MlflowClient``; default: one on the process-wide URIs. Registration goes
            through ``mlflow.register_model``, which always uses the process-wide URIs.
        margin_kind: ``relative`` or ``absolute`` (module docstring).
        await_registration_for: Seconds to wait for the version to become READY.

    Returns:
        The decision, also recorded as tags on the version and the run.

    Raises:
        PromotionError: a value is not finite, a champion exists but no champion value was
            given, the margin is invalid, or ``client`` points at another store.
    """
    import mlflow

    if client is not None:
        _check_same_store(client)
    client = _client(client)
    _check_margin(margin, margin_kind)
    if not math.isfinite(candidate_value):
        raise PromotionError(f"{model_name}: candidate {metric} is {candidate_value!r}, not a finite number")

    current = champion_version(model_name, client)
    previous = None if current is None else str(current.version)
    if current is None:
        if champion_value_on_same_holdout is not None:
            log.warning("%s has no champion; ignoring the champion value given", model_name)
        champion_value = None
        promoted = True
    else:
        if champion_value_on_same_holdout is None:
            raise PromotionError(
                f"{model_name} has a champion (v{previous}) but no champion {metric} on the same holdout was given"
            )
        champion_value = float(champion_value_on_same_holdout)
        if not math.isfinite(champion_value):
            raise PromotionError(f"{model_name}: champion {metric} is {champion_value!r}, not a finite number")
        threshold = promotion_threshold(champion_value, lower_is_better, margin, margin_kind)
        promoted = candidate_value <= threshold if lower_is_better else candidate_value >= threshold

    registered = mlflow.register_model(
        f"runs:/{run_id}/{artifact_path}", model_name, await_registration_for=await_registration_for
    )
    version = str(registered.version)
    status = client.get_model_version(model_name, version).status
    if status != "READY":
        raise RuntimeError(f"{model_name} v{version} is {status}, not READY")

    margin_text = _margin_text(margin, margin_kind)
    if current is None:
        reason = f"No champion yet: {model_name} v{version} ({metric} {candidate_value:.4f}) becomes champion."
    else:
        direction = "<=" if lower_is_better else ">="
        verdict = "promoted to champion" if promoted else "stays challenger"
        beats = "beats" if promoted else "does not beat"
        reason = (
            f"{model_name} v{version} {verdict}: {metric} {candidate_value:.4f} {beats} champion v{previous}'s "
            f"{champion_value:.4f} on the same holdout by the {margin_text} margin "
            f"(needed {direction} {threshold:.4f})."
        )
    decision = PromotionDecision(
        model_name=model_name,
        version=version,
        promoted=promoted,
        metric=metric,
        candidate_value=float(candidate_value),
        champion_value=champion_value,
        margin=margin,
        reason=reason,
        margin_kind=margin_kind,
        previous_champion_version=previous,
    )

    tags = {
        "promotion_decision": "promoted" if promoted else "rejected",
        "promotion_reason": reason,
        "compared_metric": metric,
        "candidate_value": _tag_value(candidate_value),
        "champion_value": _tag_value(champion_value),
        "promotion_margin": margin_text,
        "previous_champion_version": previous or "none",
    }
    for key, value in tags.items():
        client.set_model_version_tag(model_name, version, key, value)
    for key, value in {**tags, "registered_model": model_name, "registered_version": version}.items():
        client.set_tag(run_id, key, value)

    client.set_registered_model_alias(model_name, CHALLENGER, version)
    if promoted:
        client.set_registered_model_alias(model_name, CHAMPION, version)
    log.info("%s", reason)
    return decision


def _as_date(value: str | dt.date) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def retrain_due(
    model_name: str, run_date: str | dt.date, cadence_days: int = DEFAULT_RETRAIN_CADENCE_DAYS, client=None
) -> bool:
    """Whether the model should be retrained on ``run_date``.

    True when there is no champion, when the champion's training run has no readable
    ``as_of_date`` tag (age unknown: retrain rather than trust it), or when that date is
    ``cadence_days`` or more before ``run_date``. A champion trained on data *later* than
    ``run_date`` (a backfill) is not due.

    Args:
        model_name: Registered model name, e.g. ``cx_eta``.
        run_date: The night being run, ``YYYY-MM-DD``.
        cadence_days: Retraining cadence; default weekly (:data:`DEFAULT_RETRAIN_CADENCE_DAYS`).
        client: An ``MlflowClient``; default: one on the current tracking/registry URI.

    Returns:
        True when retraining is due.
    """
    client = _client(client)
    champion = champion_version(model_name, client)
    if champion is None:
        return True
    if not champion.run_id:
        log.warning("%s v%s has no training run; retraining", model_name, champion.version)
        return True
    tag = client.get_run(champion.run_id).data.tags.get(AS_OF_DATE_TAG)
    try:
        trained_as_of = _as_date(tag)
    except (TypeError, ValueError):
        log.warning(
            "%s v%s: run tag %s=%r is not a date; retraining", model_name, champion.version, AS_OF_DATE_TAG, tag
        )
        return True
    return (_as_date(run_date) - trained_as_of).days >= cadence_days
