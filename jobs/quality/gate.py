"""Run suites against Spark DataFrames with GX 1.x and turn failures into a clear stop.

A gate validates a list of :class:`Check` (one suite each), keeps every result, and only then
raises one :class:`DataQualityError` naming every failed critical expectation of every suite
with a sample of the failing rows' keys, so one night reports all its problems at once.
Validations of the nightly gates run through a file-backed GX context whose Data Docs site is
``$CXLAKE_HOME/data_docs`` (:func:`quality_context`), rendered once per gate after all its suites
ran; without a context (unit tests) an ephemeral one is used and nothing is written.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobs.quality.suites import CRITICAL, WARNING

if TYPE_CHECKING:
    import great_expectations as gx
    import pandas as pd
    from pyspark.sql import DataFrame

    from jobs.lake.config import LakeConfig

log = logging.getLogger(__name__)

DATA_DOCS_SITE = "cxlake"
# Validations the Data Docs index lists (newest first): about a month of nights.
DATA_DOCS_INDEX_VALIDATIONS = 500
_SAMPLE_ROWS = 5
# Slices up to this size are validated in pandas. Measured on the quick bench's customer_daily (296 k
# rows, 24 columns, its contract suite): 4.7 s in pandas against 16.6 s on Spark (a Spark job per
# metric); the large bench's nightly customer_daily slice (285 k rows) took the Spark path at the
# former 200 k. A million rows of the widest table (the journey) stay well under a GB on the driver.
PANDAS_MAX_ROWS = 1_000_000


class DataQualityError(ValueError):
    """A critical expectation failed: downstream layers must not be built from this data."""


@dataclass(frozen=True)
class Check:
    """One suite to run: the slice of a table the night touched, its expectations, and the key
    columns that identify a failing row in the error message (GX ``unexpected_index_column_names``)."""

    suite: str
    df: DataFrame
    expectations: list[Any]
    index_columns: tuple[str, ...] = ()


@dataclass
class GateResult:
    suite: str
    success: bool
    evaluated: int
    failures: list[dict[str, Any]] = field(default_factory=list)
    # The stored validation result and its suite (GX resource identifiers), for Data Docs.
    docs_resources: tuple[Any, ...] = ()

    @property
    def critical_failures(self) -> list[dict[str, Any]]:
        return [f for f in self.failures if f["severity"] == CRITICAL]

    @property
    def warnings(self) -> list[dict[str, Any]]:
        return [f for f in self.failures if f["severity"] == WARNING]


def _jsonable(value: Any) -> Any:
    """GX results carry dates and Decimals; findings are stored and logged as JSON."""
    return json.loads(json.dumps(value, default=lambda v: v.item() if hasattr(v, "item") else str(v)))


def _keys_first(row: Any, index_columns: tuple[str, ...] | list[str]) -> Any:
    """A failing row's key columns first (GX's order differs between pandas and Spark)."""
    if not isinstance(row, dict):
        return row
    return {
        **{k: row[k] for k in index_columns if k in row},
        **{k: v for k, v in row.items() if k not in index_columns},
    }


def _describe(result: Any, index_columns: tuple[str, ...] | list[str] = ()) -> dict[str, Any]:
    config = result.expectation_config
    details = result.result or {}
    meta = config.meta or {}
    # With index columns GX lists failing rows as {key..., column: value}: the keys to look up.
    sample = details.get("partial_unexpected_index_list") or details.get("partial_unexpected_list") or []
    return {
        "expectation": config.type,
        "kwargs": _jsonable({k: v for k, v in config.kwargs.items() if k != "batch_id"}),
        "severity": meta.get("severity", CRITICAL),
        "check": meta.get("check"),
        "observed": _jsonable(details.get("observed_value")),
        "unexpected_count": details.get("unexpected_count"),
        "sample": _jsonable([_keys_first(row, index_columns) for row in list(sample)[:_SAMPLE_ROWS]]),
    }


def format_failure(suite: str, failure: dict[str, Any]) -> str:
    """One line naming the suite, the expectation, its arguments, what it means, and failing rows."""
    check = f" [{failure['check']}]" if failure.get("check") else ""
    return (
        f"- {suite}: {failure['expectation']} {failure['kwargs']}{check}: observed={failure['observed']} "
        f"unexpected={failure['unexpected_count']} sample={failure['sample']}"
    )


def _ephemeral_context() -> gx.AbstractDataContext:
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)  # keep task logs readable
    return context


def data_docs_dir(config: LakeConfig) -> Path:
    return Path(config.home) / "data_docs"


GX_CONFIG_FILE = "great_expectations.yml"


def _gx_root(config: LakeConfig) -> Path:
    root = Path(config.home) / "gx"
    root.mkdir(parents=True, exist_ok=True)
    return root


def quality_context(config: LakeConfig) -> gx.AbstractDataContext:
    """The file-backed GX context of the lake (``$CXLAKE_HOME/gx``), Data Docs in ``$CXLAKE_HOME/data_docs``.

    Suites, validation definitions and validation results are stored there, so the Data Docs
    index lists the latest validations (every page stays). Its ``great_expectations.yml`` only
    holds settings this function sets, and GX rewrites it in place: one left empty or cut short
    (a kill mid-write) is moved aside and made again instead of failing every later gate; the
    stored suites and results are untouched. Use :func:`locked_quality_context` to validate.
    """
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    root = _gx_root(config)
    try:
        context = gx.get_context(mode="file", project_root_dir=str(root))
    except Exception as error:  # GX raises several kinds for an unreadable config file
        settings = next(root.rglob(GX_CONFIG_FILE), None)
        if settings is None:
            raise
        # When it broke, for whoever reads the folder; never table content.
        aside = settings.with_name(f"{GX_CONFIG_FILE}.broken-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S%f}")
        settings.rename(aside)
        log.warning("GX settings %s were unreadable (%s): moved to %s and made again", settings, error, aside.name)
        context = gx.get_context(mode="file", project_root_dir=str(root))
    # Each assignment rewrites the settings file: only when it changes.
    bars = context.variables.progress_bars  # a config object, or a dict once read back from the file
    if (bars.get("globally") if isinstance(bars, dict) else getattr(bars, "globally", None)) is not False:
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
    sites = context.get_site_names()
    if DATA_DOCS_SITE not in sites:
        context.add_data_docs_site(
            site_name=DATA_DOCS_SITE,
            site_config={
                "class_name": "SiteBuilder",
                # The index reads back every validation it lists: the latest ones only, so that
                # building it does not grow with the nights the lake has seen (~15 suites a night).
                "site_index_builder": {
                    "class_name": "DefaultSiteIndexBuilder",
                    "validation_results_limit": DATA_DOCS_INDEX_VALIDATIONS,
                },
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(data_docs_dir(config)),
                },
            },
        )
    for other in sites:
        if other != DATA_DOCS_SITE:  # GX's default site would render the same pages a second time
            context.delete_data_docs_site(other)
    return context


@contextmanager
def locked_quality_context(config: LakeConfig) -> Iterator[gx.AbstractDataContext]:
    """:func:`quality_context` held alone while the block validates: two gates at once (two
    nights' tasks, a manual run) would otherwise write the same settings and stores together."""
    import fcntl

    with open(_gx_root(config) / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # waits: another gate's validation takes seconds
        try:
            yield quality_context(config)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def validation_data(df: DataFrame | pd.DataFrame, max_rows: int = PANDAS_MAX_ROWS) -> DataFrame | pd.DataFrame:
    """What GX validates: ``df`` in pandas when it has at most ``max_rows`` rows (one Spark job),
    else the Spark frame computed once (a local checkpoint); a frame already in pandas is kept.

    GX on Spark runs one query per expectation: without the checkpoint each of them would read
    the Delta files and redo the slice's joins again (measured on the bench's last night: 140
    Spark jobs for the gold gate, each re-reading the journey days).
    """
    import pandas as pd

    if isinstance(df, pd.DataFrame):
        return df
    if max_rows <= 0:
        return df.localCheckpoint()
    small = df.limit(max_rows + 1).toPandas()
    return small if len(small) <= max_rows else df.localCheckpoint()


def _batch_definition(source: Any, asset_name: str, batch_name: str) -> Any:
    """The whole-dataframe batch definition ``batch_name`` of ``source``'s asset ``asset_name``
    (both added when missing)."""
    try:
        asset = source.get_asset(asset_name)
    except LookupError:
        asset = source.add_dataframe_asset(name=asset_name)
    try:
        return asset.get_batch_definition(batch_name)
    except KeyError:
        return asset.add_batch_definition_whole_dataframe(batch_name)


# Beside the GX store (``$CXLAKE_HOME/gx``): each stored validation definition's fingerprint.
_FINGERPRINTS_FILE = "cxlake_definition_fingerprints.json"


def _fingerprint(definition: Any, engine: str) -> str:
    """What a validation definition is: its engine and its suite's expectations (ids aside)."""
    import hashlib

    expectations = [e.configuration.to_json_dict() for e in definition.suite.expectations]
    for expectation in expectations:
        expectation.pop("id", None)
    text = json.dumps([engine, definition.suite.name, expectations], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _stored_definition(context: gx.AbstractDataContext, definition: Any, engine: str) -> Any:
    """``definition`` as stored in ``context``: stored again only when it changed since it was.

    GX's ``add_or_update`` compares every expectation with every stored one and rewrites the suite
    and the definition: ~0.2 s a suite, 1.7 s of the demo night's gold gate (a cProfile of its
    warm run), for definitions that only change with the code. A fingerprint of what was stored
    (engine and expectations) is kept beside the store; the same fingerprint reads the stored one.
    """
    root = Path(context.root_directory)
    path = root / _FINGERPRINTS_FILE
    stored = json.loads(path.read_text()) if path.exists() else {}
    fingerprint = _fingerprint(definition, engine)
    if stored.get(definition.name) == fingerprint:
        try:
            return context.validation_definitions.get(definition.name)
        except Exception:  # noqa: BLE001 - the store lost it (or cannot read it): stored again below
            log.info("validation definition %s not in the store: stored again", definition.name)
    saved = context.validation_definitions.add_or_update(definition)
    stored[definition.name] = fingerprint
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(stored, indent=1, sort_keys=True))
    temporary.replace(path)  # whole or not at all: a kill mid-write leaves the previous file
    return saved


def validate_dataframe(
    df: DataFrame | pd.DataFrame,
    suite_name: str,
    expectations: list[Any],
    context: gx.AbstractDataContext | None = None,
    index_columns: tuple[str, ...] | list[str] = (),
    raise_on_critical: bool = True,
    pandas_max_rows: int = PANDAS_MAX_ROWS,
    build_docs: bool = True,
) -> GateResult:
    """Validate ``df`` (Spark, or already pandas) against ``expectations`` as suite ``suite_name``.

    On a context with the :data:`DATA_DOCS_SITE` site (:func:`quality_context`) the validation runs
    as the suite's stored validation definition, whose result is stored and (``build_docs``)
    rendered into the Data Docs; otherwise on an ephemeral context. Failing rows are identified by
    ``index_columns`` in the failure samples.

    Raises:
        DataQualityError: (``raise_on_critical``) naming each failed critical expectation with a
            sample of failing rows.
    """
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    context = context or _ephemeral_context()
    suite = gx.ExpectationSuite(name=suite_name, expectations=expectations)
    stored_definition = DATA_DOCS_SITE in context.get_site_names()
    if not stored_definition:
        suite = context.suites.add_or_update(suite)
    # else the validation definition's add_or_update stores the suite (GX does it there whatever
    # the caller did): storing it here as well compared every expectation with every stored one a
    # second time (~0.2 s a suite, 1-2 s a gate, in a cProfile of the demo night's gold gate).
    # A night's slice is small: validated in pandas it takes well under a second, where GX on
    # Spark runs one Spark job per metric (~5 s a suite on 2 cores, whatever the size). Slices
    # above ``pandas_max_rows`` stay in Spark, so a huge night never lands on the driver.
    import pandas as pd

    data = validation_data(df, pandas_max_rows)
    # Each data source is added once and kept: re-adding one (add_or_update) drops its assets,
    # and a suite's stored definition still refers to the asset of the engine it last ran in, which
    # GX loads before overwriting it ("Could not find asset ... within 'cxlake_pandas'" the first
    # night a suite's slice outgrew pandas).
    kind = "pandas" if isinstance(data, pd.DataFrame) else "spark"
    name = f"cxlake_{kind}"
    try:
        source = context.data_sources.get(name)
    except KeyError:
        source = getattr(context.data_sources, f"add_{kind}")(name=name)
    batch_definition = _batch_definition(source, f"asset_{suite.name}", f"batch_{suite.name}")
    result_format: dict[str, Any] = {"result_format": "SUMMARY"}
    if index_columns:
        result_format["unexpected_index_column_names"] = list(index_columns)
    resources: tuple[Any, ...] = ()
    if stored_definition:
        definition = _stored_definition(
            context, gx.ValidationDefinition(name=f"validate_{suite.name}", data=batch_definition, suite=suite), kind
        )
        suite = definition.suite
        # The definition stores its result; Data Docs are rendered from the store afterwards, once
        # per gate (:func:`run_checks`): rendering costs ~1.3 s a build, whatever its size.
        run_id = RunIdentifier(run_name=f"validate_{suite.name}")
        outcome = definition.run(batch_parameters={"dataframe": data}, result_format=result_format, run_id=run_id)
        suite_id = ExpectationSuiteIdentifier(name=suite.name)
        result_id = ValidationResultIdentifier(
            expectation_suite_identifier=suite_id, run_id=run_id, batch_identifier=outcome.batch_id
        )
        resources = (result_id, suite_id)
    else:
        batch = batch_definition.get_batch(batch_parameters={"dataframe": data})
        outcome = batch.validate(suite, result_format=result_format)
    failures = [_describe(r, index_columns) for r in outcome.results if not r.success]
    result = GateResult(
        suite=suite.name,
        success=outcome.success,
        evaluated=len(outcome.results),
        failures=failures,
        docs_resources=resources,
    )
    for warning in result.warnings:
        log.warning("data quality warning: %s", format_failure(suite.name, warning))
    if build_docs:
        build_data_docs(context, [result])
    if raise_on_critical:
        raise_critical([result])
    return result


def build_data_docs(context: gx.AbstractDataContext, results: list[GateResult]) -> None:
    """Render the stored validation results of ``results`` (and their suites) and the index, once."""
    resources = [resource for r in results for resource in r.docs_resources]
    if resources:
        context.build_data_docs(site_names=[DATA_DOCS_SITE], resource_identifiers=resources, build_index=True)


def raise_critical(results: list[GateResult]) -> None:
    """Raise one :class:`DataQualityError` listing every failed critical expectation of ``results``."""
    lines = [format_failure(r.suite, f) for r in results for f in r.critical_failures]
    if lines:
        suites = sorted({r.suite for r in results if r.critical_failures})
        raise DataQualityError(
            f"suite(s) {', '.join(suites)} failed {len(lines)} critical expectation(s):\n" + "\n".join(lines)
        )


def run_checks(checks: list[Check], context: gx.AbstractDataContext | None = None) -> list[GateResult]:
    """Validate every check (no raising): the caller records all results, then :func:`raise_critical`.

    The slices are computed at the same time (each a small Spark query whose cost is driver
    latency, so they overlap), and each is validated in GX as soon as it is ready, one at a time
    (GX's context is not shared between threads): the validations, Python work on pandas, overlap
    the Spark queries of the slices still computing instead of following the last of them
    (the large bench's gold gate: ~3 s of validations after ~5 s of slices).
    """
    import threading

    from jobs.lake.spark import in_parallel

    one_at_a_time = threading.Lock()

    def validated(check: Check) -> GateResult:
        data = validation_data(check.df)
        with one_at_a_time:
            return validate_dataframe(
                data,
                check.suite,
                check.expectations,
                context,
                check.index_columns,
                raise_on_critical=False,
                build_docs=False,
            )

    by_suite = in_parallel({c.suite: functools.partial(validated, c) for c in checks})
    results = [by_suite[c.suite] for c in checks]
    if context is not None:
        build_data_docs(context, results)
    return results
