"""Test helper: a Delta table's rows read by delta-rs, for comparing whole lakes without a Spark job."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any


def delta_rows(path: str | Path, skip: Collection[str] = (), version: int | None = None) -> list[dict[str, Any]]:
    """The rows of the Delta table at ``path`` (a ``file:`` URI or a local path), at ``version``
    (default: the latest), each a dict of its columns but ``skip`` (e.g. wall-clock columns)."""
    from deltalake import DeltaTable

    from jobs.analytics.catalog import arrow_dataset

    table = DeltaTable(str(path).removeprefix("file:"), version=version)
    # Through the catalog's reader: a table with deletion vectors (a journey Spark writes) is read too.
    rows = arrow_dataset(table).to_table().to_pylist()
    return [{k: v for k, v in row.items() if k not in skip} for row in rows]
