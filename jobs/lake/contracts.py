"""Data contracts: the YAML files under ``schemas/`` turned into typed objects and Spark schemas.

``schemas/`` is the single source of column names and types; everything else derives from it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

SCHEMAS_DIR = Path(__file__).resolve().parents[2] / "schemas"


class ContractError(ValueError):
    """Raised when a contract file is missing or malformed."""


@dataclass(frozen=True)
class Column:
    """One column of a contract."""

    name: str
    type: str
    nullable: bool = True
    allowed: tuple[str, ...] | None = None
    min: float | None = None
    max: float | None = None
    pii: bool = False
    feature: bool = False
    description: str = ""


@dataclass(frozen=True)
class Contract:
    """A table or raw-source contract read from ``schemas/<layer>/<table>.yaml``."""

    name: str
    version: int
    columns: tuple[Column, ...]
    keys: tuple[str, ...] = ()
    partition_by: tuple[str, ...] = ()
    format: str | None = None
    event_time: str | None = None
    description: str = ""
    change_data_feed: bool = False
    deletion_vectors: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if not c.nullable]

    @property
    def pii_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.pii]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} has no column {name!r}")

    def spark_schema(self):  # -> pyspark.sql.types.StructType (imported lazily: DAG files import this)
        """The Spark ``StructType`` of this contract, in contract column order."""
        from pyspark.sql.types import StructField, StructType

        return StructType([StructField(c.name, spark_type(c.type), c.nullable) for c in self.columns])

    def arrow_schema(self):  # -> pyarrow.Schema
        """The Arrow schema of this contract, as Spark writes it to Delta (timestamps: UTC microseconds)."""
        import pyarrow as pa

        return pa.schema([pa.field(c.name, arrow_type(c.type), c.nullable) for c in self.columns])


_DECIMAL = re.compile(r"^decimal\((\d+),\s*(\d+)\)$")
_MAP = re.compile(r"^map<(.+),(.+)>$")
_ARRAY = re.compile(r"^array<(.+)>$")


def spark_type(type_text: str):  # -> pyspark.sql.types.DataType
    """Parse a contract type string without a running Spark (DAG parsing must not start a JVM)."""
    from pyspark.sql import types as T

    text = type_text.strip().lower()
    simple = {
        "string": T.StringType(),
        "int": T.IntegerType(),
        "bigint": T.LongType(),
        "double": T.DoubleType(),
        "boolean": T.BooleanType(),
        "date": T.DateType(),
        "timestamp": T.TimestampType(),
    }
    if text in simple:
        return simple[text]
    if match := _DECIMAL.match(text):
        return T.DecimalType(int(match[1]), int(match[2]))
    if match := _MAP.match(text):
        return T.MapType(spark_type(match[1]), spark_type(match[2]))
    if match := _ARRAY.match(text):
        return T.ArrayType(spark_type(match[1]))
    raise ContractError(f"unsupported contract type {type_text!r}")


def arrow_type(type_text: str):  # -> pyarrow.DataType
    """The Arrow type Delta stores for a contract type (what delta-rs and pyarrow readers see):
    pyspark's own Spark -> Arrow mapping of :func:`spark_type`, timestamps as UTC microseconds."""
    from pyspark.sql.pandas.types import to_arrow_type

    return to_arrow_type(spark_type(type_text), timezone="UTC")


def _column(raw: dict[str, Any], contract_name: str) -> Column:
    try:
        allowed = raw.get("allowed")
        return Column(
            name=raw["name"],
            type=raw["type"],
            nullable=bool(raw.get("nullable", True)),
            allowed=tuple(allowed) if allowed is not None else None,
            min=raw.get("min"),
            max=raw.get("max"),
            pii=bool(raw.get("pii", False)),
            feature=bool(raw.get("feature", False)),
            description=raw.get("description", ""),
        )
    except KeyError as missing:
        raise ContractError(f"{contract_name}: column entry {raw!r} lacks {missing}") from None


