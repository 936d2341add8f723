"""What the nightly gates validate, declared: per table, the slice the night touched and the
expectations beyond its contract (:data:`BRONZE`, :data:`SILVER`, :data:`GOLD`).

Only the rows the night wrote are validated (the run date's bronze partitions, rows first arrived
on the run date, orders whose scans arrived, the journey rows the night's merge wrote and the
daily rows of the days they are on, the run date's KPI window and feature partitions), so the
gate's cost follows the day, not the history. Reference tables are only probed for those rows' keys.

Every suite runs its contract's rules (:func:`contract_expectations`) and then the declared extras.
Severity follows what the pipeline guarantees. Critical = true by construction, so a failure
means a bug or corrupt input: contract rules (not-null, enums, ranges, keys), bronze rows equal to
the rows ingestion accepted, each source's quarantined lines within its ``quarantine_limit`` (a
feed turned to junk), every landing file ingested as it is now (none arrived or changed after its
ingest), no event arriving before it happened, no more silver rows than bronze
accepted, customer keys of the journey and the features existing in ``silver.customers``, feature
orders existing in ``silver.orders``, and the run date's KPI row. Warning = legal but worth a
look: scans whose order has not arrived (or was quarantined), an arrival day without orders, a day
without journey or funnel rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol

import pyspark.sql.functions as F

from jobs.lake.contracts import load_contract, source_names
from jobs.lake.tables import changed_rows_of_commit, read_table, table_exists
from jobs.quality.gate import Check
from jobs.quality.suites import (
    CRITICAL,
    WARNING,
    at_most_rows_expectation,
    contract_expectations,
    freshness_expectation,
    has_rows_expectation,
    not_before_expectation,
    reference_expectation,
    reference_flag_column,
    with_date_flag,
    with_reference_flag,
)

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

    from jobs.lake.config import LakeConfig

ARRIVED_AFTER_EVENT = "an event cannot arrive before it happened (event date <= first arrival date)"
RUN_DATE_FLAG = "on_run_date"


@dataclass(frozen=True)
class Night:
    """What a gate knows of the night it validates.

    Attributes:
        journey_days: the touchpoint days the night's journey merge changed (``build_journey``);
            None reads them as the run date only.
        journey_version: the journey table version that merge committed (None: nothing written,
            or a result from before versions were passed on).
        landing_now: per source, the run date's landing files as listed when the gate runs
            (``source_file`` -> size, modification time in ns); None: not compared.
    """

    spark: SparkSession
    config: LakeConfig
    run_date: str
    journey_days: list[str] | None = None
    journey_version: int | None = None
    landing_now: dict[str, dict[str, tuple[int, int]]] | None = None
    _tables: dict[str, DataFrame] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def day(self) -> Column:
        return F.lit(self.run_date).cast("date")

    @property
    def oldest_event_date(self) -> dt.date:
        """Events older than the lateness bound were quarantined: none of tonight's arrivals is older."""
        return dt.date.fromisoformat(self.run_date) - dt.timedelta(days=self.config.lateness_days)

    def read(self, table: str) -> DataFrame:
        """``table``, one read per gate (a reference table serves every suite that probes it)."""
        if table not in self._tables:
            self._tables[table] = read_table(self.spark, self.config, table)
        return self._tables[table]

    def exists(self, table: str) -> bool:
        return table_exists(self.spark, self.config.table_path(table))

    @cached_property
    def accepted(self) -> dict[str, int]:
        """Bronze rows accepted tonight per source (``ops.ingest_audit``), read once a gate asks."""
        audit = self.read("ops.ingest_audit").filter(F.col("run_date") == self.day)
        return {row["source"]: row["accepted_rows"] for row in audit.collect()}


# Slices: ``(night, table) -> DataFrame``, the rows of ``table`` the night touched.
Slicer = Callable[[Night, str], "DataFrame"]


@dataclass(frozen=True)
class OnRunDate:
    """Rows whose ``column`` is the run date: the night's partition, or the rows first arrived tonight.

    With ``event_partition`` (the event-date partition column) only the partitions the lateness
    bound allows are read: a partition-pruned read instead of a scan of the history.
    """

    column: str
    event_partition: str | None = None

    def __call__(self, night: Night, table: str) -> DataFrame:
        tonight = F.col(self.column) == night.day
        if self.event_partition:
            tonight = (F.col(self.event_partition) >= F.lit(night.oldest_event_date)) & tonight
        return night.read(table).filter(tonight)


