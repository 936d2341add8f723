"""Run one night's data steps (ingest .. build_features, no model steps) as a fresh process would.

Usage: ``python tests/cluster/run_nightly_steps.py YYYY-MM-DD``. Everything comes from the
``CXLAKE_*`` environment, as for an Airflow task: the Spark master, the lake root (local or
``s3a://``), extra Spark settings. Prints one JSON line: the steps' results and which Spark master
and application ran them.
"""

from __future__ import annotations

import json
import sys

from jobs import nightly
from jobs.config import load_config
from jobs.ingest.bronze import SOURCES
from jobs.spark import get_spark


def main(run_date: str) -> None:
    config = load_config()
    report: dict = {"ingest": [nightly.ingest(source, run_date, config) for source in SOURCES]}
    report["validate_bronze"] = nightly.validate_bronze(run_date, config)
    nightly.build_silver(run_date, config)
    nightly.build_gold(run_date, config)
    report["journey"] = nightly.build_journey(run_date, config)
    report["features"] = nightly.build_features(run_date, config)
    context = get_spark(config).sparkContext
    # The driver counts as one entry; on a cluster every executor adds one.
    executors = [f"{e.host()}:{e.port()}" for e in context._jsc.sc().statusTracker().getExecutorInfos()]
    report["spark"] = {
        "master": context.master,
        "application_id": context.applicationId,
        "executors": executors,
        "jars_packages": context.getConf().get("spark.jars.packages"),
    }
    print(json.dumps(report, default=str))


if __name__ == "__main__":
    main(sys.argv[1])
