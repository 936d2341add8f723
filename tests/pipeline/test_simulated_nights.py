"""Simulated nights: order independence, point-in-time features, reconciliation, PII, incrementality.

Three default-dirt simulated days (late arrivals, resent duplicates, broken lines included) run
through every nightly step (bronze, silver, gold KPIs, journey, features) on a private lake in
calendar order. A copy of that lake taken after the 1st night then runs the 3rd night before the
2nd, and a third lake imports all three nights at once (``nightly.import_history``): every table
must end with the same sorted rows. The out-of-order lake then gets the 2nd night's files again
from a faulty re-export (``corrupt_night``: a wrong value, a bogus line, a broken line and a copy
of a line that arrived on the 3rd night, per source) and reruns that night; then the files are
corrected and the night rerun once more: every table must equal the clean lake's again. The
in-order lake also shows:

* leakage: the feature rows as of the 1st night, written that night, are identical after two
  more nights of data (late events dated on or before it included) and when rebuilt from the
  final silver tables; the lateness bound (3 days) means no later night can add to that day;
* the quarantine holds exactly the dirt the simulator injected (0 unexplained rows);
* no clear-text e-mail or phone in any silver or gold table (decoded values);
* the journey merge of the last night writes only the days that changed.
"""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pyspark.sql.functions as F
import pytest
from chispa import assert_df_equality
from e2e_night import NIGHTLY_TABLES
from lake_rows import delta_rows
from pyspark.sql import Row

from jobs.devtools.simulator import SimulationConfig, simulate
from jobs.devtools.summary import delta_tables
from jobs.ingest.bronze import SOURCES
from jobs.lake.tables import changed_rows_of_commit, commit_partitions, read_table, table_version
from jobs.pipeline import nightly

DATES = ["2026-01-05", "2026-01-06", "2026-01-07"]
# Of seeds 11-39 for three days, one whose 2nd and 3rd nights bring orders, scans and interactions
# dated on or before the 1st day, and a resent scan (what the leakage and dirt tests need; asserted).
SEED = 23
EXPECTED_TABLES = {*NIGHTLY_TABLES, "ops.ingest_audit"}
# Wall-clock bookkeeping, the only columns allowed to differ between runs.
WALL_CLOCK_COLUMNS = {"ops.ingest_audit": ["recorded_at"], "ops.ingest_files": ["recorded_at"]}