@dataclass(frozen=True)
class OnJourneyDays:
    """Rows whose ``column`` is one of the days the night's journey merge changed."""

    column: str

    def __call__(self, night: Night, table: str) -> DataFrame:
        days = night.journey_days if night.journey_days is not None else [night.run_date]
        return night.read(table).filter(F.col(self.column).isin([F.lit(d).cast("date") for d in days]))


@dataclass(frozen=True)
class JourneyRowsWritten:
    """The journey rows the night's merge inserted or updated (its commit's change data feed).

    A night re-attributing old activity changes a few rows on each of several days; validating
    whole days would read ~10x the rows it wrote (the quick bench's last night: 8 days, ~300 k
    rows, for 38 k rows written). Without the commit's version (a journey result from an older
    run), the rows of the changed days.
    """

    def __call__(self, night: Night, table: str) -> DataFrame:
        if night.journey_version is None:
            return OnJourneyDays("touchpoint_date")(night, table)
        return changed_rows_of_commit(night.spark, night.config.table_path(table), night.journey_version)


@dataclass(frozen=True)
class OnJourneyCustomerDays:
    """Rows of the customer-days the night's journey merge changed (``customer_key`` and
    ``column`` against the rows its commit wrote or took away, old values included: a
    re-attributed row changes the day of the customer it left too).

    A night's late arrivals change a few customers on each of several days, and
    :mod:`jobs.gold.journey_daily` rewrites only their rows there (the large bench's last night:
    ~50 k of the 8 days' 335 k rows); the other rows of those days are as an earlier gate saw
    them. Without the commit's version, every row of the changed days.
    """

    column: str

    def __call__(self, night: Night, table: str) -> DataFrame:
        days = OnJourneyDays(self.column)(night, table)
        if night.journey_version is None:
            return days
        changed = changed_rows_of_commit(
            night.spark,
            night.config.table_path("gold.customer_journey"),
            night.journey_version,
            ("insert", "update_postimage", "update_preimage", "delete"),
        ).select("customer_key", F.col("touchpoint_date").alias(self.column))
        # A semi join keeps each row once however many changed rows match it: no distinct first.
        return days.join(changed, ["customer_key", self.column], "left_semi")


FIRST_ARRIVED = OnRunDate("first_ingest_date")
EVENTS_FIRST_ARRIVED = OnRunDate("first_ingest_date", event_partition="event_date")


def orders_scanned_tonight(night: Night, table: str) -> DataFrame:
    """Rows of the orders a scan of tonight's ``bronze.tracking_scans`` partition names."""
    scans = night.read("bronze.tracking_scans").filter(F.col("_ingest_date") == night.day)
    return night.read(table).join(scans.select("order_id").distinct(), "order_id", "left_semi")


def customers_touched(night: Night, table: str) -> DataFrame:
    """Customers of the orders and of the interactions first arrived tonight."""
    touched = (
        FIRST_ARRIVED(night, "silver.orders")
        .select("customer_id")
        .union(EVENTS_FIRST_ARRIVED(night, "silver.interactions").select("customer_id"))
        .distinct()
    )
    return night.read(table).join(touched, "customer_id", "left_semi")


def kpi_window(night: Night, table: str) -> DataFrame:
    """The KPI days the night's arrivals can change (lateness bound .. run date).

    Their ``as_of_date`` is the run date, or later when later nights already ran (a backfill or a
    rerun: their windows were redone).
    """
    window = F.col("kpi_date").between(F.lit(night.oldest_event_date), night.day)
    return night.read(table).filter(window & (F.col("as_of_date") >= night.day))


# Extras: expectations beyond the contract's. Each may add the column its expectation reads.
class Extra(Protocol):
    def apply(self, df: DataFrame, night: Night) -> tuple[DataFrame, list[Any]]:
        """The slice (with any column the expectations read) and the expectations."""
        ...


@dataclass(frozen=True)
class NotBefore:
    """``later >= earlier`` on every row (:func:`not_before_expectation`)."""

    later: str
    earlier: str
    check: str
    severity: str = CRITICAL

    def apply(self, df: DataFrame, night: Night) -> tuple[DataFrame, list[Any]]:
        return df, [not_before_expectation(self.later, self.earlier, self.check, self.severity)]


