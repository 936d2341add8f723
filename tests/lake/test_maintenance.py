from __future__ import annotations

from dataclasses import replace

import pytest
from delta.tables import DeltaTable

from jobs.lake import maintenance
from jobs.lake.contracts import all_contract_names
from jobs.lake.tables import merge_rows, read_table


def test_lake_tables_cover_every_layer() -> None:
    tables = maintenance.lake_tables()
    assert {"bronze.orders", "silver.orders", "gold.cx_kpi_daily", "quarantine.orders", "ops.ingest_audit"} <= set(
        tables
    )
    assert not any(t.startswith("raw.") for t in tables)
    assert "quarantine.rows" not in tables
    # The contract registry is the one list: every other contract is a table to maintain.
    assert set(tables) | {"quarantine.rows"} | {t for t in all_contract_names() if t.startswith("raw.")} == set(
        all_contract_names()
    )


def test_retention_comes_from_the_config_unless_given(monkeypatch: pytest.MonkeyPatch, lake_config) -> None:
    seen = []
    monkeypatch.setattr(maintenance, "lake_tables", lambda: ["gold.cx_kpi_daily"])
    monkeypatch.setattr(maintenance, "_exists", lambda spark, config, table: True)
    monkeypatch.setattr(
        maintenance, "maintain_table", lambda spark, config, table, retention: seen.append((table, retention))
    )
    maintenance.run(None, replace(lake_config, vacuum_retention_hours=720))  # CXLAKE_VACUUM_RETENTION_HOURS
    maintenance.run(None, lake_config, retention=0)  # an explicit value wins (tests)
    assert seen == [("gold.cx_kpi_daily", 720), ("gold.cx_kpi_daily", 0)]


def test_is_maintenance_day_is_weekly_on_sunday() -> None:
    assert [maintenance.is_maintenance_day(f"2026-03-{d:02d}") for d in range(2, 9)] == [False] * 6 + [True]


def test_optimize_compacts_without_changing_content_and_vacuum_removes_old_files(spark, lake_config) -> None:
    schema = "kpi_date string, v int"
    for value in range(4):  # four MERGEs -> several small files
        df = spark.createDataFrame([(f"2026-01-0{value + 1}", value)], schema)
        merge_rows(spark, df, lake_config, "gold.cx_kpi_daily", ("kpi_date",))
    before = sorted(map(tuple, read_table(spark, lake_config, "gold.cx_kpi_daily").collect()))
    path = lake_config.table_path("gold.cx_kpi_daily")

    (result,) = maintenance.run(spark, lake_config, retention=0)

    assert result.files_removed == 4 and result.files_added == 1
    assert sorted(map(tuple, read_table(spark, lake_config, "gold.cx_kpi_daily").collect())) == before
    history = DeltaTable.forPath(spark, path).history().select("operation").collect()
    assert "OPTIMIZE" in [r.operation for r in history]
    parquet_files = [p for p in __import__("pathlib").Path(path).glob("*.parquet")]
    assert len(parquet_files) == 1  # the compacted file; the four small ones were vacuumed
