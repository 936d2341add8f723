"""The morning report's charts: matplotlib figures rendered to inline SVG (no network, no script).

Each function takes plain frames (pandas) and returns the SVG text of one chart; an empty frame
gives None, and the report says what is missing instead of drawing an empty axis.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

MODEL_COLOUR = "#1f6fb2"
PROMISE_COLOUR = "#d9822b"
NEUTRAL_COLOUR = "#6b7785"
TARGET_COLOUR = "#3c9d5d"


def _figure(width: float = 6.4, height: float = 3.0) -> Figure:
    from matplotlib.figure import Figure

    # Figure, not pyplot: no global state, no GUI backend, safe in a task process.
    figure = Figure(figsize=(width, height), layout="constrained")
    figure.set_facecolor("white")
    return figure


def _svg(figure: Figure) -> str:
    import matplotlib

    buffer = io.StringIO()
    # Text as text (smaller, selectable); fixed hash salt: the same data gives the same bytes.
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "cxlake"}):
        figure.savefig(buffer, format="svg")
    text = buffer.getvalue()
    return text[text.index("<svg") :]  # the XML prolog and doctype do not belong inside HTML


def _style(axes, title: str | None = None, ylabel: str | None = None) -> None:
    axes.spines[["top", "right"]].set_visible(False)
    axes.grid(axis="y", color="#e3e6ea", linewidth=0.8)
    axes.set_axisbelow(True)
    if title:
        axes.set_title(title, fontsize=10, loc="left")
    if ylabel:
        axes.set_ylabel(ylabel, fontsize=9)
    axes.tick_params(labelsize=8)


def _dates(axes, days: pd.Series) -> None:
    """Whole days on the x axis, the full window shown (a KPI missing on some days leaves a gap)."""
    import datetime as dt

    import matplotlib.dates as mdates

    first, last = min(days), max(days)
    span = (last - first).days
    axes.xaxis.set_major_locator(mdates.DayLocator(interval=max(1, round(span / 6))))
    axes.xaxis.set_major_formatter(mdates.DateFormatter("%d %b"))
    axes.set_xlim(first - dt.timedelta(hours=18), last + dt.timedelta(hours=18))


def kpi_trend(daily: pd.DataFrame) -> str | None:
    """Orders placed (bars) and on-time delivery rate (line) per day."""
    if daily["orders_placed"].notna().sum() == 0:
        return None
    figure = _figure()
    axes = figure.subplots()
    axes.bar(daily["day"], daily["orders_placed"].fillna(0), color="#c9d6e3", label="orders placed")
    _style(axes, ylabel="orders placed")
    _dates(axes, daily["day"])
    rate = axes.twinx()
    rate.plot(daily["day"], daily["on_time_delivery_rate"], color=MODEL_COLOUR, marker="o", markersize=3)
    rate.set_ylim(0, 1.05)
    rate.set_ylabel("on-time rate", fontsize=9, color=MODEL_COLOUR)
    rate.tick_params(labelsize=8)
    rate.spines[["top"]].set_visible(False)
    return _svg(figure)


def eta_mae_trend(daily: pd.DataFrame) -> str | None:
    """ETA mean absolute error per delivery day: the model's P50 against the promise."""
    if daily[["eta_mae_model_days", "eta_mae_promise_days"]].notna().sum().sum() == 0:
        return None
    figure = _figure()
    axes = figure.subplots()
    axes.plot(
        daily["day"], daily["eta_mae_model_days"], color=MODEL_COLOUR, marker="o", markersize=3, label="model P50"
    )
    axes.plot(
        daily["day"], daily["eta_mae_promise_days"], color=PROMISE_COLOUR, marker="s", markersize=3, label="promise"
    )
    _style(axes, ylabel="MAE (days)")
    _dates(axes, daily["day"])
    axes.set_ylim(bottom=0)
    axes.legend(fontsize=8, frameon=False)
    return _svg(figure)


def coverage_trend(daily: pd.DataFrame, target: float = 0.8) -> str | None:
    """Share of deliveries inside the P10-P90 interval per day, with the intended 0.8."""
    if daily["p10_p90_coverage"].notna().sum() == 0:
        return None
    figure = _figure()
    axes = figure.subplots()
    axes.axhline(target, color=TARGET_COLOUR, linestyle="--", linewidth=1, label=f"intended {target:.0%}")
    axes.plot(daily["day"], daily["p10_p90_coverage"], color=MODEL_COLOUR, marker="o", markersize=3, label="coverage")
    _style(axes, ylabel="share inside P10-P90")
    _dates(axes, daily["day"])
    axes.set_ylim(0, 1.05)
    axes.legend(fontsize=8, frameon=False, loc="lower right")
    return _svg(figure)