@dataclass(frozen=True)
class HasRows:
    """The slice is not empty (freshness of a slice that is the run date's by construction)."""

    check: str
    severity: str = WARNING

    def apply(self, df: DataFrame, night: Night) -> tuple[DataFrame, list[Any]]:
        return df, [has_rows_expectation(self.check, self.severity)]


@dataclass(frozen=True)
class HasRunDate:
    """Some row's ``column`` is the run date (freshness of a slice of several days)."""

    column: str
    check: str
    severity: str = WARNING

    def apply(self, df: DataFrame, night: Night) -> tuple[DataFrame, list[Any]]:
        flagged = with_date_flag(df, self.column, night.run_date, RUN_DATE_FLAG)
        return flagged, [freshness_expectation(RUN_DATE_FLAG, self.check, self.severity)]


@dataclass(frozen=True)
class InTable:
    """Every row's ``column`` value is in ``table`` (null keys pass): a flag column added by a join,
    then an expectation on it, so failing rows show their keys."""

    column: str
    table: str
    check: str
    severity: str = CRITICAL

    def apply(self, df: DataFrame, night: Night) -> tuple[DataFrame, list[Any]]:
        flag = reference_flag_column(self.column, self.table)
        flagged = with_reference_flag(df, self.column, night.read(self.table), self.column, flag)
        return flagged, [reference_expectation(flag, self.check, self.severity)]


@dataclass(frozen=True)
class AtMostAccepted:
    """Silver rows first arrived tonight <= bronze rows accepted tonight from ``source`` (when
    audited): resent copies are dropped, never added."""

    source: str
    rows: str

    def apply(self, df: DataFrame, night: Night) -> tuple[DataFrame, list[Any]]:
        if self.source not in night.accepted:
            return df, []
        check = f"silver {self.rows} first arrived tonight <= bronze accepted"
        return df, [at_most_rows_expectation(night.accepted[self.source], check)]


INGESTED_FLAG = "ingested_as_is"
LANDING_COLUMNS = "source string, source_file string, size_now bigint, modified_now_ns bigint"


def landing_vs_ingested(night: Night, table: str) -> DataFrame:
    """``ops.ingest_files`` rows of the run date beside the landing files as they are now (full
    outer join on source and file; :attr:`Night.landing_now`), with the flag :class:`IngestedAsIs`
    checks. Sources the gate did not list are not compared."""
    stored = night.read(table).filter(F.col("run_date") == night.day)
    if night.landing_now is None:
        return stored.withColumn(INGESTED_FLAG, F.lit(True))
    listed = [
        (source, name, size, modified)
        for source, files in sorted(night.landing_now.items())
        for name, (size, modified) in sorted(files.items())
    ]
    now = night.spark.createDataFrame(listed, LANDING_COLUMNS)
    compared = stored.filter(F.col("source").isin(list(night.landing_now))).join(now, ["source", "source_file"], "full")
    same = (F.col("size_bytes") == F.col("size_now")) & (F.col("modified_ns") == F.col("modified_now_ns"))
    return compared.withColumn(INGESTED_FLAG, F.coalesce(same, F.lit(False)))


@dataclass(frozen=True)
class IngestedAsIs:
    """Every landing file of the run date was ingested as it is now: a file that arrived, changed or
    went away after the night's ingest stops the night (rerun that source's ingest for the date)."""

    def apply(self, df: DataFrame, night: Night) -> tuple[DataFrame, list[Any]]:
        check = "every landing file of the run date was ingested as it is now (else rerun its ingest)"
        return df, [reference_expectation(INGESTED_FLAG, check)]


QUARANTINE_FLAG = "quarantine_within_limit"


