"""Simulated nights run in order, out of order and twice end in identical lake tables.

Two default-dirt simulated days (late arrivals, resent duplicates, broken lines included) are
run through bronze, silver and gold on two private lakes: once in calendar order, once as 2nd
then 1st, and then the 2nd again. Every table's sorted rows must be equal. The in-order lake
also shows that the quarantine holds exactly the dirt the simulator injected.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace

import pytest

from jobs import nightly
from jobs.ingest.bronze import SOURCES
from jobs.simulator import SimulationConfig, simulate
from jobs.tables import read_table

DATES = ["2026-01-05", "2026-01-06"]
TABLES = [
    *(f"bronze.{s}" for s in SOURCES),
    *(f"quarantine.{s}" for s in SOURCES),
    "ops.ingest_audit",
    "silver.orders",
    "silver.shipments",
    "silver.tracking_events",
    "silver.interactions",
    "silver.device_links",
    "silver.customers",
    "gold.cx_kpi_daily",
]
# Wall-clock bookkeeping, the only columns allowed to differ between runs.
WALL_CLOCK_COLUMNS = {"ops.ingest_audit": ["recorded_at"]}


def _night(config, run_date: str) -> None:
    for source in SOURCES:
        nightly.ingest(source, run_date, config)
    nightly.build_silver(run_date, config)
    nightly.build_gold(run_date, config)


def _snapshot(spark, config) -> dict[str, list]:
    snapshot = {}
    for table in TABLES:
        df = read_table(spark, config, table).drop(*WALL_CLOCK_COLUMNS.get(table, []))
        snapshot[table] = sorted(df.collect(), key=repr)
    return snapshot


@pytest.fixture(scope="module")
def lakes(spark, config, tmp_path_factory):
    root = tmp_path_factory.mktemp("order_independence")
    landing = root / "landing"
    simulate(SimulationConfig(days=len(DATES), customers=800, seed=23), landing)
    in_order = replace(config, lake_root=str(root / "in_order"), landing_root=str(landing))
    shuffled = replace(config, lake_root=str(root / "shuffled"), landing_root=str(landing))
    for day in DATES:
        _night(in_order, day)
    reference = _snapshot(spark, in_order)
    for day in reversed(DATES):
        _night(shuffled, day)
    out_of_order = _snapshot(spark, shuffled)
    _night(shuffled, DATES[-1])
    rerun = _snapshot(spark, shuffled)
    manifests = [json.loads((landing / "_manifest" / f"{day}.json").read_text()) for day in DATES]
    return manifests, reference, out_of_order, rerun


def test_the_simulated_days_contain_late_and_resent_data(lakes) -> None:
    manifests, reference, _, _ = lakes
    assert any(r.order_date < r.first_ingest_date for r in reference["silver.orders"]), "no late order"
    assert any(r.event_date < r.first_ingest_date for r in reference["silver.tracking_events"]), "no late scan"
    resent = sum(m["sources"]["tracking_scans"].get("duplicate_resent", 0) for m in manifests)
    assert resent > 0, "no scan resent on a later night"
    assert len(reference["bronze.tracking_scans"]) == len(reference["silver.tracking_events"]) + resent
    assert any(r.orders_delivered for r in reference["gold.cx_kpi_daily"]), "gold must see deliveries"


@pytest.mark.parametrize("table", TABLES)
def test_out_of_order_nights_give_identical_tables(lakes, table: str) -> None:
    _, reference, out_of_order, _ = lakes
    assert out_of_order[table] == reference[table]


@pytest.mark.parametrize("table", TABLES)
def test_rerunning_a_night_changes_nothing(lakes, table: str) -> None:
    _, reference, _, rerun = lakes
    assert rerun[table] == reference[table]


def _reason_kind(reason: str) -> str:
    return {"malformed_json": "malformed", "malformed_csv": "malformed"}.get(reason, reason.split(":")[0])


@pytest.mark.parametrize("source", SOURCES)
def test_quarantine_matches_injected_dirt_exactly(spark, lakes, source: str) -> None:
    """The simulator's manifest counts each dirt kind it injected per file: 0 unexplained rows."""
    manifests, reference, _, _ = lakes
    injected = Counter()
    lines = 0
    for manifest in manifests:
        entry = manifest["sources"][source]
        lines += entry["lines"]
        for kind in ("malformed", "missing_required", "unknown_enum", "bad_type"):
            injected[kind] += entry[kind]
        # Resent copies land in another file: bronze keeps them (raw history), silver dedupes.
        injected["duplicate"] += entry["duplicate"] - entry.get("duplicate_resent", 0)
    quarantined = Counter(_reason_kind(r.reason) for r in reference[f"quarantine.{source}"])
    assert +quarantined == +injected
    audit = [r for r in reference["ops.ingest_audit"] if r.source == source]
    assert sum(r.raw_rows for r in audit) == lines
    assert sum(r.accepted_rows for r in audit) + sum(r.quarantined_rows for r in audit) == lines
    assert sum(r.quarantined_rows for r in audit) == sum(injected.values())
