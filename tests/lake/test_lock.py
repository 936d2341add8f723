"""The lake lock between real processes: a whole-night command has the lake to itself, the DAG's
tasks share it, a refused process is told who holds it, and a killed holder frees it."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from dataclasses import replace
from pathlib import Path

import pytest

from jobs import cli
from jobs.lake.config import LakeConfig
from jobs.lake.lock import LakeBusyError, lake_lock

CONTEXT = multiprocessing.get_context("spawn")  # no Spark or threads of this process in the child


def _hold(config: LakeConfig, what: str, shared: bool, ready, release) -> None:
    with lake_lock(config, what, shared=shared):
        ready.set()
        release.wait(60)


def holding(config: LakeConfig, what: str, shared: bool):
    """A child process holding the lock until its ``release`` event is set."""
    ready, release = CONTEXT.Event(), CONTEXT.Event()
    child = CONTEXT.Process(target=_hold, args=(config, what, shared, ready, release))
    child.start()
    assert ready.wait(60), "the child never got the lock"
    return child, release


@pytest.fixture()
def home(lake_config: LakeConfig, tmp_path: Path) -> LakeConfig:
    return replace(lake_config, home=tmp_path / "home")


def test_a_whole_night_is_refused_while_another_holds_the_lake_and_told_who(home: LakeConfig) -> None:
    child, release = holding(home, "cxlake run --date 2026-03-03", shared=False)
    try:
        with pytest.raises(LakeBusyError) as refused, lake_lock(home, "import-history 2026-03-01..2026-03-02"):
            pass
        message = str(refused.value)
        assert f"pid {child.pid}: cxlake run --date 2026-03-03 (exclusive, since " in message
        assert "'import-history 2026-03-01..2026-03-02' needs it to itself" in message
        # A DAG task waits for the whole night, then gives up (Airflow retries it).
        started = time.monotonic()
        with (
            pytest.raises(LakeBusyError, match="needs it alongside the other tasks"),
            lake_lock(home, "cx_nightly task build_silver", shared=True, wait_seconds=1.5),
        ):
            pass
        assert time.monotonic() - started >= 1.5
    finally:
        release.set()
        child.join(30)
    with lake_lock(home, "cxlake run --date 2026-03-04"):  # free again
        pass


def test_dag_tasks_share_the_lake_but_keep_a_whole_night_out(home: LakeConfig) -> None:
    child, release = holding(home, "cx_nightly task ingest orders 2026-03-03", shared=True)
    try:
        with lake_lock(home, "cx_nightly task ingest interactions 2026-03-03", shared=True):
            pass  # side by side
        with pytest.raises(LakeBusyError, match="ingest orders 2026-03-03 \\(shared"), lake_lock(home, "cxlake run"):
            pass
    finally:
        release.set()
        child.join(30)


def test_a_killed_holder_frees_the_lake(home: LakeConfig) -> None:
    child, _ = holding(home, "cxlake run --date 2026-03-03", shared=False)
    os.kill(child.pid, signal.SIGKILL)  # no cleanup runs: the kernel drops the lock
    child.join(30)
    with lake_lock(home, "cxlake run --date 2026-03-03"):
        pass


def test_a_nested_whole_night_call_in_the_holding_process_goes_on(home: LakeConfig) -> None:
    with lake_lock(home, "cxlake run"), lake_lock(home, "cxlake run (data stages)"):
        pass


def test_cxlake_run_is_refused_before_it_starts_anything(home: LakeConfig, monkeypatch) -> None:
    child, release = holding(home, "cx_nightly task build_journey 2026-03-03", shared=True)
    monkeypatch.setenv("CXLAKE_HOME", str(home.home))
    try:
        with pytest.raises(LakeBusyError, match="build_journey 2026-03-03"):
            cli.main(["run", "--date", "2026-03-04"])
    finally:
        release.set()
        child.join(30)
    assert not (Path(home.home) / "lake").exists()  # refused before any table was touched


def _commit_holding(config: LakeConfig, table: str, ready, release, released) -> None:
    from jobs.lake.lock import commit_lock

    with commit_lock(config, table):
        ready.set()
        release.wait(60)
        released.set()  # still inside: the other writer must not be in before this


def test_writers_of_one_table_on_a_machine_commit_one_at_a_time(home: LakeConfig) -> None:
    """The commit lock of an ``s3a://`` lake's shared tables: the second process waits its turn,
    another table's writer does not wait."""
    from jobs.lake.lock import commit_lock

    ready, release, released = CONTEXT.Event(), CONTEXT.Event(), CONTEXT.Event()
    child = CONTEXT.Process(target=_commit_holding, args=(home, "ops.pipeline_runs", ready, release, released))
    child.start()
    try:
        assert ready.wait(60), "the child never got the lock"
        with commit_lock(home, "ops.ingest_audit"):
            assert not released.is_set()  # another table: in at once, while the child still writes
        release.set()
        with commit_lock(home, "ops.pipeline_runs"):
            assert released.is_set()  # only after the child's block ended
    finally:
        release.set()
        child.join(60)
    assert child.exitcode == 0