@dataclass(frozen=True)
class QuarantineWithinLimit:
    """Each source's quarantined lines tonight stay within its raw contract's ``quarantine_limit``
    (``max_ratio`` of the raw lines, unless they number ``min_lines`` or fewer): a feed that turned
    to junk (a wrong encoding, a broken exporter) stops the night instead of quarantining it whole.

    The slice is ``ops.ingest_audit``'s rows of the run date; the rule adds ``quarantine_ratio``,
    ``max_quarantine_ratio`` and the flag its expectation reads, so a failure shows the source.
    """

    def apply(self, df: DataFrame, night: Night) -> tuple[DataFrame, list[Any]]:
        limits = {s: load_contract(f"raw.{s}").extra.get("quarantine_limit", {}) for s in source_names()}
        max_ratio = F.create_map(
            *[x for s, lim in limits.items() for x in (F.lit(s), F.lit(float(lim.get("max_ratio", 1.0))))]
        )
        min_lines = F.create_map(
            *[x for s, lim in limits.items() for x in (F.lit(s), F.lit(int(lim.get("min_lines", 0))))]
        )
        ratio = F.when(F.col("raw_rows") > 0, F.col("quarantined_rows") / F.col("raw_rows")).otherwise(F.lit(0.0))
        flagged = (
            df.withColumn("quarantine_ratio", F.round(ratio, 6))
            .withColumn("max_quarantine_ratio", F.coalesce(max_ratio[F.col("source")], F.lit(1.0)))
            .withColumn(
                QUARANTINE_FLAG,
                (F.col("quarantined_rows") <= F.coalesce(min_lines[F.col("source")], F.lit(0)))
                | (F.col("quarantine_ratio") <= F.col("max_quarantine_ratio")),
            )
        )
        check = "quarantined lines / raw lines <= the source's quarantine_limit.max_ratio (schemas/raw)"
        return flagged, [reference_expectation(QUARANTINE_FLAG, check)]


@dataclass(frozen=True)
class TableGate:
    """One suite of a gate: the slice of ``table`` the night touched, its contract's rules, the extras.

    Attributes:
        table: the contract (and lake table); the suite is named after it (``silver.orders`` ->
            ``silver_orders``).
        slice: the rows of ``table`` the night touched.
        extra: expectations beyond the contract's, checked after them in this order.
        rows_accepted: the ``ops.ingest_audit`` source whose accepted rows the slice must number
            exactly (checked first); unaudited sources get no row count.
        index_columns: the columns naming a failing row in samples; None: the contract's keys.
        optional: skipped while the table does not exist.
        contract_rules: run the contract's rules on the slice (off for a slice that is a comparison,
            whose unmatched side is null by design).
    """

    table: str
    slice: Slicer
    extra: tuple[Extra, ...] = ()
    rows_accepted: str | None = None
    index_columns: tuple[str, ...] | None = None
    optional: bool = False
    contract_rules: bool = True

    @property
    def suite(self) -> str:
        return self.table.replace(".", "_")

    def check(self, night: Night) -> Check:
        """The suite's check on ``night``'s slice (expectations are built fresh: GX binds them to a suite)."""
        contract = load_contract(self.table)
        df = self.slice(night, self.table)
        expected_rows = night.accepted.get(self.rows_accepted) if self.rows_accepted else None
        expectations = contract_expectations(contract, expected_rows=expected_rows) if self.contract_rules else []
        for extra in self.extra:
            df, more = extra.apply(df, night)
            expectations += more
        keys = contract.keys if self.index_columns is None else self.index_columns
        return Check(self.suite, df, expectations, keys)


def build_checks(gates: Sequence[TableGate], night: Night) -> list[Check]:
    """The checks of ``gates`` on ``night``'s slices; an optional gate of an absent table is skipped."""
    return [gate.check(night) for gate in gates if not gate.optional or night.exists(gate.table)]


# Bronze: each source's run-date partition. Keys are unique within one arrival date; copies
# arriving on other dates are silver's job.
BRONZE = (
    *(TableGate(f"bronze.{source}", OnRunDate("_ingest_date"), rows_accepted=source) for source in source_names()),
    TableGate(
        "ops.ingest_audit",
        OnRunDate("run_date"),
        extra=(QuarantineWithinLimit(),),
        # A failing source is shown with its figures against its limit.
        index_columns=("source", "quarantined_rows", "raw_rows", "quarantine_ratio", "max_quarantine_ratio"),
    ),
    TableGate(
        "ops.ingest_files",
        landing_vs_ingested,
        extra=(IngestedAsIs(),),
        index_columns=("source", "source_file"),
        # Lakes ingested before the table existed have none until their next ingest.
        optional=True,
        contract_rules=False,
    ),
)

