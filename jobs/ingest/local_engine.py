"""Bronze ingest on a local lake without Spark: the same classification, written by delta-rs.

On one machine Spark adds more than it gives to this step: turning Arrow batches into Spark rows,
caching them and writing them through Spark's Parquet writer cost ~30 s per million interaction
lines here, against ~6 s for the classification itself (measured, see README "Performance").
So on a local lake the job runs in the driver process:

1. each file is cut into byte-range chunks (:mod:`jobs.ingest.raw_files`), classified by the
   same :class:`jobs.ingest.parse._BatchBuilder` the Spark tasks use, two chunks at a time in
   threads (pyarrow's reader and kernels release the GIL), and written to a staging Arrow file
   as it goes, in chunk order: each chunk counts its own newlines, so its lines are numbered
   from the chunks before it without reading the files once more to count them first; only
   the valid lines' keys of the nights being read stay in memory, for the duplicate check;
2. repeated keys are found on those keys (:func:`duplicate_copies`, the rule of
   :func:`jobs.ingest.parse.build_duplicate_copies`), a night at a time as soon as its chunks
   are classified;
3. the staging file is streamed twice into the bronze and quarantine tables with delta-rs, each
   one overwrite of the nights' partitions (the ``replaceWhere`` the Spark path does).

Memory is a few chunks plus a night's keys, whatever the file size. On other lake roots (``s3a://``)
:mod:`jobs.ingest.bronze` runs the Spark path, whose tasks parse the chunks where they run.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from collections import Counter, deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from jobs.ingest.parse import ARRIVAL, REASON, _BatchBuilder
from jobs.ingest.raw_files import Chunk, plan_chunks, read_chunk_arrow_counted
from jobs.lake.commits import committed, retried_on_conflict
from jobs.lake.config import LakeConfig
from jobs.lake.contracts import Contract
from jobs.lake.small_tables import _path, commit_properties, slice_predicate
from jobs.lake.tables import refuse_orphaned_files

_EPOCH = dt.date(1970, 1, 1)
_BATCH_LINES = 65536
THREADS = 2


@dataclass
class Classified:
    """What the classification pass leaves: per-file line counts and summaries, the later copies
    of valid lines (:func:`duplicate_copies`, one table per arrival night) and the staging file
    of every classified line."""

    staging: Path
    accepted: dict[str, int] = field(default_factory=dict)
    quarantined: dict[str, int] = field(default_factory=dict)
    summaries: dict[str, list[str]] = field(default_factory=dict)
    copies: list[pa.Table] = field(default_factory=list)

    @property
    def duplicates(self) -> pa.Table | None:
        """``(source_file, line_number)`` of every later copy; None when there is none."""
        return pa.concat_tables(self.copies) if self.copies else None


def plan_local_chunks(files: list[str], has_header: bool) -> dict[str, list[Chunk]]:
    """Each file's chunks, in file order; their line offsets are added as they are classified
    (:func:`classify_files`), from the newlines each chunk counts."""
    return {path: plan_chunks(path, has_header=has_header) for path in files}


def _classify_chunk(
    contract: Contract, lateness_days: int, header: list[str] | None, chunk: Chunk, source_file: str, night: str
) -> tuple[list[pa.RecordBatch], dict[str, str], int]:
    """The chunk's classified batches (lines numbered as if no line came before the chunk),
    its file summaries, and its newline count."""
    builder = _BatchBuilder(contract, lateness_days, header)
    first, lines, flags, newlines = read_chunk_arrow_counted(chunk)
    arrival = (dt.date.fromisoformat(night) - _EPOCH).days
    batches = []
    for at in range(0, len(lines), _BATCH_LINES):
        batches += builder.classify(
            source_file, arrival, first + at, lines.slice(at, _BATCH_LINES), flags.slice(at, _BATCH_LINES)
        )
    builder._summary(source_file)  # a file without data lines is still seen
    typer = builder.typer
    return batches, {name: s.to_json(typer.names, typer.tracked) for name, s in builder.summaries.items()}, newlines


def _numbered_from(batch: pa.RecordBatch, lines_before: int) -> pa.RecordBatch:
    """``batch`` with ``lines_before`` added to its line numbers."""
    if not lines_before:
        return batch
    index = batch.schema.get_field_index("line_number")
    moved = pc.add(batch.column(index), pa.scalar(lines_before, pa.int64()))
    return batch.set_column(index, batch.schema.field(index), moved)


def classify_files(
    contract: Contract,
    lateness_days: int,
    header: list[str] | None,
    chunks: list[tuple[Chunk, str, str]],
    work_dir: Path,
) -> Classified:
    """Classify ``chunks`` (chunk, source file name, arrival night; a file's chunks in order,
    ``newlines_before`` unset) into ``work_dir``'s staging file, and find the later copies."""
    staging = work_dir / "classified.arrow"
    result = Classified(staging)
    schema = _BatchBuilder(contract, lateness_days, header).schema
    keys = [ARRIVAL, *contract.keys, "source_file", "line_number"]
    # Arrow IPC, uncompressed: writing it is a copy (Parquet with lz4 took ~2 s per million
    # lines here) and it is read back memory-mapped.
    with (
        pa.OSFile(str(staging), "wb") as sink,
        pa.ipc.new_file(sink, schema) as writer,
        ThreadPoolExecutor(THREADS) as pool,
    ):
        pending: deque = deque()
        newlines_seen: dict[str, int] = {}  # per file: newlines of its chunks already written
        # Copies repeat a key within one arrival night, so each night's keys are checked as soon
        # as its last chunk is in, by this thread while the workers classify the next chunks
        # (it waits for them most of the time): memory holds one night's keys, not the run's.
        chunks_left = Counter(night for _, _, night in chunks)
        night_keys: dict[str, list[pa.Table]] = {}
        items = iter(chunks)
        while True:
            # One chunk more in flight than threads: workers never wait for the writer, and
            # memory stays a few chunks whatever the file size.
            while len(pending) <= THREADS and (item := next(items, None)) is not None:
                pending.append(
                    (item[0].path, item[2], pool.submit(_classify_chunk, contract, lateness_days, header, *item))
                )
            if not pending:
                break
            path, night, done = pending.popleft()
            batches, summaries, newlines = done.result()
            lines_before = newlines_seen.get(path, 0)
            newlines_seen[path] = lines_before + newlines
            for name, text in summaries.items():
                result.summaries.setdefault(name, []).append(text)
                result.accepted.setdefault(name, 0)
                result.quarantined.setdefault(name, 0)
            for chunk_batch in batches:
                if not chunk_batch.num_rows:
                    continue
                batch = _numbered_from(chunk_batch, lines_before)
                writer.write_batch(batch)
                name = batch.column(0)[0].as_py()
                valid = pc.is_null(batch.column(REASON))
                accepted = pc.sum(valid.cast(pa.int64())).as_py() or 0
                result.accepted[name] += accepted
                result.quarantined[name] += batch.num_rows - accepted
                if contract.keys and accepted:
                    night_keys.setdefault(night, []).append(pa.Table.from_batches([batch.select(keys).filter(valid)]))
            chunks_left[night] -= 1
            if not chunks_left[night]:
                copies = duplicate_copies(night_keys.pop(night, []), contract.keys)
                if copies is not None:
                    result.copies.append(copies)
    return result


