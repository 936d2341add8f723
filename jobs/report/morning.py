"""``cxlake report --date D``: the morning CX report, ``$CXLAKE_HOME/reports/<D>/index.html``.

One self-contained page (charts are inline SVG; no script, no network) for the CX lead and the
analysts: KPI tiles with their day-over-day and week-over-week change, 30-day trends, the ETA
model against the promise (error distribution, error by scan milestone, P10-P90 coverage), churn
scores (distribution, lift where outcomes are known, segments at risk with their main drivers),
the funnel, support contact reasons, data quality (quarantined rows by reason, the gates'
findings, a link to the Great Expectations Data Docs), the KPI definitions of
``schemas/kpis.yaml``, and a footer naming the Delta version of every table read and the MLflow
run of every model shown.

Tables are read by delta-rs and aggregated by DuckDB (:mod:`jobs.analytics.sql`): no Spark, so
the page renders in seconds after the night, or any morning after for an older date.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobs.analytics.catalog import TableRead, existing_tables
from jobs.lake.config import LakeConfig
from jobs.lake.contracts import load_contract
from jobs.report import charts
from jobs.report.kpis import KpiDefinition, daily_kpis, kpi_definitions, tables_needed

if TYPE_CHECKING:
    import duckdb
    import pandas as pd

log = logging.getLogger(__name__)

BREAKDOWN = "gold.cx_kpi_breakdown_daily"
TREND_DAYS = 30
RECENT_DAYS = 7  # the distributions and breakdowns cover the last week up to the report date
TEMPLATE = Path(__file__).with_name("morning.html.j2")
QUARANTINE_TABLES = ("quarantine.orders", "quarantine.tracking_scans", "quarantine.interactions")
REPORT_TABLES = tuple(
    sorted(
        {
            *tables_needed(),
            "gold.eta_predictions",
            "gold.churn_scores",
            "gold.eta_accuracy_daily",
            "gold.funnel_daily",
            BREAKDOWN,
            "silver.customers",
            "silver.orders",
            "silver.shipments",
            "ops.ingest_audit",
            "ops.quality_findings",
            *QUARANTINE_TABLES,
        }
    )
)


def report_path(config: LakeConfig, report_date: dt.date) -> Path:
    """Where the report of ``report_date`` is written."""
    return Path(config.home) / "reports" / report_date.isoformat() / "index.html"


@dataclass(frozen=True)
class Tile:
    """A KPI's value on the report date, and its change against the day before and a week before."""

    kpi: KpiDefinition
    value: float | None
    day_change: str
    week_change: str
    day_tone: str  # "good", "bad" or "" (no change, or no value to compare with)
    week_tone: str

    @property
    def shown(self) -> str:
        return format_value(self.value, self.kpi.unit)


@dataclass(frozen=True)
class Chart:
    key: str
    title: str
    caption: str
    svg: str | None
    missing: str = ""


@dataclass
class MorningReport:
    """Everything the page shows (the template only lays it out)."""

    report_date: dt.date
    lake: str
    tiles: list[Tile]
    charts: list[Chart]
    segments: list[dict[str, Any]]
    ingest_audit: list[dict[str, Any]]
    findings: list[dict[str, Any]]
    data_docs: str | None
    model_runs: list[dict[str, Any]]
    reads: list[TableRead]
    definitions: tuple[KpiDefinition, ...] = field(default_factory=kpi_definitions)

    @property
    def chart_count(self) -> int:
        return sum(1 for chart in self.charts if chart.svg)


def format_value(value: float | None, unit: str) -> str:
    """A KPI value as the tiles show it: shares as percentages, counts whole, the rest 2 digits."""
    if value is None or value != value:  # None or NaN
        return "n/a"
    if unit == "share":
        return f"{value:.1%}"
    if unit in ("orders", "customers"):
        return f"{value:,.0f}"
    return f"{value:,.2f}"


