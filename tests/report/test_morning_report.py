"""The morning report on the tiny hand-made lake, rendered by a real headless Chromium.

Chromium is Debian's ``chromium`` package (``.ci/run`` installs it), driven by Playwright, which
reports the page's console messages, script errors and every request it made.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import shutil
from pathlib import Path

import pytest
from tiny_lake import REPORT_DAY, build_tiny_lake

from jobs.lake.config import load_config
from jobs.report.morning import report_path, write_report

CHROMIUM_INSTALL = "sudo apt-get update && sudo apt-get install -y chromium"
CHARTS = (
    "kpi_trend",
    "on_time_by_carrier",
    "eta_mae",
    "eta_coverage",
    "eta_errors",
    "eta_milestones",
    "churn_scores",
    "churn_lift",
    "funnel",
    "contact_reasons",
    "quarantine",
)


def chromium_path() -> str:
    found = next((shutil.which(n) for n in ("chromium", "chromium-browser") if shutil.which(n)), None)
    if found is None:
        pytest.fail(f"the report tests need Debian's chromium: {CHROMIUM_INSTALL}")
    return found


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory):
    home: Path = tmp_path_factory.mktemp("report_lake")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CXLAKE_HOME", str(home))
        # A 21-day churn horizon: the scores of 10 Feb have a closed outcome window by 10 Mar (lift).
        config = dataclasses.replace(load_config(), churn_horizon_days=21)
        build_tiny_lake(config)
        path, report = write_report(config, REPORT_DAY)
        yield config, path, report


def test_the_report_is_written_where_the_date_says(rendered) -> None:
    config, path, report = rendered
    assert path == report_path(config, REPORT_DAY) == Path(config.home) / "reports" / "2026-03-10" / "index.html"
    assert report.chart_count == len(CHARTS)  # every chart has data in the tiny lake


def test_the_page_is_self_contained(rendered) -> None:
    _, path, _ = rendered
    page = path.read_text()
    assert "<script" not in page
    # Namespaces (xmlns="http://www.w3.org/...") are names, not loads: no src/href/url() to the network.
    assert not re.findall(r"""(?:src|href)\s*=\s*["']\s*(?:https?:)?//""", page)
    assert "url(http" not in page and "@import" not in page


def test_numbers_and_lineage_on_the_page(rendered) -> None:
    _, path, report = rendered
    page = path.read_text()
    tiles = {t.kpi.name: t for t in report.tiles}
    assert tiles["on_time_delivery_rate"].shown == "100.0%"
    assert tiles["predicted_churn_share"].shown == "25.0%"
    assert 'data-kpi="nps_from_ratings"' in page
    # The footer: every table read with its Delta version, and the model runs shown.
    versions = {r.name: r.version for r in report.reads}
    assert versions["gold.cx_kpi_daily"] == 0 and "gold.churn_scores" in versions
    assert {(m["model"], m["model_version"], m["mlflow_run_id"]) for m in report.model_runs} == {
        ("cx_eta", "4", "eta-run-4"),  # the latest scoring date's predictions (10 Mar)
        ("cx_churn", "2", "churn-run-2"),
    }
    assert "eta-run-4" in page and "churn-run-2" in page
    # Segments: RU-MOW (c1 high at 0.9, c2 medium) ranks above RU-SPE (both low).
    assert [(s["segment"], s["customers"], s["high_risk_share"]) for s in report.segments] == [
        ("RU-MOW", 2, 0.5),
        ("RU-SPE", 2, 0.0),
    ]
    assert report.segments[0]["main_driver"] == "days_since_last_order"
    assert [a["source"] for a in report.ingest_audit] == ["orders"]
    assert [f["severity"] for f in report.findings] == ["warning"]


def test_lift_uses_only_closed_outcome_windows(rendered) -> None:
    _, _, report = rendered
    lift = next(c for c in report.charts if c.key == "churn_lift")
    # Scores of 10 Feb + 21 days = 3 Mar <= 10 Mar; those of 10 Mar are not evaluated yet.
    assert lift.caption == "scores of 2026-02-10, outcomes over the 21 days after"


def test_headless_chromium_renders_every_chart_without_errors(rendered, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    _, path, _ = rendered
    console, page_errors, requests = [], [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("console", lambda message: console.append((message.type, message.text)))
            page.on("pageerror", lambda error: page_errors.append(str(error)))
            page.on("request", lambda request: requests.append(request.url))
            page.goto(path.as_uri(), wait_until="load")
            shot = tmp_path / "report.png"
            page.screenshot(path=str(shot), full_page=True)
            drawn = {
                key: page.locator(f"#chart-{key} svg").count() == 1
                and page.locator(f"#chart-{key} svg").bounding_box()["height"] > 100
                for key in CHARTS
            }
            tiles = page.locator("#tiles .tile").count()
        finally:
            browser.close()
    assert [m for m in console if m[0] in ("error", "warning")] == []
    assert page_errors == []
    assert requests == [path.as_uri()]  # the page itself, nothing else
    assert drawn == {key: True for key in CHARTS}
    assert tiles == 17
    assert shot.stat().st_size > 50_000  # a full page of charts, not a blank image


def test_a_lake_without_models_yet_still_renders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tiny_lake import write_rows

    monkeypatch.setenv("CXLAKE_HOME", str(tmp_path))
    config = load_config()
    write_rows(config, "gold.cx_kpi_daily", [{"kpi_date": REPORT_DAY, "orders_placed": 3, "as_of_date": REPORT_DAY}])
    path, report = write_report(config, REPORT_DAY)
    assert report.chart_count == 1  # the orders trend; every other section says what is missing
    assert "Not available" in path.read_text() and "No churn scores yet" in path.read_text()
    assert report.reads[0].name == "gold.cx_kpi_daily" and report.model_runs == []
    assert dt.date.fromisoformat(path.parent.name) == REPORT_DAY
