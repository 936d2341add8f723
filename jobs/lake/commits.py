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
from collections.abc import Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)

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
