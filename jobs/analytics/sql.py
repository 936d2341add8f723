"""``cxlake sql``: SQL over the lake's tables by name, without Spark (DuckDB over delta-rs).

``cxlake sql "SELECT kpi_date, on_time_delivery_rate FROM gold.cx_kpi_daily ORDER BY 1"`` answers
in about a second: each table the query names (``<layer>.<table>``, as in ``schemas/``) is opened
by delta-rs at its latest version (or the version asked for: time travel) and handed to DuckDB
as an Arrow dataset, so DuckDB reads only the columns, partitions and files the query needs.
Only the tables a query names are opened. The versions read are printed under the result
(stderr), so a number can be traced to the table version it came from.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from jobs.analytics.catalog import (
    LAKE_LAYERS,
    TableRead,
    arrow_dataset,
    lake_table_names,
    open_table,
    storage_location,
)
from jobs.lake.config import LakeConfig

if TYPE_CHECKING:
    import duckdb
    import pandas as pd
    import pyarrow as pa

_TABLE_NAME = re.compile(r"\b(" + "|".join(LAKE_LAYERS) + r")\.([a-z_][a-z0-9_]*)\b", re.IGNORECASE)


def tables_named(sql: str) -> list[str]:
    """The lake tables ``sql`` names (``gold.cx_kpi_daily``), in order of first mention.

    A name that is no table (``gold.nothing``, a column ``ops.x`` of an alias ``ops``) is left to
    DuckDB, which says what it cannot find.
    """
    known = set(lake_table_names())
    named: list[str] = []
    for layer, table in _TABLE_NAME.findall(sql):
        name = f"{layer.lower()}.{table.lower()}"
        if name in known and name not in named:
            named.append(name)
    return named


@dataclass(frozen=True)
class QueryResult:
    """A query's rows and the table versions they were computed from."""

    rows: pa.Table
    reads: list[TableRead]


def connect(
    config: LakeConfig,
    tables: list[str],
    versions: Mapping[str, int] | None = None,
    as_of: dt.datetime | None = None,
) -> tuple[duckdb.DuckDBPyConnection, list[TableRead]]:
    """A DuckDB connection where each of ``tables`` is a view ``<layer>.<table>`` over its Delta
    table (at ``versions[table]``, or as of ``as_of``, else latest); and the versions read."""
    import duckdb

    versions = versions or {}
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")  # a timestamp's day is its UTC day, as everywhere in the lake
    reads = []
    for table in tables:
        delta, read = open_table(config, table, version=versions.get(table), as_of=None if table in versions else as_of)
        layer, name = table.split(".", 1)
        scan = f"_delta_{layer}_{name}"
        con.register(scan, arrow_dataset(delta, storage_location(config, table)[1]))
        con.execute(f'CREATE SCHEMA IF NOT EXISTS "{layer}"')
        con.execute(f'CREATE VIEW "{layer}"."{name}" AS SELECT * FROM "{scan}"')
        reads.append(read)
    return con, reads


def run_query(
    config: LakeConfig,
    sql: str,
    versions: Mapping[str, int] | None = None,
    as_of: dt.datetime | None = None,
) -> QueryResult:
    """Run ``sql`` over the tables it names; the rows as Arrow, with the versions read."""
    unknown = sorted(set(versions or {}) - set(tables_named(sql)))
    if unknown:
        raise ValueError(f"--version names table(s) the query does not read: {', '.join(unknown)}")
    con, reads = connect(config, tables_named(sql), versions, as_of)
    try:
        relation = con.sql(sql)  # None for a statement that returns no rows
        return QueryResult(relation.fetch_arrow_table() if relation is not None else _empty(), reads)
    finally:
        con.close()


def query(
    sql: str,
    config: LakeConfig | None = None,
    versions: Mapping[str, int] | None = None,
    as_of: dt.datetime | None = None,
) -> pd.DataFrame:
    """``sql`` over the lake's tables as a pandas DataFrame: for notebooks and scripts.

    ``df = query("SELECT * FROM gold.cx_kpi_daily ORDER BY kpi_date")``; the versions read are in
    ``df.attrs["reads"]``.
    """
    from jobs.lake.config import load_config

    result = run_query(config or load_config(), sql, versions, as_of)
    frame = result.rows.to_pandas()
    frame.attrs["reads"] = {read.name: read.version for read in result.reads}
    return frame


def _empty() -> pa.Table:
    import pyarrow as pa

    return pa.table({})


def format_rows(rows: pa.Table, max_rows: int = 50) -> str:
    """``rows`` as an aligned text table (the first ``max_rows``; the count of the rest after)."""
    shown = rows.slice(0, max_rows).to_pylist()
    names = rows.column_names
    cells = [[_cell(row[name]) for name in names] for row in shown]
    widths = [max([len(name), *(len(line[i]) for line in cells)]) for i, name in enumerate(names)]
    numeric = [_is_numeric(rows.schema.field(name).type) for name in names]

    def line(values: list[str]) -> str:
        return "  ".join(
            v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)
        ).rstrip()

    out = [line(names), line(["-" * w for w in widths]), *(line(c) for c in cells)]
    if rows.num_rows > max_rows:
        out.append(f"... {rows.num_rows - max_rows} more row(s) (--max-rows, or --csv for all)")
    out.append(f"({rows.num_rows} row{'s' if rows.num_rows != 1 else ''})")
    return "\n".join(out)


def _cell(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _is_numeric(arrow_type: pa.DataType) -> bool:
    import pyarrow.types as pat

    return pat.is_integer(arrow_type) or pat.is_floating(arrow_type) or pat.is_decimal(arrow_type)


def write_csv(rows: pa.Table, sink) -> None:
    """``rows`` as CSV with a header to the binary ``sink`` (e.g. ``sys.stdout.buffer``)."""
    import pyarrow.csv as pacsv

    pacsv.write_csv(rows, sink)


def describe_reads(reads: list[TableRead]) -> str:
    """One line per table read: ``read gold.cx_kpi_daily v12 (committed ...)``."""
    return "\n".join(
        f"read {r.name} v{r.version}"
        + (f" (committed {r.committed_at:%Y-%m-%d %H:%M:%S} UTC)" if r.committed_at else "")
        for r in reads
    )
