"""The bronze job on tiny raw files: exact quarantine reasons, reconciliation, idempotent reruns."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.ingest.bronze import MissingSourceError, ingest_source
from jobs.ingest.raw_files import SchemaDriftError
from jobs.lake.tables import read_table

DAY = "2026-02-10"
HEADER = "order_id,customer_id,placed_at,items,amount,origin_warehouse,destination_region,carrier,promised_delivery_date,payment_method,channel,email,phone"


def _write(landing: Path, source: str, name: str, text: str) -> None:
    folder = landing / source / DAY
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)


def _sorted_rows(df) -> list[tuple]:
    return sorted(tuple(row) for row in df.collect())


ORDERS = (
    "\n".join(
        [
            HEADER + ",gift_wrap",  # an added optional column: accepted, kept in _extra
            "O1,C1,2026-02-10T08:00:00Z,2,10.50,WH-MOSCOW,RU-SPE,cdek,2026-02-14,card,app,a@x.ru,+7 900 000-00-01,yes",
            "O2,C1,2026-02-10T09:00:00Z,two,10.50,WH-MOSCOW,RU-SPE,cdek,2026-02-14,card,app,,,",
            "O3,,2026-02-10T09:00:00Z,1,5,WH-MOSCOW,RU-SPE,cdek,2026-02-14,card,app,,,",
            "O4,C2,2026-02-10T09:00:00Z,1,5,WH-MOSCOW,RU-SPE,dhl,2026-02-14,card,app,,,",
            "O1,C1,2026-02-10T08:00:00Z,2,10.50,WH-MOSCOW,RU-SPE,cdek,2026-02-14,card,app,a@x.ru,+7 900 000-00-01,yes",
            'O5,"C3,2026',
            "O6,C2,2026-02-01T09:00:00Z,1,5,WH-MOSCOW,RU-SPE,cdek,2026-02-14,card,app,,,",
            "O7,C2,2026-02-08T09:00:00Z,0,5,WH-MOSCOW,RU-SPE,cdek,2026-02-14,card,web,,,",
        ]
    )
    + "\n"
)


def test_orders_land_in_bronze_or_quarantine_with_exact_reasons(spark, lake_config) -> None:
    _write(Path(lake_config.landing_root), "orders", f"orders_{DAY}.csv", ORDERS)
    result = ingest_source(spark, lake_config, "orders", DAY)

    assert (result.raw_rows, result.accepted_rows, result.quarantined_rows) == (8, 1, 7)
    bronze = read_table(spark, lake_config, "bronze.orders")
    (accepted,) = bronze.collect()
    assert (accepted.order_id, accepted.items, accepted._extra, accepted._line_number) == (
        "O1",
        2,
        {"gift_wrap": "yes"},
        2,
    )
    assert accepted._source_file == f"orders/{DAY}/orders_{DAY}.csv"
    quarantine = read_table(spark, lake_config, "quarantine.orders").select("line_number", "reason")
    assert _sorted_rows(quarantine) == [
        (3, "bad_type:items"),
        (4, "missing_required:customer_id"),
        (5, "unknown_enum:carrier"),
        (6, "duplicate"),
        (7, "malformed_csv"),
        (8, "too_late"),  # 9 days before arrival, bound is 3
        (9, "out_of_range:items"),
    ]
    audit = read_table(spark, lake_config, "ops.ingest_audit").select(
        "source", "raw_rows", "accepted_rows", "quarantined_rows"
    )
    assert _sorted_rows(audit) == [("orders", 8, 1, 7)]


def test_rerunning_a_date_leaves_identical_tables(spark, lake_config) -> None:
    _write(Path(lake_config.landing_root), "orders", f"orders_{DAY}.csv", ORDERS)
    ingest_source(spark, lake_config, "orders", DAY)
    first = {t: _sorted_rows(read_table(spark, lake_config, t)) for t in ("bronze.orders", "quarantine.orders")}
    ingest_source(spark, lake_config, "orders", DAY)
    second = {t: _sorted_rows(read_table(spark, lake_config, t)) for t in ("bronze.orders", "quarantine.orders")}
    assert first == second
    assert read_table(spark, lake_config, "ops.ingest_audit").count() == 1


def test_json_source_reasons(spark, lake_config) -> None:
    scans = "\n".join(
        [
            '{"scan_id":"S1","order_id":"O1","scan_at":"2026-02-10T10:00:00Z","event":"created","carrier":"cdek"}',
            '{"scan_id":"S2","order_id":"O1","scan_at":"yesterday","event":"picked","carrier":"cdek"}',
            '{"scan_id":"S3","order_id":"O1","scan_at":"2026-02-10T12:00:00Z","event":"teleported","carrier":"cdek"}',
            '{"scan_id":"S4","order_id":"O1","scan_at":"2026-02-10T12',
            '{"scan_id":"S5","scan_at":"2026-02-10T13:00:00Z","event":"picked","carrier":"cdek"}',
        ]
    )
    _write(Path(lake_config.landing_root), "tracking_scans", f"tracking_scans_{DAY}.jsonl", scans + "\n")
    result = ingest_source(spark, lake_config, "tracking_scans", DAY)
    assert (result.raw_rows, result.accepted_rows, result.quarantined_rows) == (5, 1, 4)
    quarantine = read_table(spark, lake_config, "quarantine.tracking_scans").select("line_number", "reason")
    assert _sorted_rows(quarantine) == [
        (2, "bad_type:scan_at"),
        (3, "unknown_enum:event"),
        (4, "malformed_json"),
        (5, "missing_required:order_id"),
    ]


def test_missing_required_csv_column_fails_naming_file_and_column(spark, lake_config) -> None:
    header_without_carrier = HEADER.replace(",carrier", "")
    _write(Path(lake_config.landing_root), "orders", f"orders_{DAY}.csv", header_without_carrier + "\n")
    with pytest.raises(
        SchemaDriftError,
        match=r"orders_2026-02-10\.csv: required column\(s\) missing from the header: carrier \(string\)",
    ):
        ingest_source(spark, lake_config, "orders", DAY)


def test_a_source_with_no_file_is_a_clear_failure(spark, lake_config) -> None:
    with pytest.raises(MissingSourceError, match="source 'interactions': no jsonl file arrived for 2026-02-10"):
        ingest_source(spark, lake_config, "interactions", DAY)


def test_local_and_spark_engines_write_the_same_tables(spark, lake_config, tmp_path: Path) -> None:
    # A simulated landing has every kind of dirt (duplicates across and within files, late,
    # malformed, bad types, unknown enums); both engines must write the same rows and schemas.
    from dataclasses import replace

    import pyspark.sql.functions as F

    from jobs.devtools.simulator import SimulationConfig, simulate
    from jobs.ingest.bronze import ingest_nights

    simulate(SimulationConfig(days=3, customers=400, seed=5), Path(lake_config.landing_root))
    nights = ["2026-01-05", "2026-01-06", "2026-01-07"]
    lakes = {engine: replace(lake_config, lake_root=str(tmp_path / engine)) for engine in ("spark", "local")}
    reasons: set[str] = set()
    for source in ("interactions", "orders"):  # JSON lines and CSV
        results = {
            engine: ingest_nights(spark, lake, source, nights, audit=False, engine=engine)
            for engine, lake in lakes.items()
        }
        assert results["spark"] == results["local"]
        for table in (f"bronze.{source}", f"quarantine.{source}"):
            frames = {engine: read_table(spark, lake, table) for engine, lake in lakes.items()}
            # Names and types agree; nullability does not: delta-rs creates the table with the
            # contract's NOT NULL columns, Spark's casts make every column nullable.
            assert frames["spark"].schema.simpleString() == frames["local"].schema.simpleString(), table
            # Maps do not compare in Spark: _extra is compared as its sorted entries.
            rows = {
                engine: _sorted_rows(
                    df.select(*[F.array_sort(F.map_entries(c)) if c == "_extra" else F.col(c) for c in df.columns])
                )
                for engine, df in frames.items()
            }
            assert rows["spark"] == rows["local"], table
            if table.startswith("quarantine"):
                reasons |= {row.reason.split(":")[0] for row in frames["local"].select("reason").distinct().collect()}
    # The dirt was there to compare (the simulator injects each kind at a few percent).
    assert {"duplicate", "malformed_json", "bad_type", "unknown_enum", "missing_required"} <= reasons
