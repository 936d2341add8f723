"""Writes through delta-rs on a local lake (:mod:`jobs.lake.local_merge`) that Spark reads back.

The MERGE clauses themselves are checked with both engines in ``test_tables.py`` and
``test_commit_conflicts.py``; here: what the other engine must still find afterwards (the
checkpoint Spark reads instead of the commits before it, a replaced slice), and that a slice
too large to collect stays in Spark.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from pathlib import Path

import pytest
from delta.tables import DeltaTable
from frames import contract_frame

from jobs.lake import local_merge
from jobs.lake.tables import merge_rows, read_table, replace_dates

FUNNEL = "gold.funnel_daily"  # keys (funnel_date, channel), partitioned by funnel_date
D1, D2 = dt.date(2026, 3, 1), dt.date(2026, 3, 2)


def _funnel(spark, rows: list[tuple[dt.date, str, int]]):
    return contract_frame(
        spark, FUNNEL, [{"funnel_date": d, "channel": c, "sessions": n} for d, c, n in rows], order_sessions=0
    )


def _engines(path: str) -> list[str]:
    """Each commit's engine, oldest first: ``Apache-Spark/…`` or ``delta-rs:…``."""
    commits = sorted(Path(path, "_delta_log").glob("*.json"))
    infos = [
        json.loads(line)["commitInfo"] for c in commits for line in c.read_text().splitlines() if "commitInfo" in line
    ]
    return [info.get("engineInfo", "?").split("/")[0].split(":")[0] for info in infos]


def test_a_table_delta_rs_merged_ten_times_has_a_checkpoint_spark_reads_without_the_commits_before_it(
    spark, lake_config
) -> None:
    lake_config = replace(lake_config, merge_engine="auto")
    merge_rows(spark, _funnel(spark, [(D1, "app", 0)]), lake_config, FUNNEL, ("funnel_date", "channel"))
    for n in range(1, 11):  # versions 1..10, each updating the row and adding one
        rows = _funnel(spark, [(D1, "app", n), (D2, f"web{n}", n)])
        merge_rows(spark, rows, lake_config, FUNNEL, ("funnel_date", "channel"))
    path = lake_config.table_path(FUNNEL)
    assert _engines(path) == ["Apache-Spark"] + ["delta-rs"] * 10  # Spark created it, delta-rs merged
    log = Path(path, "_delta_log")
    assert (log / f"{10:020d}.checkpoint.parquet").exists()  # on Spark's schedule (delta-rs': 100)
    # Spark must rebuild the table from that checkpoint alone: the commits before it are gone,
    # and its cached state of the table with them.
    for version in range(10):
        (log / f"{version:020d}.json").unlink()
    spark.sparkContext._jvm.org.apache.spark.sql.delta.DeltaLog.clearCache()
    got = sorted((r.funnel_date, r.channel, r.sessions) for r in read_table(spark, lake_config, FUNNEL).collect())
    # D1's app row updated ten times (last: 10); web1..web10, one per merge, on D2.
    assert got == [(D1, "app", 10), *sorted((D2, f"web{n}", n) for n in range(1, 11))]


@pytest.mark.parametrize("engine", ["auto", "spark"])
def test_replace_dates_replaces_exactly_the_dates_given_in_either_engine(spark, lake_config, engine: str) -> None:
    config = replace(lake_config, merge_engine=engine)
    replace_dates(
        _funnel(spark, [(D1, "app", 1), (D2, "app", 2), (D2, "web", 3)]), config, FUNNEL, "funnel_date", [D1, D2]
    )
    # D2 recomputed: its web row is gone, app changed; D1 is not in the list and stays.
    replace_dates(_funnel(spark, [(D2, "app", 20)]), config, FUNNEL, "funnel_date", [D2])
    got = sorted((r.funnel_date, r.channel, r.sessions) for r in read_table(spark, config, FUNNEL).collect())
    assert got == [(D1, "app", 1), (D2, "app", 20)]
    assert _engines(config.table_path(FUNNEL))[-1] == ("delta-rs" if engine == "auto" else "Apache-Spark")


def test_a_slice_above_the_collect_bound_is_merged_by_spark(spark, lake_config, monkeypatch) -> None:
    lake_config = replace(lake_config, merge_engine="auto")
    merge_rows(spark, _funnel(spark, [(D1, "app", 1)]), lake_config, FUNNEL, ("funnel_date", "channel"))
    monkeypatch.setattr(local_merge, "MAX_COLLECTED_ROWS", 1)  # a history import's slice, in small
    merge_rows(spark, _funnel(spark, [(D1, "app", 5)]), lake_config, FUNNEL, ("funnel_date", "channel"))
    merge_rows(spark, _funnel(spark, [(D1, "app", 6), (D2, "app", 7)]), lake_config, FUNNEL, ("funnel_date", "channel"))
    path = lake_config.table_path(FUNNEL)
    # One row fits the bound (delta-rs), two do not (Spark): same MERGE either way.
    assert _engines(path) == ["Apache-Spark", "delta-rs", "Apache-Spark"]
    got = sorted((r.funnel_date, r.channel, r.sessions) for r in read_table(spark, lake_config, FUNNEL).collect())
    assert got == [(D1, "app", 6), (D2, "app", 7)]
    assert DeltaTable.forPath(spark, path).history().count() == 3