def eta_error_distribution(errors: pd.DataFrame) -> str | None:
    """Histogram of (delivered - predicted) in days for the model's P50 and for the promise."""
    if errors.empty:
        return None
    import numpy as np

    figure = _figure()
    axes = figure.subplots()
    both = np.concatenate([errors["model_error_days"].dropna(), errors["promise_error_days"].dropna()])
    low, high = np.floor(np.percentile(both, 1)), np.ceil(np.percentile(both, 99))
    bins = np.arange(low, high + 0.5, 0.5) if high > low else 10
    axes.hist(errors["promise_error_days"].dropna(), bins=bins, color=PROMISE_COLOUR, alpha=0.55, label="promise")
    axes.hist(errors["model_error_days"].dropna(), bins=bins, color=MODEL_COLOUR, alpha=0.55, label="model P50")
    axes.axvline(0, color="#333", linewidth=0.8)
    _style(axes, ylabel="deliveries")
    axes.set_xlabel("delivered minus predicted (days; > 0 = later than said)", fontsize=9)
    axes.legend(fontsize=8, frameon=False)
    return _svg(figure)


def error_by_milestone(milestones: pd.DataFrame) -> str | None:
    """MAE of the prediction made at each scan milestone (later scans should know better)."""
    if milestones.empty:
        return None
    import numpy as np

    figure = _figure()
    axes = figure.subplots()
    x = np.arange(len(milestones))
    axes.bar(x - 0.2, milestones["mae_p50_days"], width=0.4, color=MODEL_COLOUR, label="model P50")
    axes.bar(x + 0.2, milestones["mae_promise_days"], width=0.4, color=PROMISE_COLOUR, label="promise")
    axes.set_xticks(x, milestones["milestone"], rotation=25, ha="right")
    _style(axes, ylabel="MAE (days)")
    axes.legend(fontsize=8, frameon=False)
    return _svg(figure)


def churn_distribution(scores: pd.DataFrame) -> str | None:
    """Histogram of churn probabilities, coloured by risk band."""
    if scores.empty:
        return None
    figure = _figure()
    axes = figure.subplots()
    colours = {"low": TARGET_COLOUR, "medium": PROMISE_COLOUR, "high": "#c0392b"}
    bins = [i / 20 for i in range(21)]
    for band, colour in colours.items():
        values = scores.loc[scores["risk_band"] == band, "churn_probability"]
        if len(values):
            axes.hist(values, bins=bins, color=colour, alpha=0.8, label=f"{band} ({len(values)})")
    _style(axes, ylabel="customers")
    axes.set_xlabel("churn probability", fontsize=9)
    axes.legend(fontsize=8, frameon=False)
    return _svg(figure)


def churn_lift(deciles: pd.DataFrame) -> str | None:
    """Realised churn rate per score decile over the base rate (1 = no better than random)."""
    if deciles.empty:
        return None
    figure = _figure()
    axes = figure.subplots()
    axes.bar(deciles["decile"].astype(str), deciles["lift"], color=MODEL_COLOUR)
    axes.axhline(1, color="#333", linewidth=0.8, linestyle="--")
    _style(axes, ylabel="lift (churn rate / base rate)")
    axes.set_xlabel("score decile (1 = highest scores)", fontsize=9)
    return _svg(figure)


def funnel(steps: pd.DataFrame) -> str | None:
    """Sessions reaching each funnel step on the report day, all channels."""
    if steps.empty or steps["sessions"].sum() == 0:
        return None
    figure = _figure(height=2.8)
    axes = figure.subplots()
    axes.barh(steps["step"][::-1], steps["sessions"][::-1], color=MODEL_COLOUR)
    top = steps["sessions"].iloc[0]
    for y, value in enumerate(steps["sessions"][::-1]):
        axes.text(value, y, f" {value:,} ({value / top:.0%})", va="center", fontsize=8)
    _style(axes)
    axes.grid(False)
    axes.set_xlabel("sessions", fontsize=9)
    axes.set_xlim(0, top * 1.3)
    return _svg(figure)


def horizontal_counts(counts: pd.DataFrame, label: str, value: str = "rows") -> str | None:
    """Bars of ``counts[value]`` by ``counts[label]``, largest on top (quarantine reasons, contact reasons)."""
    if counts.empty:
        return None
    counts = counts.sort_values(value)
    figure = _figure(height=max(1.6, 0.28 * len(counts) + 0.8))
    axes = figure.subplots()
    axes.barh(counts[label], counts[value], color=NEUTRAL_COLOUR)
    for y, number in enumerate(counts[value]):
        axes.text(number, y, f" {number:,}", va="center", fontsize=8)
    _style(axes)
    axes.grid(False)
    axes.set_xlim(0, counts[value].max() * 1.2)
    return _svg(figure)


def rates_by_segment(rates: pd.DataFrame, label: str = "segment") -> str | None:
    """Bars of a share per segment (``rate``), each labelled with what it is over (``base``)."""
    if rates.empty:
        return None
    rates = rates.sort_values("rate")
    figure = _figure(height=max(1.6, 0.28 * len(rates) + 0.8))
    axes = figure.subplots()
    axes.barh(rates[label], rates["rate"], color=MODEL_COLOUR)
    for y, (rate, base) in enumerate(zip(rates["rate"], rates["base"], strict=True)):
        axes.text(rate, y, f" {rate:.0%} of {base:,}", va="center", fontsize=8)
    _style(axes)
    axes.grid(False)
    axes.set_xlim(0, 1.3)
    axes.set_xticks([0, 0.25, 0.5, 0.75, 1.0], ["0%", "25%", "50%", "75%", "100%"])
    return _svg(figure)
