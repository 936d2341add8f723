"""The lake's tables by name, read without Spark: delta-rs (``deltalake``) into Arrow.

Analysts and the morning report name tables as the contracts do (``gold.cx_kpi_daily``); this
module resolves a name to its Delta location under the configured lake root, at its latest
version or at an older one (time travel), and says which version it read, so that every figure
shown can name the table version it came from.

On an ``s3a://`` lake the same tables are read through delta-rs' S3 client: the endpoint and keys
come from the Spark settings the lake already has (``spark.hadoop.fs.s3a.*`` in
``CXLAKE_SPARK_CONF``), or from the usual ``AWS_*`` environment variables.
"""

from __future__ import annotations

import datetime as dt
import functools
import operator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from jobs.lake.config import LakeConfig
from jobs.lake.contracts import all_contract_names

if TYPE_CHECKING:
    import pyarrow.dataset as pads
    from deltalake import DeltaTable

# Layers that hold Delta tables (``raw`` contracts describe landing files, not tables).
LAKE_LAYERS = ("bronze", "quarantine", "silver", "gold", "features", "ops")

# Spark's S3A settings -> delta-rs (object_store) storage options of the same meaning.
_S3A_TO_OBJECT_STORE = {
    "spark.hadoop.fs.s3a.endpoint": "AWS_ENDPOINT_URL",
    "spark.hadoop.fs.s3a.access.key": "AWS_ACCESS_KEY_ID",
    "spark.hadoop.fs.s3a.secret.key": "AWS_SECRET_ACCESS_KEY",
    "spark.hadoop.fs.s3a.endpoint.region": "AWS_REGION",
}


class UnknownTableError(LookupError):
    """A table name that no contract defines, or whose table was never written."""


@dataclass(frozen=True)
class TableRead:
    """A table as read: its name, location and the Delta version (and commit time) read."""

    name: str
    location: str
    version: int
    committed_at: dt.datetime | None


def lake_table_names() -> list[str]:
    """Every table a contract defines in a lake layer (``gold.cx_kpi_daily``, ...), sorted."""
    return sorted(name for name in all_contract_names() if name.split(".", 1)[0] in LAKE_LAYERS)


def storage_location(config: LakeConfig, table: str) -> tuple[str, dict[str, str]]:
    """Where delta-rs finds ``table``: its URI and the storage options it needs (none locally)."""
    path = config.table_path(table)
    if not path.startswith("s3a://"):
        return path.removeprefix("file:"), {}
    options = {
        target: config.extra_spark_conf[source]
        for source, target in _S3A_TO_OBJECT_STORE.items()
        if config.extra_spark_conf.get(source)
    }
    endpoint = options.get("AWS_ENDPOINT_URL", "")
    if endpoint.startswith("http://"):
        options["AWS_ALLOW_HTTP"] = "true"
    if config.extra_spark_conf.get("spark.hadoop.fs.s3a.path.style.access") == "true":
        options["AWS_VIRTUAL_HOSTED_STYLE_REQUEST"] = "false"
    # Single-writer lakes: delta-rs only reads here, so no S3 locking provider is needed.
    options.setdefault("AWS_S3_ALLOW_UNSAFE_RENAME", "true")
    return "s3://" + path.removeprefix("s3a://"), options


def open_table(
    config: LakeConfig, table: str, version: int | None = None, as_of: dt.datetime | None = None
) -> tuple[DeltaTable, TableRead]:
    """``table`` at its latest version, at ``version``, or as it stood at ``as_of`` (time travel),
    and which version that is, with its commit time.

    Raises:
        UnknownTableError: no contract names ``table``, the lake has no such table yet, or it has
            no such version (or did not exist yet at ``as_of``).
    """
    from deltalake import DeltaTable
    from deltalake.exceptions import DeltaError

    if table not in lake_table_names():
        raise UnknownTableError(f"no table {table!r}: the lake's tables are {', '.join(lake_table_names())}")
    location, options = storage_location(config, table)
    if not DeltaTable.is_deltatable(location, storage_options=options or None):
        raise UnknownTableError(f"{table} has not been written yet (no Delta table at {location})")
    delta = DeltaTable(location, storage_options=options or None)
    latest = delta.version()
    # Commit times from the latest snapshot's history: a snapshot loaded at an older version
    # reports its neighbour's time (delta-rs 1.6).
    committed = {h["version"]: h.get("timestamp") for h in delta.history()}
    wanted = f"version {version}" if version is not None else f"as of {as_of}"
    if as_of is not None and version is None:
        first = min(committed)
        if committed[first] is not None and committed[first] > as_of.timestamp() * 1000:
            raise UnknownTableError(
                f"{table} did not exist yet {wanted} (first commit {_utc(committed[first]):%Y-%m-%d %H:%M:%S} UTC)"
            )
    try:
        if version is not None or as_of is not None:
            delta.load_as_version(version if version is not None else as_of)
    except DeltaError as error:
        raise UnknownTableError(f"{table} has no {wanted} (latest version {latest}): {error}") from error
    stamp = committed.get(delta.version())
    return delta, TableRead(table, delta.table_uri, delta.version(), _utc(stamp) if stamp is not None else None)


