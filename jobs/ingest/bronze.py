"""Bronze ingestion job: one raw source's files for one arrival date -> bronze + quarantine + audit.

Reconciliation is enforced, not just recorded: ``raw lines = accepted + quarantined`` or the job
fails. Reruns replace exactly the ``_ingest_date`` slice, so a date can run twice or out of order.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from pyspark import StorageLevel

from jobs.ingest import landing, local_engine
from jobs.ingest.parse import (
    CHUNKS_SCHEMA,
    build_bronze_rows,
    build_duplicate_copies,
    build_file_summaries,
    build_quarantine_rows,
    merge_file_stats,
    with_chunks_classified,
    with_duplicate_check,
)
from jobs.ingest.raw_files import (
    Chunk,
    SchemaDriftError,
    count_newlines,
    plan_chunks,
    read_csv_header,
    with_line_offsets,
)
from jobs.lake import lineage
from jobs.lake.config import LakeConfig
from jobs.lake.contracts import Contract, load_contract, source_names
from jobs.lake.small_tables import is_local_lake, merge_small, replace_small
from jobs.lake.tables import replace_dates, replace_slice

if TYPE_CHECKING:
    from pyspark.sql import Row, SparkSession

log = logging.getLogger(__name__)

SOURCES = source_names()  # the raw contracts
_SUFFIX = {"csv": ".csv", "jsonl": ".jsonl"}

# A column whose every value in a file fails its type is a type change upstream, not dirt, once
# there are this many values; below it, a few bad rows are simply quarantined.
DRIFT_MIN_VALUES = 5
_EXAMPLE_CHARS = 40


class MissingSourceError(FileNotFoundError):
    """A source delivered no file for the date: the night cannot be judged complete."""


class FutureNightError(ValueError):
    """An arrival date that has not begun anywhere yet: no file can have arrived on it."""


# A day has begun somewhere on Earth up to 14 hours before it begins in UTC (UTC+14).
_EARLIEST_ZONE = dt.timedelta(hours=14)


def refuse_future_nights(nights: list[str], now: dt.datetime | None = None) -> None:
    """Refuse arrival dates that have not begun in any time zone yet (a typo like 2062 for 2026):
    their tables' partitions would sit after every real night, and the nights that rebuild later
    partitions (a backfill, ``customer_daily``) would redo them every night.

    Args:
        now: the clock (wall time; it only decides whether a date can be ingested).

    Raises:
        FutureNightError: naming the date.
    """
    # The clock decides whether to run, never what a table holds.
    today_somewhere = ((now or dt.datetime.now(dt.UTC)) + _EARLIEST_ZONE).date()
    future = [night for night in nights if dt.date.fromisoformat(night) > today_somewhere]
    if future:
        raise FutureNightError(
            f"arrival date(s) {', '.join(future)} have not begun anywhere yet (latest possible: {today_somewhere}); "
            "check the run date"
        )


class ReconciliationError(RuntimeError):
    """Raw lines do not add up to accepted + quarantined: a row was lost or double-counted."""


@dataclass(frozen=True)
class FileRead:
    """One landing file as it was listed (``ops.ingest_files``) and what its lines became."""

    source_file: str  # path under the landing root
    size_bytes: int
    modified_ns: int
    raw_rows: int
    accepted_rows: int
    quarantined_rows: int


@dataclass(frozen=True)
class IngestResult:
    source: str
    run_date: str
    files: int
    raw_rows: int
    accepted_rows: int
    quarantined_rows: int
    files_read: tuple[FileRead, ...] = ()


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


def check_value_drift(
    file_stats: list[Row] | list[Mapping[str, Any]], contract: Contract, check_required: bool
) -> None:
    """Fail clearly when a file's values show that a column changed type or disappeared.

    Args:
        file_stats: one per file: ``source_file``, ``parsed_rows`` and, per checked column, its
            ``values``, ``unparsable``, ``example_low`` and ``example_high`` (as
            :func:`jobs.ingest.parse.merge_file_stats` gives them; Spark rows are accepted too).
        contract: the raw contract the stats were computed with.
        check_required: also fail when a required column is absent or null in every parsed line
            of a file (JSON lines; a CSV header lacking a column is :func:`check_csv_header`'s).

    Raises:
        SchemaDriftError: naming every drifted file and column, the expected type and examples
            of what was found.
    """
    problems: list[str] = []
    rows = (dict(row) if isinstance(row, Mapping) else row.asDict(recursive=True) for row in file_stats)
    for stats in sorted(rows, key=lambda row: row["source_file"]):
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


def landing_files(config: LakeConfig, source: str, night: str) -> tuple[str, list[str]]:
    """The folder where ``source``'s raw files of arrival date ``night`` land, and the files in it.

    The one place that knows the landing layout and file suffix: ingestion reads these files and
    the DAG's landing sensor waits for them, so both always look at the same path.

    Raises:
        LandingFileError: an entry of the folder is a symbolic link or has a non-UTF-8 name
            (:func:`jobs.ingest.landing.list_landing_files`).
    """
    raw = load_contract(f"raw.{source}")
    folder = config.landing_path(source, night)
    return folder, landing.list_landing_files(folder, _SUFFIX[raw.format or "jsonl"])


def check_landed(config: LakeConfig, folder: str, files: list[str], is_csv: bool) -> None:
    """The whole-file rules a night's files must pass before any line is read, in the order a
    sensor and an ingest need them: complete (else wait), UTF-8 text, then (after the CSV header
    check) not empty without the exporter's marker (:mod:`jobs.ingest.landing`).

    Raises:
        LandingIncompleteError: a file may still be being written.
        LandingFileError: a file is not UTF-8 text.
    """
    landing.check_complete(folder, files, config.landing_settle_seconds)
    landing.check_encoding(files, skip_header=is_csv)


def landing_snapshot(config: LakeConfig, source: str, night: str) -> dict[str, tuple[int, int]]:
    """``source``'s landing files of ``night`` now: ``source_file`` -> (size in bytes, modification
    time in ns), as ``ops.ingest_files`` records them when an ingest lists them."""
    _, files = landing_files(config, source, night)
    return {_relative(path, config.landing_root): _size_and_time(path) for path in files}


def _size_and_time(path: str) -> tuple[int, int]:
    stat = os.stat(path)
    return stat.st_size, stat.st_mtime_ns


@dataclass(frozen=True)
class _Landed:
    """One source's files for the nights being ingested, and the raw contract that judges them."""

    source: str
    nights: list[str]
    night_of: dict[str, str]  # file path -> arrival night
    relative: dict[str, str]  # file path -> its name under the landing root (``source_file``)
    header: list[str] | None  # the CSV header the files share; None for JSON lines
    raw: Contract
    listed: dict[str, tuple[int, int]]  # file path -> (size, modification time in ns) when listed

    @property
    def files(self) -> list[str]:
        return list(self.night_of)

    def contract(self, layer: str) -> Contract:
        """The ``bronze`` or ``quarantine`` contract of the source."""
        return load_contract(f"{layer}.{self.source}")


