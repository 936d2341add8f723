"""Whole-file and landing-folder faults: each case's exact outcome, and nothing lost.

The row-level corpus (``test_bad_input_corpus.py``) judges lines; these cases are what no line can
be blamed for (:mod:`jobs.ingest.landing`): a file that is a link, not UTF-8, empty, still being
written, or dated in the future. A refused case names its file and rule, writes nothing (no
bronze, quarantine or audit table appears) and leaves its file as it was; an accepted case
reconciles (raw lines = accepted + quarantined) with its exact reasons. Ingests here run on the
local engine (no Spark job); the gate cases at the end run the real bronze gate.
"""

from __future__ import annotations

import codecs
import datetime as dt
import gzip
import io
import json
import os
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest
from deltalake import DeltaTable

from jobs.ingest.bronze import FutureNightError, IngestResult, MissingSourceError, ingest_source, refuse_future_nights
from jobs.ingest.landing import MARKER, LandingFileError, LandingIncompleteError
from jobs.ingest.raw_files import SchemaDriftError
from jobs.lake.config import LakeConfig
from jobs.pipeline import nightly
from jobs.quality.gate import DataQualityError

DAY = "2026-03-03"
SUFFIX = {"orders": "csv", "interactions": "jsonl", "tracking_scans": "jsonl"}
HEADER = (
    "order_id,customer_id,placed_at,items,amount,origin_warehouse,destination_region,carrier,"
    "promised_delivery_date,payment_method,channel,email,phone"
)


def order(i: int, email: str = "ann@example.com") -> str:
    return f"O{i},C{i},2026-03-03T09:00:00Z,1,10.00,WH-MOSCOW,RU-SPE,cdek,2026-03-06,card,app,{email},"


def interaction(i: int, at: str = "2026-03-03T08:00:00Z", note: str = "") -> str:
    event = {"event_id": f"E{i}", "event_at": at, "event": "app_open", "device_id": f"D{i}", "channel": "app"}
    if note:
        event["search_query"] = note  # an unknown key: kept in _extra, so any text can ride along
    return json.dumps(event, ensure_ascii=False)


def scan(i: int) -> str:
    return json.dumps(
        {
            "scan_id": f"S{i}",
            "order_id": f"O{i}",
            "scan_at": "2026-03-03T10:00:00Z",
            "event": "created",
            "carrier": "cdek",
        }
    )


def csv_text(rows: list[str]) -> str:
    return "\n".join([HEADER, *rows]) + "\n"


def jsonl_text(lines: list[str]) -> str:
    return "\n".join(lines) + "\n"


def folder_of(lake: LakeConfig, source: str) -> Path:
    folder = Path(lake.landing_path(source, DAY))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def land(lake: LakeConfig, source: str, data: bytes, name: str | None = None, marker: bool = False) -> Path:
    """Write one landing file (and the folder's ``_SUCCESS`` marker after it, when asked)."""
    path = folder_of(lake, source) / (name or f"{source}_{DAY}.{SUFFIX[source]}")
    path.write_bytes(data)
    if marker:
        (path.parent / MARKER).write_bytes(b"")
    return path


def age(path: Path, seconds: float) -> None:
    """Set a file's modification time ``seconds`` in the past (an upload that finished then)."""
    then = dt.datetime.now(dt.UTC).timestamp() - seconds
    os.utime(path, (then, then))


def landed_bytes(lake: LakeConfig) -> dict[str, bytes]:
    root = Path(lake.landing_root)
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink()
    }


def lake_tables(lake: LakeConfig) -> list[str]:
    root = Path(lake.lake_root)
    return sorted(str(p.parent.relative_to(root)) for p in root.rglob("_delta_log")) if root.exists() else []


def reasons(lake: LakeConfig, source: str) -> list[str]:
    path = Path(lake.lake_root) / "quarantine" / source
    if not path.exists():
        return []
    return sorted(DeltaTable(str(path)).to_pyarrow_table().column("reason").to_pylist())


def bronze_rows(lake: LakeConfig, source: str) -> int:
    return DeltaTable(str(Path(lake.lake_root) / "bronze" / source)).to_pyarrow_table().num_rows


def assert_refused(lake: LakeConfig, source: str, error: type[Exception], rule: str, *fragments: str) -> None:
    """The ingest stops with ``error`` naming the file and ``rule``; nothing is written or touched."""
    before = landed_bytes(lake)
    with pytest.raises(error) as raised:
        ingest_source(None, lake, source, DAY)
    message = str(raised.value)
    assert f"[landing rule {rule}:" in message, message
    assert getattr(raised.value, "rule", None) == rule
    assert str(lake.landing_path(source, DAY)) in message  # the file is named with its folder
    for fragment in fragments:
        assert fragment in message, message
    assert lake_tables(lake) == []  # no bronze, quarantine or audit table was created
    assert landed_bytes(lake) == before  # the file is left as it was: nothing lost


