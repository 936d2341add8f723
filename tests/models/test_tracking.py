"""The MLflow store is shared by processes: two model tasks starting at once on a new SQLite store."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from jobs.lake.config import LakeConfig

# A child imports MLflow, says it is ready, and makes its first MLflow call when told to go.
_FIRST_CALL_ON_GO = """
import sys, time
from pathlib import Path
import mlflow
from jobs.lake.config import load_config
from jobs.models.tracking import use_experiment
home, name = Path(sys.argv[1]), sys.argv[2]
config = load_config().moved_to(home / "store")
(home / f"{name}.ready").touch()
while not (home / "go").exists():
    time.sleep(0.01)
print(use_experiment(config, name))
"""


def test_two_processes_create_their_experiments_on_a_new_store_at_once(config: LakeConfig, tmp_path: Path) -> None:
    # Without the lock their table migrations collided (`table _alembic_tmp_experiments already
    # exists`) in 3 runs out of 3, as train_eta and train_churn did under the scheduler.
    names = ("cx_eta", "cx_churn")
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _FIRST_CALL_ON_GO, str(tmp_path), name],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in names
    ]
    deadline = time.monotonic() + 120
    while not all((tmp_path / f"{name}.ready").exists() for name in names) and time.monotonic() < deadline:
        time.sleep(0.05)
    (tmp_path / "go").touch()
    results = [child.communicate(timeout=120) for child in children]
    assert [child.returncode for child in children] == [0, 0], [err[-2000:] for _, err in results]
    assert sorted(out.strip() for out, _ in results) == ["1", "2"]  # one experiment each
