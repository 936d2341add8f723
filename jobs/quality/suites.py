"""Expectation suites built from contracts: one definition of a column, checked everywhere."""

from __future__ import annotations

from typing import Any

import great_expectations.expectations as gxe

from jobs.contracts import Contract

CRITICAL = "critical"
WARNING = "warning"


def contract_expectations(contract: Contract, expected_rows: int | None = None) -> list[Any]:
    """Expectations that follow from a contract: not-null, enum sets, ranges, key uniqueness.

    Each carries ``meta.severity`` (``critical`` stops the pipeline, ``warning`` is reported).
    """
    critical = {"severity": CRITICAL}
    expectations: list[Any] = []
    if expected_rows is not None:
        expectations.append(gxe.ExpectTableRowCountToEqual(value=expected_rows, meta=critical))
    for col in contract.columns:
        if not col.nullable:
            expectations.append(gxe.ExpectColumnValuesToNotBeNull(column=col.name, meta=critical))
        if col.allowed is not None:
            expectations.append(
                gxe.ExpectColumnValuesToBeInSet(column=col.name, value_set=list(col.allowed), meta=critical)
            )
        if col.min is not None or col.max is not None:
            expectations.append(
                gxe.ExpectColumnValuesToBeBetween(column=col.name, min_value=col.min, max_value=col.max, meta=critical)
            )
    if len(contract.keys) == 1:
        expectations.append(gxe.ExpectColumnValuesToBeUnique(column=contract.keys[0], meta=critical))
    elif contract.keys:
        expectations.append(gxe.ExpectCompoundColumnsToBeUnique(column_list=list(contract.keys), meta=critical))
    return expectations
