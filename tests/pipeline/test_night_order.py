"""Nights in order (jobs.pipeline.night_order): a night whose previous night never completed stops
before silver, naming the missing night, unless the gap is on purpose."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from jobs.lake.config import LakeConfig
from jobs.pipeline import nightly
from jobs.pipeline.night_order import (
    PreviousNightIncompleteError,
    allowed,
    completed_nights,
    missing_previous_night,
    record_completed,
    require_previous_night,
)

D = dt.date.fromisoformat


@pytest.mark.parametrize(
    "completed, run_date, missing",
    [
        (set(), "2026-03-05", None),  # the lake's first night: nothing to wait for
        ({D("2026-03-04")}, "2026-03-05", None),  # the previous night completed
        ({D("2026-03-03")}, "2026-03-05", D("2026-03-04")),  # 03-04 stopped (or never ran)
        ({D("2026-03-06"), D("2026-03-07")}, "2026-03-05", None),  # a backfill before the history
        ({D("2026-03-03"), D("2026-03-06")}, "2026-03-05", D("2026-03-04")),  # a backfill with a hole
        ({D("2026-03-04"), D("2026-03-05")}, "2026-03-05", None),  # a rerun of a completed night
    ],
)
def test_which_previous_night_is_missing(completed: set, run_date: str, missing: dt.date | None) -> None:
    assert missing_previous_night(completed, run_date) == missing


def test_allow_gap_from_a_flag_or_a_rendered_dag_param() -> None:
    assert [allowed(v) for v in (True, "True", "true", "1", False, "False", "", None)] == [
        True,
        True,
        True,
        True,
        False,
        False,
        False,
        False,
    ]


def test_a_night_after_one_that_stopped_is_refused_before_silver(lake_config: LakeConfig) -> None:
    record_completed(lake_config, ["2026-03-02", "2026-03-03"], "cxlake run")
    assert completed_nights(lake_config) == {D("2026-03-02"), D("2026-03-03")}
    # 03-04's gold gate failed: it never recorded. 03-05 must not build on the gap.
    with pytest.raises(PreviousNightIncompleteError) as refused:
        nightly.build_silver("2026-03-05", lake_config)
    assert str(refused.value).startswith(
        "night 2026-03-04 did not complete (the last completed night before 2026-03-05 is 2026-03-03): "
        "run 2026-03-04 first (cxlake run --date 2026-03-04"
    )
    assert not (Path(lake_config.lake_root) / "silver").exists()  # stopped before any silver write
    require_previous_night(lake_config, "2026-03-05", allow_gap=True)  # a gap on purpose
    require_previous_night(lake_config, "2026-03-04")  # the missing night itself may run
    record_completed(lake_config, ["2026-03-04"], "cx_nightly")
    require_previous_night(lake_config, "2026-03-05")
