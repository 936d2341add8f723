"""Same config => byte-identical tree; another seed => another tree; reruns overwrite."""

from __future__ import annotations

import hashlib
from pathlib import Path

from jobs.devtools.simulator import SimulationConfig, simulate

CONFIG = SimulationConfig(days=8, customers=300, seed=5)


def _digest(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_same_config_gives_byte_identical_files(tmp_path: Path) -> None:
    a = simulate(CONFIG, tmp_path / "a")
    b = simulate(CONFIG, tmp_path / "b")
    da, db = _digest(tmp_path / "a"), _digest(tmp_path / "b")
    assert da == db
    # 3 sources, their 3 folders' _SUCCESS markers and 1 manifest per day, nothing else (no temp
    # files left behind).
    assert len(da) == 7 * CONFIG.days
    assert a.lines == b.lines and a.dirt == b.dirt
    assert sorted(p.relative_to(tmp_path / "a").as_posix() for p in a.files) == sorted(da)


def test_different_seed_differs(tmp_path: Path) -> None:
    simulate(CONFIG, tmp_path / "a")
    simulate(SimulationConfig(days=CONFIG.days, customers=CONFIG.customers, seed=6), tmp_path / "b")
    da, db = _digest(tmp_path / "a"), _digest(tmp_path / "b")
    assert da.keys() == db.keys()
    data = [k for k in da if not k.startswith("_manifest") and not k.endswith("/_SUCCESS")]
    assert all(da[k] != db[k] for k in data if "orders" in k or "interactions" in k)
    assert sum(da[k] != db[k] for k in data) >= len(data) - 2  # at most a couple of empty files coincide


def test_rerun_overwrites_instead_of_appending(tmp_path: Path) -> None:
    simulate(CONFIG, tmp_path)
    first = _digest(tmp_path)
    # Tamper with a file, then rerun: the file is replaced, not appended to.
    victim = next(p for p in sorted(tmp_path.rglob("*.jsonl")) if p.stat().st_size > 0)
    victim.write_text("garbage\n", encoding="utf-8")
    simulate(CONFIG, tmp_path)
    assert _digest(tmp_path) == first


def test_summary_counts_match_files(tmp_path: Path) -> None:
    summary = simulate(CONFIG, tmp_path)
    assert summary.out_dir == tmp_path
    for source, n in summary.lines.items():
        written = 0
        for p in sorted((tmp_path / source).rglob("*.*")):
            lines = p.read_text(encoding="utf-8").split("\n")[:-1]
            written += len(lines) - (1 if p.suffix == ".csv" else 0)
        assert written == n, source
    assert summary.orders > 0