# ---- the folder's entries ----------------------------------------------------------------------


def test_a_symlink_to_a_secret_is_refused_not_followed(lake_config: LakeConfig, tmp_path: Path) -> None:
    secret = tmp_path / "pii.key"
    secret.write_text("s3cr3t-key-that-must-never-land\n")
    (folder_of(lake_config, "interactions") / f"interactions_{DAY}.jsonl").symlink_to(secret)
    assert_refused(lake_config, "interactions", LandingFileError, "symlink", "symbolic link")


def test_a_symlink_to_a_good_data_file_is_refused_too(lake_config: LakeConfig, tmp_path: Path) -> None:
    good = tmp_path / "elsewhere.jsonl"
    good.write_text(jsonl_text([scan(1)]))
    land(lake_config, "tracking_scans", jsonl_text([scan(2)]).encode(), marker=True)
    (folder_of(lake_config, "tracking_scans") / "more.jsonl").symlink_to(good)
    assert_refused(lake_config, "tracking_scans", LandingFileError, "symlink", "more.jsonl")


def test_a_file_name_that_is_not_utf8_is_named_with_its_bytes(lake_config: LakeConfig) -> None:
    folder = folder_of(lake_config, "interactions")
    with open(os.path.join(os.fsencode(folder), b"interactions_\xff.jsonl"), "wb") as file:
        file.write(jsonl_text([interaction(1)]).encode())
    assert_refused(lake_config, "interactions", LandingFileError, "file_name_not_utf8", "interactions_\\xff.jsonl")


def test_a_directory_named_like_a_data_file_is_not_a_file(lake_config: LakeConfig) -> None:
    (folder_of(lake_config, "interactions") / f"interactions_{DAY}.jsonl").mkdir()
    with pytest.raises(MissingSourceError, match="no jsonl file arrived"):
        ingest_source(None, lake_config, "interactions", DAY)


def test_partial_upload_names_are_not_data_files(lake_config: LakeConfig) -> None:
    land(lake_config, "interactions", jsonl_text([interaction(1)]).encode(), marker=True)
    land(lake_config, "interactions", b'{"event_id":"E9","ev', name=f"interactions_{DAY}.jsonl.part")
    land(lake_config, "interactions", b"junk", name=f".interactions_{DAY}.jsonl.tmp")
    result = ingest_source(None, lake_config, "interactions", DAY)
    assert (result.files, result.raw_rows, result.accepted_rows, result.quarantined_rows) == (1, 1, 1, 0)


# ---- completeness ------------------------------------------------------------------------------


def settling(lake: LakeConfig) -> LakeConfig:
    """The production default: files without a marker must be 120 s old."""
    return replace(lake, landing_settle_seconds=120)


def test_a_fresh_file_without_marker_may_still_grow(lake_config: LakeConfig) -> None:
    land(lake_config, "interactions", jsonl_text([interaction(1)]).encode())
    assert_refused(settling(lake_config), "interactions", LandingIncompleteError, "not_settled", "120 s settle")


def test_a_settled_file_without_marker_is_ingested(lake_config: LakeConfig) -> None:
    age(land(lake_config, "interactions", jsonl_text([interaction(1), interaction(2)]).encode()), 600)
    result = ingest_source(None, settling(lake_config), "interactions", DAY)
    assert (result.raw_rows, result.accepted_rows) == (2, 2)


def test_a_file_changed_after_the_marker_is_still_being_written(lake_config: LakeConfig) -> None:
    path = land(lake_config, "interactions", jsonl_text([interaction(1)]).encode(), marker=True)
    age(path.parent / MARKER, 60)  # the exporter closed the folder a minute ago, then the file changed
    assert_refused(
        lake_config, "interactions", LandingIncompleteError, "changed_after_marker", f"after the folder's {MARKER}"
    )


def test_the_marker_makes_a_fresh_file_complete(lake_config: LakeConfig) -> None:
    land(lake_config, "interactions", jsonl_text([interaction(1)]).encode(), marker=True)
    result = ingest_source(None, settling(lake_config), "interactions", DAY)
    assert result.accepted_rows == 1