def ingest_source(spark: SparkSession | None, config: LakeConfig, source: str, run_date: str) -> IngestResult:
    """Ingest the files of ``source`` that arrived on ``run_date`` (``YYYY-MM-DD``).

    Raises:
        MissingSourceError: no file arrived for the date.
        FutureNightError: the date has not begun anywhere yet.
        LandingFileError: a file breaks a whole-file rule (:mod:`jobs.ingest.landing`; its
            subclass ``LandingIncompleteError`` when a file may still be being written).
        SchemaDriftError: a file's header lacks a required column, or a file's values show a
            column that changed type or went missing (see :func:`check_value_drift`).
        ReconciliationError: rows were lost (never expected; guards the invariant).
    """
    return ingest_nights(spark, config, source, [run_date])[0]


def _plan_chunks(spark: SparkSession, files: list[str], has_header: bool) -> dict[str, list[Chunk]]:
    """Each file's chunks with their line offsets; newlines are counted (in Spark tasks) only
    for files of more than one chunk."""
    planned = {path: plan_chunks(path, has_header=has_header) for path in files}
    to_count = [chunk for chunks in planned.values() if len(chunks) > 1 for chunk in chunks]
    if to_count:
        counts = spark.sparkContext.parallelize(to_count, len(to_count)).map(count_newlines).collect()
        newlines = dict(zip(to_count, counts, strict=True))
        planned = {
            path: with_line_offsets(chunks, [newlines[c] for c in chunks]) if len(chunks) > 1 else chunks
            for path, chunks in planned.items()
        }
    return planned