def duplicate_copies(keys: list[pa.Table], key_names: tuple[str, ...]) -> pa.Table | None:
    """``(source_file, line_number)`` of valid lines that repeat an earlier valid line's key.

    The rule of :func:`jobs.ingest.parse.build_duplicate_copies`: among lines of one arrival
    date with equal keys, the first by (file, line) is kept, the later ones are ``duplicate``.
    None when there are none.
    """
    if not keys or not key_names:
        return None
    table = pa.concat_tables(keys)
    group = [ARRIVAL, *key_names]
    counts = table.group_by(group).aggregate([("line_number", "count")])
    repeated = counts.filter(pc.greater(counts.column("line_number_count"), 1)).select(group)
    if not repeated.num_rows:
        return None
    copies = table.join(repeated, keys=group, join_type="left semi")
    ordered = copies.sort_by([(c, "ascending") for c in [*group, "source_file", "line_number"]])
    # A copy is later when the copy before it (in this order) has the same keys.
    equal = pa.array([True] * (ordered.num_rows - 1), pa.bool_())
    for name in group:
        column = ordered.column(name).combine_chunks()
        equal = pc.and_(equal, pc.fill_null(pc.equal(column.slice(1), column.slice(0, len(column) - 1)), False))
    later = pa.concat_arrays([pa.array([False]), equal])
    return ordered.filter(later).select(["source_file", "line_number"])


