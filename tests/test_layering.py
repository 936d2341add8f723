"""Layering: which package of ``jobs/`` may import which, checked on the source with ``ast``.

* The layers (ingest, silver, gold, features, quality, models) import from ``jobs`` only the lake
  core (``jobs.lake``), the domain vocabulary (``jobs.domain``) and their own package: never each
  other sideways. Whatever two layers share belongs in one of the two.
* The core (``jobs.lake``, ``jobs.domain``) imports nothing above it.
* Developer tooling (``jobs.devtools``) is imported by nothing but itself and the command line
  (``jobs/cli.py`` dispatches to it lazily): production code never depends on the simulator.

Every import counts, also one inside a function: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
JOBS = ROOT / "jobs"
LAYERS = ("ingest", "silver", "gold", "features", "quality", "models")
CORE = ("lake", "domain")
DEVTOOLS_ALLOWED = ("jobs/cli.py",)


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, module: str | None = None) -> list[tuple[int, str]]:
    """(line, dotted module) of every import in the file, ``from a import b`` as ``a.b``, by line.

    ``module`` is the file's dotted name (default: from its path under the repository).
    """
    module = module or _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolved against the importing package
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return sorted(found)


def _jobs_package(dotted: str) -> str | None:
    """``jobs.silver.orders.x`` -> ``silver``; ``jobs`` alone -> ``""``; not ``jobs`` -> None."""
    parts = dotted.split(".")
    if parts[0] != "jobs":
        return None
    return parts[1] if len(parts) > 1 else ""


def _sources(*packages: str) -> list[Path]:
    roots = [JOBS / p for p in packages] if packages else [JOBS]
    files = []
    for root in roots:
        files += [root.with_suffix(".py")] if root.with_suffix(".py").is_file() else sorted(root.rglob("*.py"))
    return files


def _offenders(files: list[Path], allowed_of) -> list[str]:
    problems = []
    for path in files:
        allowed = allowed_of(path)
        for line, dotted in _imports(path):
            package = _jobs_package(dotted)
            if package is not None and package not in allowed:
                problems.append(f"{path.relative_to(ROOT)}:{line} imports {dotted}")
    return problems


def _own_package(path: Path) -> str:
    return path.relative_to(JOBS).parts[0].removesuffix(".py")


@pytest.mark.parametrize("layer", LAYERS)
def test_layers_import_only_the_core_and_themselves(layer: str) -> None:
    problems = _offenders(_sources(layer), lambda path: {*CORE, _own_package(path)})
    assert not problems, (
        f"jobs.{layer} may import from jobs only {', '.join(f'jobs.{c}' for c in CORE)} and jobs.{layer}; "
        "move what two layers share to jobs.domain (vocabulary) or jobs.lake (contracts, tables):\n"
        + "\n".join(problems)
    )


def test_the_core_imports_nothing_above_it() -> None:
    problems = _offenders(_sources(*CORE), lambda path: {"lake"})
    assert not problems, "jobs.lake and jobs.domain may import only jobs.lake:\n" + "\n".join(problems)


def test_only_the_command_line_imports_devtools() -> None:
    outside = [p for p in _sources() if _own_package(p) != "devtools"]
    problems = [
        problem
        for problem in _offenders(outside, lambda path: set())
        if problem.split(" imports ")[1].startswith("jobs.devtools")
        and not problem.startswith(tuple(f"{allowed}:" for allowed in DEVTOOLS_ALLOWED))
    ]
    assert not problems, "only jobs/cli.py may import jobs.devtools (lazily, per command):\n" + "\n".join(problems)


def test_the_import_scanner_sees_every_form_of_import(tmp_path: Path) -> None:
    """The checks above are only as good as the scanner: lazy, aliased and package imports included."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import jobs.gold.kpi as kpi\n"
        "from jobs import features\n"
        "from jobs.models.eta import model\n"
        "from . import orders\n"
        "def lazy():\n"
        "    from jobs.devtools.simulator import simulate\n"
    )
    assert _imports(probe, "jobs.silver.probe") == [
        (1, "jobs.gold.kpi"),
        (2, "jobs.features"),
        (3, "jobs.models.eta.model"),
        (4, "jobs.silver.orders"),
        (6, "jobs.devtools.simulator.simulate"),
    ]