def test_the_sensor_waits_for_an_unfinished_file_then_fails_at_its_deadline(lake_config: LakeConfig) -> None:
    lake = settling(lake_config)
    land(lake, "orders", csv_text([order(1)]).encode())
    due = dt.datetime(2026, 3, 4, tzinfo=dt.UTC) + dt.timedelta(seconds=lake.landing_wait_seconds)
    assert nightly.landing_arrived("orders", DAY, lake, now=due - dt.timedelta(minutes=1)) is None
    with pytest.raises(LandingIncompleteError, match="not_settled"):
        nightly.landing_arrived("orders", DAY, lake, now=due)
    (folder_of(lake, "orders") / MARKER).write_bytes(b"")
    assert nightly.landing_arrived("orders", DAY, lake, now=due)["files"] == 1


# ---- encoding ----------------------------------------------------------------------------------

TEXT = jsonl_text([interaction(1, note="Привет"), interaction(2, note="café")])

ENCODINGS = [
    # (case, bytes of the interactions file, what the message says it is)
    ("utf16_le_bom", TEXT.encode("utf-16"), "UTF-16 little-endian"),
    ("utf16_be_bom", codecs.BOM_UTF16_BE + TEXT.encode("utf-16-be"), "UTF-16 big-endian"),
    ("utf16_le_no_bom", TEXT.encode("utf-16-le"), "NUL bytes"),
    ("utf32_le_bom", TEXT.encode("utf-32"), "UTF-32 little-endian"),
    ("gzip", gzip.compress(TEXT.encode(), mtime=0), "gzip-compressed"),
    (
        "windows_1251",
        jsonl_text([interaction(i, note="Привет") for i in range(5)]).encode("cp1251"),
        "5 of the 5 lines",
    ),
    (
        "latin_1_mostly",
        jsonl_text([interaction(i, note="café" if i % 3 else "ok") for i in range(6)]).encode("latin-1"),
        "4 of the 6 lines",
    ),
]


@pytest.mark.parametrize("data, looks_like", [c[1:] for c in ENCODINGS], ids=[c[0] for c in ENCODINGS])
def test_a_file_that_is_not_utf8_text_is_refused_whole(lake_config: LakeConfig, data: bytes, looks_like: str) -> None:
    land(lake_config, "interactions", data, marker=True)
    assert_refused(lake_config, "interactions", LandingFileError, "not_utf8", looks_like)


def test_a_zip_archive_is_refused(lake_config: LakeConfig) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("orders.csv", csv_text([order(1)]))
    land(lake_config, "orders", buffer.getvalue(), marker=True)
    assert_refused(lake_config, "orders", LandingFileError, "not_utf8", "zip-compressed")


def test_a_latin1_csv_is_refused_though_its_header_is_ascii(lake_config: LakeConfig) -> None:
    land(lake_config, "orders", csv_text([order(1, "josé@example.com")]).encode("latin-1"), marker=True)
    assert_refused(lake_config, "orders", LandingFileError, "not_utf8", "1 of the 1 lines")


def test_a_few_non_utf8_lines_are_quarantined_line_by_line(lake_config: LakeConfig) -> None:
    # 1 of 4 lines: row-level dirt, not a wrong encoding (the rule refuses a file only past half).
    lines = [
        interaction(1).encode(),
        interaction(2, note="café").encode("latin-1"),
        interaction(3).encode(),
        interaction(4).encode(),
    ]
    land(lake_config, "interactions", b"\n".join(lines) + b"\n", marker=True)
    result = ingest_source(None, lake_config, "interactions", DAY)
    assert (result.raw_rows, result.accepted_rows, result.quarantined_rows) == (4, 3, 1)
    assert reasons(lake_config, "interactions") == ["malformed_json"]


def test_a_utf8_byte_order_mark_opening_a_json_lines_file_is_dropped(lake_config: LakeConfig) -> None:
    land(lake_config, "interactions", codecs.BOM_UTF8 + TEXT.encode(), marker=True)
    result = ingest_source(None, lake_config, "interactions", DAY)
    assert (result.raw_rows, result.accepted_rows) == (2, 2)


# ---- emptiness ---------------------------------------------------------------------------------

EMPTY = [
    # (case, source, bytes, what the message says)
    ("zero_byte_jsonl", "interactions", b"", "0 bytes"),
    ("zero_byte_csv", "orders", b"", None),  # a CSV without even a header: the header rule speaks first
    ("header_only_csv", "orders", (HEADER + "\n").encode(), "a CSV header and no data line"),
    ("header_only_csv_no_final_newline", "orders", HEADER.encode(), "a CSV header and no data line"),
    ("header_and_blank_lines_csv", "orders", (HEADER + "\r\n\r\n\r\n").encode(), "a CSV header and no data line"),
    ("blank_lines_jsonl", "tracking_scans", b"\n \n\t\n", "blank lines only"),
]