def copies_by_file(duplicates: pa.Table | None) -> dict[str, np.ndarray]:
    """The later copies' line numbers per source file (from :func:`duplicate_copies`)."""
    if duplicates is None or not duplicates.num_rows:
        return {}
    grouped = duplicates.group_by("source_file").aggregate([("line_number", "list")])
    return {
        name: np.asarray(lines, dtype=np.int64)
        for name, lines in zip(
            grouped.column("source_file").to_pylist(), grouped.column("line_number_list").to_pylist(), strict=True
        )
    }


def _copy_mask(batch: pa.RecordBatch, copies: dict[str, np.ndarray]) -> np.ndarray | None:
    """Which rows of ``batch`` are later copies (None: none). A staging batch comes from one
    chunk, so from one file: a set lookup on its line numbers, where a join against every copy
    per batch cost ~8 s per pass at the large bench (150 batches, 98 k copies)."""
    files = pc.unique(batch.column("source_file")).to_pylist()
    if not any(name in copies for name in files):
        return None
    lines = batch.column("line_number").to_numpy()
    if len(files) == 1:
        return np.isin(lines, copies[files[0]])
    mask = np.zeros(batch.num_rows, dtype=bool)
    for name in files:
        if name in copies:
            in_file = pc.equal(batch.column("source_file"), name).to_numpy(zero_copy_only=False)
            mask |= in_file & np.isin(lines, copies[name])
    return mask


def _final_batches(
    staging: Path, copies: dict[str, np.ndarray], accepted: bool, target: pa.Schema
) -> Iterator[pa.RecordBatch]:
    """The staging lines, later copies marked ``duplicate`` (:func:`copies_by_file`), that are
    ``accepted`` (or refused), shaped as ``target``."""
    with pa.memory_map(str(staging)) as source:
        reader = pa.ipc.open_file(source)
        batches = [reader.get_batch(i) for i in range(reader.num_record_batches)]
    for batch in batches:
        reason = batch.column(REASON)
        is_copy = _copy_mask(batch, copies)
        if is_copy is not None:
            # A later copy of a valid line becomes ``duplicate``.
            reason = pc.if_else(pc.and_(pa.array(is_copy), pc.is_null(reason)), "duplicate", reason)
        keep = pc.is_null(reason) if accepted else pc.is_valid(reason)
        columns = {
            "_source_file": batch.column("source_file"),
            "_line_number": batch.column("line_number"),
            "reason": reason,
        }
        arrays = [
            (columns[f.name] if f.name in columns else batch.column(f.name)).filter(keep).cast(f.type) for f in target
        ]
        yield pa.RecordBatch.from_arrays(arrays, schema=target)


def write_tables(
    config: LakeConfig,
    classified: Classified,
    copies: dict[str, np.ndarray],
    bronze: Contract,
    quarantine: Contract,
    nights: list[str],
) -> None:
    """Overwrite the nights' partitions of the bronze and quarantine tables (one commit each)."""
    from deltalake import DeltaTable, write_deltalake
    from deltalake.exceptions import TableNotFoundError

    where = slice_predicate({ARRIVAL: [dt.date.fromisoformat(n) for n in nights]})
    for contract, accepted in ((bronze, True), (quarantine, False)):
        path = _path(config, contract.name)

        def write(path: str = path, contract: Contract = contract, accepted: bool = accepted) -> None:
            try:
                table = DeltaTable(path)
            except TableNotFoundError:
                refuse_orphaned_files(path)  # a folder that lost its log is not a new table
                table = None
            # An existing table's own schema (a Spark-made one may differ in nullability).
            target = pa.schema(table.schema().to_arrow()) if table is not None else contract.arrow_schema()
            rows = pa.RecordBatchReader.from_batches(
                target, _final_batches(classified.staging, copies, accepted, target)
            )
            if table is None:
                write_deltalake(
                    path,
                    rows,
                    mode="error",
                    partition_by=list(contract.partition_by) or None,
                    commit_properties=commit_properties(contract.name),
                )
            else:
                write_deltalake(
                    table, rows, mode="overwrite", predicate=where, commit_properties=commit_properties(contract.name)
                )
            committed(path)

        retried_on_conflict(write, contract.name)


def work_dir(config: LakeConfig) -> Path:
    """A private folder for one ingest's staging file (removed by :func:`remove_work_dir`)."""
    root = config.home / "tmp"
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="ingest-", dir=root))


def remove_work_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
