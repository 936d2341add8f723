"""The feature registry: every model feature, read from the feature tables' contracts.

A feature is a column marked ``feature: true`` in a contract under ``schemas/features/``; the
contract gives its type and description, the table is its owner, and the contract's ``entity``
and keys say what it describes. Model jobs ask this module for their feature lists, so adding a
feature is one contract line plus the code that computes it.

It lives in :mod:`jobs.lake` (derived from the contracts alone) so that models, monitoring and the
command line read it without importing the feature layer.
"""

from __future__ import annotations

from dataclasses import dataclass

from jobs.lake.contracts import all_contract_names, load_contract


@dataclass(frozen=True)
class Feature:
    name: str
    table: str
    entity: str
    keys: tuple[str, ...]
    type: str
    description: str

    @property
    def is_numeric(self) -> bool:
        return self.type in ("int", "bigint", "double", "float") or self.type.startswith("decimal")


def feature_tables() -> list[str]:
    """Every table under ``schemas/features/`` whose contract marks features, sorted (not
    ``features.lane_stats``: the lane statistics the delivery feature tables copy under their own
    names)."""
    return [
        name
        for name in all_contract_names()
        if name.startswith("features.") and any(column.feature for column in load_contract(name).columns)
    ]


def registry() -> list[Feature]:
    """Every registered feature, by table then contract order."""
    features = []
    for table in feature_tables():
        contract = load_contract(table)
        entity = str(contract.extra.get("entity", ""))
        features += [
            Feature(c.name, table, entity, contract.keys, c.type, c.description) for c in contract.columns if c.feature
        ]
    return features


def features_of(table: str) -> list[Feature]:
    """The features owned by ``table`` (e.g. ``features.order_eta``), in contract order."""
    found = [f for f in registry() if f.table == table]
    if not found:
        raise KeyError(f"no features registered for {table!r}; tables: {feature_tables()}")
    return found
