"""File-level schema drift: a column gone or retyped upstream fails the run, naming file and column.

A few bad values are dirt and are quarantined row by row; a required JSON key absent from every
line of a file, or a column whose every value (at least ``DRIFT_MIN_VALUES``) fails its type, is
a change of the feed itself and stops the run before anything is written.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jobs.ingest.bronze import DRIFT_MIN_VALUES, ingest_source
from jobs.ingest.raw_files import SchemaDriftError
from jobs.lake.contracts import load_contract
from jobs.lake.tables import read_table, table_exists, table_version

DAY = "2026-02-10"
HEADER = ",".join(load_contract("raw.orders").column_names)


def _write(landing: Path, source: str, name: str, lines: list[str]) -> None:
    folder = landing / source / DAY
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("".join(line + "\n" for line in lines))


def _scan(scan_id: str, **overrides: object) -> str:
    """A valid scan line; an override of ``...`` leaves the key out."""
    row = {"scan_id": scan_id, "order_id": "O1", "scan_at": "2026-02-10T10:00:00Z", "event": "picked"}
    row.update({"carrier": "cdek", **overrides})
    return json.dumps({k: v for k, v in row.items() if v is not ...})


def _order(order_id: str, items: str = "2", customer_id: str = "C1") -> str:
    return f"{order_id},{customer_id},2026-02-10T08:00:00Z,{items},10.50,WH-MOSCOW,RU-SPE,cdek,2026-02-14,card,app,,"


def _refused(spark, config, source: str) -> set[tuple[str, int, str]]:
    rows = read_table(spark, config, f"quarantine.{source}").collect()
    return {(Path(r.source_file).name, r.line_number, r.reason) for r in rows}


def test_the_threshold_is_five_values() -> None:
    # The messages below spell "5 of 5": they are written for this threshold.
    assert DRIFT_MIN_VALUES == 5


def test_json_required_key_absent_from_every_line_fails_naming_file_and_column(spark, lake_config) -> None:
    landing = Path(lake_config.landing_root)
    # Absent or null, order_id is never there; a malformed line has no say either way.
    lines = [_scan("S1", order_id=...), _scan("S2", order_id=None), _scan("S3", order_id=...), '{"scan_id":']
    _write(landing, "tracking_scans", "scans.jsonl", lines)
    _write(landing, "tracking_scans", "healthy.jsonl", [_scan("S9")])

    with pytest.raises(SchemaDriftError) as raised:
        ingest_source(spark, lake_config, "tracking_scans", DAY)

    # Only the drifted file is named; nothing was written.
    assert str(raised.value) == (
        f"tracking_scans/{DAY}/scans.jsonl: required column order_id (string) is absent from every line"
    )
    assert not table_exists(spark, lake_config.table_path("bronze.tracking_scans"))


def test_json_column_whose_every_value_fails_its_type_fails_with_examples(spark, lake_config) -> None:
    bad = ["yesterday", "12/02/2026", "yesterday", "tomorrow", "12/02/2026"]
    lines = [_scan(f"S{i}", scan_at=value) for i, value in enumerate(bad)] + [_scan("S9", scan_at=None)]
    _write(Path(lake_config.landing_root), "tracking_scans", "x.jsonl", lines)

    with pytest.raises(SchemaDriftError) as raised:
        ingest_source(spark, lake_config, "tracking_scans", DAY)

    # Examples are the smallest and largest bad text (deterministic); the null scan_at is no value.
    assert str(raised.value) == (
        f"tracking_scans/{DAY}/x.jsonl: column scan_at expected timestamp, "
        "found values like '12/02/2026', 'yesterday' (5 of 5 unparsable)"
    )


def test_csv_column_whose_every_value_fails_its_type_fails_with_examples(spark, lake_config) -> None:
    lines = [HEADER] + [_order(f"O{i}", items=word) for i, word in enumerate(["two", "three", "four", "five", "six"])]
    _write(Path(lake_config.landing_root), "orders", "orders.csv", lines)

    with pytest.raises(SchemaDriftError) as raised:
        ingest_source(spark, lake_config, "orders", DAY)

    assert str(raised.value) == (
        f"orders/{DAY}/orders.csv: column items expected int, found values like 'five', 'two' (5 of 5 unparsable)"
    )


def test_json_bad_values_below_the_drift_rule_are_quarantined_row_by_row(spark, lake_config) -> None:
    landing = Path(lake_config.landing_root)
    # Four bad values are all there are, but fewer than the threshold: dirt, not drift.
    _write(landing, "tracking_scans", "few.jsonl", [_scan(f"F{i}", scan_at="yesterday") for i in range(4)])
    # Five bad values, but one good one: the column still parses, so not a type change.
    _write(
        landing,
        "tracking_scans",
        "mixed.jsonl",
        [_scan(f"M{i}", scan_at="yesterday") for i in range(5)] + [_scan("M5")],
    )
    # No line parses: nothing says a column is missing, every line is malformed.
    _write(landing, "tracking_scans", "broken.jsonl", ['{"scan_id":', "not json"])

    result = ingest_source(spark, lake_config, "tracking_scans", DAY)

    assert (result.raw_rows, result.accepted_rows, result.quarantined_rows) == (12, 1, 11)
    assert _refused(spark, lake_config, "tracking_scans") == {
        *{("few.jsonl", i + 1, "bad_type:scan_at") for i in range(4)},
        *{("mixed.jsonl", i + 1, "bad_type:scan_at") for i in range(5)},
        ("broken.jsonl", 1, "malformed_json"),
        ("broken.jsonl", 2, "malformed_json"),
    }


def test_csv_bad_values_below_the_drift_rule_are_quarantined_row_by_row(spark, lake_config) -> None:
    landing = Path(lake_config.landing_root)
    _write(landing, "orders", "few.csv", [HEADER] + [_order(f"F{i}", items="two") for i in range(4)])
    # A CSV column that is in the header but empty in every row is per-row missing_required: the
    # "column is gone" case of CSV is the header check, which names the column before any row.
    _write(landing, "orders", "empty.csv", [HEADER] + [_order(f"E{i}", customer_id="") for i in range(2)])

    result = ingest_source(spark, lake_config, "orders", DAY)

    assert (result.raw_rows, result.accepted_rows, result.quarantined_rows) == (6, 0, 6)
    assert _refused(spark, lake_config, "orders") == {
        *{("few.csv", i + 2, "bad_type:items") for i in range(4)},
        *{("empty.csv", i + 2, "missing_required:customer_id") for i in range(2)},
    }


def test_a_drifted_night_commits_nothing_to_tables_that_exist(spark, lake_config) -> None:
    """The night before lands; the drifted night then fails with both tables at their version."""
    landing = Path(lake_config.landing_root)
    before = "2026-02-09"
    folder = landing / "tracking_scans" / before
    folder.mkdir(parents=True)
    # A valid scan for bronze and a malformed line for quarantine: both tables then exist.
    (folder / "scans.jsonl").write_text(_scan("S0", scan_at="2026-02-09T10:00:00Z") + "\n" + '{"scan_id":' + "\n")
    ingest_source(spark, lake_config, "tracking_scans", before)
    tables = ("bronze.tracking_scans", "quarantine.tracking_scans")
    versions = {t: table_version(spark, lake_config, t) for t in tables}

    _write(landing, "tracking_scans", "scans.jsonl", [_scan(f"S{n}", scan_at="yesterday") for n in range(1, 6)])
    with pytest.raises(SchemaDriftError):
        ingest_source(spark, lake_config, "tracking_scans", DAY)

    assert {t: table_version(spark, lake_config, t) for t in tables} == versions
    assert read_table(spark, lake_config, "bronze.tracking_scans").count() == 1
