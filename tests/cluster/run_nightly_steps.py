"""Run one night's data steps (ingest .. build_features, no model steps) as a fresh process would.

Usage: ``python tests/cluster/run_nightly_steps.py YYYY-MM-DD``. Everything comes from the
``CXLAKE_*`` environment, as for an Airflow task: the Spark master, the lake root (local or
``s3a://``), extra Spark settings. Prints one JSON line: each step's result and seconds (the first
includes the SparkSession start), and which Spark master and application ran them.
"""

from __future__ import annotations

import json
import sys
import time

from jobs.ingest.bronze import SOURCES
from jobs.lake.config import load_config
from jobs.lake.spark import get_spark
from jobs.pipeline import nightly


def main(run_date: str) -> None:
    config = load_config()
    report: dict = {"seconds": {}}

    def step(name: str, call, *args):
        started = time.monotonic()
        report[name] = call(*args, run_date, config)
        report["seconds"][name] = round(time.monotonic() - started, 1)

    for source in SOURCES:
        step(f"ingest_{source}", nightly.ingest, source)
    step("validate_bronze", nightly.validate_bronze)
    step("build_silver", nightly.build_silver)
    step("build_journey", nightly.build_journey)
    step("build_gold", nightly.build_gold)  # the DAG's order: the KPIs read the journey's funnel
    step("build_features", nightly.build_features)
    context = get_spark(config).sparkContext
    # The driver counts as one entry; on a cluster every executor adds one.
    executors = [f"{e.host()}:{e.port()}" for e in context._jsc.sc().statusTracker().getExecutorInfos()]
    report["spark"] = {
        "master": context.master,
        "application_id": context.applicationId,
        "executors": executors,
        # The jar files the driver loaded: Ivy's resolution on a first start, the cached list after.
        "jars": [jar.rsplit("/", 1)[-1] for jar in context.getConf().get("spark.jars", "").split(",") if jar],
    }
    print(json.dumps(report, default=str))


if __name__ == "__main__":
    main(sys.argv[1])