def _csv_header(source: str, nights: list[str], files: list[str], raw: Contract) -> list[str]:
    """The one header all of a CSV source's files share (each checked against the contract)."""
    headers = {path: read_csv_header(path) for path in files}
    for path, header in headers.items():
        check_csv_header(path, header, raw)
    distinct = {tuple(h) for h in headers.values()}
    if len(distinct) > 1:
        raise SchemaDriftError(f"source {source!r} on {nights}: files disagree on the header: {distinct}")
    return list(next(iter(distinct)))


def ingest_nights(
    spark: SparkSession | None,
    config: LakeConfig,
    source: str,
    nights: list[str],
    audit: bool = True,
    engine: str = "auto",
) -> list[IngestResult]:
    """Ingest the files of ``source`` that arrived on each of ``nights`` in one pass (history import).

    Exactly what ingesting the nights one by one gives (each line keeps its own arrival date for
    the lateness and duplicate checks, and the audit has one row per night), at the cost of
    about one night: a few Delta commits instead of a few per night. Same errors as
    :func:`ingest_source`, naming the night.

    Files are read in bounded chunks inside Spark tasks, which also parse and check the lines
    (:func:`jobs.ingest.parse.with_chunks_classified`). Spark then runs two small jobs over the
    cached result (per-file counts and summaries; repeated keys) before the two table writes.

    On a local lake the lines are classified in this process and written by delta-rs, without
    Spark (:mod:`jobs.ingest.local_engine`; ``spark`` may then be None); elsewhere in Spark tasks.

    Args:
        engine: ``"auto"`` (by the lake root), ``"local"`` or ``"spark"`` (tests compare the two).
        audit: record the results in ``ops.ingest_audit``; a caller ingesting several sources
            in one process passes False and records them all in one commit (:func:`record_audit`).
    """
    refuse_future_nights(nights)
    raw = load_contract(f"raw.{source}")
    night_of: dict[str, str] = {}
    folders: dict[str, list[str]] = {}
    listed: dict[str, tuple[int, int]] = {}
    for night in nights:
        folder, files = landing_files(config, source, night)
        if not files:
            raise MissingSourceError(f"source {source!r}: no {raw.format} file arrived for {night} in {folder}")
        # Stated before any check or read: a file that changes from here on differs from what
        # ops.ingest_files records, and the bronze gate says so.
        listed.update({path: _size_and_time(path) for path in files})
        check_landed(config, folder, files, is_csv=raw.format == "csv")
        folders[folder] = files
        night_of.update(dict.fromkeys(files, night))
    files = list(night_of)
    header = _csv_header(source, nights, files, raw) if raw.format == "csv" else None
    for folder, folder_files in folders.items():
        landing.check_not_empty(folder, folder_files, is_csv=header is not None)
    landed = _Landed(
        source=source,
        nights=nights,
        night_of=night_of,
        relative={path: _relative(path, config.landing_root) for path in files},
        header=header,
        raw=raw,
        listed=listed,
    )

    if engine == "auto":
        engine = "local" if is_local_lake(config) else "spark"
    if engine == "local":
        started = dt.datetime.now(dt.UTC)
        results = _ingest_local(config, landed)
        # No Spark job saw this write (delta-rs): the night step's record names the landing
        # folders it read (its commits are noted as every commit is); outside a step, here.
        if lineage.in_step():
            for folder in folders:
                lineage.note_read(folder)
        else:
            lineage.record_write(
                config,
                f"cxlake.ingest_{source}",
                inputs=list(folders),
                outputs=[f"bronze.{source}", f"quarantine.{source}"],
                started=started,
                ended=dt.datetime.now(dt.UTC),
            )
    else:
        results = _ingest_spark(spark, config, landed)

    if audit:
        record_audit(spark, config, results)
    for result in results:
        log.info("ingested %s", result)
    return results


