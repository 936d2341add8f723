"""The e2e night both Airflow tests run: tiny hand-written raw files of one arrival day, the tables it builds.

The landing files (tests/data/e2e) describe one arrival day, 2026-03-03, including orders placed
and scans made on the two days before (late arrivals within the 3-day bound), a resent scan, an
exact duplicate order line and three broken lines. `test_airflow_e2e.py` runs the night with
`airflow dags test`, `test_airflow_scheduler.py` with the real scheduler.
"""

from __future__ import annotations

from pathlib import Path

LANDING = Path(__file__).resolve().parent / "data" / "e2e" / "landing"
RUN_DATE = "2026-03-03"
TABLES = [
    "bronze.orders",
    "bronze.tracking_scans",
    "bronze.interactions",
    "quarantine.orders",
    "quarantine.tracking_scans",
    "quarantine.interactions",
    "silver.orders",
    "silver.shipments",
    "silver.tracking_events",
    "silver.interactions",
    "silver.device_links",
    "silver.customers",
    "gold.cx_kpi_daily",
    "gold.customer_journey",
    "gold.journey_daily",
    "gold.funnel_daily",
    "features.customer_daily",
    "features.order_eta",
    "features.shipment_scan",
]
