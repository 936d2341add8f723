"""``cxlake doctor`` on a small real lake (tables written by the local ingest engine, no Spark):
each broken thing is one exact finding with its remedy, and a healthy lake has none."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from jobs import cli
from jobs.ingest.bronze import ingest_source
from jobs.lake.config import LakeConfig
from jobs.lake.small_tables import merge_small
from jobs.pipeline.doctor import OK, PROBLEM, WARNING, Finding, diagnose
from jobs.silver.pii import FINGERPRINT_PROPERTY, key_fingerprint

DAY = "2026-03-03"
E2E = Path(__file__).resolve().parents[1] / "data" / "e2e" / "landing"


@pytest.fixture()
def lake(tmp_path: Path, config: LakeConfig) -> LakeConfig:
    """A lake with the e2e night's bronze, quarantine and audit tables, its key in pii.key."""
    home = tmp_path / "home"
    shutil.copytree(E2E, home / "landing")
    for path in [home, *home.rglob("*")]:  # as an exporter delivering personal data should
        path.chmod(0o700 if path.is_dir() else 0o600)
    lake = replace(config.moved_to(home), pii_key="")
    (home / "pii.key").write_text("a-key-of-thirty-two-characters!!\n")
    for source in ("orders", "tracking_scans", "interactions"):
        ingest_source(None, lake, source, DAY)
    return lake


def problems(findings: list[Finding]) -> list[tuple[str, str]]:
    return [(f.subject, f.severity) for f in findings if f.severity != OK]


def test_a_healthy_lake_has_no_finding(lake: LakeConfig) -> None:
    findings = diagnose(lake)
    assert problems(findings) == []
    by_subject = {f.subject: f.message for f in findings}
    assert by_subject["bronze.orders"] == "version 0, 1 data file(s)"
    assert by_subject["silver.orders"] == "not built yet"
    assert by_subject["nights"] == "no DAG run recorded yet"
    assert by_subject["pii key"].endswith("(no table records it yet: the next night does)")


def test_a_table_without_its_log_is_a_problem_with_its_remedy(lake: LakeConfig, tmp_path: Path) -> None:
    shutil.move(Path(lake.table_path("bronze.orders")) / "_delta_log", tmp_path / "moved_log")
    [finding] = [f for f in diagnose(lake) if f.severity != OK]
    assert (finding.subject, finding.severity) == ("bronze.orders", PROBLEM)
    assert "holds data files but no _delta_log" in finding.message
    assert finding.remedy.startswith("restore the _delta_log from a backup")


def test_a_data_file_gone_from_the_latest_version_is_a_problem(lake: LakeConfig) -> None:
    [uri] = DeltaTable(lake.table_path("bronze.interactions")).file_uris()
    os.remove(uri.removeprefix("file://"))
    [finding] = [f for f in diagnose(lake) if f.severity != OK]
    assert (finding.subject, finding.severity) == ("bronze.interactions", PROBLEM)
    assert finding.message.startswith("version 0 lists 1 data file(s) that are gone")


def test_a_key_other_than_the_lakes_is_a_problem_and_a_missing_key_too(lake: LakeConfig) -> None:
    lake_key = "the-key-the-lake-was-hashed-with"
    table = pa.table({"order_id": ["O1"]})
    write_deltalake(lake.table_path("silver.orders"), table)
    # What jobs.silver.pii records after hashing with the lake's key (a custom table property).
    DeltaTable(lake.table_path("silver.orders")).alter.set_table_properties(
        {FINGERPRINT_PROPERTY: key_fingerprint(lake_key)}, raise_if_not_exists=False
    )
    [finding] = [f for f in diagnose(lake) if f.subject == "pii key"]
    assert finding.severity == PROBLEM
    assert f"silver.orders was hashed with {key_fingerprint(lake_key)}" in finding.message
    assert lake_key not in finding.message + finding.remedy  # a fingerprint, never the key

    (Path(lake.home) / "pii.key").unlink()
    [finding] = [f for f in diagnose(lake) if f.subject == "pii key"]
    assert finding.severity == PROBLEM and finding.message.startswith("no key on this machine")

    [finding] = [f for f in diagnose(replace(lake, pii_key=lake_key)) if f.subject == "pii key"]
    assert finding.severity == OK and finding.message.endswith("recorded on silver.orders")


def test_a_night_stopped_at_a_failed_task_is_a_problem_until_a_later_try_succeeds(lake: LakeConfig) -> None:
    def task_try(try_number: int, state: str) -> dict:
        failed = state == "failed"
        return {
            "dag_id": "cx_nightly",
            "run_date": dt.date(2026, 3, 3),
            "task_id": "validate_silver",
            "try_number": try_number,
            "run_id": "manual__2026-03-03",
            "state": state,
            "exception_class": "DataQualityError" if failed else None,
            "reason": "suite(s) silver_orders failed 1 critical expectation(s)" if failed else None,
            "recorded_at": dt.datetime(2026, 3, 4, 1, 0),
        }

    merge_small(lake, "ops.pipeline_runs", [task_try(1, "failed")])
    [finding] = [f for f in diagnose(lake) if f.severity != OK]
    assert (finding.subject, finding.severity) == ("night 2026-03-03 (cx_nightly)", PROBLEM)
    assert finding.message == (
        "stopped at validate_silver (try 1): DataQualityError: suite(s) silver_orders failed 1 critical expectation(s)"
    )
    assert "cxlake run --date 2026-03-03" in finding.remedy
    merge_small(lake, "ops.pipeline_runs", [task_try(2, "success")])
    assert problems(diagnose(lake)) == []


def test_personal_data_open_to_other_users_is_a_warning(lake: LakeConfig) -> None:
    [uri] = DeltaTable(lake.table_path("quarantine.orders")).file_uris()
    os.chmod(uri.removeprefix("file://"), 0o644)
    [finding] = [f for f in diagnose(lake) if f.severity != OK]
    assert (finding.subject, finding.severity) == ("permissions", WARNING)
    assert finding.message.startswith("1 file(s) or folder(s) holding raw personal data are open to other users")
    assert finding.message.endswith("(-rw-r--r--)")


def test_the_command_exits_1_on_a_problem_and_prints_json(lake: LakeConfig, monkeypatch, capsys) -> None:
    monkeypatch.setenv("CXLAKE_HOME", str(lake.home))
    monkeypatch.delenv("CXLAKE_PII_KEY")
    assert cli.main(["doctor"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("0 problem(s), 0 warning(s)")
    shutil.rmtree(Path(lake.table_path("bronze.orders")) / "_delta_log")
    assert cli.main(["doctor", "--json"]) == 1
    rows = json.loads(capsys.readouterr().out)
    assert [r["subject"] for r in rows if r["severity"] == PROBLEM] == ["bronze.orders"]