@cache
def load_contract(name: str) -> Contract:
    """Load a contract by its dotted name, e.g. ``raw.orders`` or ``silver.orders``.

    Raises:
        ContractError: when the file does not exist or lacks required keys.
    """
    layer, _, table = name.partition(".")
    path = SCHEMAS_DIR / layer / f"{table}.yaml"
    if not path.is_file():
        raise ContractError(f"no contract {name!r} at {path}")
    raw = yaml.safe_load(path.read_text())
    if raw.get("name") != name:
        raise ContractError(f"{path} declares name {raw.get('name')!r}, expected {name!r}")
    # ``extends`` copies another contract's columns first (e.g. bronze = raw + ingest metadata),
    # so a column is declared once, where it is born.
    base = load_contract(raw["extends"]) if raw.get("extends") else None
    columns = (base.columns if base else ()) + tuple(_column(c, name) for c in raw.get("columns", ()))
    known = {
        "name",
        "version",
        "columns",
        "keys",
        "partition_by",
        "format",
        "event_time",
        "description",
        "extends",
        "change_data_feed",
        "deletion_vectors",
    }
    return Contract(
        name=name,
        version=int(raw["version"]),
        columns=columns,
        keys=tuple(raw.get("keys", base.keys if base else ())),
        partition_by=tuple(raw.get("partition_by", ())),
        format=raw.get("format"),
        event_time=raw.get("event_time", base.event_time if base else None),
        description=raw.get("description", base.description if base else ""),
        change_data_feed=bool(raw.get("change_data_feed", False)),
        deletion_vectors=bool(raw.get("deletion_vectors", False)),
        extra={k: v for k, v in raw.items() if k not in known},
    )


# ---- versioning ------------------------------------------------------------------------------

LOCK_FILE = SCHEMAS_DIR / "contracts.lock.json"


def all_contract_names() -> list[str]:
    """Every contract under ``schemas/`` (``layer.table``)."""
    return sorted(f"{p.parent.name}.{p.stem}" for p in SCHEMAS_DIR.glob("*/*.yaml"))


def source_names() -> tuple[str, ...]:
    """The raw sources (``schemas/raw/*.yaml``): each has a landing folder, a bronze and a quarantine table."""
    return tuple(name.split(".", 1)[1] for name in all_contract_names() if name.startswith("raw."))


def contract_fingerprint(contract: Contract) -> str:
    """SHA-256 of the resolved contract minus its version: changes when any column, type, key... does.

    Computed on the resolved form, so a change to ``raw.orders`` also changes ``bronze.orders``
    (which extends it): both tables' schemas changed and both need a version bump.
    """
    import hashlib
    import json
    from dataclasses import asdict

    body = asdict(contract)
    body.pop("version")
    # Likewise a table option at its default (no change data feed, no deletion vectors) is left out.
    if not body["change_data_feed"]:
        body.pop("change_data_feed")
    if not body["deletion_vectors"]:
        body.pop("deletion_vectors")
    # Only non-default column attributes: a new optional attribute in the format (say `feature`)
    # leaves every existing contract's fingerprint unchanged.
    defaults = asdict(Column(name="", type=""))
    body["columns"] = [
        {k: v for k, v in col.items() if v != defaults[k] or k in ("name", "type")} for col in body["columns"]
    ]
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def current_lock() -> dict[str, dict[str, Any]]:
    return {
        name: {"version": (c := load_contract(name)).version, "sha256": contract_fingerprint(c)}
        for name in all_contract_names()
    }


def check_lock(recorded: dict[str, dict[str, Any]] | None = None) -> list[str]:
    """Problems between the contracts and the recorded lock: a change needs a version bump.

    Returns an empty list when every contract matches its lock entry.
    """
    import json

    if recorded is None:
        recorded = json.loads(LOCK_FILE.read_text()) if LOCK_FILE.is_file() else {}
    problems = []
    for name, now in current_lock().items():
        then = recorded.get(name)
        if then is None:
            problems.append(f"{name}: new contract, not in {LOCK_FILE.name} (run `cxlake contracts --lock`)")
        elif now["sha256"] != then["sha256"] and now["version"] <= then["version"]:
            problems.append(f"{name}: changed but still version {now['version']}: bump `version` in its YAML")
        elif now != then:
            problems.append(f"{name}: version {then['version']} -> {now['version']}: run `cxlake contracts --lock`")
    problems += [
        f"{name}: in {LOCK_FILE.name} but no longer in schemas/" for name in sorted(set(recorded) - set(current_lock()))
    ]
    return problems


def write_lock() -> Path:
    """Record every contract's version and fingerprint (after a deliberate, version-bumped change)."""
    import json

    LOCK_FILE.write_text(json.dumps(current_lock(), indent=1, sort_keys=True) + "\n")
    return LOCK_FILE
