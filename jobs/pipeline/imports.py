"""Bring history a team already has into the lake: an order export becomes landing files, then
one history import (:func:`jobs.pipeline.nightly.import_history`) lands them through the same
contracts, quarantine, audit and layers as the nightly ingest.

Each import writes the landing zone the nightly DAG reads (one folder per source and event date)
and records the imported nights in ``ops.night_runs`` as completed by the import
(``completed_by``), so the nights after it run as usual. Idempotent: the same export writes the
same bytes, and the import merges on the contracts' keys, so importing it again changes no row.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from jobs.lake.config import LakeConfig, load_config

OLIST_IMPORT = "import-olist"


def _print(message: str) -> None:
    print(message, flush=True)


def _timed(progress: Callable[[str], None]) -> Callable[[str], Any]:
    """A stage wrapper printing each step's name as it starts and its seconds as it ends."""

    @contextmanager
    def stage(name: str) -> Iterator[None]:
        progress(f"  {name} ...")
        started = time.perf_counter()
        yield
        progress(f"  {name}: {time.perf_counter() - started:.1f} s")

    return stage


def _local_landing(config: LakeConfig) -> Path:
    if config.landing_root.startswith(("s3a://", "s3://")):
        raise ValueError(
            f"an import writes its landing files on this machine; CXLAKE_LANDING_ROOT is {config.landing_root}: "
            "import into a local landing root, or copy the files there"
        )
    return Path(config.landing_root)


def _land_and_import(
    rows: Any, config: LakeConfig, progress: Callable[[str], None], completed_by: str, what: str, started: float
) -> dict[str, Any]:
    """Write the mapped rows as landing files and import every night they span (both imports' tail).

    Returns ``first`` and ``last`` night and :func:`jobs.pipeline.nightly.import_history`'s report.
    """
    from jobs.ingest.olist import write_landing
    from jobs.pipeline.nightly import import_history

    landing = _local_landing(config)
    dates = write_landing(rows, landing)
    if not dates:
        raise ValueError(f"{what} holds no row to import")
    progress(f"landing files for {len(dates)} nights ({dates[0]}..{dates[-1]}) under {landing}")
    report = import_history(dates[0], dates[-1], config, _timed(progress), completed_by=completed_by)
    progress(f"imported {len(dates)} nights in {time.perf_counter() - started:.0f} s")
    return {"first": dates[0], "last": dates[-1], **report}


def import_olist(
    folder: Path, config: LakeConfig | None = None, progress: Callable[[str], None] = _print
) -> dict[str, Any]:
    """Import an Olist export (:mod:`jobs.ingest.olist`) into the lake.

    Args:
        folder: a folder holding the Olist CSVs (orders required; customers, items, reviews,
            sellers used when there).
        progress: where each step's progress line goes.

    Returns:
        ``first`` and ``last`` night, ``nights``, ``raw_lines`` per source (as landed), and
        ``mapping``: what the mapping read, wrote and could not carry over (see
        :func:`jobs.ingest.olist.map_olist`).

    Raises:
        jobs.ingest.olist.OlistExportError: a file is not the export it should be.
        ValueError: the export holds no row, or the landing root is not local.
    """
    from jobs.ingest.olist import map_olist, read_olist

    config = config or load_config()
    _local_landing(config)  # refused before the export is read
    started = time.perf_counter()
    progress(f"reading the Olist export in {folder}")
    mapping = map_olist(read_olist(folder))
    progress("mapped: " + ", ".join(f"{source} {table.num_rows:,}" for source, table in mapping.tables.items()))
    report = _land_and_import(mapping.tables, config, progress, OLIST_IMPORT, f"{folder}: the Olist export", started)
    return {**report, "mapping": mapping.report}


ORDERS_IMPORT = "import-orders"


def import_orders(
    path: Path,
    column_map: dict[str, str],
    date_format: str | None = None,
    delimiter: str = ",",
    config: LakeConfig | None = None,
    progress: Callable[[str], None] = _print,
) -> dict[str, Any]:
    """Import an order export (:mod:`jobs.ingest.order_export`) into the lake.

    Args:
        path: the export (CSV or other delimited text with a header, or Parquet).
        column_map: lake name -> export column (:func:`jobs.ingest.order_export.parse_column_map`).
        date_format: ``strftime`` format of the export's times; None for ISO 8601.
        delimiter: see :func:`jobs.ingest.order_export.read_export`.
        progress: where each step's progress line goes.

    Returns:
        ``first`` and ``last`` night, ``nights``, ``raw_lines`` per source (as landed), ``mapping``
        (:func:`jobs.ingest.order_export.map_export`'s report) and ``skipped``: what this history
        cannot give, each with its reason.

    Raises:
        jobs.ingest.order_export.OrderExportError: the file or its map cannot be read as asked.
        ValueError: the export holds no row, or the landing root is not local.
    """
    from jobs.ingest.order_export import map_export, read_export

    config = config or load_config()
    _local_landing(config)  # refused before the export is read
    started = time.perf_counter()
    progress(f"reading {path} ({', '.join(f'{k}={v}' for k, v in column_map.items())})")
    mapping = map_export(read_export(path, list(column_map.values()), delimiter), column_map, date_format)
    progress("mapped: " + ", ".join(f"{key} {value:,}" for key, value in mapping.report.items()))
    skipped = _what_cannot_be_computed(column_map, mapping.report)
    for reason in skipped.values():
        progress(f"note: {reason}")
    report = _land_and_import(mapping.rows, config, progress, ORDERS_IMPORT, f"{path}: the export", started)
    return {**report, "mapping": mapping.report, "skipped": skipped}


def _what_cannot_be_computed(column_map: dict[str, str], report: dict[str, int]) -> dict[str, str]:
    """What the lake cannot compute from this export, with why: said once, not an error."""
    skipped = {}
    if "delivered_at" not in column_map or report["tracking_scans"] == 0:
        skipped["eta"] = (
            "no delivered_at in the export: no delivery KPIs, and no ETA model (the nightly training "
            "skips it, eta-backtest has nothing to learn from)"
        )
    if "promised_at" not in column_map:
        skipped["promise"] = "no promised_at in the export: on-time rates and the promise's error stay empty"
    return skipped
