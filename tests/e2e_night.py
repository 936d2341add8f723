"""The e2e night the real scheduler runs: tiny hand-written raw files of one arrival day, the tables it builds.

The landing files (tests/data/e2e) describe one arrival day, 2026-03-03, including orders placed
and scans made on the two days before (late arrivals within the 3-day bound), a resent scan, an
exact duplicate order line and three broken lines. `test_airflow_scheduler.py` runs the night with
the real scheduler and asserts its gold values exactly.
"""

from __future__ import annotations

from pathlib import Path

from jobs.lake.contracts import source_names

LANDING = Path(__file__).resolve().parent / "data" / "e2e" / "landing"
RUN_DATE = "2026-03-03"
# The tables one night builds (bookkeeping in ops.* and the model outputs aside); the simulated
# nights compare these too.
NIGHTLY_TABLES = sorted(
    {
        *(f"{layer}.{source}" for layer in ("bronze", "quarantine") for source in source_names()),
        *(
            f"silver.{t}"
            for t in (
                "orders",
                "shipments",
                "tracking_events",
                "delivery_states",
                "interactions",
                "session_starts",
                "device_links",
                "customers",
            )
        ),
        *(
            f"gold.{t}"
            for t in (
                "cx_kpi_daily",
                "cx_kpi_breakdown_daily",
                "customer_journey",
                "journey_daily",
                "funnel_daily",
                "journey_tracking_views",
            )
        ),
        *(f"features.{t}" for t in ("customer_daily", "order_eta", "shipment_scan")),
    }
)
TABLES = NIGHTLY_TABLES
