"""Bronze ingestion job: one raw source's files for one arrival date -> bronze + quarantine + audit.

Reconciliation is enforced, not just recorded: ``raw lines = accepted + quarantined`` or the job
fails. Reruns replace exactly the ``_ingest_date`` slice, so a date can run twice or out of order.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pyspark import StorageLevel

from jobs.config import LakeConfig
from jobs.contracts import Contract, load_contract
from jobs.ingest.parse import build_bronze_rows, build_file_stats, build_quarantine_rows, classify_lines
from jobs.ingest.raw_files import SchemaDriftError, list_source_files, read_raw_batch
from jobs.tables import merge_rows, replace_slice

if TYPE_CHECKING:
    from pyspark.sql import Row, SparkSession

log = logging.getLogger(__name__)

SOURCES = ("orders", "tracking_scans", "interactions")
_SUFFIX = {"csv": ".csv", "jsonl": ".jsonl"}

# A column whose every value in a file fails its type is a type change upstream, not dirt, once
# there are this many values; below it, a few bad rows are simply quarantined.
DRIFT_MIN_VALUES = 5
_EXAMPLE_CHARS = 40


class MissingSourceError(FileNotFoundError):
    """A source delivered no file for the date: the night cannot be judged complete."""


class ReconciliationError(RuntimeError):
    """Raw lines do not add up to accepted + quarantined: a row was lost or double-counted."""


@dataclass(frozen=True)
class IngestResult:
    source: str
    run_date: str
    files: int
    raw_rows: int
    accepted_rows: int
    quarantined_rows: int


def check_csv_header(path: str, header: list[str], contract: Contract) -> None:
    """Fail clearly when a CSV file lacks a required contract column (extra columns are fine)."""
    missing = [c for c in contract.columns if not c.nullable and c.name not in header]
    if missing:
        names = ", ".join(f"{c.name} ({c.type})" for c in missing)
        raise SchemaDriftError(f"{path}: required column(s) missing from the header: {names}; found {header}")
    if len(set(header)) != len(header):
        raise SchemaDriftError(f"{path}: repeated column names in the header {header}")


def _example(text: str) -> str:
    return repr(text if len(text) <= _EXAMPLE_CHARS else text[:_EXAMPLE_CHARS] + "...")


def check_value_drift(file_stats: list[Row], contract: Contract, check_required: bool) -> None:
    """Fail clearly when a file's values show that a column changed type or disappeared.

    Args:
        file_stats: the rows of :func:`jobs.ingest.parse.build_file_stats` (one per file).
        contract: the raw contract the stats were computed with.
        check_required: also fail when a required column is absent or null in every parsed line
            of a file (JSON lines; a CSV header lacking a column is :func:`check_csv_header`'s).

    Raises:
        SchemaDriftError: naming every drifted file and column, the expected type and examples
            of what was found.
    """
    problems: list[str] = []
    for stats in sorted((row.asDict(recursive=True) for row in file_stats), key=lambda row: row["source_file"]):
        path = stats["source_file"]
        for col in contract.columns:
            found: dict[str, Any] | None = stats.get(col.name)
            if found is None:  # a column that can neither be missing nor unparsable
                continue
            if check_required and not col.nullable and stats["parsed_rows"] > 0 and found["values"] == 0:
                problems.append(f"{path}: required column {col.name} ({col.type}) is absent from every line")
            elif found["values"] >= DRIFT_MIN_VALUES and found["unparsable"] == found["values"]:
                examples = ", ".join(_example(v) for v in dict.fromkeys([found["example_low"], found["example_high"]]))
                problems.append(
                    f"{path}: column {col.name} expected {col.type}, found values like {examples} "
                    f"({found['unparsable']} of {found['values']} unparsable)"
                )
    if problems:
        raise SchemaDriftError("\n".join(problems))


def _relative(path: str, root: str) -> str:
    return os.path.relpath(path, root) if not root.startswith(("s3a://", "s3://")) else path


def ingest_source(spark: SparkSession, config: LakeConfig, source: str, run_date: str) -> IngestResult:
    """Ingest the files of ``source`` that arrived on ``run_date`` (``YYYY-MM-DD``).

    Raises:
        MissingSourceError: no file arrived for the date.
        SchemaDriftError: a file's header lacks a required column, or a file's values show a
            column that changed type or went missing (see :func:`check_value_drift`).
        ReconciliationError: rows were lost (never expected; guards the invariant).
    """
    raw = load_contract(f"raw.{source}")
    bronze = load_contract(f"bronze.{source}")
    quarantine = load_contract(f"quarantine.{source}")
    folder = config.landing_path(source, run_date)
    files = list_source_files(folder, _SUFFIX[raw.format or "jsonl"])
    if not files:
        raise MissingSourceError(f"source {source!r}: no {raw.format} file arrived for {run_date} in {folder}")

    batch = read_raw_batch(files, has_header=raw.format == "csv")
    relative = {path: _relative(path, config.landing_root) for path in files}
    lines = batch.lines.set_column(
        0, "source_file", [[relative[p] for p in batch.lines.column("source_file").to_pylist()]]
    )
    header = None
    if raw.format == "csv":
        distinct_headers = {tuple(h) for h in batch.csv_headers.values()}
        for path, file_header in batch.csv_headers.items():
            check_csv_header(path, file_header, raw)
        if len(distinct_headers) > 1:
            raise SchemaDriftError(f"source {source!r} on {run_date}: files disagree on the header: {distinct_headers}")
        header = list(next(iter(distinct_headers)))

    lines_df = spark.createDataFrame(lines)
    classified = classify_lines(lines_df, raw, run_date, config.lateness_days, header).persist(
        StorageLevel.MEMORY_AND_DISK
    )
    try:
        # One aggregation gives both the reconciliation counts and the drift evidence.
        file_stats = build_file_stats(classified, raw).collect()
        accepted_rows = sum(row["accepted_rows"] for row in file_stats)
        quarantined_rows = sum(row["quarantined_rows"] for row in file_stats)
        raw_rows = lines.num_rows
        if raw_rows != accepted_rows + quarantined_rows:
            raise ReconciliationError(
                f"{source} {run_date}: raw {raw_rows} != accepted {accepted_rows} + quarantined {quarantined_rows}"
            )
        check_value_drift(file_stats, raw, check_required=raw.format != "csv")
        where = {"_ingest_date": run_date}
        replace_slice(build_bronze_rows(classified, bronze, run_date), config, bronze.name, where, bronze.partition_by)
        quarantine_df = build_quarantine_rows(classified, quarantine, run_date)
        replace_slice(quarantine_df, config, quarantine.name, where, quarantine.partition_by)
    finally:
        classified.unpersist()

    result = IngestResult(source, run_date, len(files), raw_rows, accepted_rows, quarantined_rows)
    _record_audit(spark, config, result)
    log.info("ingested %s", result)
    return result


def _record_audit(spark: SparkSession, config: LakeConfig, result: IngestResult) -> None:
    audit = load_contract("ops.ingest_audit")
    row = {
        "source": result.source,
        "run_date": dt.date.fromisoformat(result.run_date),
        "files": result.files,
        "raw_rows": result.raw_rows,
        "accepted_rows": result.accepted_rows,
        "quarantined_rows": result.quarantined_rows,
        # Wall clock belongs in ops tables only: it says when, never what.
        "recorded_at": dt.datetime.now(dt.UTC).replace(tzinfo=None),
    }
    df = spark.createDataFrame([row], audit.spark_schema())
    merge_rows(spark, df, config, audit.name, audit.keys)
