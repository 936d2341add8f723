"""Crash points: a night stopped right after each one of its Delta commits, then the task that
failed rerun (as Airflow retries it), ends with exactly the tables of a night that never crashed.

Two simulated worlds. A tiny one for the data stages: night 1 builds the lake, night 2 is the one
crashed, from ingest to the gold gate. A small one for the model stages: 22 nights imported at
once give both models enough history; on the last night they train, then scoring and the model
reports are crashed. (The training tasks commit to MLflow only: their retries are
tests/models/test_training.py's.) Each crashed night first runs clean, task by task in DAG order.
Every commit is reported by :mod:`jobs.lake.commits` (the reports are checked against the new
versions in the tables' logs: a write path that does not report would escape the suite), and
right after each one the lake is copied: exactly what a kill at that moment leaves (the steps
that run side by side in production run one after another in the clean run, so no other write is
under way; a test checks one such state against a real in-process stop,
:func:`jobs.lake.commits.crash_after`). Then, for every task and every commit k of it: the lake as
the crash after commit k left it, the task rerun (in this process: the warm Spark session serves
it; its steps side by side, as in production), and the tables compared with the
clean run's, row for row (wall-clock bookkeeping columns aside): every table the task or its
rerun committed to; any other table's log must be untouched. One point is a real kill: a child
process with ``CXLAKE_CRASH_AFTER_COMMIT`` set exits between an ingest's data and its audit.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from lake_rows import delta_rows

from jobs.devtools.simulator import SimulationConfig, simulate
from jobs.lake import commits
from jobs.lake.contracts import all_contract_names, load_contract
from jobs.pipeline import nightly

FIRST, NIGHT = "2026-01-05", "2026-01-06"
SEED = 5
# The model world: 42 days of 500 customers (~12 orders a day). The ETA model needs 50 matured
# orders placed 14+ days before its holdout (the latest fifth of the orders placed by the night
# - 14 days): counted on the raw files, 377 matured deliveries, 68 of them before the gap. The
# churn panel needs three weekly as-of dates whose 3-day horizon and 3-day lateness bound have
# passed, and 200 rows.
MODEL_DAYS, MODEL_CUSTOMERS, CHURN_HORIZON_DAYS = 42, 500, 3
MODEL_NIGHT = "2026-02-15"

Task = Callable[[Any, str, dict[str, Any]], Any]
DATA_TASKS: list[tuple[str, Task]] = [
    *(
        (f"ingest {source}", lambda config, night, _, source=source: nightly.ingest(source, night, config))
        for source in ("orders", "tracking_scans", "interactions")
    ),
    ("validate_bronze", lambda config, night, _: nightly.validate_bronze(night, config)),
    ("build_silver", lambda config, night, _: nightly.build_silver(night, config)),
    ("validate_silver", lambda config, night, _: nightly.validate_silver(night, config)),
    # The DAG's order: the KPIs read the journey's funnel.
    ("build_journey", lambda config, night, _: nightly.build_journey(night, config)),
    ("build_gold", lambda config, night, _: nightly.build_gold(night, config)),
    ("build_features", lambda config, night, _: nightly.build_features(night, config)),
    ("validate_gold", lambda config, night, done: nightly.validate_gold(night, done["build_journey"], config)),
]
MODEL_TASKS: list[tuple[str, Task]] = [
    ("train_eta", lambda config, night, _: nightly.train_eta(night, config)),
    ("train_churn", lambda config, night, _: nightly.train_churn(night, config)),
    ("score_models", lambda config, night, _: nightly.score_models(night, config)),
    ("build_model_reports", lambda config, night, _: nightly.build_model_reports(night, config)),
]
# What a rerun must return as the clean run did: the gold gate validates the journey rows it
# names; the scoring and monitoring reports are what the night's summary shows.
SAME_RESULT = {"build_journey", "score_models", "build_model_reports"}


def _wall_clock_columns() -> dict[str, set[str]]:
    """Columns that hold the time a row was written (ops tables only): never equal across runs."""
    return {
        name: {c.name for c in load_contract(name).columns if "wall clock" in (c.description or "")}
        for name in all_contract_names()
    }


WALL_CLOCK = _wall_clock_columns()


def _tables(lake: Path) -> dict[str, Path]:
    return {f"{p.parent.parent.name}.{p.parent.name}": p.parent for p in sorted(lake.glob("*/*/_delta_log"))}


def _content(lake: Path, names: set[str] | None = None) -> dict[str, list[str]]:
    """The rows (as sorted JSON) of every table, or of ``names``, read with delta-rs: no Spark job."""
    content = {}
    for name, path in _tables(lake).items():
        if names is not None and name not in names:
            continue
        rows = delta_rows(path, WALL_CLOCK.get(name, set()))
        content[name] = sorted(json.dumps(row, sort_keys=True, default=str) for row in rows)
    return content


def _versions(lake: Path) -> dict[str, int]:
    return {name: len(list((path / "_delta_log").glob("*.json"))) for name, path in _tables(lake).items()}


def _table_of(path: str) -> str:
    return ".".join(Path(path.removeprefix("file:")).parts[-2:])


@dataclass(frozen=True)
class CleanNight:
    config: Any
    night: str
    tasks: list[tuple[str, Task]]
    root: Path
    before: dict[str, Path]  # a copy of the lake before each task
    after: dict[str, dict[str, list[str]]]  # the content of each task's tables after it
    commits: dict[str, list[str]]  # each task's commits, in order (table paths)
    crashed: dict[str, list[Path]]  # each task's lake as a crash right after its k-th commit leaves it
    results: dict[str, Any]

    def written(self, task: str) -> set[str]:
        return {_table_of(path) for path in self.commits[task]}


@contextmanager
def one_step_at_a_time() -> Iterator[None]:
    """Steps that run side by side in production run in order: then a crash after commit k
    leaves exactly the night's first k commits (in threads, the other steps' commits would go on).
    For the clean run, whose states are captured, and the in-process crash; a rerun after a
    crash runs its steps side by side, as in production."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("jobs.lake.spark.MAX_CONCURRENT_STEPS", 1)
        yield