def corrupt_night(landing: Path, night: str, next_night: str) -> dict[str, list[str]]:
    """Rewrite ``night``'s landing files as a faulty export would have written them; return the
    changes per source. The simulator's files are the corrected ones.

    Per source, a faulty file that a correction must undo in silver and gold:
    * a changed value (an order's amount, a scan's location, an interaction's event type);
    * a line that should not exist (a bogus order of a new customer, a bogus delivery scan,
      a bogus login linking a new device to a customer): the correction removes it;
    * a line broken in the faulty file (quarantined), whole in the corrected one;
    * a copy of a late line that really arrived on ``next_night``: removed from this night, its
      record must become the next night's copy.
    """
    changes: dict[str, list[str]] = {}

    def late_line(source: str, file_name: str, time_of: Callable[[str], str]) -> str:
        """A line of ``next_night``'s file dated on or before ``night`` (a late arrival)."""
        path = landing / source / next_night / file_name.replace(night, next_night)
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        return next(
            line
            for line in lines[1:]
            if re.fullmatch(r"\d{4}-\d\d-\d\d", time_of(line)[:10]) and time_of(line)[:10] <= night
        )

    def parsed_lines(rows: list[str], prefix: str) -> list[tuple[int, dict]]:
        """The lines that are whole JSON objects (the simulator's own dirt left out)."""
        out = []
        for i, row in enumerate(rows):
            try:
                out.append((i, json.loads(row)))
            except json.JSONDecodeError:
                continue
        return [(i, r) for i, r in out if isinstance(r, dict) and str(r.get(prefix, "")).startswith(prefix[0].upper())]

    def json_time(field: str) -> Callable[[str], str]:
        return lambda line: str(re.search(rf'"{field}":"([^"]*)"', line).group(1)) if f'"{field}":"' in line else ""

    # Orders (CSV): order_id,customer_id,placed_at,items,amount,...
    path = landing / "orders" / night / f"orders_{night}.csv"
    header, *rows = path.read_text(encoding="utf-8").splitlines(keepends=True)
    clean = [i for i, row in enumerate(rows) if len(row.split(",")) == 13 and row.startswith("O")]
    amount_fixed, broken = clean[0], clean[1]
    fields = rows[amount_fixed].split(",")
    fields[4] = f"{float(fields[4]) * 10:.2f}"
    rows[amount_fixed] = ",".join(fields)
    bogus = rows[clean[2]].split(",")
    bogus[0], bogus[1] = "O09999999", "C009999"
    fields = rows[broken].split(",")
    fields[2] = "not-a-time"
    rows[broken] = ",".join(fields)
    rows.append(",".join(bogus))
    rows.append(late_line("orders", path.name, lambda line: (line.split(",") + [""] * 3)[2]))
    path.write_text(header + "".join(rows), encoding="utf-8")
    changes["orders"] = [rows[amount_fixed].split(",")[0], "O09999999", rows[broken].split(",")[0]]

    # Tracking scans (JSON lines).
    path = landing / "tracking_scans" / night / f"tracking_scans_{night}.jsonl"
    rows = path.read_text(encoding="utf-8").splitlines(keepends=True)
    parsed = parsed_lines(rows, "scan_id")
    parsed = [(i, r) for i, r in parsed if r.get("location") and r.get("event") in ("picked", "created")]
    (moved, moved_scan), (broken, _), (_, bogus_of) = parsed[0], parsed[1], parsed[2]
    rows[moved] = json.dumps({**moved_scan, "location": "WH-WRONG"}, separators=(",", ":")) + "\n"
    rows[broken] = rows[broken][: len(rows[broken]) // 2] + "\n"
    bogus_scan = {**bogus_of, "scan_id": "S9999999999", "scan_at": f"{night}T23:00:00Z", "event": "delivered"}
    rows.append(json.dumps(bogus_scan, separators=(",", ":")) + "\n")
    rows.append(late_line("tracking_scans", path.name, json_time("scan_at")))
    path.write_text("".join(rows), encoding="utf-8")
    changes["tracking_scans"] = [moved_scan["scan_id"], "S9999999999"]

    # Interactions (JSON lines).
    path = landing / "interactions" / night / f"interactions_{night}.jsonl"
    rows = path.read_text(encoding="utf-8").splitlines(keepends=True)
    parsed = parsed_lines(rows, "event_id")
    views = [(i, r) for i, r in parsed if r.get("event") == "product_view" and r.get("customer_id")]
    (retyped, view), (broken, _) = views[0], views[1]
    rows[retyped] = json.dumps({**view, "event": "add_to_cart"}, ensure_ascii=False, separators=(",", ":")) + "\n"
    rows[broken] = rows[broken][: len(rows[broken]) // 2] + "\n"
    login = {
        "event_id": "E9999999999",
        "event_at": f"{night}T12:00:00Z",
        "event": "login",
        "device_id": "D9999999",
        "customer_id": view["customer_id"],
        "channel": "app",
    }
    rows.append(json.dumps(login, separators=(",", ":")) + "\n")
    rows.append(late_line("interactions", path.name, json_time("event_at")))
    path.write_text("".join(rows), encoding="utf-8")
    changes["interactions"] = [view["event_id"], "E9999999999"]
    for source in changes:  # the exporter closes each folder again
        (landing / source / night / "_SUCCESS").write_bytes(b"")
    return changes


@dataclass(frozen=True)
class Lakes:
    manifests: list[dict]
    reference: dict[str, list]  # all nights in calendar order
    out_of_order: dict[str, list]  # the same lake's copy after night 1, then night 3, then night 2
    history_import: dict[str, list]  # all three nights at once (nightly.import_history)
    faulty: dict[str, list]  # the out-of-order lake after night 2 reran from faulty files (corrupt_night)
    corrected: dict[str, list]  # that lake after the files were corrected and night 2 reran again
    in_order_config: object
    versions_after_first_night: dict[str, int]
    journey_versions: tuple[int, int]  # gold.customer_journey after nights 2 and 3


def _night(config, run_date: str) -> None:
    for source in SOURCES:
        nightly.ingest(source, run_date, config)
    nightly.build_silver(run_date, config)
    nightly.build_journey(run_date, config)
    nightly.build_gold(run_date, config)  # after the journey: the KPIs read its funnel
    nightly.build_features(run_date, config)


def _snapshot(config, tables: list[str] | None = None) -> dict[str, list[Row]]:
    """Every table's rows (or ``tables``'), sorted, read with delta-rs: no Spark job. Five lakes of
    ~24 tables are read; with Spark reads the module took 373 s, with these 324 s."""
    snapshot = {}
    for table in tables or delta_tables(config):
        rows = delta_rows(config.table_path(table), WALL_CLOCK_COLUMNS.get(table, []))
        snapshot[table] = sorted((Row(**row) for row in rows), key=repr)
    return snapshot


@pytest.fixture(scope="module")
def lakes(spark, config, tmp_path_factory):
    root = tmp_path_factory.mktemp("simulated_nights")
    landing = root / "landing"
    simulate(SimulationConfig(days=len(DATES), customers=600, seed=SEED), landing)
    in_order = replace(config, lake_root=str(root / "in_order"), landing_root=str(landing))
    shuffled = replace(config, lake_root=str(root / "shuffled"), landing_root=str(landing))
    _night(in_order, DATES[0])
    first = {t: table_version(spark, in_order, t) for t in delta_tables(in_order)}
    shutil.copytree(in_order.lake_root, shuffled.lake_root)
    _night(in_order, DATES[1])
    journey_after_second = table_version(spark, in_order, "gold.customer_journey")
    _night(in_order, DATES[2])
    journey_after_third = table_version(spark, in_order, "gold.customer_journey")
    for day in (DATES[2], DATES[1]):
        _night(shuffled, day)
    out_of_order = _snapshot(shuffled)
    # The exporter delivers night 2 again, faulty, after the later night ran; the night is rerun
    # (a backfill). Then it delivers night 2 as it should be (byte for byte the clean files, with
    # their modification times) and the night is rerun once more.
    faulty_landing = root / "faulty_landing"
    shutil.copytree(landing, faulty_landing)  # copy2: the files keep their modification times
    corrupt_night(faulty_landing, DATES[1], DATES[2])
    corrected = replace(shuffled, landing_root=str(faulty_landing))
    _night(corrected, DATES[1])
    faulty = _snapshot(corrected)
    for source in SOURCES:
        for path in (landing / source / DATES[1]).iterdir():
            shutil.copy2(path, faulty_landing / source / DATES[1] / path.name)
    _night(corrected, DATES[1])
    bulk = replace(config, lake_root=str(root / "history_import"), landing_root=str(landing))
    nightly.import_history(DATES[0], DATES[-1], bulk)
    manifests = [json.loads((landing / "_manifest" / f"{day}.json").read_text()) for day in DATES]
    return Lakes(
        manifests,
        _snapshot(in_order),
        out_of_order,
        _snapshot(bulk),
        faulty,
        _snapshot(corrected),
        in_order,
        first,
        (journey_after_second, journey_after_third),
    )


def test_every_nightly_table_is_built(lakes) -> None:
    assert EXPECTED_TABLES <= set(lakes.reference)
    for table in EXPECTED_TABLES - {"quarantine.orders"}:
        assert lakes.reference[table], f"{table} is empty"


@pytest.mark.parametrize("table", sorted(EXPECTED_TABLES))
def test_out_of_order_nights_give_identical_tables(lakes, table: str) -> None:
    assert set(lakes.out_of_order) == set(lakes.reference)
    assert lakes.out_of_order[table] == lakes.reference[table]


@pytest.mark.parametrize("table", sorted(EXPECTED_TABLES))
def test_a_history_import_gives_the_tables_of_night_by_night_runs(lakes, table: str) -> None:
    assert lakes.history_import[table] == lakes.reference[table]


@pytest.mark.parametrize("table", sorted(EXPECTED_TABLES))
def test_a_corrected_landing_file_rerun_gives_the_tables_of_a_clean_run(lakes, table: str) -> None:
    """Night 2 rerun from faulty files after night 3, then from the corrected files: every table
    equals the lake that only ever saw the clean files."""
    assert lakes.corrected[table] == lakes.reference[table]


FAULTY_RUN_DIFFERS = [
    *(f"{layer}.{source}" for layer in ("bronze", "quarantine") for source in SOURCES),
    *(f"silver.{t}" for t in ("orders", "interactions", "device_links", "tracking_events", "shipments", "customers")),
    "gold.customer_journey",
    "gold.journey_daily",
    "gold.funnel_daily",
    "gold.cx_kpi_daily",
    "gold.cx_kpi_breakdown_daily",
    "features.customer_daily",
    "features.order_eta",
    "features.shipment_scan",
]


@pytest.mark.parametrize("table", FAULTY_RUN_DIFFERS)
def test_the_faulty_files_changed_the_table_before_the_correction(lakes, table: str) -> None:
    """Without it the test above would prove nothing for that table."""
    assert lakes.faulty[table] != lakes.reference[table]


def _retractions(snapshot: dict[str, list]) -> set[tuple[str, str, str]]:
    return {(r.night.isoformat(), r.table_name, r.row_key) for r in snapshot.get("ops.silver_retractions", [])}


def test_each_rerun_recorded_exactly_the_silver_rows_it_took_back(lakes) -> None:
    night = DATES[1]
    by_faulty_run = _retractions(lakes.faulty) - _retractions(lakes.out_of_order)
    by_correction = _retractions(lakes.corrected) - _retractions(lakes.faulty)
    # The faulty files no longer give three lines night 2 had brought whole (now broken, so
    # quarantined) and give a linking event with another type: those rows go, the link is recomputed.
    assert by_faulty_run == {
        (night, "silver.orders", "O00000022"),
        (night, "silver.interactions", "E0000000225"),
        (night, "silver.tracking_events", "S0000000113"),
        (night, "silver.device_links", "D0000149"),
    }
    assert by_correction == {
        # The bogus order, login and delivery scan that the corrected files no longer have, and
        # the bogus login's new device.
        (night, "silver.orders", "O09999999"),
        (night, "silver.interactions", "E9999999999"),
        (night, "silver.tracking_events", "S9999999999"),
        (night, "silver.device_links", "D9999999"),
        # Night 3's late order and login, copied into the faulty night 2 (which took them over):
        # their record is night 3's copy again, and the late login's device link moves back with
        # it. (The late scan copied was a resend of a scan night 1 had already brought: night 1
        # owns its record, nothing to retract.)
        (night, "silver.orders", "O00000010"),
        (night, "silver.interactions", "E0000000202"),
        (night, "silver.device_links", "D0000552"),
    }


def test_the_simulated_days_contain_late_and_resent_data(lakes) -> None:
    assert any(r.order_date < r.first_ingest_date for r in lakes.reference["silver.orders"]), "no late order"
    assert any(r.event_date < r.first_ingest_date for r in lakes.reference["silver.tracking_events"]), "no late scan"
    resent = sum(m["sources"]["tracking_scans"].get("duplicate_resent", 0) for m in lakes.manifests)
    assert resent > 0, "no scan resent on a later night"
    assert len(lakes.reference["bronze.tracking_scans"]) == len(lakes.reference["silver.tracking_events"]) + resent
    assert sum(r.orders_placed for r in lakes.reference["gold.cx_kpi_daily"]) == len(lakes.reference["silver.orders"])


EMAIL_PATTERN = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"
# International form (dates and ids are digit runs too; the exact raw values are checked as well).
PHONE_PATTERN = r"\+\d[\d ()-]{8,}\d"


def test_no_clear_text_email_or_phone_in_any_silver_gold_or_feature_table(spark, lakes) -> None:
    """Decoded values, not file bytes: every column of every table, as JSON, against the raw PII."""
    raw_pii = {
        value.strip().lower()
        for table in ("bronze.orders", "bronze.interactions")
        for row in lakes.reference[table]
        for value in (row.email, row.phone)
        if value
    }
    assert len(raw_pii) > 100, "the simulated data must carry e-mails and phone numbers"
    config = lakes.in_order_config
    tables = [t for t in delta_tables(config) if t.split(".")[0] in ("silver", "gold", "features")]
    assert {"silver.orders", "silver.interactions", "silver.customers", "gold.customer_journey"} <= set(tables)
    for table in tables:
        df = read_table(spark, config, table)
        as_json = df.select(F.lower(F.to_json(F.struct(*df.columns))).alias("row"))
        hits = as_json.filter(F.col("row").rlike(EMAIL_PATTERN) | F.col("row").rlike(PHONE_PATTERN))
        assert hits.count() == 0, (table, hits.first())
        text = "\n".join(r.row for r in as_json.collect())
        leaked = [v for v in raw_pii if v in text]
        assert not leaked, (table, leaked[:3])


def _reason_kind(reason: str) -> str:
    return {"malformed_json": "malformed", "malformed_csv": "malformed"}.get(reason, reason.split(":")[0])


@pytest.mark.parametrize("source", SOURCES)
def test_quarantine_matches_injected_dirt_exactly(spark, lakes, source: str) -> None:
    """The simulator's manifest counts each dirt kind it injected per file: 0 unexplained rows."""
    injected = Counter()
    lines = 0
    for manifest in lakes.manifests:
        entry = manifest["sources"][source]
        lines += entry["lines"]
        for kind in ("malformed", "missing_required", "unknown_enum", "bad_type"):
            injected[kind] += entry[kind]
        # Resent copies land in another file: bronze keeps them (raw history), silver dedupes.
        injected["duplicate"] += entry["duplicate"] - entry.get("duplicate_resent", 0)
    quarantined = Counter(_reason_kind(r.reason) for r in lakes.reference[f"quarantine.{source}"])
    assert +quarantined == +injected
    audit = [r for r in lakes.reference["ops.ingest_audit"] if r.source == source]
    assert sum(r.raw_rows for r in audit) == lines
    assert sum(r.accepted_rows for r in audit) + sum(r.quarantined_rows for r in audit) == lines
    assert sum(r.quarantined_rows for r in audit) == sum(injected.values())


def test_every_commit_records_the_contract_version_it_was_written_with(spark, lakes) -> None:
    from delta.tables import DeltaTable

    from jobs.lake.contracts import load_contract

    config = lakes.in_order_config
    for table in ("bronze.orders", "silver.orders", "silver.interactions", "gold.cx_kpi_daily", "ops.ingest_audit"):
        history = DeltaTable.forPath(spark, config.table_path(table)).history().collect()
        expected = f"contract {table} v{load_contract(table).version}"
        assert {h.userMetadata for h in history} == {expected}, table


FEATURE_TABLES = ["features.customer_daily", "features.order_eta", "features.shipment_scan"]


def _as_of(df, day: str):
    return df.filter(F.col("as_of_date") == F.lit(day).cast("date"))


@pytest.mark.parametrize("table", FEATURE_TABLES)
def test_feature_rows_as_of_a_night_never_change_with_later_data(spark, lakes, table: str) -> None:
    """Leakage: the rows written on night 1 equal the rows for that as-of date two nights later."""
    config = lakes.in_order_config
    path = config.table_path(table)
    then = spark.read.format("delta").option("versionAsOf", lakes.versions_after_first_night[table]).load(path)
    now = read_table(spark, config, table)
    written_then = _as_of(then, DATES[0])
    assert written_then.count() > 0
    assert_df_equality(written_then, _as_of(now, DATES[0]), ignore_row_order=True, ignore_nullable=True)


def test_the_later_nights_brought_late_data_dated_on_or_before_the_first(spark, lakes) -> None:
    """Without such data the leakage test above would prove nothing."""
    first = F.lit(DATES[0]).cast("date")
    config = lakes.in_order_config
    late = {
        "silver.orders": ("order_date", "first_ingest_date"),
        "silver.tracking_events": ("event_date", "first_ingest_date"),
        "silver.interactions": ("event_date", "first_ingest_date"),
    }
    for table, (event_date, arrival) in late.items():
        rows = read_table(spark, config, table).filter((F.col(event_date) <= first) & (F.col(arrival) > first))
        assert rows.count() > 0, f"{table}: no row dated {DATES[0]} or before that arrived later"


def test_rebuilding_features_from_the_final_silver_tables_gives_the_stored_rows(spark, lakes) -> None:
    from jobs.features.customer_daily import build_customer_daily
    from jobs.features.order_eta import build_order_eta_features
    from jobs.features.shipment_scan import build_shipment_scan_features
    from jobs.silver.delivery_states import build_delivery_states
    from jobs.silver.session_starts import build_session_starts

    config = lakes.in_order_config
    orders = read_table(spark, config, "silver.orders")
    interactions = read_table(spark, config, "silver.interactions")
    events = read_table(spark, config, "silver.tracking_events")
    states = build_delivery_states(events)  # from all scans at once, not night by night
    starts = build_session_starts(interactions)  # likewise from all visits
    day = F.lit(DATES[0]).cast("date")
    rebuilt = {
        "features.customer_daily": build_customer_daily(orders, interactions, starts, events, states, DATES[0]),
        "features.order_eta": build_order_eta_features(
            orders.filter(F.col("first_ingest_date") == day), orders, states
        ),
        "features.shipment_scan": build_shipment_scan_features(
            events.filter(F.col("first_ingest_date") == day), events, orders, states
        ),
    }
    for table, df in rebuilt.items():
        stored = _as_of(read_table(spark, config, table), DATES[0])
        # A scan of night 1 whose order arrived later is a row of that later night.
        assert_df_equality(_as_of(df, DATES[0]), stored, ignore_row_order=True, ignore_nullable=True)


def test_the_delivery_states_kept_night_by_night_are_those_of_all_scans_at_once(spark, lakes) -> None:
    """silver.delivery_states is updated for the orders each night touches: it must hold what
    building it from the final silver.tracking_events in one go gives (the other run orders, the
    history import and the corrected rerun give the same table: the tests above)."""
    from jobs.silver.delivery_states import build_delivery_states

    config = lakes.in_order_config
    rebuilt = build_delivery_states(read_table(spark, config, "silver.tracking_events"))
    stored = read_table(spark, config, "silver.delivery_states")
    assert stored.count() > 0
    assert_df_equality(rebuilt, stored, ignore_row_order=True, ignore_column_order=True, ignore_nullable=True)


def test_the_session_starts_kept_night_by_night_are_those_of_all_visits_at_once(spark, lakes) -> None:
    """silver.session_starts is recomputed for the customers each night's visits touch: it must
    hold what building it from the final silver.interactions in one go gives, though earlier
    visits arrive late and block starts that arrived before them (the other run orders, the
    history import and the corrected rerun give the same table: the tests above)."""
    from jobs.silver.session_starts import build_session_starts

    config = lakes.in_order_config
    rebuilt = build_session_starts(read_table(spark, config, "silver.interactions"))
    stored = read_table(spark, config, "silver.session_starts")
    assert stored.filter(F.col("blocked_from").isNotNull()).count() > 0, "no start blocked by a later arrival"
    assert_df_equality(rebuilt, stored, ignore_row_order=True, ignore_column_order=True, ignore_nullable=True)


def test_the_journey_merge_of_a_night_writes_only_the_days_that_changed(spark, lakes) -> None:
    config = lakes.in_order_config
    before, after = lakes.journey_versions
    assert after == before + 1, "one journey commit per night"
    commit = commit_partitions(spark, config, "gold.customer_journey", after)
    assert commit["operation"] == "MERGE"
    written = sorted(dict(p)["touchpoint_date"] for p in commit["partitions_written"])
    path = config.table_path("gold.customer_journey")
    old = spark.read.format("delta").option("versionAsOf", before).load(path)
    new = spark.read.format("delta").option("versionAsOf", after).load(path)
    changed_days = sorted(r[0].isoformat() for r in new.exceptAll(old).select("touchpoint_date").distinct().collect())
    assert changed_days, "the last night changed some journey rows"
    # Files are rewritten in exactly the days whose rows changed (new or updated), no other.
    assert written == changed_days
    metrics = commit["metrics"]
    assert int(metrics["numTargetRowsInserted"]) + int(metrics["numTargetRowsUpdated"]) == new.exceptAll(old).count()
    # The commit's change data feed holds exactly those rows: what the gold gate validates.
    assert_df_equality(
        changed_rows_of_commit(spark, path, after), new.exceptAll(old), ignore_row_order=True, ignore_nullable=True
    )


def _data_files(lake: Path) -> dict[str, int]:
    """Every file under the lake outside the Delta logs, with its size."""
    return {
        str(p.relative_to(lake)): p.stat().st_size
        for p in lake.rglob("*")
        if p.is_file() and "_delta_log" not in p.parts
    }


@pytest.mark.parametrize(
    ("table", "stopped_at"),
    [
        ("bronze.orders", "ingest orders"),  # written by delta-rs (the local ingest engine)
        ("silver.orders", "build_silver"),  # written by a Spark MERGE
    ],
)
def test_a_table_that_lost_its_delta_log_stops_the_night_loudly_and_no_file_is_lost(
    lakes, tmp_path, table: str, stopped_at: str
) -> None:
    """Before the guard, the night recreated the table from tonight's rows alone and every gate passed."""
    from jobs.lake.tables import OrphanedTableFilesError

    lake = tmp_path / "lake"
    shutil.copytree(lakes.in_order_config.lake_root, lake)
    config = replace(lakes.in_order_config, lake_root=str(lake))
    folder = Path(config.table_path(table).removeprefix("file:"))
    shutil.move(folder / "_delta_log", tmp_path / "moved_delta_log")
    before = _data_files(lake)

    steps = {f"ingest {source}": (lambda s=source: nightly.ingest(s, DATES[2], config)) for source in SOURCES}
    steps["build_silver"] = lambda: nightly.build_silver(DATES[2], config)
    failed = None
    for name, step in steps.items():
        try:
            step()
        except OrphanedTableFilesError as error:
            failed = (name, str(error))
            break
    assert failed is not None, "the night went on over a table without its log"
    name, message = failed
    assert name == stopped_at
    assert str(folder) in message and "Restore the folder's _delta_log" in message
    # No file deleted or shrunk anywhere (the steps before it only added files), none created in its
    # place: the log moved back gives the table as it was.
    after = _data_files(lake)
    assert all(after.get(f) == size for f, size in before.items())
    assert not (folder / "_delta_log").exists()


@pytest.mark.parametrize("lake_left", ["killed_first_build", "lake_before_tracking_views"])
def test_a_journey_build_without_its_derived_tables_builds_them_and_converges(
    spark, lakes, tmp_path, lake_left
) -> None:
    """A first build killed after its journey write, before any table derived from it; or a lake
    from before ``gold.journey_tracking_views``, whose ``journey_daily`` lacks the columns the
    context reads. The rerun builds them from the journey and reports the journey merge that was
    made (the gold gate validates its rows). Crashes after each commit of a later night's journey
    step are tests/pipeline/test_crash_points.py's."""
    from deltalake import DeltaTable, write_deltalake

    from jobs.gold.journey import DERIVED_TABLES, VIEWS_TABLE

    lake = tmp_path / "lake"
    shutil.copytree(lakes.in_order_config.lake_root, lake)
    config = replace(lakes.in_order_config, lake_root=str(lake))
    if lake_left == "killed_first_build":
        for table in DERIVED_TABLES:
            shutil.rmtree(config.table_path(table).removeprefix("file:"))
    else:
        shutil.rmtree(config.table_path(VIEWS_TABLE).removeprefix("file:"))
        daily = config.table_path("gold.journey_daily").removeprefix("file:")
        new_columns = ["last_touchpoint_at", "last_session_id", "last_session_at"]
        old = DeltaTable(daily).to_pyarrow_table().drop_columns(new_columns)
        write_deltalake(daily, old, mode="overwrite", schema_mode="overwrite", partition_by=["journey_date"])
        assert not set(new_columns) & {f.name for f in DeltaTable(daily).schema().fields}
    merged = nightly.build_journey(DATES[2], config)
    last_merge = commit_partitions(spark, config, "gold.customer_journey", lakes.journey_versions[1])
    assert merged == {
        "changed_days": sorted(dict(p)["touchpoint_date"] for p in last_merge["partitions_written"]),
        "version": lakes.journey_versions[1],
    }
    tables = ["gold.customer_journey", *DERIVED_TABLES]
    rebuilt = _snapshot(config, tables)
    for table in tables:
        assert rebuilt[table] == lakes.reference[table], table
