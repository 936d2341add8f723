"""``cxlake doctor``: check a lake before trusting it or running a night on it, and say what to do.

Reads only (delta-rs, no Spark, no writes; a local lake): every table the contracts declare has a
Delta log whose latest version opens, every data file that version lists exists, and its columns
include the contract's; the PII key on this machine is the one the lake's hashes were made with;
no night in ``ops.pipeline_runs`` stopped at a failed task; nothing under ``$CXLAKE_HOME`` that
can hold personal data (raw files, bronze, quarantine, the key) is readable by other users.
"""

from __future__ import annotations

import datetime as dt
import stat
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from jobs.lake.config import LakeConfig
from jobs.lake.contracts import SCHEMAS_DIR, all_contract_names, load_contract
from jobs.lake.tables import OrphanedTableFilesError, refuse_orphaned_files

OK, WARNING, PROBLEM = "ok", "warning", "problem"
# Tables whose e-mail and phone hashes are keyed (jobs.silver.pii records the key's fingerprint on them).
KEYED_TABLES = ("silver.orders", "silver.interactions")
# What can hold personal data in clear: raw files, bronze and quarantine lines, the hashing key.
PRIVATE_PLACES = ("landing", "lake/bronze", "lake/quarantine", "pii.key")


@dataclass(frozen=True)
class Finding:
    """One check's verdict on one subject, with what to do about it (empty when nothing)."""

    severity: str  # ok, warning, problem
    subject: str
    message: str
    remedy: str = ""


def _base_contracts() -> set[str]:
    """Contracts that others extend without being tables themselves (``quarantine.rows``)."""
    import yaml

    extended = {yaml.safe_load(p.read_text()).get("extends") for p in SCHEMAS_DIR.glob("*/*.yaml")}
    return {name for name in extended if name and not name.startswith("raw.")}


def check_tables(config: LakeConfig) -> list[Finding]:
    """Each declared table: absent (not built yet), orphaned files, an unreadable latest version,
    data files missing, or columns missing against its contract."""
    from deltalake import DeltaTable

    findings = []
    for name in all_contract_names():
        if name.startswith("raw.") or name in _base_contracts():
            continue
        path = Path(config.table_path(name))
        if not path.exists():
            findings.append(Finding(OK, name, "not built yet"))
            continue
        if not (path / "_delta_log").is_dir():
            try:
                refuse_orphaned_files(str(path))  # the nights' own check (it stops at the first files)
                orphaned = False
            except OrphanedTableFilesError:
                orphaned = True
            if orphaned:
                findings.append(
                    Finding(
                        PROBLEM,
                        name,
                        f"{path} holds data files but no _delta_log: every night touching it will stop",
                        "restore the _delta_log from a backup (or move the folder away if it is a first "
                        "write that never committed), then rerun the night",
                    )
                )
            else:
                findings.append(Finding(OK, name, "an empty folder (not built yet)"))
            continue
        try:
            table = DeltaTable(str(path))
            version = table.version()
            files = table.file_uris()
            columns = set(table.schema().to_arrow().names)
        except Exception as error:  # any unreadable log is the finding itself
            findings.append(
                Finding(
                    PROBLEM,
                    name,
                    f"its latest version does not open: {type(error).__name__}: {str(error)[:300]}",
                    "restore the table's folder from a backup, or time travel to a good version with "
                    "RESTORE TABLE ... TO VERSION AS OF n",
                )
            )
            continue
        missing_files = [f for f in files if not Path(f.removeprefix("file://")).exists()]
        missing_columns = [c for c in load_contract(name).column_names if c not in columns]
        if missing_files:
            findings.append(
                Finding(
                    PROBLEM,
                    name,
                    f"version {version} lists {len(missing_files)} data file(s) that are gone, e.g. {missing_files[0]}",
                    "restore the files from a backup, or RESTORE the table to a version whose files exist",
                )
            )
        elif missing_columns:
            findings.append(
                Finding(
                    PROBLEM,
                    name,
                    f"version {version} lacks contract column(s) {', '.join(missing_columns)}",
                    "the table predates its contract: rebuild it (rerun its nights) or migrate it",
                )
            )
        else:
            findings.append(Finding(OK, name, f"version {version}, {len(files)} data file(s)"))
    return findings