def existing_tables(config: LakeConfig, names: list[str] | tuple[str, ...]) -> list[str]:
    """Those of ``names`` the lake has written (the others are skipped by their readers)."""
    from deltalake import DeltaTable

    return [name for name in names if DeltaTable.is_deltatable(*_location_args(config, name))]


def _location_args(config: LakeConfig, table: str) -> tuple[str, dict[str, str] | None]:
    location, options = storage_location(config, table)
    return location, options or None


def _utc(epoch_ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch_ms / 1000, tz=dt.UTC)


def arrow_dataset(delta: DeltaTable, storage_options: dict[str, str] | None = None) -> pads.Dataset:
    """``delta`` (opened with ``storage_options``: :func:`storage_location`) as a pyarrow dataset
    (lazy: files are read when scanned, partitions pruned).

    A table with deletion vectors (a MERGE that marks the rows it replaces instead of copying
    the rest of their files) is read too, which delta-rs' own dataset refuses: its files without
    one stay lazy; the few that have one are read now and their deleted rows dropped."""
    from jobs.lake.local_merge import has_deletion_vectors

    if not has_deletion_vectors(delta):
        return delta.to_pyarrow_dataset()
    return _dataset_with_deletion_vectors(delta, storage_options)


def _dataset_with_deletion_vectors(delta: DeltaTable, storage_options: dict[str, str] | None) -> pads.Dataset:
    from urllib.parse import unquote

    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.fs as pa_fs
    import pyarrow.parquet as pq
    from deltalake.fs import DeltaStorageHandler

    schema = pa.schema(delta.schema().to_arrow())
    filesystem = pa_fs.PyFileSystem(DeltaStorageHandler(delta.table_uri, storage_options or None))
    root = delta.table_uri.rstrip("/") + "/"
    # Each file's keep mask (True: the row stands), by its path relative to the table.
    kept = {
        unquote(row["filepath"].removeprefix(root)): row["selection_vector"]
        for row in pa.table(delta.deletion_vectors().read_all()).to_pylist()
    }
    partition_columns = delta.metadata().partition_columns
    file_format = ds.ParquetFileFormat()
    lazy, read = [], []
    for add in pa.table(delta.get_add_actions(flatten=True)).to_pylist():
        path = unquote(add["path"])
        values = {c: add[f"partition.{c}"] for c in partition_columns}
        if path not in kept:
            condition = [
                ds.field(c).is_null() if v is None else ds.field(c) == pa.scalar(v, schema.field(c).type)
                for c, v in values.items()
            ]
            expression = functools.reduce(operator.and_, condition, ds.scalar(True))
            lazy.append(file_format.make_fragment(path, filesystem=filesystem, partition_expression=expression))
            continue
        table = pq.read_table(path, filesystem=filesystem, partitioning=None)  # columns from the log, not the path
        mask = kept[path]
        # A mask may stop before the file's last rows: those stand.
        table = table.filter(pa.array(mask + [True] * (table.num_rows - len(mask))))
        for column, value in values.items():
            if column in table.column_names:  # Spark's UPDATE also writes partition values to the file
                continue
            table = table.append_column(column, pa.array([value] * table.num_rows, schema.field(column).type))
        read.append(table.select(schema.names).cast(schema))
    files = ds.FileSystemDataset(lazy, schema, file_format, filesystem)
    return ds.dataset([files, ds.InMemoryDataset(read, schema=schema)]) if read else files
