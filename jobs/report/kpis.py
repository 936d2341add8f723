"""The morning report's daily KPI frame: one row per day, one column per KPI of ``schemas/kpis.yaml``.

Every KPI is a column of ``gold.cx_kpi_daily`` (the nightly ``build_gold`` computes them in Spark,
the model reports add the model KPIs), read by DuckDB as delta-rs reads the table
(:mod:`jobs.analytics.sql`). A day without a row, or a KPI without a value (no churn scores before
the first champion), is NaN, never an error.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from jobs.lake.config import LakeConfig
from jobs.lake.contracts import SCHEMAS_DIR

if TYPE_CHECKING:
    import duckdb
    import pandas as pd

KPI_FILE = SCHEMAS_DIR / "kpis.yaml"


@dataclass(frozen=True)
class KpiDefinition:
    """One KPI as ``schemas/kpis.yaml`` defines it."""

    name: str
    label: str
    formula: str
    grain: str
    unit: str
    better: str  # "up", "down", or the target value ("0.8")
    source: tuple[str, ...]


@cache
def kpi_definitions(path: Path = KPI_FILE) -> tuple[KpiDefinition, ...]:
    """The KPIs in file order."""
    raw = yaml.safe_load(path.read_text())["kpis"]
    return tuple(KpiDefinition(**{**entry, "source": tuple(entry["source"])}) for entry in raw)


DAILY_TABLE = "gold.cx_kpi_daily"


def tables_needed() -> list[str]:
    """The table every KPI is read from (the nightly ``build_gold`` and model reports write it)."""
    return [DAILY_TABLE]


def kpi_frame(config: LakeConfig, first: dt.date, last: dt.date) -> pd.DataFrame:
    """:func:`daily_kpis` of the configured lake (opens the tables itself): for notebooks."""
    from jobs.analytics.catalog import existing_tables
    from jobs.analytics.sql import connect

    available = existing_tables(config, tables_needed())
    con, _ = connect(config, available)
    try:
        return daily_kpis(con, set(available), first, last)
    finally:
        con.close()


def daily_kpis(con: duckdb.DuckDBPyConnection, available: set[str], first: dt.date, last: dt.date) -> pd.DataFrame:
    """One row per day from ``first`` to ``last`` (column ``day``), one column per KPI.

    Args:
        con: a connection with the lake's tables as views (:func:`jobs.analytics.sql.connect`).
        available: the tables the lake has; a KPI needing another one is null.
    """
    import pandas as pd

    names = [kpi.name for kpi in kpi_definitions()]
    frame = pd.DataFrame({"day": pd.date_range(first, last, freq="D").date})
    if DAILY_TABLE not in available:
        return frame.assign(**{name: float("nan") for name in names})
    stored = con.execute(
        f"""SELECT kpi_date AS day, {", ".join(names)} FROM {DAILY_TABLE}
            WHERE kpi_date BETWEEN $first AND $last""",
        {"first": first, "last": last},
    ).df()
    stored["day"] = pd.to_datetime(stored["day"]).dt.date
    # Counts become floats: a day without a row is NaN like a KPI without a value.
    return frame.merge(stored.astype({name: "float64" for name in names}), on="day", how="left")[["day", *names]]
