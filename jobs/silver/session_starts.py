"""Silver ``session_starts``: the identified app and web visits that open a session, and until when.

``features.customer_daily`` counts sessions as of each day (``sessions_7d``, ``sessions_prev_28d``)
under the point-in-time rule: a visit counts once it arrived, and a visit opens a session unless
an earlier visit of its customer lies within the session gap (:func:`jobs.domain.is_new_session`,
as the journey's sessions: ordered by time then event id, gap in whole seconds). That earlier
visit may arrive later than this one: from its arrival date on, this visit is a continuation. So
each visit has ``blocked_from``, the earliest arrival among the visits just before it, and counts
as a start as of D when ``first_ingest_date <= D`` and ``blocked_from`` is null or later than D.

Windowing every visit of 35 days each night cost the large bench's feature stage ~11 s of its
~30 (5.6 M visits, shuffled and sorted per customer). A visit's ``blocked_from`` depends only on
the visits of its customer within the gap before it, so a night changes it only for its customers'
visits from the first day its own visits are dated: those customers are recomputed from there (with
the day before as context) and only the rows that changed are written. A visit blocked from its own
arrival never counts: it has no row.
"""

from __future__ import annotations

import datetime as dt

import pyspark.sql.functions as F
from pyspark.sql import Column, DataFrame, SparkSession, Window

from jobs.domain import SESSION_GAP_MINUTES, customer_key, oldest_arrival_date
from jobs.lake import retractions
from jobs.lake.config import LakeConfig
from jobs.lake.contracts import load_contract
from jobs.lake.tables import (
    broadcast_if_one_night,
    first_arrived,
    merge_changed_rows,
    merge_rows,
    read_table,
    table_exists,
)

CONTRACT = "silver.session_starts"
SESSION_CHANNELS = ("app", "web")


def _is_identified_visit() -> Column:
    """An app or web visit whose raw event carried the ``customer_id`` (device-linked anonymous
    activity is attributed when a link arrives, possibly later, and would leak)."""
    return F.col("customer_id").isNotNull() & F.col("channel").isin(*SESSION_CHANNELS)


def with_blocked_from(visits_df: DataFrame) -> DataFrame:
    """Visits (``customer_key``, ``event_id``, ``event_at``, ``first_ingest_date``) -> the same rows
    with ``blocked_from``: the earliest ``first_ingest_date`` of the customer's visits within the
    session gap before each (null when there is none: a start on every day from its arrival)."""
    second = F.unix_seconds("event_at")
    earlier_seconds = Window.partitionBy("customer_key").orderBy(second).rangeBetween(-SESSION_GAP_MINUTES * 60, -1)
    # Within one second the journey orders by time then event id: an earlier id of the same
    # second is "before" and within the gap.
    same_second_before = (
        Window.partitionBy("customer_key", second)
        .orderBy("event_at", "event_id")
        .rowsBetween(Window.unboundedPreceding, -1)
    )
    return visits_df.withColumn(
        "blocked_from",
        F.least(F.min("first_ingest_date").over(earlier_seconds), F.min("first_ingest_date").over(same_second_before)),
    )


def build_session_starts(interactions_df: DataFrame) -> DataFrame:
    """``silver.interactions`` rows -> ``silver.session_starts`` rows.

    Args:
        interactions_df: every interaction of the customers concerned (any superset: only the
            visits with a ``customer_id`` on the app and web channels are read), from the session
            gap before the first row wanted.
    """
    contract = load_contract(CONTRACT)
    visits = interactions_df.filter(_is_identified_visit()).select(
        "event_id",
        customer_key(F.col("customer_id")).alias("customer_key"),
        "event_at",
        "event_date",
        "first_ingest_date",
    )
    starts = with_blocked_from(visits).filter(
        F.col("blocked_from").isNull() | (F.col("blocked_from") > F.col("first_ingest_date"))
    )
    return starts.select(*[F.col(c.name).cast(c.type) for c in contract.columns])


def _identified_visits(interactions_df: DataFrame) -> DataFrame:
    # ``is_identified`` (a customer_id) is a partition column: the anonymous files are not read.
    return interactions_df.filter(F.col("is_identified") & _is_identified_visit())


def run(spark: SparkSession, config: LakeConfig, run_date: str, through: str | None = None) -> None:
    """Recompute the session starts of the customers the nights ``run_date`` to ``through``
    touched, after :func:`jobs.silver.interactions.run` merged them; write those that changed.

    Touched: a customer with a visit that first arrived on those nights (a backfilled earlier
    night takes over its copies), a visit those nights' rerun retracted, or a stored start that
    first arrived on them (its visit may have changed customer). Each is recomputed from the
    earliest such day of all of them, with the day before as context (the gap is 30 minutes);
    their stored rows from that day on that the recomputation no longer gives are deleted.

    Before the table exists (an empty lake, or a lake from before it) every visit is built at once.
    """
    contract = load_contract(CONTRACT)
    visits = _identified_visits(read_table(spark, config, "silver.interactions"))
    path = config.table_path(contract.name)
    if not table_exists(spark, path):
        merge_rows(
            spark,
            build_session_starts(visits),
            config,
            contract.name,
            contract.keys,
            partition_by=contract.partition_by,
        )
        return
    oldest = oldest_arrival_date(run_date, config.lateness_days)
    stored = read_table(spark, config, contract.name)
    retracted = retractions.of_nights(spark, config, run_date, through).filter(
        F.col("table_name") == "silver.interactions"
    )
    touched = (
        first_arrived(visits, run_date, through, oldest)
        .select(customer_key(F.col("customer_id")).alias("customer_key"), "event_date")
        .unionByName(first_arrived(stored, run_date, through, oldest).select("customer_key", "event_date"))
        .unionByName(retracted.select("customer_key", F.col("row_date").alias("event_date")))
        .filter(F.col("customer_key").isNotNull())
        .groupBy("customer_key")
        .agg(F.min("event_date").alias("start_date"))
        # Small (the night's visitors), read by two joins and an aggregation: computed once.
        .localCheckpoint()
    )
    since = touched.agg(F.min("start_date")).first()[0]
    if since is None:
        return
    context = F.lit(since - dt.timedelta(days=1))
    recomputed = build_session_starts(
        visits.filter(F.col("event_date") >= context).join(
            broadcast_if_one_night(touched.select(F.col("customer_key").alias("_key")), through),
            customer_key(F.col("customer_id")) == F.col("_key"),
            "left_semi",
        )
    ).filter(F.col("event_date") >= F.lit(since))
    merge_changed_rows(
        spark,
        recomputed,
        config,
        contract.name,
        contract.keys,
        "event_date",
        stored_since=since,
        scope=broadcast_if_one_night(touched.select("customer_key"), through),
    )
