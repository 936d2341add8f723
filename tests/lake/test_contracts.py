from __future__ import annotations

import pytest

from jobs.lake.contracts import (
    ContractError,
    all_contract_names,
    arrow_type,
    check_lock,
    current_lock,
    load_contract,
    spark_type,
)


@pytest.mark.parametrize("name", all_contract_names())
def test_every_contract_loads_and_has_a_spark_schema(name: str) -> None:
    contract = load_contract(name)
    schema = contract.spark_schema()
    assert [f.name for f in schema.fields] == contract.column_names
    assert len(set(contract.column_names)) == len(contract.column_names), "duplicate column names"
    for key in contract.keys:
        assert key in contract.column_names


@pytest.mark.parametrize("name", all_contract_names())
def test_the_arrow_schema_is_what_spark_writes(name: str) -> None:
    """delta-rs writers (the run log) must produce the types Spark's readers and writers expect:
    pyspark's own Spark -> Arrow mapping of the contract's Spark schema (no JVM needed)."""
    from pyspark.sql.pandas.types import to_arrow_schema

    contract = load_contract(name)
    expected = to_arrow_schema(contract.spark_schema(), timezone="UTC")
    assert contract.arrow_schema().equals(expected), (contract.arrow_schema(), expected)


def test_arrow_type_parses_nested_types() -> None:
    assert str(arrow_type("map<string,bigint>")) == "map<string, int64>"
    assert str(arrow_type("decimal(12, 2)")) == "decimal128(12, 2)"
    with pytest.raises(ContractError, match="unsupported contract type 'varchar'"):
        arrow_type("varchar")


def test_bronze_extends_raw_with_ingest_metadata() -> None:
    raw = load_contract("raw.orders")
    bronze = load_contract("bronze.orders")
    assert bronze.column_names == raw.column_names + ["_extra", "_source_file", "_line_number", "_ingest_date"]
    assert bronze.keys == ("order_id",)
    assert bronze.partition_by == ("_ingest_date",)


def test_spark_type_parses_nested_types_without_a_jvm() -> None:
    assert spark_type("map<string,string>").simpleString() == "map<string,string>"
    assert spark_type("decimal(12, 2)").simpleString() == "decimal(12,2)"
    with pytest.raises(ContractError, match="unsupported contract type 'varchar'"):
        spark_type("varchar")


def test_unknown_contract_is_a_clear_error() -> None:
    with pytest.raises(ContractError, match="no contract 'silver.nope'"):
        load_contract("silver.nope")


def test_pii_columns_are_declared() -> None:
    assert load_contract("raw.orders").pii_columns == ["email", "phone"]
    assert load_contract("silver.orders").pii_columns == []


def test_every_contract_matches_its_locked_version() -> None:
    assert check_lock() == []


def test_a_changed_contract_without_a_version_bump_is_reported() -> None:
    recorded = current_lock()
    version = recorded["silver.orders"]["version"]  # the YAML's, as locked
    recorded["silver.orders"] = {**recorded["silver.orders"], "sha256": "0" * 64}
    assert check_lock(recorded) == [f"silver.orders: changed but still version {version}: bump `version` in its YAML"]
    recorded["silver.orders"]["version"] = version - 1
    assert check_lock(recorded) == [f"silver.orders: version {version - 1} -> {version}: run `cxlake contracts --lock`"]
    del recorded["gold.cx_kpi_daily"]
    assert check_lock(recorded)[0].startswith("gold.cx_kpi_daily: new contract")
