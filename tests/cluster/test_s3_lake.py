"""The nightly data steps with the lake on an S3-compatible object store (moto's server, localhost).

The driver is a fresh process configured only by ``CXLAKE_*``: ``CXLAKE_LAKE_ROOT=s3a://...`` and,
in ``CXLAKE_SPARK_CONF``, the ``hadoop-aws`` package and the ``fs.s3a.*`` settings of the endpoint.
Raw landing files stay on local disk (the driver reads them with local file calls). The bucket's
objects are then downloaded and read as local Delta tables: they must equal, row for row, the same
steps' tables in local mode, so the Delta logs written through s3a are complete and self-contained.

First run only: ``hadoop-aws`` and the AWS SDK v2 ``bundle`` it depends on (~660 MB) are resolved
from Maven Central into ``~/.ivy2*``.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer
from night_runs import (
    NAMED_TABLES,
    SMALL_SPARK_CONF,
    NightRun,
    mismatched_tables,
    run_alongside_reference,
    snapshot,
    spark_conf,
)

from jobs.devtools.cluster import free_ports, spark_home

BUCKET = "cxlake-test"
# Dummies: moto accepts any key pair.
ACCESS_KEY, SECRET_KEY, REGION = "testing", "testing", "us-east-1"


def hadoop_aws_package() -> str:
    """``hadoop-aws`` of the Hadoop version pyspark ships: it must match ``hadoop-client-api``."""
    (api_jar,) = (spark_home() / "jars").glob("hadoop-client-api-*.jar")
    version = api_jar.name.removeprefix("hadoop-client-api-").removesuffix(".jar")
    return f"org.apache.hadoop:hadoop-aws:{version}"


def s3a_settings(endpoint: str) -> dict[str, str]:
    """What a Spark driver needs to use the lake on ``endpoint`` through s3a (config only)."""
    return {
        # Merged with Delta's own package by jobs.lake.spark.get_spark.
        "spark.jars.packages": hadoop_aws_package(),
        "spark.hadoop.fs.s3a.endpoint": endpoint,
        "spark.hadoop.fs.s3a.endpoint.region": REGION,
        "spark.hadoop.fs.s3a.path.style.access": "true",
        "spark.hadoop.fs.s3a.connection.ssl.enabled": "false",
        "spark.hadoop.fs.s3a.aws.credentials.provider": "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
        "spark.hadoop.fs.s3a.access.key": ACCESS_KEY,
        "spark.hadoop.fs.s3a.secret.key": SECRET_KEY,
        # Delta's default S3 log store is safe for one writer at a time, which a nightly DAG with
        # max_active_runs=1 is; several concurrent writers would need
        # spark.delta.logStore.s3a.impl=io.delta.storage.S3DynamoDBLogStore (delta-storage-s3-dynamodb).
    }


@pytest.fixture(scope="module")
def s3():
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not one line per S3 request
    (port,) = free_ports(1)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name=REGION,
    )
    client.create_bucket(Bucket=BUCKET)
    yield endpoint, client
    server.stop()


@pytest.fixture(scope="module")
def s3_night(s3, tmp_path_factory, request):
    endpoint, _ = s3
    home = tmp_path_factory.mktemp("s3_home")
    night = NightRun(
        home,
        SPARK_MASTER="local[2]",
        LAKE_ROOT=f"s3a://{BUCKET}/lake",
        SPARK_CONF=spark_conf({**SMALL_SPARK_CONF, **s3a_settings(endpoint)}),
    )
    return home, run_alongside_reference(night, request)


def _download(client, prefix: str, target: Path) -> list[str]:
    keys = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        keys += [item["Key"] for item in page.get("Contents", [])]
    for key in keys:
        if key.endswith("/"):  # an s3a directory marker, not a file
            continue
        path = target / key.removeprefix(prefix)
        path.parent.mkdir(parents=True, exist_ok=True)
        client.download_file(BUCKET, key, str(path))
    return keys


def test_the_night_wrote_its_lake_to_the_bucket_only(s3, s3_night) -> None:
    _, client = s3
    home, report = s3_night
    # hadoop-aws came from CXLAKE_SPARK_CONF's packages, merged with Delta's (resolved or cached).
    assert any(jar.startswith("org.apache.hadoop_hadoop-aws-") for jar in report["spark"]["jars"]), report["spark"][
        "jars"
    ]
    assert any(jar.startswith("io.delta_delta-spark_") for jar in report["spark"]["jars"]), report["spark"]["jars"]
    keys = [
        item["Key"]
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="lake/")
        for item in page.get("Contents", [])
    ]
    assert any(k.startswith("lake/gold/cx_kpi_daily/_delta_log/") for k in keys)
    assert not (home / "lake").exists()


def test_s3_tables_equal_local_mode(spark, config, s3, s3_night, local_reference, tmp_path) -> None:
    _, client = s3
    _download(client, "lake/", tmp_path / "lake")
    on_s3 = snapshot(replace(config, home=tmp_path, lake_root=str(tmp_path / "lake")))
    for table in NAMED_TABLES:
        assert on_s3[table] == local_reference[table], table
    assert mismatched_tables(on_s3, local_reference) == []