def _run_clean(lake_config: Any, night: str, tasks: list[tuple[str, Task]], root: Path) -> CleanNight:
    """The night's tasks in order, the lake copied before each task and right after each commit."""
    lake = Path(lake_config.lake_root)
    before, after, made, crashed, results = {}, {}, {}, {}, {}
    for name, task in tasks:
        folder = name.replace(" ", "_")
        before[name] = root / "before" / folder
        shutil.copytree(lake, before[name])
        crashed[name] = []

        def crash_here(_: str, folder: str = folder, states: list[Path] = crashed[name]) -> None:
            # Right after the commit, before the task goes on: the lake exactly as a kill now
            # would leave it (steps run in order, so no other write is under way).
            states.append(root / "crashed" / folder / str(len(states) + 1))
            shutil.copytree(lake, states[-1])

        with commits.observed(crash_here) as seen, one_step_at_a_time():
            results[name] = task(lake_config, night, results)
        made[name] = list(seen)
        after[name] = _content(lake, {_table_of(path) for path in seen})
    return CleanNight(lake_config, night, tasks, root, before, after, made, crashed, results)


@pytest.fixture(scope="module")
def clean_night(config, spark, tmp_path_factory) -> CleanNight:
    """The tiny world's night 2, data stages."""
    root = tmp_path_factory.mktemp("crash_points")
    landing = root / "landing"
    simulate(SimulationConfig(days=2, customers=120, seed=SEED), landing)
    lake_config = replace(config, lake_root=str(root / "lake"), landing_root=str(landing))
    nightly.run_data_stages(FIRST, lake_config)
    return _run_clean(lake_config, NIGHT, DATA_TASKS, root)


@pytest.fixture(scope="module")
def model_night(config, spark, tmp_path_factory) -> CleanNight:
    """The model world's last night, model stages (its data stages came with the import)."""
    root = tmp_path_factory.mktemp("model_crash_points")
    landing = root / "landing"
    simulate(SimulationConfig(days=MODEL_DAYS, customers=MODEL_CUSTOMERS, seed=SEED), landing)
    home = config.moved_to(root / "home", landing_root=str(landing))  # its own MLflow store too
    lake_config = replace(home, churn_horizon_days=CHURN_HORIZON_DAYS)
    nightly.import_history(FIRST, MODEL_NIGHT, lake_config)
    night = _run_clean(lake_config, MODEL_NIGHT, MODEL_TASKS, root)
    trained = [night.results[name] for name in ("train_eta", "train_churn")]
    assert [r["trained"] for r in trained] == [True, True], trained  # the scoring has champions
    return night


NIGHTS = ["clean_night", "model_night"]


