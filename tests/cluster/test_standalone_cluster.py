"""The nightly data steps on a real Spark standalone cluster (one master, one 1-core worker, localhost).

The driver is a fresh process whose only difference from a laptop run is its configuration
(``CXLAKE_SPARK_MASTER=spark://...``); its tables must equal, row for row, those of the same steps
in local mode. The worker's folder shows that the executors did the work, with the driver's
Python and the Delta jars the driver resolved from ``spark.jars.packages``.

First run only: Delta's jars are resolved from Maven Central into ``~/.ivy2*`` (a few MB).
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from night_runs import (
    LANDING,
    NAMED_TABLES,
    SMALL_SPARK_CONF,
    NightRun,
    mismatched_tables,
    run_alongside_reference,
    snapshot,
    spark_conf,
)

from jobs.devtools.cluster import ClusterStartError, standalone_cluster, worker_apps
from jobs.lake.config import PROJECT_ROOT


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    work_dir = tmp_path_factory.mktemp("spark_cluster")
    with standalone_cluster(work_dir, cores=1, memory="1g") as master_url:
        yield work_dir, master_url


@pytest.fixture(scope="module")
def cluster_night(cluster, tmp_path_factory, request):
    _, master_url = cluster
    home = tmp_path_factory.mktemp("cluster_home")
    night = NightRun(home, SPARK_MASTER=master_url, SPARK_CONF=spark_conf(SMALL_SPARK_CONF))
    return home, run_alongside_reference(night, request)


def test_the_night_ran_on_the_cluster_executors(cluster, cluster_night) -> None:
    work_dir, master_url = cluster
    _, report = cluster_night
    assert report["spark"]["master"] == master_url
    assert len(report["spark"]["executors"]) == 2  # the driver and the worker's one executor
    app_id = report["spark"]["application_id"]
    assert app_id in worker_apps(work_dir)
    (executor_dir,) = (work_dir / "worker" / app_id).iterdir()
    # Executors fetch the jars of spark.jars.packages (resolved by the driver) into their folder.
    fetched = {p.name for p in executor_dir.glob("*.jar")}
    assert "io.delta_delta-spark_4.2_2.13-4.4.0.jar" in fetched, sorted(fetched)
    assert "io.delta_delta-storage-4.4.0.jar" in fetched
    # The executor's working folder is the worker's, outside the repository.
    assert not executor_dir.resolve().is_relative_to(PROJECT_ROOT)


def test_cluster_tables_equal_local_mode(spark, config, cluster_night, local_reference) -> None:
    home, _ = cluster_night
    on_cluster = snapshot(replace(config, home=home, lake_root=str(home / "lake"), landing_root=str(LANDING)))
    for table in NAMED_TABLES:
        assert on_cluster[table] == local_reference[table], table
    assert mismatched_tables(on_cluster, local_reference) == []


def test_a_worker_that_cannot_start_is_reported_with_both_logs(tmp_path) -> None:
    # "lots" is no memory size: the worker prints its usage and exits before registering.
    with pytest.raises(
        ClusterStartError, match=r"(?s)the Spark worker exited with code 1.*master\.log.*worker\.log.*Usage: Worker"
    ):
        with standalone_cluster(tmp_path, memory="lots"):
            pass