def change(value: float | None, before: float | None, kpi: KpiDefinition) -> tuple[str, str]:
    """The change from ``before`` to ``value`` as text, and whether it is good or bad news.

    Shares change in percentage points, other KPIs in per cent of the earlier value; ``better``
    says which direction is good (a target value: closer to it is good).
    """
    if value is None or before is None or value != value or before != before:
        return "n/a", ""
    delta = value - before
    if kpi.unit == "share":
        text = f"{delta * 100:+.1f} pp"
    elif before == 0:
        text = f"{delta:+,.2f}"
    else:
        text = f"{delta / abs(before):+.1%}"
    if abs(delta) < 1e-12:
        return text, ""
    if kpi.better == "up":
        good = delta > 0
    elif kpi.better == "down":
        good = delta < 0
    else:
        target = float(kpi.better)
        good = abs(value - target) < abs(before - target)
    return text, "good" if good else "bad"


def tiles_of(daily: pd.DataFrame, report_date: dt.date) -> list[Tile]:
    """One tile per KPI of ``schemas/kpis.yaml``: the value on ``report_date`` and its changes."""
    by_day = daily.set_index("day")

    def at(day: dt.date, name: str) -> float | None:
        return (
            float(by_day.at[day, name])
            if day in by_day.index and by_day.at[day, name] == by_day.at[day, name]
            else None
        )

    tiles = []
    for kpi in kpi_definitions():
        value = at(report_date, kpi.name)
        day_text, day_tone = change(value, at(report_date - dt.timedelta(days=1), kpi.name), kpi)
        week_text, week_tone = change(value, at(report_date - dt.timedelta(days=7), kpi.name), kpi)
        tiles.append(Tile(kpi, value, day_text, week_text, day_tone, week_tone))
    return tiles


def _frame(con: duckdb.DuckDBPyConnection, sql: str, **params: Any) -> pd.DataFrame:
    return con.execute(sql, params).df()


def _milestone_order() -> list[str]:
    return list(load_contract("gold.eta_predictions").column("milestone").allowed)


def eta_errors(con: duckdb.DuckDBPyConnection, first: dt.date, last: dt.date) -> pd.DataFrame:
    """Deliveries of [first, last] with the error of the prediction made at placement and of the promise."""
    from jobs.domain import PROMISE_HOUR

    return _frame(
        con,
        f"""
        WITH placement AS (
            SELECT order_id, arg_min(predicted_p50, as_of_date) AS predicted_p50
            FROM gold.eta_predictions WHERE milestone = 'placement' GROUP BY order_id)
        SELECT s.order_id,
               epoch(s.delivered_at - p.predicted_p50) / 86400.0 AS model_error_days,
               epoch(s.delivered_at - (o.promised_delivery_date + INTERVAL {PROMISE_HOUR} HOUR)) / 86400.0
                   AS promise_error_days
        FROM silver.shipments s
        JOIN silver.orders o USING (order_id)
        JOIN placement p USING (order_id)
        WHERE CAST(s.delivered_at AS DATE) BETWEEN $first AND $last""",
        first=first,
        last=last,
    )


def _milestones(con: duckdb.DuckDBPyConnection, first: dt.date, last: dt.date) -> pd.DataFrame:
    frame = _frame(
        con,
        """SELECT segment AS milestone,
                  sum(mae_p50_days * predicted_deliveries) / nullif(sum(predicted_deliveries), 0) AS mae_p50_days,
                  sum(mae_promise_days * predicted_deliveries) / nullif(sum(predicted_deliveries), 0)
                      AS mae_promise_days
           FROM gold.eta_accuracy_daily
           WHERE dimension = 'milestone' AND accuracy_date BETWEEN $first AND $last AND predicted_deliveries > 0
           GROUP BY 1""",
        first=first,
        last=last,
    )
    order = {name: i for i, name in enumerate(_milestone_order())}
    return frame.sort_values("milestone", key=lambda s: s.map(order)).reset_index(drop=True)


def _latest_scores_date(con: duckdb.DuckDBPyConnection, report_date: dt.date) -> dt.date | None:
    return con.execute(
        "SELECT max(as_of_date) FROM gold.churn_scores WHERE as_of_date <= $d", {"d": report_date}
    ).fetchone()[0]