@pytest.mark.parametrize("source, data, says", [c[1:] for c in EMPTY], ids=[c[0] for c in EMPTY])
def test_an_empty_file_without_marker_is_refused(
    lake_config: LakeConfig, source: str, data: bytes, says: str | None
) -> None:
    land(lake_config, source, data)
    if says is None:
        with pytest.raises(SchemaDriftError, match="empty file, expected a CSV header"):
            ingest_source(None, lake_config, source, DAY)
        assert lake_tables(lake_config) == []
        return
    assert_refused(lake_config, source, LandingFileError, "empty_file", says)


@pytest.mark.parametrize(
    "source, data",
    [("interactions", b""), ("orders", (HEADER + "\n").encode())],
    ids=["zero_byte_jsonl", "header_only_csv"],
)
def test_an_empty_file_beside_the_marker_is_a_day_without_rows(
    lake_config: LakeConfig, source: str, data: bytes
) -> None:
    land(lake_config, source, data, marker=True)
    result = ingest_source(None, lake_config, source, DAY)
    assert result == IngestResult(source, DAY, 1, 0, 0, 0, result.files_read)
    assert bronze_rows(lake_config, source) == 0
    audit = DeltaTable(str(Path(lake_config.lake_root) / "ops" / "ingest_audit")).to_pyarrow_table().to_pylist()
    assert [(r["source"], r["raw_rows"]) for r in audit] == [(source, 0)]


def test_a_header_only_csv_missing_a_column_reports_the_column_first(lake_config: LakeConfig) -> None:
    land(lake_config, "orders", (HEADER.replace(",carrier", "") + "\n").encode())
    with pytest.raises(SchemaDriftError, match=r"required column\(s\) missing from the header: carrier"):
        ingest_source(None, lake_config, "orders", DAY)


# ---- dates and truncation ----------------------------------------------------------------------


def test_events_dated_after_their_arrival_day_are_quarantined_from_the_future(lake_config: LakeConfig) -> None:
    lines = [
        interaction(1, at="2026-03-03T23:59:59Z"),  # the arrival day's last second: it happened
        interaction(2, at="2026-03-04T00:00:00Z"),  # the next day: had not happened when it arrived
        interaction(3, at="2031-03-03T08:00:00Z"),  # years ahead: would open a far-future partition
        interaction(4, at="2026-02-27T08:00:00Z"),  # 4 days old: too late, as before
    ]
    land(lake_config, "interactions", jsonl_text(lines).encode(), marker=True)
    result = ingest_source(None, lake_config, "interactions", DAY)
    assert (result.raw_rows, result.accepted_rows, result.quarantined_rows) == (4, 1, 3)
    assert reasons(lake_config, "interactions") == ["from_future", "from_future", "too_late"]


def test_a_scan_from_the_future_is_quarantined_too(lake_config: LakeConfig) -> None:
    future = scan(2).replace("2026-03-03T10", "2027-03-03T10")
    land(lake_config, "tracking_scans", jsonl_text([scan(1), future]).encode(), marker=True)
    result = ingest_source(None, lake_config, "tracking_scans", DAY)
    assert (result.accepted_rows, result.quarantined_rows) == (1, 1)
    assert reasons(lake_config, "tracking_scans") == ["from_future"]


def test_a_file_cut_mid_line_keeps_its_whole_lines_and_quarantines_the_cut_one(lake_config: LakeConfig) -> None:
    whole = jsonl_text([interaction(1), interaction(2)]).encode()
    land(lake_config, "interactions", whole + interaction(3).encode()[:30], marker=True)
    result = ingest_source(None, lake_config, "interactions", DAY)
    assert (result.raw_rows, result.accepted_rows, result.quarantined_rows) == (3, 2, 1)
    assert reasons(lake_config, "interactions") == ["malformed_json"]


def test_each_file_read_is_recorded_with_its_size_and_lines(lake_config: LakeConfig) -> None:
    first = land(lake_config, "interactions", jsonl_text([interaction(1), "{not json"]).encode(), marker=True)
    second = land(lake_config, "interactions", jsonl_text([interaction(2)]).encode(), name="more.jsonl")
    os.utime(second, ns=(first.stat().st_mtime_ns, first.stat().st_mtime_ns))  # before the marker
    ingest_source(None, lake_config, "interactions", DAY)
    rows = DeltaTable(str(Path(lake_config.lake_root) / "ops" / "ingest_files")).to_pyarrow_table().to_pylist()
    got = sorted(
        (r["source_file"], r["size_bytes"], r["raw_rows"], r["accepted_rows"], r["quarantined_rows"]) for r in rows
    )
    assert got == [
        (f"interactions/{DAY}/interactions_{DAY}.jsonl", first.stat().st_size, 2, 1, 1),
        (f"interactions/{DAY}/more.jsonl", second.stat().st_size, 1, 1, 0),
    ]


