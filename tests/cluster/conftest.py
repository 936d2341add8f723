"""The local-mode reference night the cluster and object-store tests compare their lakes with."""

from __future__ import annotations

import fcntl
import os
import shutil
from dataclasses import replace

import pytest
from night_runs import LANDING, NAMED_TABLES, RUN_DATE, snapshot

from jobs.ingest.bronze import SOURCES
from jobs.pipeline import nightly


@pytest.fixture(scope="session")
def local_reference(spark, config, tmp_path_factory) -> dict[str, list]:
    """The night's tables built in local mode by this process's session, on a private lake.

    Built once per test run: under pytest-xdist the workers share one lake in the run's common
    temporary folder (the first worker to get the lock builds it, the others read it).
    """
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # this run's folder, common to its workers
    home = root / "cluster_local_reference"
    local = replace(config, home=home, lake_root=str(home / "lake"), landing_root=str(LANDING))
    with (root / "cluster_local_reference.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (home / "built").exists():
            shutil.rmtree(home, ignore_errors=True)  # what a worker that failed half-way left
            home.mkdir(parents=True)
            for source in SOURCES:
                nightly.ingest(source, RUN_DATE, local)
            nightly.validate_bronze(RUN_DATE, local)
            nightly.build_silver(RUN_DATE, local)
            nightly.build_journey(RUN_DATE, local)
            nightly.build_gold(RUN_DATE, local)  # the DAG's order: the KPIs read the funnel
            nightly.build_features(RUN_DATE, local)
            (home / "built").touch()
    reference = snapshot(local)
    assert all(reference.get(table) for table in NAMED_TABLES), sorted(reference)
    return reference