def _segments(con: duckdb.DuckDBPyConnection, as_of: dt.date) -> pd.DataFrame:
    """Home regions by their share of high-risk customers, with the most common first driver."""
    return _frame(
        con,
        """SELECT coalesce(c.home_region, '(no order yet)') AS segment,
                  count(*) AS customers,
                  avg(CASE WHEN s.risk_band = 'high' THEN 1.0 ELSE 0.0 END) AS high_risk_share,
                  avg(s.churn_probability) AS mean_probability,
                  mode(split_part(s.top_drivers[1], '=', 1)) FILTER (WHERE s.risk_band <> 'low') AS main_driver
           FROM gold.churn_scores s LEFT JOIN silver.customers c USING (customer_key)
           WHERE s.as_of_date = $d
           GROUP BY 1 ORDER BY high_risk_share DESC, customers DESC LIMIT 8""",
        d=as_of,
    )


def lift_by_decile(con: duckdb.DuckDBPyConnection, report_date: dt.date, horizon_days: int) -> tuple[pd.DataFrame, str]:
    """Lift by score decile for the latest scoring date whose outcome window has closed by the
    report date (churned = no order in the ``horizon_days`` after scoring); empty when none has."""
    scored = con.execute(
        "SELECT max(as_of_date) FROM gold.churn_scores WHERE as_of_date + $h <= $d",
        {"h": horizon_days, "d": report_date},
    ).fetchone()[0]
    if scored is None:
        return con.execute("SELECT 1 AS decile, 1.0 AS lift WHERE false").df(), (
            f"no scoring date has a closed {horizon_days}-day outcome window by {report_date} yet"
        )
    deciles = _frame(
        con,
        """WITH outcome AS (
               SELECT s.customer_key, s.churn_probability,
                      NOT EXISTS (SELECT 1 FROM silver.orders o JOIN silver.customers c USING (customer_id)
                                  WHERE c.customer_key = s.customer_key
                                    AND o.order_date > $a AND o.order_date <= $a + $h) AS churned
               FROM gold.churn_scores s WHERE s.as_of_date = $a),
           ranked AS (SELECT ntile(10) OVER (ORDER BY churn_probability DESC, customer_key) AS decile, churned
                      FROM outcome)
           SELECT decile, avg(churned::DOUBLE) / (SELECT avg(churned::DOUBLE) FROM outcome) AS lift
           FROM ranked GROUP BY 1 ORDER BY 1""",
        a=scored,
        h=horizon_days,
    )
    return deciles, f"scores of {scored}, outcomes over the {horizon_days} days after"


def _funnel_steps(con: duckdb.DuckDBPyConnection, day: dt.date) -> pd.DataFrame:
    import pandas as pd

    row = con.execute(
        """SELECT sum(sessions), sum(product_view_sessions), sum(add_to_cart_sessions), sum(checkout_sessions),
                  sum(order_sessions) FROM gold.funnel_daily WHERE funnel_date = $d""",
        {"d": day},
    ).fetchone()
    if row[0] is None:
        return pd.DataFrame({"step": [], "sessions": []})
    steps = ["sessions", "viewed a product", "added to cart", "checked out", "placed an order"]
    return pd.DataFrame({"step": steps, "sessions": [int(v or 0) for v in row]})


def _quarantine_reasons(con: duckdb.DuckDBPyConnection, tables: list[str], first: dt.date, last: dt.date):
    import pandas as pd

    if not tables:
        return pd.DataFrame({"reason": [], "rows": []})
    union = " UNION ALL ".join(
        f"SELECT '{t.split('.')[1]}: ' || reason AS reason FROM {t} WHERE _ingest_date BETWEEN $first AND $last"
        for t in tables
    )
    return _frame(
        con,
        f"SELECT reason, count(*) AS rows FROM ({union}) GROUP BY 1 ORDER BY 2 DESC LIMIT 12",
        first=first,
        last=last,
    )


def _contact_reasons(con: duckdb.DuckDBPyConnection, first: dt.date, last: dt.date) -> pd.DataFrame:
    return _frame(
        con,
        """SELECT replace(segment, '_', ' ') AS reason, CAST(sum(value) AS BIGINT) AS rows
           FROM gold.cx_kpi_breakdown_daily
           WHERE dimension = 'contact_reason' AND kpi = 'support_contacts' AND kpi_date BETWEEN $first AND $last
           GROUP BY 1 ORDER BY 2 DESC""",
        first=first,
        last=last,
    )