def check_pii_key(config: LakeConfig) -> list[Finding]:
    """The key this machine would hash with against the fingerprint the keyed tables record."""
    from deltalake import DeltaTable

    from jobs.silver.pii import FINGERPRINT_PROPERTY, MIN_KEY_CHARS, key_fingerprint

    recorded = {}
    for name in KEYED_TABLES:
        path = Path(config.table_path(name))
        if (path / "_delta_log").is_dir():
            try:
                value = DeltaTable(str(path)).metadata().configuration.get(FINGERPRINT_PROPERTY)
            except Exception:  # an unreadable table is check_tables' finding
                continue
            if value:
                recorded[name] = value
    key_file = Path(config.home) / "pii.key"
    if config.pii_key.strip():
        key, origin = config.pii_key.strip(), "CXLAKE_PII_KEY"
    elif key_file.exists():
        key, origin = key_file.read_text().strip(), str(key_file)
    else:
        if recorded:
            return [
                Finding(
                    PROBLEM,
                    "pii key",
                    f"no key on this machine, and the lake's hashes use fingerprint {next(iter(recorded.values()))}: "
                    "a night would create a new key and its hashes would never join the lake's",
                    f"copy the lake's pii.key to {key_file} or set CXLAKE_PII_KEY",
                )
            ]
        return [Finding(OK, "pii key", "none yet: the first night creates one")]
    if len(key) < MIN_KEY_CHARS:
        return [
            Finding(
                PROBLEM,
                "pii key",
                f"{origin} holds {len(key)} characters, not a key",
                "restore the key from a backup, or set CXLAKE_PII_KEY",
            )
        ]
    fingerprint = key_fingerprint(key)
    wrong = {name: value for name, value in recorded.items() if value != fingerprint}
    if wrong:
        return [
            Finding(
                PROBLEM,
                "pii key",
                f"{origin} has fingerprint {fingerprint}, but "
                + ", ".join(f"{name} was hashed with {value}" for name, value in wrong.items()),
                f"copy the lake's pii.key to {key_file} or set CXLAKE_PII_KEY to the lake's key",
            )
        ]
    where = f", recorded on {', '.join(recorded)}" if recorded else " (no table records it yet: the next night does)"
    return [Finding(OK, "pii key", f"{origin}, fingerprint {fingerprint}{where}")]


def check_nights(config: LakeConfig) -> list[Finding]:
    """Nights of ``ops.pipeline_runs`` whose latest try of some task failed: a half-done night."""
    from deltalake import DeltaTable

    path = Path(config.table_path("ops.pipeline_runs"))
    if not (path / "_delta_log").is_dir():
        return [Finding(OK, "nights", "no DAG run recorded yet")]
    runs = (
        DeltaTable(str(path))
        .to_pyarrow_table(columns=["dag_id", "run_date", "task_id", "try_number", "state", "exception_class", "reason"])
        .to_pylist()
    )
    latest: dict[tuple[str, dt.date, str], dict[str, Any]] = {}
    for row in runs:
        key = (row["dag_id"], row["run_date"], row["task_id"])
        if key not in latest or row["try_number"] > latest[key]["try_number"]:
            latest[key] = row
    stopped = sorted(
        ((dag, day, task, row) for (dag, day, task), row in latest.items() if row["state"] == "failed"),
        key=lambda item: (item[1], item[0], item[2]),
    )
    findings = [
        Finding(
            PROBLEM,
            f"night {day} ({dag})",
            f"stopped at {task} (try {row['try_number']}): {row['exception_class']}: {(row['reason'] or '')[:300]}",
            f"fix the cause, then clear the failed task (airflow tasks clear {dag} -s {day} -e {day}) "
            f"or rerun the night (cxlake run --date {day})",
        )
        for dag, day, task, row in stopped
    ]
    nights = {day for _, day, _ in latest}
    if not findings:
        findings.append(Finding(OK, "nights", f"{len(nights)} night(s) recorded, none stopped at a failed task"))
    return findings


def check_permissions(config: LakeConfig) -> list[Finding]:
    """Files and folders holding personal data that other users can read (group or other bits)."""
    home = Path(config.home)
    exposed = []
    for place in PRIVATE_PLACES:
        root = home / place
        if not root.exists():
            continue
        for path in [root, *root.rglob("*")] if root.is_dir() else [root]:
            mode = path.lstat().st_mode
            if not stat.S_ISLNK(mode) and mode & (stat.S_IRWXG | stat.S_IRWXO):
                exposed.append(path)
    if exposed:
        return [
            Finding(
                WARNING,
                "permissions",
                f"{len(exposed)} file(s) or folder(s) holding raw personal data are open to other users, "
                f"e.g. {exposed[0]} ({stat.filemode(exposed[0].lstat().st_mode)})",
                f"chmod -R go-rwx {home}  (cxlake itself writes with umask 077)",
            )
        ]
    return [Finding(OK, "permissions", "raw files, bronze, quarantine and the key are private to their owner")]


def diagnose(config: LakeConfig) -> list[Finding]:
    """Every check on the lake of ``config`` (see the module docstring)."""
    if "://" in config.lake_root and not config.lake_root.startswith("file:"):
        return [Finding(WARNING, "lake", f"{config.lake_root}: doctor reads local lakes only")]
    return [*check_tables(config), *check_pii_key(config), *check_nights(config), *check_permissions(config)]


def render(findings: list[Finding]) -> str:
    """The findings as text: problems first, then warnings, then a count of what is fine."""
    lines = []
    for severity in (PROBLEM, WARNING):
        for f in findings:
            if f.severity == severity:
                lines.append(f"{severity.upper():8} {f.subject}: {f.message}")
                if f.remedy:
                    lines.append(f"{'':8} -> {f.remedy}")
    fine = [f for f in findings if f.severity == OK]
    lines += [f"{'ok':8} {f.subject}: {f.message}" for f in fine]
    problems = sum(f.severity == PROBLEM for f in findings)
    warnings = sum(f.severity == WARNING for f in findings)
    lines.append(f"{problems} problem(s), {warnings} warning(s), {len(fine)} check(s) fine")
    return "\n".join(lines)


def as_json_rows(findings: list[Finding]) -> list[dict[str, str]]:
    return [asdict(f) for f in findings]


def exit_code(findings: list[Finding]) -> int:
    """1 when a problem was found (a night should not run on this lake), else 0."""
    return 1 if any(f.severity == PROBLEM for f in findings) else 0
