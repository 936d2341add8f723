"""Injected dirt: re-detected independently and reconciled exactly with the manifest."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from pathlib import Path

import pytest

from jobs.devtools.simulator import DirtRates, SimulationConfig, simulate
from jobs.lake.contracts import load_contract

from .rawtree import KINDS, SOURCES, Tree, read_tree


def _reconcile(tree: Tree) -> Counter:
    totals: Counter = Counter()
    for (source, day), f in tree.files.items():
        entry = tree.manifests[day]["sources"][source]
        for line in f.lines:
            assert len(line.kinds) <= 1, f"{f.path}: more than one kind of dirt in {line.text!r}"
        detected = f.counts()
        assert entry["lines"] == len(f.lines), f.path
        assert entry["file"] == f.path.relative_to(tree.root).as_posix()
        for kind in KINDS:
            assert entry[kind] == detected.get(kind, 0), (f.path, kind, entry, detected)
        totals.update({(source, k): v for k, v in detected.items()})
    return totals


@pytest.mark.parametrize("fixture", ["dirty_tree", "default_tree"])
def test_manifest_matches_detected_dirt(fixture: str, request: pytest.FixtureRequest) -> None:
    tree: Tree = request.getfixturevalue(fixture)
    totals = _reconcile(tree)
    if fixture == "dirty_tree":
        # The raised rates make every kind appear in every source: the check above is not vacuous.
        for source in SOURCES:
            for kind in KINDS:
                assert totals[(source, kind)] > 0, (source, kind)
    assert all(m["config"] == tree.config.to_dict() for m in tree.manifests.values())


def test_dirt_rates_are_roughly_honoured(dirty_tree: Tree) -> None:
    lines = sum(len(f.lines) for (s, _), f in dirty_tree.files.items() if s == "interactions")
    counts = Counter(
        k for (s, _), f in dirty_tree.files.items() if s == "interactions" for ln in f.lines for k in ln.kinds
    )
    rates = dirty_tree.config.dirt
    for kind in ("duplicate", "malformed", "missing_required", "unknown_enum", "bad_type"):
        assert counts[kind] / lines == pytest.approx(rates.rate(kind), rel=0.35), kind
    # Late lines that would arrive after the run are not written, so fewer than the rate.
    assert 0.4 * rates.late < counts["late"] / lines < 1.2 * rates.late


def test_late_lines_arrive_one_to_three_days_later(dirty_tree: Tree) -> None:
    found = 0
    for (source, day), f in dirty_tree.files.items():
        col = SOURCES[source][2]
        for line in f.lines:
            if "late" in line.kinds:
                lag = (day - dt.date.fromisoformat(line.row[col][:10])).days
                assert 1 <= lag <= 3
                found += 1
    assert found


def test_scan_resends_land_in_next_days_file(dirty_tree: Tree) -> None:
    resent = sum(
        dirty_tree.manifests[day]["sources"][source]["duplicate_resent"]
        for (source, day) in dirty_tree.files
        if source == "tracking_scans"
    )
    assert resent > 0
    # A resend repeats a line of the previous day's file verbatim.
    for (source, day), f in dirty_tree.files.items():
        if source != "tracking_scans":
            continue
        earlier = {ln.text for (s, d), g in dirty_tree.files.items() if s == source and d < day for ln in g.lines}
        cross = sum(1 for ln in f.lines if ln.kinds == ["duplicate"] and ln.text in earlier)
        assert cross == dirty_tree.manifests[day]["sources"][source]["duplicate_resent"]


def test_dirty_lines_stay_recognisable(dirty_tree: Tree) -> None:
    """Dirt breaks one thing: parseable lines keep to contract keys, broken ones keep their id."""
    for (source, _), f in dirty_tree.files.items():
        names = load_contract(SOURCES[source][0]).column_names
        for line in f.lines:
            if line.row is not None:
                assert set(line.row) <= set(names), line.text
            elif "malformed" in line.kinds and source == "orders":
                assert re.match(r"O\d{8},", line.text), line.text
            elif "malformed" in line.kinds:
                assert line.text.startswith(f'{{"{names[0]}":"') and not line.text.endswith("}")


def test_zero_rates_give_clean_files(tmp_path: Path) -> None:
    config = SimulationConfig(days=9, customers=400, seed=2, dirt=DirtRates.clean())
    summary = simulate(config, tmp_path)
    tree = read_tree(tmp_path, config)
    for (source, day), f in tree.files.items():
        assert all(not ln.kinds for ln in f.lines), f.path
        entry = tree.manifests[day]["sources"][source]
        assert all(entry[k] == 0 for k in KINDS) and entry["duplicate_resent"] == 0
    assert all(v == 0 for per in summary.dirt.values() for v in per.values())
    for source, key in (("orders", "order_id"), ("tracking_scans", "scan_id"), ("interactions", "event_id")):
        ids = [r[key] for r in tree.rows(source)]
        assert ids and len(ids) == len(set(ids)), source