def on_time_by_carrier(con: duckdb.DuckDBPyConnection, first: dt.date, last: dt.date) -> pd.DataFrame:
    """Each carrier's on-time rate over the deliveries of ``first``..``last`` (the days' rates
    weighted by their deliveries, i.e. on-time deliveries / deliveries)."""
    return _frame(
        con,
        """SELECT segment, sum(value * base) / sum(base) AS rate, CAST(sum(base) AS BIGINT) AS base
           FROM gold.cx_kpi_breakdown_daily
           WHERE dimension = 'carrier' AND kpi = 'on_time_delivery_rate' AND kpi_date BETWEEN $first AND $last
           GROUP BY 1 ORDER BY 1""",
        first=first,
        last=last,
    )


def _model_runs(con: duckdb.DuckDBPyConnection, available: set[str], report_date: dt.date) -> list[dict[str, Any]]:
    runs = []
    for table in ("gold.eta_predictions", "gold.churn_scores"):
        if table not in available:
            continue
        model = "model_name" if table == "gold.eta_predictions" else "'cx_churn'"
        runs += _frame(
            con,
            f"""SELECT {model} AS model, model_version, mlflow_run_id, max(as_of_date) AS as_of_date,
                       count(*) AS rows, '{table}' AS table_name
                FROM {table} WHERE as_of_date = (SELECT max(as_of_date) FROM {table} WHERE as_of_date <= $d)
                GROUP BY 1, 2, 3 ORDER BY 1, 2""",
            d=report_date,
        ).to_dict("records")
    return runs


def _data_docs_link(config: LakeConfig, page: Path) -> str | None:
    from jobs.quality.gate import data_docs_dir

    index = next(iter(sorted(data_docs_dir(config).rglob("index.html"))), None)
    return os.path.relpath(index, page.parent) if index else None


