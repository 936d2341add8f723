"""`cxlake sql`: named lake tables queried by DuckDB over delta-rs, with time travel.

The tables are real Delta tables written by delta-rs with their contracts' Arrow schemas: the
command reads Delta, not a fixture format. No Spark is started.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from jobs.analytics.catalog import UnknownTableError, lake_table_names, open_table
from jobs.analytics.sql import format_rows, run_query, tables_named
from jobs.cli import main
from jobs.lake.config import load_config
from jobs.lake.contracts import load_contract


def _kpi_rows(days: list[tuple[str, int, int]]) -> pa.Table:
    """gold.cx_kpi_daily rows: (date, orders placed, on-time deliveries) with 10 delivered a day."""
    contract = load_contract("gold.cx_kpi_daily")
    rows = []
    # The counts this test does not look at are zero (they may not be null).
    zeros = {c.name: 0 for c in contract.columns if not c.nullable and c.type == "bigint"}
    for day, placed, on_time in days:
        rows.append(
            {
                **zeros,
                "kpi_date": dt.date.fromisoformat(day),
                "orders_placed": placed,
                "orders_delivered": 10,
                "on_time_deliveries": on_time,
                "late_deliveries": 10 - on_time,
                "on_time_delivery_rate": on_time / 10,
                "avg_delivery_days": 3.0,
                "avg_days_late": 1.0,
                "as_of_date": dt.date.fromisoformat(day),
                "is_final": False,
            }
        )
    return pa.Table.from_pylist(rows, schema=contract.arrow_schema())


@pytest.fixture()
def lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CXLAKE_HOME", str(tmp_path))
    monkeypatch.delenv("CXLAKE_LAKE_ROOT", raising=False)
    config = load_config()
    path = config.table_path("gold.cx_kpi_daily")
    write_deltalake(path, _kpi_rows([("2026-01-05", 12, 9), ("2026-01-06", 8, 7)]))  # version 0
    write_deltalake(path, _kpi_rows([("2026-01-07", 20, 10)]), mode="append")  # version 1
    return config


def test_tables_named_finds_lake_tables_only() -> None:
    sql = "SELECT k.kpi_date FROM gold.cx_kpi_daily k JOIN GOLD.CX_KPI_DAILY x USING (kpi_date), gold.nothing"
    # Case-folded, once each; `gold.nothing` has no contract, so DuckDB reports it, not us.
    assert tables_named(sql) == ["gold.cx_kpi_daily"]
    assert "gold.cx_kpi_daily" in lake_table_names() and "raw.orders" not in lake_table_names()


def test_query_reads_the_latest_version_and_says_which(lake) -> None:
    result = run_query(lake, "SELECT sum(orders_placed) AS placed, count(*) AS days FROM gold.cx_kpi_daily")
    # 12 + 8 (version 0) + 20 (version 1) over three days.
    assert result.rows.to_pylist() == [{"placed": 40, "days": 3}]
    assert [(r.name, r.version) for r in result.reads] == [("gold.cx_kpi_daily", 1)]
    assert result.reads[0].committed_at is not None


def test_time_travel_by_version_and_by_time(lake) -> None:
    sql = "SELECT count(*) AS days, max(kpi_date) AS last FROM gold.cx_kpi_daily"
    old = run_query(lake, sql, versions={"gold.cx_kpi_daily": 0})
    assert old.rows.to_pylist() == [{"days": 2, "last": dt.date(2026, 1, 6)}]  # before the append
    _, first = open_table(lake, "gold.cx_kpi_daily", version=0)
    at_first_commit = run_query(lake, sql, as_of=first.committed_at)
    assert at_first_commit.reads[0].version == 0 and at_first_commit.rows.to_pylist()[0]["days"] == 2
    with pytest.raises(UnknownTableError, match="did not exist yet"):
        run_query(lake, sql, as_of=first.committed_at - dt.timedelta(days=1))
    with pytest.raises(UnknownTableError, match="no version 5"):
        run_query(lake, sql, versions={"gold.cx_kpi_daily": 5})


def test_unknown_and_unwritten_tables_are_clear_errors(lake) -> None:
    with pytest.raises(UnknownTableError, match="has not been written yet"):
        run_query(lake, "SELECT * FROM gold.churn_scores")
    with pytest.raises(ValueError, match="does not read: gold.churn_scores"):
        run_query(lake, "SELECT 1 FROM gold.cx_kpi_daily", versions={"gold.churn_scores": 0})


def test_format_rows_aligns_and_counts() -> None:
    rows = pa.table({"name": ["a", "bb", None], "n": [1, 22, 3]})
    assert format_rows(rows, max_rows=2).splitlines() == [
        "name   n",  # numbers right-aligned, text left
        "----  --",
        "a      1",
        "bb    22",
        "... 1 more row(s) (--max-rows, or --csv for all)",
        "(3 rows)",
    ]


def test_cli_prints_a_table_or_csv_and_the_versions_read(lake, capsys: pytest.CaptureFixture[str]) -> None:
    sql = "SELECT kpi_date, on_time_delivery_rate FROM gold.cx_kpi_daily ORDER BY kpi_date"
    assert main(["sql", "--csv", sql]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        '"kpi_date","on_time_delivery_rate"',
        "2026-01-05,0.9",  # 9 of 10 on time
        "2026-01-06,0.7",
        "2026-01-07,1",
    ]
    assert err.startswith("read gold.cx_kpi_daily v1 (committed ")
    assert main(["sql", "SELECT * FROM gold.nothing"]) == 1
    assert "gold.nothing" in capsys.readouterr().err
