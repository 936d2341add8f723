"""Two writers commit to one table at once: the one that loses Delta's commit race writes again.

Delta's optimistic concurrency fails the later of two conflicting commits (Spark's
``ConcurrentAppendException``, delta-rs' ``CommitFailedError``: the other writer added files
where this MERGE had read) instead of losing either; :func:`jobs.lake.commits.retried_on_conflict`
redoes the whole write against the new version. Both engines of a MERGE are raced
(``CXLAKE_MERGE_ENGINE``: ``auto`` runs it through delta-rs on this local lake). The race is made
certain, not hoped for: the first MERGE's source takes seconds to compute (a sleeping Python UDF)
while its transaction has read the table, and the second writer commits meanwhile.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace

import pyspark.sql.functions as F
import pytest
from frames import contract_frame

from jobs.lake import commits
from jobs.lake.tables import merge_rows, read_table

TABLE = "silver.orders"
SLOW_SOURCE_SECONDS = 6.0


def _orders(spark, *order_ids: str, customer: str = "C"):
    return contract_frame(spark, TABLE, [{"order_id": o, "customer_id": f"{customer}-{o}"} for o in order_ids])


@pytest.mark.parametrize(
    ("engine", "lost_with"), [("auto", "CommitFailedError"), ("spark", "ConcurrentAppendException")]
)
def test_a_merge_that_loses_the_commit_race_merges_again_and_both_writes_stay(
    spark, lake_config, caplog: pytest.LogCaptureFixture, engine: str, lost_with: str
) -> None:
    lake_config = replace(lake_config, merge_engine=engine)
    merge_rows(spark, _orders(spark, "O1"), lake_config, TABLE, ("order_id",))

    @F.udf("string")
    def slowly(order_id):  # noqa: ANN001, ANN202 - a plain UDF (type hints would ask for an Arrow one)
        time.sleep(SLOW_SOURCE_SECONDS)  # the MERGE's transaction is open meanwhile
        return order_id

    # Both writers bring O2: the conflict is real in either engine (delta-rs checks only the files
    # the losing MERGE's keys could be in).
    slow_source = _orders(spark, "O2", customer="slow").withColumn("order_id", slowly("order_id"))
    failures: list[BaseException] = []

    def slow_writer() -> None:
        try:
            merge_rows(spark, slow_source, lake_config, TABLE, ("order_id",))
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            failures.append(error)

    with caplog.at_level(logging.WARNING, logger="jobs.lake.commits"), commits.observed() as seen:
        first = threading.Thread(target=slow_writer)
        first.start()
        time.sleep(SLOW_SOURCE_SECONDS / 3)
        merge_rows(spark, _orders(spark, "O2", "O3", customer="fast"), lake_config, TABLE, ("order_id",))  # first
        first.join()

    assert failures == []
    stored = sorted((r.order_id, r.customer_id) for r in read_table(spark, lake_config, TABLE).collect())
    # The slow MERGE lost once (the fast one's new file lies where it had read) and wrote again,
    # over the fast one's O2: two writes, two commits, one retry.
    assert stored == [("O1", "C-O1"), ("O2", "slow-O2"), ("O3", "fast-O3")]
    retries = [r.getMessage() for r in caplog.records if "another writer committed first" in r.getMessage()]
    assert len(retries) == 1, retries
    assert lost_with in retries[0]
    assert len(seen) == 2
