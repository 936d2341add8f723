"""Independent Spark steps run at the same time (jobs.lake.spark.in_parallel / run_concurrently)."""

from __future__ import annotations

import threading

import pytest

from jobs.lake.spark import in_parallel, run_concurrently


def test_steps_overlap_and_results_keep_the_steps_order() -> None:
    # Each step waits until both have started: run one after the other, the first would time out.
    both_started = threading.Barrier(2, timeout=30)

    def step(value: int) -> int:
        both_started.wait()
        return value

    assert list(in_parallel({"b": lambda: step(2), "a": lambda: step(1)}).items()) == [("b", 2), ("a", 1)]


def test_a_failure_is_raised_after_every_other_step_finished() -> None:
    finished: list[str] = []

    def fails() -> None:
        raise ValueError("bad slice")

    def slow() -> str:
        threading.Event().wait(0.5)
        finished.append("slow")
        return "done"

    with pytest.raises(ValueError, match="bad slice"):
        in_parallel({"fails": fails, "slow": slow})
    assert finished == ["slow"]  # the other step was not abandoned half-way


def test_in_order_a_crash_stops_the_steps_not_yet_started_as_a_kill_would() -> None:
    from jobs.lake.commits import SimulatedCrash

    ran: list[str] = []

    def crashes() -> None:
        ran.append("crashes")
        raise SimulatedCrash("after commit 1")

    with pytest.raises(SimulatedCrash):
        in_parallel({"crashes": crashes, "later": lambda: ran.append("later")}, max_workers=1)
    assert ran == ["crashes"]


def test_steps_in_order_with_one_worker_run_every_step_despite_an_error() -> None:
    ran: list[str] = []

    def fails() -> None:
        ran.append("fails")
        raise ValueError("bad slice")

    with pytest.raises(ValueError, match="bad slice"):
        in_parallel({"fails": fails, "next": lambda: ran.append("next")}, max_workers=1)
    assert ran == ["fails", "next"]


def test_each_writing_step_has_its_own_session_settings_and_the_callers_job_group(spark) -> None:
    spark.sparkContext.setJobGroup("caller-group", "concurrent steps test")
    try:
        both_set = threading.Barrier(2, timeout=60)

        def step(name: str):
            def run(session):
                # What commit_metadata_set does before a MERGE: a runtime setting of the session.
                session.conf.set("spark.databricks.delta.commitInfo.userMetadata", name)
                both_set.wait()  # both settings are in place before either is read back
                job_group = session.sparkContext.getLocalProperty("spark.jobGroup.id")
                return session.conf.get("spark.databricks.delta.commitInfo.userMetadata"), job_group

            return run

        results = run_concurrently(spark, {"orders": step("orders"), "shipments": step("shipments")})
    finally:
        spark.sparkContext.setLocalProperty("spark.jobGroup.id", None)
    assert results == {"orders": ("orders", "caller-group"), "shipments": ("shipments", "caller-group")}
    # The caller's own session is untouched.
    assert spark.conf.get("spark.databricks.delta.commitInfo.userMetadata", None) is None
