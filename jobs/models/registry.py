"""Champion/challenger promotion of registered models (``cx_eta``, ``cx_churn``) by alias, in MLflow.

The rule (metric, margin kind, same holdout) and the tags it implies are in
:mod:`jobs.models.promotion`, a pure function; :func:`register_and_decide` validates, registers,
records the decision as tags (the run also gets ``registered_model`` and ``registered_version``; a
run that registers versions of two models keeps the tags of the last one) and moves the aliases.
:func:`retrain_due` says when a champion is old enough to retrain.

Defaults (:data:`DEFAULT_MARGIN`, :data:`DEFAULT_RETRAIN_CADENCE_DAYS`) are module constants;
the jobs pass the configured values (``LakeConfig``).
"""

from __future__ import annotations

import datetime as dt
import logging

from jobs.models.promotion import (
    DEFAULT_MARGIN,
    MarginKind,
    PromotionDecision,
    PromotionError,
    PromotionMetric,
    decide_promotion,
    validate_promotion,
)

log = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"
# Weekly: a champion trained on data as of D is retrained on D + 7 (and not before).
DEFAULT_RETRAIN_CADENCE_DAYS = 7
AS_OF_DATE_TAG = "as_of_date"


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
    missed: tuple[str, ...] | None = None,
) -> PromotionDecision:
    """Register ``runs:/<run_id>/<artifact_path>`` as a new version, alias it, and decide promotion.

    The new version always becomes ``challenger``; it becomes ``champion`` too when there is no
    champion yet or it beats the champion's value on the same holdout by the margin
    (:func:`jobs.models.promotion.decide_promotion`). Everything is checked before anything is
    registered, so an error leaves the registry untouched.

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
        margin_kind: ``relative`` or ``absolute`` (:mod:`jobs.models.promotion`).
        await_registration_for: Seconds to wait for the version to become READY.
        missed: the guards the candidate misses (:func:`jobs.models.promotion.missed_guards`);
            None: the model declares none.

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
    declared = PromotionMetric(metric, lower_is_better, margin_kind)
    current = champion_version(model_name, client)
    previous = None if current is None else str(current.version)
    validate_promotion(
        declared,
        candidate_value,
        champion_value_on_same_holdout,
        margin,
        model_name=model_name,
        champion_version=previous,
    )
    if current is None and champion_value_on_same_holdout is not None:
        log.warning("%s has no champion; ignoring the champion value given", model_name)

    registered = mlflow.register_model(
        f"runs:/{run_id}/{artifact_path}", model_name, await_registration_for=await_registration_for
    )
    version = str(registered.version)
    status = client.get_model_version(model_name, version).status
    if status != "READY":
        raise RuntimeError(f"{model_name} v{version} is {status}, not READY")

    decision = decide_promotion(
        declared,
        candidate_value,
        champion_value_on_same_holdout,
        margin,
        model_name=model_name,
        candidate_version=version,
        champion_version=previous,
        missed=missed,
    )
    for key, value in decision.tags.items():
        client.set_model_version_tag(model_name, version, key, value)
    for key, value in {**decision.tags, "registered_model": model_name, "registered_version": version}.items():
        client.set_tag(run_id, key, value)

    client.set_registered_model_alias(model_name, CHALLENGER, version)
    if decision.promoted:
        client.set_registered_model_alias(model_name, CHAMPION, version)
    log.info("%s", decision.reason)
    return decision


def finish_registration(model_name: str, run_id: str, client=None) -> str:
    """Complete the aliases a training run's registration decided, if a kill stopped it before.

    ``register_and_decide`` registers the version, tags the decision on it and on the run, then
    moves the aliases: a process killed in between leaves a version without its aliases. From the
    run's tags, ``challenger`` goes to that version unless a newer one has it, and ``champion``
    too when the decision was ``promoted`` and no newer version is champion. Idempotent.

    Returns:
        The run's registered version.
    """
    client = _client(client)
    tags = client.get_run(run_id).data.tags
    version = tags["registered_version"]
    aliases = client.get_registered_model(model_name).aliases or {}

    def newer_or_same(alias: str) -> bool:
        return alias in aliases and int(aliases[alias]) >= int(version)

    if not newer_or_same(CHALLENGER):
        client.set_registered_model_alias(model_name, CHALLENGER, version)
    if tags.get("promotion_decision") == "promoted" and not newer_or_same(CHAMPION):
        client.set_registered_model_alias(model_name, CHAMPION, version)
    return version


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


def _trained_as_of(version, client) -> dt.date | None:
    """The as-of date of the run that trained ``version`` (None when unknown)."""
    if not version.run_id:
        return None
    try:
        return _as_date(client.get_run(version.run_id).data.tags.get(AS_OF_DATE_TAG))
    except (TypeError, ValueError):
        return None


def serving_version(model_name: str, run_date: str | dt.date, recorded: str | None = None, client=None):
    """The model version that scores the night of ``run_date``: the one that served it.

    * ``recorded``: the version the night's rows already name (a rerun): that one again, so a
      rerun writes the same rows whatever the champion is now.
    * else the champion, when it was trained on data of ``run_date`` or before (the nightly case,
      and a champion an engineer moved back by hand);
    * else (a backfill of a night before the champion's data) the newest version promoted by a
      training run of ``run_date`` or before: the champion of that night. A model that learnt from
      later deliveries would flatter the night's accuracy.

    Returns:
        The ``ModelVersion``; None when there is no champion, or no version had been promoted by
        ``run_date`` (nothing served that night).
    """
    client = _client(client)
    if recorded is not None:
        return client.get_model_version(model_name, str(recorded))
    champion = champion_version(model_name, client)
    if champion is None:
        return None
    night = _as_date(run_date)
    trained = _trained_as_of(champion, client)
    if trained is None or trained <= night:
        return champion
    promoted = [
        v
        for v in client.search_model_versions(f"name = '{model_name}'")
        if v.tags.get("promotion_decision") == "promoted" and (_trained_as_of(v, client) or dt.date.max) <= night
    ]
    if not promoted:
        log.warning("%s: no version was champion on %s (the champion learnt from %s on)", model_name, night, trained)
        return None
    return max(promoted, key=lambda v: int(v.version))