@pytest.mark.parametrize("which", NIGHTS)
def test_every_commit_of_the_night_is_reported(request: pytest.FixtureRequest, which: str) -> None:
    """The reports match the logs: each table's new versions are its reported commits."""
    night: CleanNight = request.getfixturevalue(which)
    first = _versions(night.before[night.tasks[0][0]])
    now = _versions(Path(night.config.lake_root))
    new_versions = {t: n - first.get(t, 0) for t, n in now.items() if n - first.get(t, 0)}
    reported: dict[str, int] = {}
    for paths in night.commits.values():
        for path in paths:
            reported[_table_of(path)] = reported.get(_table_of(path), 0) + 1
    assert reported == new_versions
    # Every stage of the data night commits (ingest's 4 per source ... the gold gate); the models
    # write their predictions and their reports.
    assert sum(reported.values()) >= {"clean_night": 20, "model_night": 4}[which]


def _rerun_after_crash(night: CleanNight, task_index: int, crash_at: int, lake: Path) -> list[str]:
    """The lake as a crash right after the task's ``crash_at``-th commit left it, then the task
    rerun: the tables that differ from the clean run's after that task (none is the pass).

    Compared: the tables the clean task or the rerun committed to. A table neither wrote keeps
    its log (checked), so it holds what it held before the task, as in the clean run.
    """
    name, task = night.tasks[task_index]
    crashed = night.crashed[name][crash_at - 1]
    shutil.copytree(crashed, lake)
    config = replace(night.config, lake_root=str(lake))
    written = night.written(name)
    problems = []
    if crash_at < len(night.commits[name]) and _content(lake, written) == night.after[name]:
        problems.append("the crash left the task's work done: the point proves nothing")
    result = task(config, night.night, dict(night.results))
    if name in SAME_RESULT and result != night.results[name]:
        problems.append(f"result {result} != {night.results[name]}")
    logs_before, logs_after = _versions(crashed), _versions(lake)
    rewritten = {t for t in logs_after if logs_after[t] != logs_before.get(t)}
    expected = {**_content(crashed, rewritten - written), **night.after[name]}
    got = _content(lake, written | rewritten)
    problems += [t for t in sorted(set(got) | set(expected)) if got.get(t) != expected.get(t)]
    return problems


def test_a_crash_in_process_stops_where_the_captured_crash_state_is(clean_night: CleanNight, tmp_path: Path) -> None:
    """The captured states are what a crash leaves: silver stopped (SimulatedCrash) right after
    its 3rd commit leaves the lake equal to the state captured there."""
    lake = tmp_path / "lake"
    shutil.copytree(clean_night.before["build_silver"], lake)
    config = replace(clean_night.config, lake_root=str(lake))
    with pytest.raises(commits.SimulatedCrash), commits.crash_after(3), one_step_at_a_time():
        nightly.build_silver(NIGHT, config)
    assert _content(lake) == _content(clean_night.crashed["build_silver"][2])


@pytest.mark.parametrize("which", NIGHTS)
def test_a_night_crashed_after_any_commit_converges_when_the_failed_task_reruns(
    request: pytest.FixtureRequest, which: str
) -> None:
    night: CleanNight = request.getfixturevalue(which)
    points = [(i, k) for i, (name, _) in enumerate(night.tasks) for k in range(1, len(night.commits[name]) + 1)]
    failures = {}
    seconds: dict[str, float] = {}
    for i, k in points:
        name = night.tasks[i][0]
        lake = night.root / "points" / f"{i}-{k}"
        started = time.perf_counter()
        problems = _rerun_after_crash(night, i, k, lake)
        seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - started
        if problems:
            failures[f"{name} after commit {k} ({night.commits[name][k - 1]})"] = problems
        shutil.rmtree(lake)
    print(f"{which}: {len(points)} crash points over {len(night.tasks)} tasks: {len(failures)} failed")
    for name, _ in night.tasks:
        print(f"  {name}: {len(night.commits[name])} commits, {seconds.get(name, 0):.1f} s")
    assert not failures
    assert len(points) == sum(len(c) for c in night.commits.values())


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
    written = clean_night.written(name)
    half_done = _content(lake, written)
    assert half_done != clean_night.after[name]
    assert half_done["bronze.orders"] == clean_night.after[name]["bronze.orders"]  # the kill came after it
    nightly.ingest("orders", NIGHT, replace(clean_night.config, lake_root=str(lake)))
    assert _content(lake, written) == clean_night.after[name]
