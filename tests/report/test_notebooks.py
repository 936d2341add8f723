"""The analyst notebooks (`notebooks/`) execute top to bottom on a small lake, so they never rot;
and they are kept in git without outputs."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from tiny_lake import build_tiny_lake

from jobs.lake.config import PROJECT_ROOT, load_config

NOTEBOOKS = sorted((PROJECT_ROOT / "notebooks").glob("*.ipynb"))


def test_the_three_workbench_notebooks_exist() -> None:
    assert {n.stem for n in NOTEBOOKS} >= {"kpi_deep_dive", "eta_error_analysis", "churn_drivers"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_without_outputs(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code, "a notebook with no code"
    assert [(cell.outputs, cell.execution_count) for cell in code] == [([], None)] * len(code)


@pytest.fixture(scope="module")
def small_lake(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("notebook_lake")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CXLAKE_HOME", str(home))
        # The kernel inherits the environment: a 21-day horizon closes the tiny lake's 10 Feb window.
        env.setenv("CXLAKE_CHURN_HORIZON_DAYS", "21")
        build_tiny_lake(load_config())
        yield home


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom(path: Path, small_lake: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    # A failing cell raises CellExecutionError naming the cell and the traceback.
    NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(PROJECT_ROOT)}}
    ).execute()
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any(o.output_type in ("execute_result", "display_data") for o in outputs)  # tables and charts came out
    printed = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert str(small_lake) in printed  # it read the lake it was given, not the demo's