SILVER = (
    TableGate(
        "silver.orders",
        FIRST_ARRIVED,
        extra=(
            NotBefore("first_ingest_date", "order_date", ARRIVED_AFTER_EVENT),
            HasRows("orders first arrived on the run date (a day without orders is legal but suspicious)"),
            AtMostAccepted("orders", "orders"),
        ),
    ),
    TableGate(
        "silver.shipments",
        orders_scanned_tonight,
        extra=(
            InTable(
                "order_id",
                "silver.orders",
                "every shipment's order is in silver.orders (scans may arrive before their order)",
                WARNING,
            ),
        ),
    ),
    TableGate("silver.delivery_states", orders_scanned_tonight),
    TableGate(
        "silver.tracking_events",
        EVENTS_FIRST_ARRIVED,
        extra=(
            NotBefore("first_ingest_date", "event_date", ARRIVED_AFTER_EVENT),
            InTable(
                "order_id", "silver.orders", "every scan's order is in silver.orders (scans may arrive first)", WARNING
            ),
            AtMostAccepted("tracking_scans", "scans"),
        ),
        # The contract's key plus the scan's order: the order a failing scan names is what to look up.
        index_columns=("scan_id", "order_id"),
    ),
    TableGate(
        "silver.interactions",
        EVENTS_FIRST_ARRIVED,
        extra=(
            NotBefore("first_ingest_date", "event_date", ARRIVED_AFTER_EVENT),
            InTable(
                "customer_key", "silver.customers", "every attributed interaction's customer is in silver.customers"
            ),
            AtMostAccepted("interactions", "interactions"),
        ),
    ),
    TableGate(
        "silver.session_starts",
        EVENTS_FIRST_ARRIVED,
        extra=(
            NotBefore("first_ingest_date", "event_date", ARRIVED_AFTER_EVENT),
            InTable("customer_key", "silver.customers", "every session start's customer is in silver.customers"),
        ),
    ),
    TableGate("silver.customers", customers_touched),
)

# Gold and features: absent tables (before their first night) are skipped.
GOLD = (
    TableGate(
        "gold.cx_kpi_daily",
        kpi_window,
        extra=(
            HasRunDate("kpi_date", "the run date has its KPI row (zeros on a quiet day)", CRITICAL),
            NotBefore("orders_delivered", "on_time_deliveries", "on-time deliveries <= deliveries"),
            NotBefore("orders_delivered", "late_deliveries", "late deliveries <= deliveries"),
            NotBefore("orders_placed", "repeat_orders", "repeat orders <= orders"),
            NotBefore("churn_cohort_customers", "churned_customers", "churned customers <= their cohort"),
        ),
        optional=True,
    ),
    TableGate("gold.cx_kpi_breakdown_daily", kpi_window, optional=True),
    TableGate(
        "gold.customer_journey",
        JourneyRowsWritten(),
        extra=(InTable("customer_key", "silver.customers", "every journey customer is in silver.customers"),),
        # The contract's key plus the customer: the key a failing reference names.
        index_columns=("touchpoint_id", "customer_key"),
        optional=True,
    ),
    TableGate(
        "gold.journey_daily",
        OnJourneyCustomerDays("journey_date"),
        extra=(
            InTable("customer_key", "silver.customers", "every journey_daily customer is in silver.customers"),
            HasRunDate("journey_date", "the run date has journey rows (a day without activity is legal)"),
        ),
        optional=True,
    ),
    TableGate(
        "gold.funnel_daily",
        OnJourneyDays("funnel_date"),
        extra=(HasRunDate("funnel_date", "the run date has funnel rows (a day without sessions is legal)"),),
        optional=True,
    ),
    TableGate(
        "features.customer_daily",
        OnRunDate("as_of_date"),
        extra=(
            InTable("customer_key", "silver.customers", "every churn-feature customer is in silver.customers"),
            HasRows("customer features exist as of the run date"),
        ),
        # The contract's keys without as_of_date: the slice is one as_of_date.
        index_columns=("customer_key",),
        optional=True,
    ),
    TableGate(
        "features.order_eta",
        OnRunDate("as_of_date"),
        extra=(InTable("order_id", "silver.orders", "every ETA-feature order is in silver.orders"),),
        optional=True,
    ),
    TableGate("features.shipment_scan", OnRunDate("as_of_date"), optional=True),
)

GATES: dict[str, tuple[TableGate, ...]] = {"bronze": BRONZE, "silver": SILVER, "gold": GOLD}
