"""`cxlake lineage`: the upstream tree from OpenLineage events.

The events here are shaped as the three producers write them (the openlineage-spark listener's
application and job events, the Airflow provider's task events, the ingest's own delta-rs write
events, recorded by :func:`jobs.lake.lineage.record_write` itself); a real night's events are
read in tests/test_airflow_scheduler.py.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from jobs.analytics.lineage import LineageGraph, RunLink, lineage_of, read_events, render, upstream
from jobs.lake import lineage
from jobs.lake.config import load_config

DAG_RUN = lineage.RunRef("cxlake-airflow", "cx_nightly", "01930000-0000-7000-8000-0000000000aa")


def _at(minute: int) -> str:
    return f"2026-03-03T04:{minute:02d}:00Z"


def _task(name: str, run_id: str, start: int, end: int) -> list[dict]:
    facets = {"jobType": {"integration": "AIRFLOW", "jobType": "TASK", "processingType": "BATCH"}}
    parent = {"run": {"runId": DAG_RUN.run_id}, "job": {"namespace": DAG_RUN.namespace, "name": DAG_RUN.job}}
    return [
        {
            "eventType": kind,
            "eventTime": _at(minute),
            "run": {"runId": run_id, "facets": {"parent": parent}},
            "job": {"namespace": "cxlake-airflow", "name": f"cx_nightly.{name}", "facets": facets},
        }
        for kind, minute in (("START", start), ("COMPLETE", end))
    ]


def _spark_job(app_run: str, minute: int, inputs: list[str], outputs: list[str]) -> dict:
    return {
        "eventType": "COMPLETE",
        "eventTime": _at(minute),
        "run": {
            "runId": f"job-{minute}",
            "facets": {
                "parent": {
                    "run": {"runId": app_run},
                    "job": {"namespace": "cxlake", "name": "cxlake"},
                    "root": {"run": {"runId": DAG_RUN.run_id}, "job": {"namespace": "x", "name": "cx_nightly"}},
                }
            },
        },
        "job": {
            "namespace": "cxlake",
            "name": "cxlake.execute_merge_into_command",
            "facets": {"jobType": {"integration": "SPARK", "jobType": "SQL_JOB"}},
        },
        "inputs": [{"namespace": "file", "name": p} for p in inputs],
        "outputs": [{"namespace": "file", "name": p} for p in outputs],
    }


def _application(app_run: str, parent: lineage.RunRef) -> dict:
    return {
        "eventType": "START",
        "eventTime": _at(0),
        "run": {
            "runId": app_run,
            "facets": {
                "parent": {
                    "run": {"runId": parent.run_id},
                    "job": {"namespace": parent.namespace, "name": parent.job},
                    "root": {"run": {"runId": DAG_RUN.run_id}, "job": {"namespace": "x", "name": "cx_nightly"}},
                }
            },
        },
        "job": {
            "namespace": "cxlake",
            "name": "cxlake",
            "facets": {"jobType": {"integration": "SPARK", "jobType": "APPLICATION"}},
        },
    }


@pytest.fixture()
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CXLAKE_HOME", str(tmp_path))
    monkeypatch.setenv("CXLAKE_LINEAGE", "1")
    return load_config()


def _write_events(config, events: list[dict]) -> None:
    folder = lineage.lineage_dir(config)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "spark-test.jsonl").write_text("\n".join(json.dumps(e) for e in events) + "\n{half a line")


def test_one_session_for_the_whole_night_ties_jobs_to_tasks_by_time(config, monkeypatch) -> None:
    t = config.table_path
    # `airflow dags test`: one Spark application whose parent is the DAG run; silver is built
    # from minute 10 to 20, gold from 21 to 30.
    events = [
        _application("app-1", DAG_RUN),
        *_task("build_silver", "task-silver", 10, 20),
        *_task("build_gold", "task-gold", 21, 30),
        _spark_job("app-1", 12, [t("bronze.orders")], [t("silver.orders")]),
        _spark_job("app-1", 14, [t("silver.orders"), t("silver.device_links")], [t("silver.orders")]),
        _spark_job(
            "app-1", 25, [t("silver.orders"), t("silver.shipments"), t("gold.cx_kpi_daily")], [t("gold.cx_kpi_daily")]
        ),
    ]
    _write_events(config, events)
    # The ingest's own delta-rs write, recorded with the task as parent (as locked_step sets it).
    monkeypatch.setenv(
        lineage.PARENT_VARIABLE, "cxlake-airflow/cx_nightly.ingest_orders/01930000-0000-7000-8000-0000000000bb"
    )
    monkeypatch.setenv(lineage.ROOT_VARIABLE, DAG_RUN.encoded())
    start = dt.datetime(2026, 3, 3, 4, 1, tzinfo=dt.UTC)
    lineage.record_write(
        config,
        "cxlake.ingest_orders",
        ["/landing/orders/2026-03-03"],
        ["bronze.orders", "quarantine.orders"],
        start,
        start + dt.timedelta(seconds=2),
    )

    tree = lineage_of(config, "gold.cx_kpi_daily")
    assert [(level, name) for level, name, _ in tree] == [
        (0, "gold.cx_kpi_daily"),
        (1, "silver.orders"),  # the MERGE's own target is no input of itself
        (2, "bronze.orders"),
        (3, "/landing/orders/2026-03-03"),
        (2, "silver.device_links"),  # read by silver.orders' second job of the same run
        (1, "silver.shipments"),  # read, but no write of it recorded
    ]
    writes = {name: write for _, name, write in tree}
    assert (writes["gold.cx_kpi_daily"].task.job, writes["gold.cx_kpi_daily"].task_by_time) == (
        "cx_nightly.build_gold",
        True,
    )
    assert writes["silver.orders"].task.run_id == "task-silver"
    assert writes["silver.orders"].written_at == dt.datetime(2026, 3, 3, 4, 14, tzinfo=dt.UTC)  # its last job
    assert (writes["bronze.orders"].task.job, writes["bronze.orders"].task_by_time) == (
        "cx_nightly.ingest_orders",
        False,
    )
    assert {w.dag_run.run_id for w in writes.values() if w} == {DAG_RUN.run_id}
    assert writes["silver.shipments"] is None
    text = render(tree)
    assert "by time: one Spark session ran the whole night" in text and "(landing files)" in text


def test_a_task_per_process_names_the_task_as_the_applications_parent(config) -> None:
    t = config.table_path
    task = lineage.RunRef("cxlake-airflow", "cx_nightly.build_gold", "task-gold")
    _write_events(
        config, [_application("app-2", task), _spark_job("app-2", 25, [t("silver.orders")], [t("gold.cx_kpi_daily")])]
    )
    write = LineageGraph(config, read_events(lineage.lineage_dir(config))).last_write("gold.cx_kpi_daily")
    # The writing run is the task's (its application's jobs and its own record share it).
    assert (write.task, write.task_by_time, write.run_id) == (
        RunLink("cx_nightly.build_gold", "task-gold"),
        False,
        "task-gold",
    )


def test_the_latest_run_wins(config) -> None:
    t = config.table_path
    _write_events(
        config,
        [
            _application("app-a", DAG_RUN),
            _application("app-b", DAG_RUN),
            _spark_job("app-a", 5, [t("silver.orders")], [t("gold.cx_kpi_daily")]),
            _spark_job("app-b", 40, [t("silver.shipments")], [t("gold.cx_kpi_daily")]),
        ],
    )
    tree = upstream(LineageGraph(config, read_events(lineage.lineage_dir(config))), "gold.cx_kpi_daily")
    assert tree[0][2].run_id == "app-b" and tree[0][2].inputs == ["silver.shipments"]


def test_every_task_writing_a_table_in_the_night_is_named_and_a_retry_replaces_its_try(config) -> None:
    t = config.table_path
    gold = lineage.RunRef("cxlake-airflow", "cx_nightly.build_gold", "task-gold")
    gold_retry = lineage.RunRef("cxlake-airflow", "cx_nightly.build_gold", "task-gold-try-2")
    reports = lineage.RunRef("cxlake-airflow", "cx_nightly.build_model_reports", "task-reports")
    _write_events(
        config,
        [
            _application("app-1", gold),
            _application("app-2", gold_retry),
            _application("app-3", reports),
            _spark_job("app-1", 5, [t("silver.orders")], [t("gold.cx_kpi_daily")]),  # the failed try's write
            _spark_job("app-2", 20, [t("silver.shipments")], [t("gold.cx_kpi_daily")]),
            _spark_job("app-3", 40, [t("gold.eta_accuracy_daily")], [t("gold.cx_kpi_daily")]),
        ],
    )
    tree = upstream(LineageGraph(config, read_events(lineage.lineage_dir(config))), "gold.cx_kpi_daily")
    # The KPI table's two writers, oldest first, then the union of what they read.
    assert [(level, name, w.task.run_id if w else None) for level, name, w in tree] == [
        (0, "gold.cx_kpi_daily", "task-gold-try-2"),
        (0, "gold.cx_kpi_daily", "task-reports"),
        (1, "gold.eta_accuracy_daily", None),
        (1, "silver.shipments", None),
    ]


def test_spark_settings_follow_the_process_parent(config, monkeypatch) -> None:
    # The listener's settings exist only when it is asked for (its cost: jobs.lake.lineage).
    assert lineage.is_enabled() and lineage.spark_settings(config) == {}
    monkeypatch.setenv("CXLAKE_LINEAGE", "spark")
    assert lineage.is_enabled() and lineage.spark_listener_enabled()
    task = lineage.RunRef("cxlake-airflow", "cx_nightly.build_gold", "task-gold")
    lineage.set_parent(task, DAG_RUN)
    try:
        settings = lineage.spark_settings(config)
        assert settings["spark.openlineage.parentJobName"] == "cx_nightly.build_gold"
        assert settings["spark.openlineage.rootParentRunId"] == DAG_RUN.run_id
        monkeypatch.setenv(lineage.SHARED_SESSION_VARIABLE, "1")  # one session for every night
        assert not [k for k in lineage.spark_settings(config) if "parent" in k.lower()]
    finally:
        lineage.set_parent(None, None)
    monkeypatch.setenv("CXLAKE_LINEAGE", "0")
    assert lineage.spark_settings(config) == {}
    assert lineage.airflow_settings(config) == {"AIRFLOW__OPENLINEAGE__DISABLED": "true"}


def test_a_step_records_what_it_read_and_committed(config) -> None:
    from jobs.lake.commits import committed
    from jobs.lake.tables import read_table

    class NoSpark:  # read_table only builds a reader: enough to see the read noted
        class read:  # noqa: N801
            @staticmethod
            def format(_):
                return NoSpark.read

            @staticmethod
            def load(path):
                return path

    with lineage.step(config, "kpis"):
        assert lineage.in_step()
        read_table(NoSpark, config, "silver.orders")
        lineage.note_read("silver.shipments")
        committed(config.table_path("gold.cx_kpi_daily"))
        committed("/elsewhere/not/a/lake/table")
    assert not lineage.in_step()
    write = LineageGraph(config, read_events(lineage.lineage_dir(config))).last_write("gold.cx_kpi_daily")
    assert (write.jobs, write.inputs, write.task) == (["cxlake.kpis"], ["silver.orders", "silver.shipments"], None)
    with lineage.step(config, "gate"):
        read_table(NoSpark, config, "gold.cx_kpi_daily")  # a step that writes nothing records nothing
    assert len(list(read_events(lineage.lineage_dir(config)))) == 2  # the kpis run's START and COMPLETE


def test_the_spark_listener_reports_a_delta_write_when_asked_for(tmp_path) -> None:
    """``CXLAKE_LINEAGE=spark``: a real session (its own process: the listener is set when a session
    starts) runs the openlineage-spark listener, whose events name the Delta table a job wrote."""
    import os
    import subprocess
    import sys

    table = tmp_path / "lake" / "t"
    code = f"from jobs.lake.spark import get_spark\nget_spark().range(3).write.format('delta').save({str(table)!r})\n"
    env = {**os.environ, "CXLAKE_HOME": str(tmp_path), "CXLAKE_LINEAGE": "spark"}
    subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300, check=True)
    (events_file,) = (tmp_path / "lineage").glob("spark-*.jsonl")
    events = [json.loads(line) for line in events_file.read_text().splitlines()]
    outputs = {o["name"] for e in events if e.get("eventType") == "COMPLETE" for o in e.get("outputs", [])}
    assert str(table) in outputs