def _ingest_spark(
    spark: SparkSession,
    config: LakeConfig,
    landed: _Landed,
) -> list[IngestResult]:
    """Chunks parsed in Spark tasks (``mapInArrow``), written by Spark: the path for cluster lakes."""
    raw, header, nights = landed.raw, landed.header, landed.nights
    bronze, quarantine = landed.contract("bronze"), landed.contract("quarantine")
    chunk_rows = [
        (
            c.path,
            c.start,
            c.end,
            c.newlines_before,
            c.skip_header,
            landed.relative[path],
            dt.date.fromisoformat(landed.night_of[path]),
        )
        for path, chunks in _plan_chunks(spark, landed.files, header is not None).items()
        for c in chunks
    ]
    # One task per chunk (a list of rows would get only the default parallelism).
    chunks_df = spark.createDataFrame(spark.sparkContext.parallelize(chunk_rows, len(chunk_rows)), CHUNKS_SCHEMA)
    classified = with_chunks_classified(chunks_df, raw, config.lateness_days, header).persist(
        StorageLevel.MEMORY_AND_DISK
    )
    try:
        # The first job reads, parses and caches every line; the second shuffles only the keys.
        per_file = {row["source_file"]: row for row in build_file_summaries(classified).collect()}
        duplicates = build_duplicate_copies(classified, raw.keys).collect() if raw.keys else []
        duplicates_per_file = Counter(row["source_file"] for row in duplicates)
        counts = {name: (row["accepted_rows"], row["quarantined_rows"]) for name, row in per_file.items()}
        summaries = {name: row["summaries"] for name, row in per_file.items()}
        results = _reconcile(landed, counts, summaries, duplicates_per_file)
        final = classified
        if duplicates:
            duplicates_df = spark.createDataFrame(duplicates, "source_file string, line_number bigint")
            final = with_duplicate_check(classified, raw.keys, duplicates_df)
        bronze_rows = build_bronze_rows(final, bronze)
        quarantine_rows = build_quarantine_rows(final, quarantine)
        if len(nights) > 1:
            replace_dates(bronze_rows, config, bronze.name, "_ingest_date", nights, bronze.partition_by)
            replace_dates(quarantine_rows, config, quarantine.name, "_ingest_date", nights, quarantine.partition_by)
        else:
            where = {"_ingest_date": nights[0]}
            replace_slice(bronze_rows, config, bronze.name, where, bronze.partition_by)
            replace_slice(quarantine_rows, config, quarantine.name, where, quarantine.partition_by)
    finally:
        classified.unpersist()

    return results


def _ingest_local(
    config: LakeConfig,
    landed: _Landed,
) -> list[IngestResult]:
    """Chunks parsed in the driver, written by delta-rs: the path for local lakes
    (:mod:`jobs.ingest.local_engine`)."""
    chunks = [
        (chunk, landed.relative[path], landed.night_of[path])
        for path, planned in local_engine.plan_local_chunks(landed.files, landed.header is not None).items()
        for chunk in planned
    ]
    folder = local_engine.work_dir(config)
    try:
        classified = local_engine.classify_files(landed.raw, config.lateness_days, landed.header, chunks, folder)
        copies = local_engine.copies_by_file(classified.duplicates)
        counts = {name: (classified.accepted[name], classified.quarantined[name]) for name in classified.summaries}
        per_file = Counter({name: len(lines) for name, lines in copies.items()})
        results = _reconcile(landed, counts, classified.summaries, per_file)
        local_engine.write_tables(
            config, classified, copies, landed.contract("bronze"), landed.contract("quarantine"), landed.nights
        )
    finally:
        local_engine.remove_work_dir(folder)
    return results


