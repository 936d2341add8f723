"""``cxlake import-olist`` on three weeks of the real Olist sample: every line lands (accepted or
quarantined with its reason), the KPIs equal what a by-hand count of the CSVs gives, and a second
import of the same files changes no row.

Data: the Brazilian E-Commerce Public Dataset by Olist (CC BY-NC-SA 4.0), the sample in
``../shared/data/olist/``.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest
from deltalake import DeltaTable

from jobs.ingest.olist import FILES
from jobs.pipeline.imports import OLIST_IMPORT, import_olist

REAL_SAMPLE = Path(__file__).resolve().parents[3] / "shared" / "data" / "olist"
# Orders placed in these three weeks, with their items, reviews, customers and sellers.
FIRST, LAST = "2017-08-01", "2017-08-21"

pytestmark = pytest.mark.skipif(not REAL_SAMPLE.is_dir(), reason="the real Olist sample is not beside the repository")


def _subset(folder: Path) -> Path:
    """The sample's files cut to the orders placed FIRST..LAST (csv keeps quoted line breaks)."""
    folder.mkdir()

    def copy(name: str, keep) -> list[dict[str, str]]:
        with open(REAL_SAMPLE / FILES[name], encoding="utf-8", newline="") as source:
            reader = csv.DictReader(source)
            rows = [row for row in reader if keep(row)]
            header = reader.fieldnames
        with open(folder / FILES[name], "w", encoding="utf-8", newline="") as target:
            writer = csv.DictWriter(target, header)
            writer.writeheader()
            writer.writerows(rows)
        return rows

    orders = copy("orders", lambda o: FIRST <= o["order_purchase_timestamp"][:10] <= LAST)
    order_ids = {o["order_id"] for o in orders}
    customer_ids = {o["customer_id"] for o in orders}
    items = copy("order_items", lambda i: i["order_id"] in order_ids)
    sellers = {i["seller_id"] for i in items}
    copy("order_reviews", lambda r: r["order_id"] in order_ids)
    copy("customers", lambda c: c["customer_id"] in customer_ids)
    copy("sellers", lambda s: s["seller_id"] in sellers)
    return folder


def _table(config, name: str) -> pd.DataFrame:
    layer, table = name.split(".")
    return DeltaTable(str(Path(config.lake_root) / layer / table)).to_pandas()


@pytest.fixture(scope="module")
def imported(config, tmp_path_factory):
    from dataclasses import replace

    root = tmp_path_factory.mktemp("olist")
    lake_config = replace(config, lake_root=str(root / "lake"), landing_root=str(root / "landing"))
    folder = _subset(root / "export")
    report = import_olist(folder, lake_config, progress=lambda line: None)
    return lake_config, folder, report


def test_every_line_lands_accepted_or_quarantined_with_its_reason(imported) -> None:
    config, folder, report = imported
    orders = pd.read_csv(folder / FILES["orders"])
    items = pd.read_csv(folder / FILES["order_items"])
    without_items = int((~orders["order_id"].isin(items["order_id"])).sum())
    assert without_items > 0  # canceled orders: the subset shows the quarantine path
    audit = (
        _table(config, "ops.ingest_audit").groupby("source")[["raw_rows", "accepted_rows", "quarantined_rows"]].sum()
    )
    assert (audit["raw_rows"] == audit["accepted_rows"] + audit["quarantined_rows"]).all()
    assert audit.loc["orders", "raw_rows"] == len(orders) == report["mapping"]["orders"]
    # Olist does not name carriers, payment methods or channels ("unknown"): only orders without
    # items, so without amount or origin, are refused.
    reasons = _table(config, "quarantine.orders")["reason"].value_counts().to_dict()
    assert reasons == {"missing_required:amount": without_items}
    assert audit.loc["tracking_scans", "quarantined_rows"] == audit.loc["interactions", "quarantined_rows"] == 0
    nights = _table(config, "ops.night_runs")
    assert set(nights["completed_by"]) == {OLIST_IMPORT} and len(nights) == report["nights"]


def test_kpis_equal_a_count_by_hand_of_the_csvs(imported) -> None:
    config, folder, _ = imported
    orders = pd.read_csv(
        folder / FILES["orders"],
        parse_dates=["order_purchase_timestamp", "order_delivered_customer_date", "order_estimated_delivery_date"],
    )
    items = pd.read_csv(folder / FILES["order_items"])
    reviews = pd.read_csv(folder / FILES["order_reviews"])
    accepted = orders[orders["order_id"].isin(items["order_id"])]
    delivered = accepted.dropna(subset=["order_delivered_customer_date"])
    days = (
        delivered["order_delivered_customer_date"] - delivered["order_purchase_timestamp"]
    ).dt.total_seconds() / 86400
    # On time: delivered on or before the estimated delivery's calendar date.
    on_time = delivered["order_delivered_customer_date"].dt.normalize() <= delivered["order_estimated_delivery_date"]

    kpis = _table(config, "gold.cx_kpi_daily")
    assert kpis["orders_placed"].sum() == len(accepted)
    assert kpis["orders_delivered"].sum() == len(delivered)
    assert kpis["on_time_deliveries"].sum() == on_time.sum()
    assert kpis["on_time_deliveries"].sum() / kpis["orders_delivered"].sum() == pytest.approx(on_time.mean())
    mean_days = (kpis["avg_delivery_days"] * kpis["orders_delivered"]).sum() / kpis["orders_delivered"].sum()
    assert mean_days == pytest.approx(days.mean(), abs=1e-6)
    assert kpis["reviews"].sum() == len(reviews)
    mean_review = (kpis["mean_review_rating"] * kpis["reviews"]).sum() / kpis["reviews"].sum()
    # Each day's mean is stored rounded to 6 decimals (kpi.py): the weighted mean is within 1e-6.
    assert mean_review == pytest.approx(reviews["review_score"].mean(), abs=1e-6)


def test_importing_the_same_files_again_changes_no_row(imported) -> None:
    config, folder, report = imported
    tables = ["silver.orders", "silver.tracking_events", "silver.interactions", "gold.cx_kpi_daily"]
    tables += ["features.order_eta", "quarantine.orders"]

    def content() -> dict[str, list]:
        return {
            name: sorted(
                map(repr, _table(config, name).drop(columns=["recorded_at"], errors="ignore").to_dict("records"))
            )
            for name in tables
        }

    before = content()
    again = import_olist(folder, config, progress=lambda line: None)
    assert again == report
    assert content() == before
