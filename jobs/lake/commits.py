"""Every Delta commit the lake's writers make is reported here: a count per process, and the
crash point of the fault-injection tests.

Each place that commits to a Delta table (Spark writes, MERGEs, DELETEs and table properties in
:mod:`jobs.lake.tables` and the jobs; delta-rs writes in :mod:`jobs.lake.small_tables` and the
local ingest engine) calls :func:`committed` right after the commit returns. The crash-point
suite checks that the calls match the commits in the tables' logs, so a new write path that
forgets the call fails it.

``CXLAKE_CRASH_AFTER_COMMIT=N`` kills the process (``os._exit``) right after its Nth commit, as a
power cut or an OOM kill would: what a rerun must recover from. In one process, tests use
:func:`crash_after`, which raises :class:`SimulatedCrash` instead (a ``BaseException``: no
``except Exception`` swallows it), keeping the warm Spark session for the rerun.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from jobs.lake import lineage

log = logging.getLogger(__name__)
T = TypeVar("T")

CRASH_ENV = "CXLAKE_CRASH_AFTER_COMMIT"
CRASH_EXIT_CODE = 86  # what a process killed by the env hook exits with

_lock = threading.Lock()
_count = 0
_crash_at: int | None = None  # in-process crash point (crash_after), counted from its start
_counted_from = 0
_observers: list[tuple[list[str], Callable[[str], None] | None]] = []


class SimulatedCrash(BaseException):  # noqa: N818 - it is not an error the code may handle
    """Raised right after the commit chosen by :func:`crash_after`."""


def committed(what: str) -> None:
    """Report one Delta commit to ``what`` (a table name or path) that has just returned."""
    global _count
    with _lock:
        _count += 1
        number = _count
        crash_at = None if _crash_at is None else _counted_from + _crash_at
        observers = list(_observers)
    lineage.note_commit(what)
    for seen, on_commit in observers:
        seen.append(what)
        if on_commit is not None:
            on_commit(what)
    log.debug("commit %d: %s", number, what)
    env = os.environ.get(CRASH_ENV)
    if env and number >= int(env):
        log.error("%s=%s: killing the process after commit %d (%s)", CRASH_ENV, env, number, what)
        logging.shutdown()
        os._exit(CRASH_EXIT_CODE)
    if crash_at is not None and number >= crash_at:
        raise SimulatedCrash(f"crash after commit {number - _counted_from} ({what})")


def commit_count() -> int:
    """Commits reported by this process so far."""
    return _count


@contextmanager
def observed(on_commit: Callable[[str], None] | None = None) -> Iterator[list[str]]:
    """Within the block, the list yielded collects what each commit reported (in order), and
    ``on_commit`` is called right after each (before the writer goes on: e.g. to copy the lake
    as a crash right then would leave it)."""
    seen: list[str] = []
    _observers.append((seen, on_commit))
    try:
        yield seen
    finally:
        _observers.remove((seen, on_commit))


@contextmanager
def crash_after(commits: int | None) -> Iterator[None]:
    """Within the block, raise :class:`SimulatedCrash` right after its ``commits``-th commit (and
    after any commit that a parallel step completes later). ``None``: count only."""
    global _crash_at, _counted_from
    with _lock:
        _crash_at, _counted_from = commits, _count
    try:
        yield
    finally:
        with _lock:
            _crash_at = None


# What a lost commit race says (compared in lower case): Spark's Concurrent*Exception (via Py4J) and
# its Protocol/MetadataChangedException ("... changed by a concurrent update", a creation race),
# delta-rs's CommitFailedError, and, when two processes create the table at once, delta-rs's "A
# table already exists" for the loser (its retry finds the table and merges into it instead of
# dropping its rows).
RACE_LOST = ("concurrent", "commitfailed", "a table already exists")
COMMIT_ATTEMPTS = 4
BACKOFF_SECONDS = 0.2  # times the attempt number: 0.2, 0.4, 0.6 s


def lost_commit_race(error: BaseException) -> bool:
    """Whether ``error`` says another writer committed first (the write may simply be redone)."""
    text = (type(error).__name__ + " " + str(error)[:500]).lower()
    return any(sign in text for sign in RACE_LOST)


def retried_on_conflict(write: Callable[[], T], table: str) -> T:
    """Run ``write`` (a whole idempotent write: it re-reads the table each time), again after a
    lost commit race, up to :data:`COMMIT_ATTEMPTS` times with a growing pause.

    Delta's optimistic concurrency makes the loser of two commits to one table fail rather than
    overwrite; every write here replaces or merges its own slice, so redoing it against the new
    version gives what running it after the winner would have.
    """
    for attempt in range(1, COMMIT_ATTEMPTS + 1):
        try:
            return write()
        except Exception as error:
            if not lost_commit_race(error) or attempt == COMMIT_ATTEMPTS:
                raise
            said = (str(error).strip().splitlines() or [""])[0][:300]
            log.warning("%s: another writer committed first (%s: %s), writing again", table, type(error).__name__, said)
            time.sleep(BACKOFF_SECONDS * attempt)
    raise AssertionError("unreachable")
