"""The session factory remembers Ivy's answer: later starts use the resolved jar files."""

from __future__ import annotations

import os
from urllib.parse import urlparse

from jobs.lake.spark import delta_package, resolved_jars_cache


def test_the_resolved_delta_jars_are_kept_for_the_next_start(spark) -> None:
    # The session fixture started Spark either through Ivy (which wrote the list) or from the list.
    cache = resolved_jars_cache(delta_package())
    jars = cache.read_text().split(",")
    assert all(os.path.exists(urlparse(jar).path) for jar in jars)
    assert any("/io.delta_delta-spark_" in jar for jar in jars)
    # The running session has exactly those jars, whichever way it started.
    assert spark.sparkContext.getConf().get("spark.jars").split(",") == jars