def build_report(config: LakeConfig, report_date: dt.date) -> MorningReport:
    """Read the lake and compute every number and chart of the report of ``report_date``."""
    from jobs.analytics.sql import connect

    available = existing_tables(config, REPORT_TABLES)
    for table in sorted(set(REPORT_TABLES) - set(available)):
        log.info("report %s: %s not in the lake yet; its sections say so", report_date, table)
    con, reads = connect(config, available)
    have = set(available)
    week_start = report_date - dt.timedelta(days=RECENT_DAYS - 1)
    daily = daily_kpis(con, have, report_date - dt.timedelta(days=TREND_DAYS - 1), report_date)
    empty = con.execute("SELECT 1 WHERE false").df()

    def when(tables: set[str], compute, otherwise=empty):
        return compute() if tables <= have else otherwise

    errors = when(
        {"gold.eta_predictions", "silver.shipments", "silver.orders"}, lambda: eta_errors(con, week_start, report_date)
    )
    milestones = when({"gold.eta_accuracy_daily"}, lambda: _milestones(con, week_start, report_date))
    scores_date = when({"gold.churn_scores"}, lambda: _latest_scores_date(con, report_date), None)
    scores = (
        _frame(con, "SELECT churn_probability, risk_band FROM gold.churn_scores WHERE as_of_date = $d", d=scores_date)
        if scores_date
        else empty
    )
    segments = _segments(con, scores_date) if scores_date and "silver.customers" in have else empty
    lift, lift_note = (
        lift_by_decile(con, report_date, config.churn_horizon_days)
        if {"gold.churn_scores", "silver.orders", "silver.customers"} <= have
        else (empty, "no churn scores yet")
    )
    steps = when({"gold.funnel_daily"}, lambda: _funnel_steps(con, report_date))
    quarantined = _quarantine_reasons(con, [t for t in QUARANTINE_TABLES if t in have], week_start, report_date)
    contacts = when({BREAKDOWN}, lambda: _contact_reasons(con, week_start, report_date))
    carriers = when({BREAKDOWN}, lambda: on_time_by_carrier(con, week_start, report_date))
    audit = when(
        {"ops.ingest_audit"},
        lambda: _frame(
            con,
            """SELECT source, files, raw_rows, accepted_rows, quarantined_rows FROM ops.ingest_audit
               WHERE run_date = $d ORDER BY source""",
            d=report_date,
        ),
    )
    findings = when(
        {"ops.quality_findings"},
        lambda: _frame(
            con,
            """SELECT suite, expectation, severity, coalesce("check", '') AS "check", unexpected_count
               FROM ops.quality_findings WHERE run_date = $d ORDER BY severity, suite, expectation""",
            d=report_date,
        ),
    )
    week = f"{week_start:%d %b} - {report_date:%d %b %Y}"
    chart_list = [
        Chart(
            "kpi_trend",
            "Orders and on-time delivery, 30 days",
            "bars: orders placed; line: on-time rate of the day's deliveries",
            charts.kpi_trend(daily),
        ),
        Chart(
            "on_time_by_carrier",
            "On-time delivery by carrier",
            f"deliveries of {week}",
            charts.rates_by_segment(carriers),
        ),
        Chart(
            "eta_mae",
            "ETA error: model vs promise, 30 days",
            "mean absolute error in days of the deliveries of each day",
            charts.eta_mae_trend(daily),
        ),
        Chart(
            "eta_coverage",
            "P10-P90 coverage, 30 days",
            "share of deliveries inside the interval predicted at placement",
            charts.coverage_trend(daily),
        ),
        Chart(
            "eta_errors",
            "ETA error distribution",
            f"deliveries of {week}: the prediction made at placement and the promise",
            charts.eta_error_distribution(errors),
        ),
        Chart(
            "eta_milestones",
            "ETA error by scan milestone",
            f"deliveries of {week}: each later scan's prediction",
            charts.error_by_milestone(milestones),
        ),
        Chart(
            "churn_scores",
            "Churn score distribution",
            f"customers scored on {scores_date or 'n/a'}",
            charts.churn_distribution(scores),
        ),
        Chart("churn_lift", "Churn lift by score decile", lift_note, charts.churn_lift(lift), missing=lift_note),
        Chart("funnel", "Funnel", f"sessions started on {report_date}, all channels", charts.funnel(steps)),
        Chart(
            "contact_reasons",
            "Support contact reasons",
            f"support contacts of {week}",
            charts.horizontal_counts(contacts, "reason"),
        ),
        Chart(
            "quarantine",
            "Quarantined rows by reason",
            f"raw lines refused at ingest, {week}",
            charts.horizontal_counts(quarantined, "reason"),
        ),
    ]
    page = report_path(config, report_date)
    model_runs = _model_runs(con, have, report_date)
    con.close()
    return MorningReport(
        report_date=report_date,
        lake=config.lake_root,
        tiles=tiles_of(daily, report_date),
        charts=chart_list,
        segments=segments.to_dict("records"),
        ingest_audit=audit.to_dict("records"),
        findings=findings.to_dict("records"),
        data_docs=_data_docs_link(config, page),
        model_runs=model_runs,
        reads=reads,
    )


def render_html(report: MorningReport) -> str:
    """The report as one HTML page (the template ``morning.html.j2``)."""
    import jinja2

    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    environment.filters["value"] = format_value
    environment.filters["pct"] = lambda v: "n/a" if v is None or v != v else f"{v:.1%}"
    template = environment.from_string(TEMPLATE.read_text())
    return template.render(report=report, markup=_markup)


def _markup(svg: str) -> Any:
    from markupsafe import Markup

    return Markup(svg)  # our own matplotlib output, not user input


def write_report(config: LakeConfig, report_date: dt.date) -> tuple[Path, MorningReport]:
    """Build and write the report of ``report_date``; return its path and content."""
    report = build_report(config, report_date)
    path = report_path(config, report_date)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".html.partial")
    partial.write_text(render_html(report), encoding="utf-8")
    partial.replace(path)  # a reader never sees half a page
    log.info("report %s: %s (%d charts)", report_date, path, report.chart_count)
    return path, report