def test_a_night_that_has_not_begun_anywhere_is_refused(lake_config: LakeConfig) -> None:
    # A typo'd year: files dated then are refused before anything is read or written.
    day = "2062-03-03"
    folder = Path(lake_config.landing_path("interactions", day))
    folder.mkdir(parents=True)
    (folder / "interactions.jsonl").write_text(jsonl_text([interaction(1, at="2062-03-03T08:00:00Z")]))
    with pytest.raises(FutureNightError, match="2062-03-03 have not begun anywhere yet"):
        ingest_source(None, lake_config, "interactions", day)
    assert lake_tables(lake_config) == []
    # The clock's edge: UTC+14 starts a day 14 hours before UTC does.
    refuse_future_nights(["2026-03-04"], now=dt.datetime(2026, 3, 3, 10, 0, tzinfo=dt.UTC))
    with pytest.raises(FutureNightError):
        refuse_future_nights(["2026-03-04"], now=dt.datetime(2026, 3, 3, 9, 59, tzinfo=dt.UTC))


# ---- the bronze gate: quarantine ratio, files after the ingest ---------------------------------


def land_night(lake: LakeConfig, interactions: list[str]) -> None:
    """All three sources of one night, closed by their markers (the bronze gate reads all three)."""
    land(lake, "orders", csv_text([order(1), order(2)]).encode(), marker=True)
    land(lake, "tracking_scans", jsonl_text([scan(1)]).encode(), marker=True)
    land(lake, "interactions", jsonl_text(interactions).encode(), marker=True)


def ingest_all(spark, lake: LakeConfig) -> None:
    for source in SUFFIX:
        ingest_source(spark, lake, source, DAY)


def test_the_bronze_gate_stops_a_night_that_quarantines_too_much(spark, lake_config: LakeConfig) -> None:
    # 12 of 20 lines refused: 60 % > max_ratio 0.1 and 12 > min_lines 10 (schemas/raw/interactions.yaml).
    land_night(lake_config, [interaction(i) for i in range(8)] + ["{broken"] * 12)
    ingest_all(spark, lake_config)
    assert reasons(lake_config, "interactions") == ["malformed_json"] * 12  # quarantined with reasons first
    with pytest.raises(DataQualityError) as failed:
        nightly.validate_bronze(DAY, lake_config)
    message = str(failed.value)
    assert "suite(s) ops_ingest_audit failed 1 critical expectation(s)" in message
    assert "quarantine_limit.max_ratio" in message
    sample = (
        "sample=[{'source': 'interactions', 'quarantined_rows': 12, 'raw_rows': 20, "
        "'quarantine_ratio': 0.6, 'max_quarantine_ratio': 0.1, 'quarantine_within_limit': False}]"
    )
    assert sample in message, message  # the other two sources quarantined nothing


def test_the_bronze_gate_passes_a_few_bad_lines_and_then_stops_on_a_file_that_arrived_late(
    spark, lake_config: LakeConfig
) -> None:
    # 10 bad lines of 20: 50 % but not more than min_lines 10, so still dirt, not a broken feed.
    land_night(lake_config, [interaction(i) for i in range(10)] + ["{broken"] * 10)
    ingest_all(spark, lake_config)
    nightly.validate_bronze(DAY, lake_config)

    late = land(lake_config, "interactions", jsonl_text([interaction(50)]).encode(), name="late.jsonl")
    os.utime(late, ns=(0, (Path(late.parent) / MARKER).stat().st_mtime_ns))  # even under the marker's time
    with pytest.raises(DataQualityError, match="ingested as it is now") as failed:
        nightly.validate_bronze(DAY, lake_config)
    assert f"interactions/{DAY}/late.jsonl" in str(failed.value)

    # The remedy the message gives: rerun the source's ingest; the gate passes and the file is in.
    result = ingest_source(spark, lake_config, "interactions", DAY)
    assert (result.files, result.raw_rows) == (2, 21)
    nightly.validate_bronze(DAY, lake_config)

    # A file changed (appended to) after its ingest fails the gate the same way.
    path = Path(lake_config.landing_path("interactions", DAY)) / "late.jsonl"
    with open(path, "a") as file:
        file.write(interaction(51) + "\n")
    with pytest.raises(DataQualityError, match="ingested as it is now") as failed:
        nightly.validate_bronze(DAY, lake_config)
    assert f"interactions/{DAY}/late.jsonl" in str(failed.value)
