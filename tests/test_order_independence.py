"""Simulated nights run in order, out of order and twice end in identical lake tables.

Two default-dirt simulated days (late arrivals, resent duplicates, broken lines included) are
run through bronze, silver and gold on two private lakes: once in calendar order, once as 2nd
then 1st, and then the 2nd again. Every table's sorted rows must be equal. The in-order lake
also shows that the quarantine holds exactly the dirt the simulator injected.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, replace

import pyspark.sql.functions as F
import pytest

from jobs import nightly
from jobs.ingest.bronze import SOURCES
from jobs.simulator import SimulationConfig, simulate
from jobs.summary import delta_tables
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


@dataclass(frozen=True)
class Lakes:
    manifests: list[dict]
    reference: dict[str, list]  # in calendar order
    out_of_order: dict[str, list]  # 2nd night, then 1st
    rerun: dict[str, list]  # ... then the 2nd again
    in_order_config: object


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
    return Lakes(manifests, reference, out_of_order, rerun, in_order)


def test_the_simulated_days_contain_late_and_resent_data(lakes) -> None:
    assert any(r.order_date < r.first_ingest_date for r in lakes.reference["silver.orders"]), "no late order"
    assert any(r.event_date < r.first_ingest_date for r in lakes.reference["silver.tracking_events"]), "no late scan"
    resent = sum(m["sources"]["tracking_scans"].get("duplicate_resent", 0) for m in lakes.manifests)
    assert resent > 0, "no scan resent on a later night"
    assert len(lakes.reference["bronze.tracking_scans"]) == len(lakes.reference["silver.tracking_events"]) + resent
    assert sum(r.orders_placed for r in lakes.reference["gold.cx_kpi_daily"]) == len(lakes.reference["silver.orders"])


@pytest.mark.parametrize("table", TABLES)
def test_out_of_order_nights_give_identical_tables(lakes, table: str) -> None:
    assert lakes.out_of_order[table] == lakes.reference[table]


@pytest.mark.parametrize("table", TABLES)
def test_rerunning_a_night_changes_nothing(lakes, table: str) -> None:
    assert lakes.rerun[table] == lakes.reference[table]


EMAIL_PATTERN = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"
# International form (dates and ids are digit runs too; the exact raw values are checked as well).
PHONE_PATTERN = r"\+\d[\d ()-]{8,}\d"


def test_no_clear_text_email_or_phone_in_any_silver_or_gold_table(spark, lakes) -> None:
    """Decoded values, not file bytes: every column of every table, as JSON, against the raw PII."""
    raw_pii = {
        value.strip().lower()
        for table in ("bronze.orders", "bronze.interactions")
        for row in lakes.reference[table]
        for value in (row.email, row.phone)
        if value
    }
    assert len(raw_pii) > 100, "the simulated data must carry e-mails and phone numbers"
    config = lakes.in_order_config
    tables = [t for t in delta_tables(config) if t.split(".")[0] in ("silver", "gold")]
    assert {"silver.orders", "silver.interactions", "silver.customers", "gold.cx_kpi_daily"} <= set(tables)
    for table in tables:
        df = read_table(spark, config, table)
        as_json = df.select(F.lower(F.to_json(F.struct(*df.columns))).alias("row"))
        hits = as_json.filter(F.col("row").rlike(EMAIL_PATTERN) | F.col("row").rlike(PHONE_PATTERN))
        assert hits.count() == 0, (table, hits.first())
        text = "\n".join(r.row for r in as_json.collect())
        leaked = [v for v in raw_pii if v in text]
        assert not leaked, (table, leaked[:3])


def _reason_kind(reason: str) -> str:
    return {"malformed_json": "malformed", "malformed_csv": "malformed"}.get(reason, reason.split(":")[0])


@pytest.mark.parametrize("source", SOURCES)
def test_quarantine_matches_injected_dirt_exactly(spark, lakes, source: str) -> None:
    """The simulator's manifest counts each dirt kind it injected per file: 0 unexplained rows."""
    injected = Counter()
    lines = 0
    for manifest in lakes.manifests:
        entry = manifest["sources"][source]
        lines += entry["lines"]
        for kind in ("malformed", "missing_required", "unknown_enum", "bad_type"):
            injected[kind] += entry[kind]
        # Resent copies land in another file: bronze keeps them (raw history), silver dedupes.
        injected["duplicate"] += entry["duplicate"] - entry.get("duplicate_resent", 0)
    quarantined = Counter(_reason_kind(r.reason) for r in lakes.reference[f"quarantine.{source}"])
    assert +quarantined == +injected
    audit = [r for r in lakes.reference["ops.ingest_audit"] if r.source == source]
    assert sum(r.raw_rows for r in audit) == lines
    assert sum(r.accepted_rows for r in audit) + sum(r.quarantined_rows for r in audit) == lines
    assert sum(r.quarantined_rows for r in audit) == sum(injected.values())


def test_every_commit_records_the_contract_version_it_was_written_with(spark, lakes) -> None:
    from delta.tables import DeltaTable

    from jobs.contracts import load_contract

    config = lakes.in_order_config
    for table in ("bronze.orders", "silver.orders", "silver.interactions", "gold.cx_kpi_daily", "ops.ingest_audit"):
        history = DeltaTable.forPath(spark, config.table_path(table)).history().collect()
        expected = f"contract {table} v{load_contract(table).version}"
        assert {h.userMetadata for h in history} == {expected}, table
