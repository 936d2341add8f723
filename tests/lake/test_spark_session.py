"""The session factory remembers Ivy's answer: later starts use the resolved jar files."""

from __future__ import annotations

import os
from urllib.parse import urlparse

from jobs.lake.spark import (
    _class_archive_options,
    class_archive_path,
    jar_packages,
    resolved_jars_cache,
    spark_settings,
)


def test_the_resolved_delta_jars_are_kept_for_the_next_start(spark, config) -> None:
    # The session fixture started Spark either through Ivy (which wrote the list) or from the list.
    cache = resolved_jars_cache(jar_packages(spark_settings(config)))
    jars = cache.read_text().split(",")
    assert all(os.path.exists(urlparse(jar).path) for jar in jars)
    assert any("/io.delta_delta-spark_" in jar for jar in jars)
    # The OpenLineage listener's jar is there with lineage off too: one class archive either way.
    assert any("/io.openlineage_openlineage-spark_" in jar for jar in jars)
    # The running session has exactly those jars, whichever way it started.
    assert spark.sparkContext.getConf().get("spark.jars").split(",") == jars


def test_the_driver_maps_the_class_archive_exactly_when_this_machine_has_one(spark) -> None:
    # `make test` writes the archive first (`cxlake jvm-archive --if-missing`); a bare pytest may not.
    jars = spark.sparkContext.getConf().get("spark.jars").split(",")
    archive = class_archive_path(jars)
    arguments = list(spark._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments())
    assert (f"-XX:SharedArchiveFile={archive}" in arguments) == archive.exists()


def test_class_archive_options_write_use_or_skip_the_archive(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("CXLAKE_JVM_ARCHIVE_DUMP", raising=False)
    jars = ["file:/somewhere/delta-spark.jar"]
    assert _class_archive_options([]) == ""  # jars not resolved yet: no key to find an archive by
    assert _class_archive_options(jars) == ""  # none written on this machine
    archive = class_archive_path(jars)
    assert archive.parent == tmp_path / "cxlake"
    archive.parent.mkdir()
    archive.write_bytes(b"")
    assert _class_archive_options(jars).split()[0] == f"-XX:SharedArchiveFile={archive}"
    assert class_archive_path([*jars, "file:/other.jar"]) != archive  # other jars, other archive
    # The archive's own process writes it instead of reading one.
    monkeypatch.setenv("CXLAKE_JVM_ARCHIVE_DUMP", str(tmp_path / "new.jsa"))
    assert _class_archive_options(jars).split()[0] == f"-XX:ArchiveClassesAtExit={tmp_path / 'new.jsa'}"


def test_a_local_spark_listens_on_loopback_only(spark, config) -> None:
    # The session of the tests is a local one: its driver and block manager ports are not served
    # to the network (a cluster master keeps Spark's defaults, see jobs.lake.spark.spark_settings).
    from dataclasses import replace

    from jobs.lake.spark import spark_settings

    conf = spark.sparkContext.getConf()
    assert (conf.get("spark.driver.bindAddress"), conf.get("spark.driver.host")) == ("127.0.0.1", "127.0.0.1")
    cluster = spark_settings(replace(config, spark_master="spark://10.0.0.5:7077"))
    assert "spark.driver.bindAddress" not in cluster and "spark.driver.host" not in cluster
