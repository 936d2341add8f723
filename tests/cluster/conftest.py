"""The local-mode reference night the cluster and object-store tests compare their lakes with."""

from __future__ import annotations

from dataclasses import replace

import pytest
from night_runs import LANDING, NAMED_TABLES, RUN_DATE, snapshot

from jobs import nightly
from jobs.ingest.bronze import SOURCES


@pytest.fixture(scope="session")
def local_reference(spark, config, tmp_path_factory) -> dict[str, list]:
    """The night's tables built in local mode by this process's session, on a private lake."""
    home = tmp_path_factory.mktemp("local_reference")
    local = replace(config, home=home, lake_root=str(home / "lake"), landing_root=str(LANDING))
    for source in SOURCES:
        nightly.ingest(source, RUN_DATE, local)
    nightly.validate_bronze(RUN_DATE, local)
    nightly.build_silver(RUN_DATE, local)
    nightly.build_gold(RUN_DATE, local)
    nightly.build_journey(RUN_DATE, local)
    nightly.build_features(RUN_DATE, local)
    reference = snapshot(spark, local)
    assert all(reference.get(table) for table in NAMED_TABLES), sorted(reference)
    return reference
