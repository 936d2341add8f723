"""Run a suite against a Spark DataFrame with GX 1.x and turn failures into a clear stop."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from jobs.quality.suites import CRITICAL, WARNING

if TYPE_CHECKING:
    import great_expectations as gx
    from pyspark.sql import DataFrame

log = logging.getLogger(__name__)


class DataQualityError(ValueError):
    """A critical expectation failed: downstream layers must not be built from this data."""


@dataclass
class GateResult:
    suite: str
    success: bool
    evaluated: int
    failures: list[dict[str, Any]] = field(default_factory=list)

    @property
    def critical_failures(self) -> list[dict[str, Any]]:
        return [f for f in self.failures if f["severity"] == CRITICAL]

    @property
    def warnings(self) -> list[dict[str, Any]]:
        return [f for f in self.failures if f["severity"] == WARNING]


def _describe(result: Any) -> dict[str, Any]:
    config = result.expectation_config
    details = result.result or {}
    return {
        "expectation": config.type,
        "kwargs": {k: v for k, v in config.kwargs.items() if k != "batch_id"},
        "severity": (config.meta or {}).get("severity", CRITICAL),
        "observed": details.get("observed_value"),
        "unexpected_count": details.get("unexpected_count"),
        "sample": details.get("partial_unexpected_list", [])[:5],
    }


def validate_dataframe(
    df: DataFrame,
    suite_name: str,
    expectations: list[Any],
    context: gx.AbstractDataContext | None = None,
) -> GateResult:
    """Validate ``df`` against ``expectations`` as suite ``suite_name`` on an ephemeral (or given) GX context.

    Raises:
        DataQualityError: naming each failed critical expectation with a sample of failing values.
    """
    import great_expectations as gx

    if context is None:
        from great_expectations.data_context.types.base import ProgressBarsConfig

        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = ProgressBarsConfig(globally=False)  # keep task logs readable
    suite = context.suites.add_or_update(gx.ExpectationSuite(name=suite_name, expectations=expectations))
    source = context.data_sources.add_or_update_spark(name="cxlake_spark")
    asset_name = f"asset_{suite.name}"
    try:
        asset = source.get_asset(asset_name)
    except LookupError:
        asset = source.add_dataframe_asset(name=asset_name)
    batch_definition = asset.add_batch_definition_whole_dataframe(f"batch_{suite.name}")
    batch = batch_definition.get_batch(batch_parameters={"dataframe": df})
    outcome = batch.validate(suite, result_format="SUMMARY")
    failures = [_describe(r) for r in outcome.results if not r.success]
    result = GateResult(suite=suite.name, success=outcome.success, evaluated=len(outcome.results), failures=failures)
    for warning in result.warnings:
        log.warning("data quality warning in %s: %s", suite.name, warning)
    if result.critical_failures:
        lines = [
            f"- {f['expectation']} {f['kwargs']}: observed={f['observed']} unexpected={f['unexpected_count']} sample={f['sample']}"
            for f in result.critical_failures
        ]
        raise DataQualityError(
            f"suite {suite.name!r} failed {len(lines)} critical expectation(s):\n" + "\n".join(lines)
        )
    return result
