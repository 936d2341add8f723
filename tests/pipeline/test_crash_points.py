"""Crash points: a night stopped right after each one of its Delta commits, then the task that
failed rerun (as Airflow retries it), ends with exactly the tables of a night that never crashed.

A tiny simulated world: night 1 builds the lake, night 2 is the one crashed. Night 2 first runs
clean, task by task in DAG order. Every commit is reported by :mod:`jobs.lake.commits` (the reports
are checked against the new versions in the tables' logs: a write path that does not report
would escape the suite), and right after each one the lake is copied: exactly what a kill at
that moment leaves (the steps that run side by side in production run one after another here,
so no other write is under way; a test checks one such state against a real in-process stop,
:func:`jobs.lake.commits.crash_after`). Then, for every task and every commit k of it: the lake
as the crash after commit k left it, the task rerun (in this process: the warm Spark session
serves it), and every table compared with the clean run's, row for row (wall-clock bookkeeping
columns aside). One point is a real kill: a
child process with ``CXLAKE_CRASH_AFTER_COMMIT`` set exits between an ingest's data and its audit.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from jobs.devtools.simulator import SimulationConfig, simulate
from jobs.lake import commits
from jobs.lake.contracts import all_contract_names, load_contract
from jobs.pipeline import nightly

FIRST, NIGHT = "2026-01-05", "2026-01-06"
SEED = 5

Task = Callable[[Any, dict[str, Any]], Any]
TASKS: list[tuple[str, Task]] = [
    *(
        (f"ingest {source}", lambda config, _, source=source: nightly.ingest(source, NIGHT, config))
        for source in ("orders", "tracking_scans", "interactions")
    ),
    ("validate_bronze", lambda config, _: nightly.validate_bronze(NIGHT, config)),
    ("build_silver", lambda config, _: nightly.build_silver(NIGHT, config)),
    ("validate_silver", lambda config, _: nightly.validate_silver(NIGHT, config)),
    ("build_gold", lambda config, _: nightly.build_gold(NIGHT, config)),
    ("build_journey", lambda config, _: nightly.build_journey(NIGHT, config)),
    ("build_features", lambda config, _: nightly.build_features(NIGHT, config)),
    ("validate_gold", lambda config, done: nightly.validate_gold(NIGHT, done["build_journey"], config)),
]
# What a rerun must return as the clean run did: the gold gate validates the journey rows it names.
SAME_RESULT = {"build_journey"}


def _wall_clock_columns() -> dict[str, set[str]]:
    """Columns that hold the time a row was written (ops tables only): never equal across runs."""
    return {
        name: {c.name for c in load_contract(name).columns if "wall clock" in (c.description or "")}
        for name in all_contract_names()
    }


WALL_CLOCK = _wall_clock_columns()


def _tables(lake: Path) -> dict[str, Path]:
    return {f"{p.parent.parent.name}.{p.parent.name}": p.parent for p in sorted(lake.glob("*/*/_delta_log"))}


def _content(lake: Path) -> dict[str, list[str]]:
    """Every table's rows (as sorted JSON), read with delta-rs: no Spark job per table."""
    from deltalake import DeltaTable

    content = {}
    for name, path in _tables(lake).items():
        rows = DeltaTable(str(path)).to_pyarrow_table().to_pylist()
        skip = WALL_CLOCK.get(name, set())
        content[name] = sorted(
            json.dumps({k: v for k, v in row.items() if k not in skip}, sort_keys=True, default=str) for row in rows
        )
    return content


def _versions(lake: Path) -> dict[str, int]:
    return {name: len(list((path / "_delta_log").glob("*.json"))) for name, path in _tables(lake).items()}


@dataclass(frozen=True)
class CleanNight:
    config: Any
    root: Path
    before: dict[str, Path]  # a copy of the lake before each task
    after: dict[str, dict[str, list[str]]]  # every table's content after each task
    commits: dict[str, list[str]]  # each task's commits, in order (table paths)
    crashed: dict[str, list[Path]]  # each task's lake as a crash right after its k-th commit leaves it
    results: dict[str, Any]


