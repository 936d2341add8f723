"""The lake lock: a whole-night writer (``cxlake run``, ``import-history``) has the lake to itself.

The nightly DAG keeps its own nights apart (``max_active_runs=1``), but a manual ``cxlake run``
or a history import beside it would interleave writes of two nights: Delta's optimistic
concurrency stops two writers of one file, not a night that reads tables another night is
halfway through writing (a later as-of partition built before an earlier night's silver).

So, one advisory lock per ``$CXLAKE_HOME`` (``fcntl.flock`` on ``locks/lake.lock``, released by
the kernel when its process ends, so a killed run never leaves it behind):

* a whole-night command takes it **exclusively** and fails at once when anything else holds it;
* every DAG task takes it **shared** (the tasks of a night run side by side) and waits up to
  ``CXLAKE_LOCK_WAIT_SECONDS`` for an exclusive holder to finish, then fails (Airflow retries).

Each holder leaves a note (``locks/holders/<pid>``: what it runs, since when) that a refused
process quotes. The lock is per machine: on a lake shared by several machines (``s3a://``), run
the nights from one scheduler.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from jobs.lake.config import LakeConfig

POLL_SECONDS = 1.0
# Locks this process holds, per lake home: a whole-night function called by another (run_all ->
# run_data_stages) holds it already. flock would refuse the second request even from this process.
_held: dict[str, int] = {}


class LakeBusyError(RuntimeError):
    """Another process holds the lake lock in a mode that excludes this one."""


def _locks(config: LakeConfig) -> Path:
    folder = Path(config.home) / "locks"
    (folder / "holders").mkdir(parents=True, exist_ok=True)
    return folder


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def holders(config: LakeConfig) -> list[str]:
    """The notes of the processes holding the lock now (notes of dead processes are dropped)."""
    notes = []
    for note in sorted((_locks(config) / "holders").iterdir()):
        if note.name.isdigit() and _alive(int(note.name)) and int(note.name) != os.getpid():
            notes.append(f"pid {note.name}: {note.read_text().strip()}")
        elif note.name.isdigit() and not _alive(int(note.name)):
            note.unlink(missing_ok=True)
    return notes


@contextmanager
def lake_lock(config: LakeConfig, what: str, shared: bool = False, wait_seconds: float = 0.0) -> Iterator[None]:
    """Hold the lake lock while the block runs.

    Args:
        what: what this process runs (quoted to a process that is refused).
        shared: a DAG task (shared with the other tasks); else a whole-night command (exclusive).
        wait_seconds: how long to wait for the lock before giving up.

    A process that holds the lock already (a whole-night function calling another) just goes on.

    Raises:
        LakeBusyError: the lock was not granted within ``wait_seconds``, naming its holders.
    """
    home = str(Path(config.home).resolve())
    if _held.get(home):
        _held[home] += 1
        try:
            yield
        finally:
            _held[home] -= 1
        return
    folder = _locks(config)
    descriptor = os.open(folder / "lake.lock", os.O_RDWR | os.O_CREAT, 0o600)
    mode = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB
    deadline = time.monotonic() + wait_seconds
    note = folder / "holders" / str(os.getpid())
    try:
        while True:
            try:
                fcntl.flock(descriptor, mode)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    others = holders(config) or ["(a process that left no note)"]
                    need = "alongside the other tasks of a DAG night" if shared else "to itself"
                    raise LakeBusyError(
                        f"the lake at {config.home} is in use: '{what}' needs it {need}; held by "
                        + "; ".join(others)
                        + ". Wait for that to finish, then rerun"
                    ) from None
                time.sleep(POLL_SECONDS)
        # When the lock is held, not what the tables hold.
        since = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        note.write_text(f"{what} ({'shared' if shared else 'exclusive'}, since {since})\n")
        _held[home] = 1
        try:
            yield
        finally:
            _held.pop(home, None)
            note.unlink(missing_ok=True)
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)


@contextmanager
def commit_lock(config: LakeConfig, table: str) -> Iterator[None]:
    """Hold ``table``'s commit lock on this machine while the block writes to it (blocking: a
    commit takes seconds).

    For tables that separate processes of one night write at once (the ``ops`` tables: the three
    ingests' audit rows, every task's run-log row) on an ``s3a://`` lake: Delta's default S3 log
    store is safe for one writer at a time only (two processes writing the same log version would
    both succeed, and one commit would be lost), and DynamoDB, which its multi-writer log store
    needs, is not part of this stack. The DAG's tasks run on one machine (LocalExecutor), so an
    ``flock`` per table (``locks/tables/<table>.lock``) serialises them. A deployment whose tasks
    run on several machines needs ``S3DynamoDBLogStore`` (README, "Run on a cluster / on S3").
    """
    folder = _locks(config) / "tables"
    folder.mkdir(exist_ok=True)
    descriptor = os.open(folder / f"{table}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)
