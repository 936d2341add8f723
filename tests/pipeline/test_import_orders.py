"""``cxlake import-orders`` on a shop's own export: every line lands (accepted or quarantined with
its reason), the on-time rate counts only the orders that have a promise, ops records the import,
and a second import of the same file changes no row."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from deltalake import DeltaTable

from jobs.ingest.order_export import parse_column_map
from jobs.pipeline.imports import ORDERS_IMPORT, _what_cannot_be_computed, import_orders

# Semicolons, German headers, day-first dates; times without a zone are UTC.
# r1 A1: promised 06.01, delivered 05.01 -> on time.    r2 B2: promised 04.01, delivered 05.01 -> late.
# r3 C3: amount "abc" -> bad_type:amount.                r4 D4: 31 February -> bad_type:placed_at.
# r5 A1 (repeat): no promise, delivered 05.01 -> a delivery outside the on-time rate's base.
# r6 E5: no promise, not delivered.
EXPORT = """\
Bestellung;Kunde;Datum;Summe;Versprochen;Zugestellt
r1;A1;03.01.2026 10:00;19.90;06.01.2026;05.01.2026 14:30
r2;B2;03.01.2026 11:15;5.00;04.01.2026;05.01.2026 09:00
r3;C3;03.01.2026 12:00;abc;06.01.2026;
r4;D4;31.02.2026 12:00;1.00;;
r5;A1;04.01.2026 08:00;7.50;;05.01.2026 10:00
r6;E5;05.01.2026 09:00;3.00;;
"""
MAP = (
    "order_id=Bestellung,customer_id=Kunde,placed_at=Datum,amount=Summe,promised_at=Versprochen,delivered_at=Zugestellt"
)


def _table(config, name: str) -> pd.DataFrame:
    layer, table = name.split(".")
    return DeltaTable(str(Path(config.lake_root) / layer / table)).to_pandas()


@pytest.fixture(scope="module")
def imported(config, tmp_path_factory):
    from dataclasses import replace

    root = tmp_path_factory.mktemp("orders_export")
    lake_config = replace(config, lake_root=str(root / "lake"), landing_root=str(root / "landing"))
    path = root / "bestellungen.csv"
    path.write_text(EXPORT)
    lines: list[str] = []
    report = import_orders(path, parse_column_map(MAP), "%d.%m.%Y %H:%M", ";", lake_config, lines.append)
    return lake_config, path, report, lines


def test_every_line_lands_accepted_or_quarantined_with_its_reason(imported) -> None:
    config, _, report, lines = imported
    assert (report["first"], report["last"], report["nights"]) == ("2026-01-03", "2026-01-05", 3)
    assert report["skipped"] == {}  # promises and deliveries are mapped
    assert any(line.startswith("  silver: ") for line in lines)  # progress, stage by stage
    assert sorted(_table(config, "silver.orders")["order_id"]) == ["r1", "r2", "r5", "r6"]
    quarantined = _table(config, "quarantine.orders").set_index("reason")["line_number"].to_dict()
    # r4's unreadable placement landed on the first night's file, after its three readable orders.
    assert set(quarantined) == {"bad_type:amount", "bad_type:placed_at"}
    audit = (
        _table(config, "ops.ingest_audit").groupby("source")[["raw_rows", "accepted_rows", "quarantined_rows"]].sum()
    )
    assert audit.loc["orders"].tolist() == [6, 4, 2]
    assert audit.loc["tracking_scans"].tolist() == [3, 3, 0]  # r1, r2, r5 delivered
    assert audit.loc["interactions"].tolist() == [0, 0, 0]
    nights = _table(config, "ops.night_runs")
    assert set(nights["completed_by"]) == {ORDERS_IMPORT} and len(nights) == 3


def test_the_on_time_rate_counts_only_orders_with_a_promise(imported) -> None:
    config, *_ = imported
    kpis = _table(config, "gold.cx_kpi_daily").set_index("kpi_date")
    assert kpis["orders_placed"].sum() == 4
    day = kpis.loc[pd.Timestamp("2026-01-05").date()]
    # Three deliveries on 01-05; r5 has no promise: r1 on time, r2 late, rate 1 / 2.
    assert (day["orders_delivered"], day["on_time_deliveries"], day["late_deliveries"]) == (3, 1, 1)
    assert day["on_time_delivery_rate"] == 0.5
    orders = _table(config, "silver.orders").set_index("order_id")
    assert orders.loc["r5", "promised_delivery_date"] is None and pd.isna(orders.loc["r5", "promised_days"])
    assert pd.isna(orders.loc["r1", "items"]) and orders.loc["r1", "carrier"] == "unknown"


def test_importing_the_same_file_again_changes_no_row(imported) -> None:
    config, path, report, _ = imported
    tables = ["silver.orders", "silver.tracking_events", "gold.cx_kpi_daily", "features.order_eta", "quarantine.orders"]

    def content() -> dict[str, list]:
        return {
            name: sorted(
                map(repr, _table(config, name).drop(columns=["recorded_at"], errors="ignore").to_dict("records"))
            )
            for name in tables
        }

    before = content()
    again = import_orders(path, parse_column_map(MAP), "%d.%m.%Y %H:%M", ";", config, lambda line: None)
    assert again == report
    assert content() == before


def test_what_an_order_only_export_cannot_give_is_said_not_raised() -> None:
    order_only = parse_column_map("customer_id=c,placed_at=p,amount=a")
    skipped = _what_cannot_be_computed(order_only, {"tracking_scans": 0})
    assert set(skipped) == {"eta", "promise"}
    assert "no ETA model" in skipped["eta"] and "on-time rates" in skipped["promise"]