@pytest.fixture(scope="module", autouse=True)
def one_step_at_a_time() -> Iterator[None]:
    """Steps that run side by side in production run in order here: then a crash after commit k
    leaves exactly the night's first k commits (in threads, the other steps' commits would go on)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("jobs.lake.spark.MAX_CONCURRENT_STEPS", 1)
        yield


@pytest.fixture(scope="module")
def clean_night(config, spark, tmp_path_factory) -> CleanNight:
    root = tmp_path_factory.mktemp("crash_points")
    landing = root / "landing"
    simulate(SimulationConfig(days=2, customers=120, seed=SEED), landing)
    lake_config = replace(config, lake_root=str(root / "lake"), landing_root=str(landing))
    nightly.run_data_stages(FIRST, lake_config)
    lake = Path(lake_config.lake_root)
    before, after, made, crashed, results = {}, {}, {}, {}, {}
    for name, task in TASKS:
        folder = name.replace(" ", "_")
        before[name] = root / "before" / folder
        shutil.copytree(lake, before[name])
        crashed[name] = []

        def crash_here(_: str, folder: str = folder, states: list[Path] = crashed[name]) -> None:
            # Right after the commit, before the task goes on: the lake exactly as a kill now
            # would leave it (steps run in order, so no other write is under way).
            states.append(root / "crashed" / folder / str(len(states) + 1))
            shutil.copytree(lake, states[-1])

        with commits.observed(crash_here) as seen:
            results[name] = task(lake_config, results)
        made[name] = list(seen)
        after[name] = _content(lake)
    return CleanNight(lake_config, root, before, after, made, crashed, results)


def test_every_commit_of_the_night_is_reported(clean_night: CleanNight) -> None:
    """The reports match the logs: each table's new versions are its reported commits."""
    lake = Path(clean_night.config.lake_root)
    first = _versions(clean_night.before[TASKS[0][0]])
    now = _versions(lake)
    new_versions = {t: n - first.get(t, 0) for t, n in now.items() if n - first.get(t, 0)}
    reported: dict[str, int] = {}
    for paths in clean_night.commits.values():
        for path in paths:
            table = ".".join(Path(path.removeprefix("file:")).parts[-2:])
            reported[table] = reported.get(table, 0) + 1
    assert reported == new_versions
    assert sum(reported.values()) >= 20, "a night of every stage commits to at least 20 tables' logs"


def _rerun_after_crash(clean_night: CleanNight, task_index: int, crash_at: int, lake: Path) -> list[str]:
    """The lake as a crash right after the task's ``crash_at``-th commit left it, then the task
    rerun: the tables that differ from the clean run's after that task (none is the pass)."""
    name, task = TASKS[task_index]
    shutil.copytree(clean_night.crashed[name][crash_at - 1], lake)
    config = replace(clean_night.config, lake_root=str(lake))
    problems = []
    if crash_at < len(clean_night.commits[name]) and _content(lake) == clean_night.after[name]:
        problems.append("the crash left the task's work done: the point proves nothing")
    result = task(config, dict(clean_night.results))
    if name in SAME_RESULT and result != clean_night.results[name]:
        problems.append(f"result {result} != {clean_night.results[name]}")
    got, expected = _content(lake), clean_night.after[name]
    problems += [t for t in sorted(set(got) | set(expected)) if got.get(t) != expected.get(t)]
    return problems


def test_a_crash_in_process_stops_where_the_captured_crash_state_is(clean_night: CleanNight, tmp_path: Path) -> None:
    """The captured states are what a crash leaves: silver stopped (SimulatedCrash) right after
    its 3rd commit leaves the lake equal to the state captured there."""
    lake = tmp_path / "lake"
    shutil.copytree(clean_night.before["build_silver"], lake)
    config = replace(clean_night.config, lake_root=str(lake))
    with pytest.raises(commits.SimulatedCrash), commits.crash_after(3):
        nightly.build_silver(NIGHT, config)
    assert _content(lake) == _content(clean_night.crashed["build_silver"][2])


def test_a_night_crashed_after_any_commit_converges_when_the_failed_task_reruns(clean_night: CleanNight) -> None:
    points = [(i, k) for i, (name, _) in enumerate(TASKS) for k in range(1, len(clean_night.commits[name]) + 1)]
    failures = {}
    seconds: dict[str, float] = {}
    for i, k in points:
        lake = clean_night.root / "points" / f"{i}-{k}"
        started = time.perf_counter()
        problems = _rerun_after_crash(clean_night, i, k, lake)
        seconds[TASKS[i][0]] = seconds.get(TASKS[i][0], 0.0) + time.perf_counter() - started
        if problems:
            failures[f"{TASKS[i][0]} after commit {k} ({clean_night.commits[TASKS[i][0]][k - 1]})"] = problems
        shutil.rmtree(lake)
    print(f"{len(points)} crash points over {len(TASKS)} tasks: {len(failures)} failed")
    for name, _ in TASKS:
        print(f"  {name}: {len(clean_night.commits[name])} commits, {seconds.get(name, 0):.1f} s")
    assert not failures
    assert len(points) == sum(len(c) for c in clean_night.commits.values())


def test_a_real_kill_between_an_ingest_and_its_audit_converges_on_rerun(
    clean_night: CleanNight, tmp_path: Path
) -> None:
    """A child process killed (``os._exit``, no cleanup of any kind) right after the orders
    ingest wrote bronze and quarantine, before its audit rows: the rerun writes the same rows."""
    lake = tmp_path / "lake"
    name = "ingest orders"
    shutil.copytree(clean_night.before[name], lake)
    env = {
        **os.environ,
        "CXLAKE_LAKE_ROOT": str(lake),
        "CXLAKE_LANDING_ROOT": clean_night.config.landing_root,
        commits.CRASH_ENV: "2",
    }
    code = f"from jobs.pipeline import nightly; nightly.ingest('orders', {NIGHT!r})"
    killed = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert killed.returncode == commits.CRASH_EXIT_CODE, killed.stderr[-2000:]
    half_done = _content(lake)
    assert half_done != clean_night.after[name]
    assert half_done["bronze.orders"] == clean_night.after[name]["bronze.orders"]  # the kill came after it
    nightly.ingest("orders", NIGHT, replace(clean_night.config, lake_root=str(lake)))
    assert _content(lake) == clean_night.after[name]