def _reconcile(
    landed: _Landed,
    counts: dict[str, tuple[int, int]],
    summaries: dict[str, list[str]],
    duplicates_per_file: Counter,
) -> list[IngestResult]:
    """Per-file stats from the tasks' summaries, checked against the rows classified, then per night.

    Raises:
        ReconciliationError: a line was lost or doubled between reading and classifying.
        SchemaDriftError: see :func:`check_value_drift`.
    """
    source, raw, is_csv = landed.source, landed.raw, landed.header is not None
    file_stats = []
    for name, (accepted_rows, quarantined_rows) in counts.items():
        stats = merge_file_stats(summaries[name], raw, is_json=not is_csv)
        # Lines the tasks read vs rows classified: a line lost or doubled on the way fails here.
        if stats["raw_lines"] != accepted_rows + quarantined_rows:
            raise ReconciliationError(
                f"{source} {name}: raw {stats['raw_lines']} != accepted {accepted_rows} + quarantined {quarantined_rows}"
            )
        stats["accepted_rows"] = accepted_rows - duplicates_per_file[name]
        stats["quarantined_rows"] = quarantined_rows + duplicates_per_file[name]
        file_stats.append({"source_file": name, **stats})
    results = []
    for night in landed.nights:
        night_files = {landed.relative[p] for p, arrived in landed.night_of.items() if arrived == night}
        stats = [s for s in file_stats if s["source_file"] in night_files]
        accepted = sum(s["accepted_rows"] for s in stats)
        quarantined = sum(s["quarantined_rows"] for s in stats)
        raw_rows = sum(s["raw_lines"] for s in stats)
        if raw_rows != accepted + quarantined or len(stats) != len(night_files):
            raise ReconciliationError(
                f"{source} {night}: raw {raw_rows} != accepted {accepted} + quarantined {quarantined}"
            )
        size_and_time = {landed.relative[path]: landed.listed[path] for path in landed.files}
        files_read = tuple(
            FileRead(
                s["source_file"],
                *size_and_time[s["source_file"]],
                s["raw_lines"],
                s["accepted_rows"],
                s["quarantined_rows"],
            )
            for s in sorted(stats, key=lambda s: s["source_file"])
        )
        results.append(IngestResult(source, night, len(night_files), raw_rows, accepted, quarantined, files_read))
    check_value_drift(file_stats, raw, check_required=not is_csv)
    return results


def record_audit(spark: SparkSession | None, config: LakeConfig, results: list[IngestResult]) -> None:
    """Upsert one ``ops.ingest_audit`` row per (source, night) of ``results``, in one commit, and
    replace those (source, night) slices of ``ops.ingest_files`` with the files read, in another."""
    audit = load_contract("ops.ingest_audit")
    files = load_contract("ops.ingest_files")
    # Wall clock belongs in ops tables only: it says when, never what.
    recorded_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    rows = [
        {
            "source": result.source,
            "run_date": dt.date.fromisoformat(result.run_date),
            "files": result.files,
            "raw_rows": result.raw_rows,
            "accepted_rows": result.accepted_rows,
            "quarantined_rows": result.quarantined_rows,
            "recorded_at": recorded_at,
        }
        for result in results
    ]
    merge_small(config, audit.name, rows, spark=spark)
    file_rows = [
        {
            "source": result.source,
            "run_date": dt.date.fromisoformat(result.run_date),
            **asdict(read),
            "recorded_at": recorded_at,
        }
        for result in results
        for read in result.files_read
    ]
    # A rerun of a night whose folder lost a file must not keep that file's row: replace, not
    # merge. One commit when the results cover every (source, night) pair of their sources and
    # nights (a night's ingest, a history import), else one per source.
    pairs = {(r.source, dt.date.fromisoformat(r.run_date)) for r in results}
    sources, nights = sorted({p[0] for p in pairs}), sorted({p[1] for p in pairs})
    groups = (
        [(sources, nights)]
        if len(pairs) == len(sources) * len(nights)
        else [([s], sorted(n for src, n in pairs if src == s)) for s in sources]
    )
    for group_sources, group_nights in groups:
        replace_small(
            config,
            files.name,
            [row for row in file_rows if row["source"] in group_sources],
            {"source": group_sources, "run_date": group_nights},
            spark=spark,
        )
