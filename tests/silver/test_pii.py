from __future__ import annotations

import stat
from dataclasses import replace

from jobs.silver.pii import pii_key


def test_pii_key_is_the_configured_one(config) -> None:
    # tests/conftest.py sets CXLAKE_PII_KEY before loading the session config.
    assert pii_key(config) == "test-only-key"
    assert pii_key(replace(config, pii_key=" other-key ")) == "other-key"


def test_without_a_configured_key_one_is_created_once_under_cxlake_home(config, tmp_path) -> None:
    laptop = replace(config.moved_to(tmp_path), pii_key="")
    key_file = tmp_path / "pii.key"
    assert not key_file.exists()

    first = pii_key(laptop)

    # A random 256-bit key in hex, readable by its owner only, and the same on every later call
    # (hashes must join across nights).
    assert len(first) == 64 and int(first, 16) >= 0
    assert key_file.read_text() == first
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert pii_key(laptop) == first


def test_a_key_file_cut_short_is_refused_not_used(config, tmp_path) -> None:
    import pytest

    from jobs.silver.pii import PiiKeyError

    laptop = replace(config.moved_to(tmp_path), pii_key="")
    (tmp_path / "pii.key").write_text("")  # what a kill between create and write left behind
    with pytest.raises(PiiKeyError, match=r"pii.key holds 0 characters, not a key"):
        pii_key(laptop)
    assert not list(tmp_path.glob(".pii.key.*"))  # and no key was written aside and left there


def test_two_processes_creating_the_key_at_once_end_with_one_key(config, tmp_path) -> None:
    import multiprocessing

    laptop = replace(config.moved_to(tmp_path), pii_key="")
    context = multiprocessing.get_context("spawn")  # no fork of a process that runs a JVM gateway
    with context.Pool(4) as pool:
        keys = pool.map(pii_key, [laptop] * 8)
    assert len(set(keys)) == 1 and (tmp_path / "pii.key").read_text() == keys[0]
    assert not list(tmp_path.glob(".pii.key.*"))


def test_a_night_hashing_with_another_key_than_the_lakes_stops_before_writing(spark, lake_config) -> None:
    import pytest

    from jobs.lake.tables import table_version
    from jobs.silver.pii import (
        FINGERPRINT_PROPERTY,
        PiiKeyError,
        checked_pii_key,
        key_fingerprint,
        record_key_fingerprint,
    )

    table = "silver.orders"
    spark.createDataFrame([("O1",)], "order_id string").write.format("delta").save(lake_config.table_path(table))
    # A table from before fingerprints: tonight's key is recorded (one commit, once: the next
    # night finds it recorded).
    first = checked_pii_key(spark, lake_config, table)
    record_key_fingerprint(spark, lake_config, table, first)
    next_night = checked_pii_key(spark, lake_config, table)
    record_key_fingerprint(spark, lake_config, table, next_night)
    assert table_version(spark, lake_config, table) == 1
    shown = spark.sql(f"SHOW TBLPROPERTIES delta.`{lake_config.table_path(table)}` ('{FINGERPRINT_PROPERTY}')")
    assert shown.collect()[0]["value"] == key_fingerprint(first.value) != first.value
    assert next_night.value == first.value  # the same key passes

    other_machine = replace(lake_config, pii_key="a-different-key-0123456789")
    with pytest.raises(PiiKeyError, match=r"silver.orders's e-mail and phone hashes were made with another key"):
        checked_pii_key(spark, other_machine, table)
