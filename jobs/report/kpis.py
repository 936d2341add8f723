"""The morning report's daily KPI frame: one row per day, one column per KPI of ``schemas/kpis.yaml``.

Computed by DuckDB over the lake's tables as delta-rs reads them (:mod:`jobs.analytics.sql`):
the gold tables hold the nightly aggregates, and the few KPIs they do not hold yet are computed
here from silver with the definition ``schemas/kpis.yaml`` gives. A KPI whose tables the lake
does not have yet (no churn scores before the first champion) is null, never an error.
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


def tables_needed() -> list[str]:
    """Every table some KPI reads."""
    return sorted({table for kpi in kpi_definitions() for table in kpi.source})


# One SELECT per group of KPIs that share their tables: (tables it reads, the KPI columns, SQL
# giving ``day`` and those columns, for days in [$first, $last]). Days without rows are filled in by the calendar.
_KPI_QUERIES: tuple[tuple[tuple[str, ...], tuple[str, ...], str], ...] = (
    (
        ("gold.cx_kpi_daily",),
        ("orders_placed", "on_time_delivery_rate", "avg_delivery_days"),
        """SELECT kpi_date AS day, orders_placed, on_time_delivery_rate, avg_delivery_days
           FROM gold.cx_kpi_daily WHERE kpi_date BETWEEN $first AND $last""",
    ),
    (
        ("silver.orders", "silver.shipments"),
        ("p90_delivery_days",),
        """SELECT CAST(s.delivered_at AS DATE) AS day,
                  quantile_cont(epoch(s.delivered_at - o.placed_at) / 86400.0, 0.9) AS p90_delivery_days
           FROM silver.shipments s JOIN silver.orders o USING (order_id)
           WHERE CAST(s.delivered_at AS DATE) BETWEEN $first AND $last GROUP BY 1""",
    ),
    (
        ("gold.eta_accuracy_daily",),
        ("eta_mae_model_days", "eta_mae_promise_days", "p10_p90_coverage"),
        """SELECT accuracy_date AS day, mae_p50_days AS eta_mae_model_days,
                  mae_promise_days AS eta_mae_promise_days, p10_p90_coverage
           FROM gold.eta_accuracy_daily
           WHERE dimension = 'overall' AND accuracy_date BETWEEN $first AND $last""",
    ),
    (
        ("gold.journey_daily", "gold.cx_kpi_daily"),
        ("failed_attempts_per_100_deliveries", "support_contacts_per_100_orders", "active_customers"),
        """SELECT j.day,
                  100.0 * j.failed / nullif(j.deliveries, 0) AS failed_attempts_per_100_deliveries,
                  100.0 * j.contacts / nullif(k.orders_placed, 0) AS support_contacts_per_100_orders,
                  j.active AS active_customers
           FROM (SELECT journey_date AS day, sum(failed_delivery_attempts) AS failed, sum(deliveries) AS deliveries,
                        sum(support_contacts) AS contacts, count(*) FILTER (WHERE sessions > 0) AS active
                 FROM gold.journey_daily WHERE journey_date BETWEEN $first AND $last GROUP BY 1) j
           LEFT JOIN gold.cx_kpi_daily k ON k.kpi_date = j.day""",
    ),
    (
        ("gold.journey_daily", "silver.orders", "silver.shipments"),
        ("tracking_views_per_order_in_transit",),
        # In transit on day d: placed on or before d, not delivered before d (delivered on d or
        # later, or not yet). Orders older than 60 days are not waited for any more.
        """WITH days AS (SELECT CAST(d AS DATE) AS day FROM generate_series($first, $last, INTERVAL 1 DAY) t(d)),
                views AS (SELECT journey_date AS day, sum(tracking_views) AS views FROM gold.journey_daily
                          WHERE journey_date BETWEEN $first AND $last GROUP BY 1),
                transit AS (SELECT days.day, count(*) AS orders
                            FROM days JOIN silver.orders o
                              ON o.order_date <= days.day AND o.order_date > days.day - 60
                            LEFT JOIN silver.shipments s USING (order_id)
                            WHERE s.delivered_at IS NULL OR CAST(s.delivered_at AS DATE) >= days.day
                            GROUP BY 1)
           SELECT days.day, views.views / nullif(transit.orders, 0) AS tracking_views_per_order_in_transit
           FROM days LEFT JOIN views USING (day) LEFT JOIN transit USING (day)""",
    ),
    (
        ("silver.interactions",),
        ("mean_review_rating", "nps_from_ratings"),
        """SELECT event_date AS day, avg(rating) AS mean_review_rating,
                  100.0 * (count(*) FILTER (WHERE rating = 5) - count(*) FILTER (WHERE rating <= 3))
                        / count(*) AS nps_from_ratings
           FROM silver.interactions
           WHERE event = 'review' AND rating IS NOT NULL AND event_date BETWEEN $first AND $last GROUP BY 1""",
    ),
    (
        ("gold.funnel_daily",),
        ("funnel_conversion_rate",),
        """SELECT funnel_date AS day, sum(order_sessions) / nullif(sum(sessions), 0) AS funnel_conversion_rate
           FROM gold.funnel_daily WHERE funnel_date BETWEEN $first AND $last GROUP BY 1""",
    ),
    (
        ("gold.churn_scores",),
        ("predicted_churn_share",),
        """SELECT as_of_date AS day, avg(CASE WHEN risk_band = 'high' THEN 1.0 ELSE 0.0 END) AS predicted_churn_share
           FROM gold.churn_scores WHERE as_of_date BETWEEN $first AND $last GROUP BY 1""",
    ),
)


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

    frame = pd.DataFrame({"day": pd.date_range(first, last, freq="D").date})
    for tables, kpi_columns, sql in _KPI_QUERIES:
        if not set(tables) <= available:
            part = pd.DataFrame({"day": frame["day"], **{c: float("nan") for c in kpi_columns}})
        else:
            part = con.execute(sql, {"first": first, "last": last}).df()
            part["day"] = pd.to_datetime(part["day"]).dt.date
        frame = frame.merge(part, on="day", how="left")
    return frame[["day", *[kpi.name for kpi in kpi_definitions()]]]
