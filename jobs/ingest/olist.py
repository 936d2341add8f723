"""The public Olist e-commerce export mapped onto the three raw sources and their landing files.

Data credit: the **Brazilian E-Commerce Public Dataset by Olist** (Kaggle ``olistbr/brazilian-ecommerce``,
https://www.kaggle.com/datasets/olistbr/brazilian-ecommerce), real anonymised marketplace orders
of 2016-2018, published by Olist under **CC BY-NC-SA 4.0**: credit Olist, non-commercial use only,
and share anything derived from it (such as the landing files written here) under the same licence.

Three steps, each usable alone:

1. :func:`read_olist` reads whichever of the five Olist CSVs a folder holds (orders required),
   every column as text first (zip prefixes keep their leading zeros, quoted review comments
   keep their line breaks), then types the columns it knows explicitly.
2. :func:`map_olist` (or :func:`to_raw_sources` for the tables alone) maps them onto the contracts
   ``raw.orders``, ``raw.tracking_scans`` and ``raw.interactions`` (``schemas/raw/``): column names,
   order and Arrow types come from the contracts. Whatever does not map (items or reviews of
   orders not in the export, milestones dated before their purchase) is counted in the report.
3. :func:`write_landing` writes the rows as the landing zone the nightly ingest reads: one folder
   per source and event date, closed by ``_SUCCESS``, in the simulator's text format.

Olist does not say which carrier, payment method or sales channel an order used: those columns
hold the contracts' ``unknown`` (they are required, and a guess would be a lie); its customer's
e-mail and phone stay null. An order without items has no count, amount or origin (the last two required):
the ingest quarantines it (``missing_required:amount``), with its reason, like any bad line.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
import os
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from jobs.domain import MILESTONE_RANK, UNKNOWN
from jobs.ingest.landing import MARKER
from jobs.lake.contracts import Contract, load_contract

log = logging.getLogger(__name__)

# The three raw sources, in the simulator's write order.
SOURCES = ("orders", "tracking_scans", "interactions")

# Olist's file of each table, as the Kaggle export names them.
FILES = {
    "orders": "olist_orders_dataset.csv",
    "customers": "olist_customers_dataset.csv",
    "order_items": "olist_order_items_dataset.csv",
    "order_reviews": "olist_order_reviews_dataset.csv",
    "sellers": "olist_sellers_dataset.csv",
}

_TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"
_CENT = Decimal("0.01")
# Olist amounts are Brazilian reais with centavos.
_MONEY = pa.decimal128(12, 2)
# A number's text pattern (ASCII digits, no spaces), its Arrow type, and what a misfit is not.
_NUMBERS = {
    "int": (r"^[+-]?[0-9]{1,9}$", pa.int32(), "an integer"),
    "money": (r"^[+-]?[0-9]{1,10}(\.[0-9]{1,2})?$", _MONEY, "an amount with at most 2 decimals"),
}


class OlistExportError(ValueError):
    """An Olist file cannot be read as the export it should be: ``path`` and, where one is to
    blame, ``column``."""

    def __init__(self, path: Path, message: str, column: str | None = None) -> None:
        self.path, self.column = path, column
        super().__init__(f"{path}: {message}")


@dataclass(frozen=True)
class _Field:
    """How one Olist column is typed: ``kind`` (string, int, money, timestamp), whether the
    header must have it (the mapping reads it) and whether every row must hold a value."""

    kind: str = "string"
    required: bool = True
    not_null: bool = False


_OPTIONAL = _Field(required=False)
_TIMESTAMP = _Field("timestamp")

# The columns the mapping reads are required; the others are typed when present. Columns the
# README does not list are kept as text.
_SPECS: dict[str, dict[str, _Field]] = {
    "orders": {
        "order_id": _Field(not_null=True),
        "customer_id": _Field(not_null=True),
        "order_status": _Field(),
        "order_purchase_timestamp": _Field("timestamp", not_null=True),
        "order_approved_at": _TIMESTAMP,
        "order_delivered_carrier_date": _TIMESTAMP,
        "order_delivered_customer_date": _TIMESTAMP,
        "order_estimated_delivery_date": _TIMESTAMP,
    },
    "customers": {
        "customer_id": _Field(not_null=True),
        "customer_unique_id": _Field(),
        "customer_zip_code_prefix": _OPTIONAL,
        "customer_city": _OPTIONAL,
        "customer_state": _Field(),
    },
    "order_items": {
        "order_id": _Field(not_null=True),
        "order_item_id": _Field("int", not_null=True),
        "product_id": _OPTIONAL,
        "seller_id": _Field(),
        "shipping_limit_date": _Field("timestamp", required=False),
        "price": _Field("money", not_null=True),
        "freight_value": _Field("money", not_null=True),
    },
    "order_reviews": {
        "review_id": _Field(not_null=True),
        "order_id": _Field(not_null=True),
        "review_score": _Field("int"),
        "review_comment_title": _Field(),
        "review_comment_message": _Field(),
        "review_creation_date": _Field("timestamp", not_null=True),
        "review_answer_timestamp": _TIMESTAMP,
    },
    "sellers": {
        "seller_id": _Field(not_null=True),
        "seller_zip_code_prefix": _OPTIONAL,
        "seller_city": _OPTIONAL,
        "seller_state": _Field(),
    },
}

# Each table's key, as Olist's (and the README's merge) defines it: a repeat is an error.
_KEYS = {
    "orders": ("order_id",),
    "customers": ("customer_id",),
    "order_items": ("order_id", "order_item_id"),
    "order_reviews": ("review_id", "order_id"),
    "sellers": ("seller_id",),
}


@dataclass(frozen=True)
class OlistExport:
    """The Olist tables found in a folder, typed (None: the file was not there).

    Timestamps are ``timestamp[us, UTC]`` holding Olist's wall clock (see :func:`read_olist`),
    ``order_item_id`` and ``review_score`` int32, ``price`` and ``freight_value``
    ``decimal(12,2)``, everything else text (empty field = null).
    """

    orders: pa.Table
    customers: pa.Table | None = None
    order_items: pa.Table | None = None
    order_reviews: pa.Table | None = None
    sellers: pa.Table | None = None


@dataclass(frozen=True)
class OlistMapping:
    """The raw-source tables of an export and what the mapping could not carry over.

    Attributes:
        tables: ``orders``, ``tracking_scans``, ``interactions``: each exactly its contract's
            columns in contract order, sorted by event time then key.
        report: counts: rows read per Olist file, rows per raw table, and every row or value not
            carried over, with why (see :func:`map_olist`).
    """

    tables: dict[str, pa.Table]
    report: dict[str, int]


# ---- reading -----------------------------------------------------------------------------------


def read_olist(folder: Path) -> OlistExport:
    """Read the Olist CSVs in ``folder``: orders required; customers, items, reviews, sellers if there.

    Every column is read as text, then the known ones are typed explicitly. Timestamps must be
    ``YYYY-MM-DD HH:MM:SS`` and are labelled UTC (Olist gives no zone; see the comment inside).

    Args:
        folder: a folder holding the files named in :data:`FILES`.

    Returns:
        The typed tables.

    Raises:
        OlistExportError: the orders file is missing; a file lacks a column the mapping needs,
            cannot be parsed as CSV, has a null where a key or time is required, a value that
            does not fit its type, or a repeated key.
    """
    folder = Path(folder)
    orders_path = folder / FILES["orders"]
    if not orders_path.is_file():
        raise OlistExportError(orders_path, "the orders file is required and is missing")
    tables = {name: _read_table(folder / file, name) for name, file in FILES.items() if (folder / file).is_file()}
    return OlistExport(**tables)


def _read_table(path: Path, name: str) -> pa.Table:
    header = _header(path)
    specs = _SPECS[name]
    missing = [column for column, spec in specs.items() if spec.required and column not in header]
    if missing:
        raise OlistExportError(
            path, f"required column {', '.join(map(repr, missing))} missing from the header {header}", missing[0]
        )
    try:
        text = pcsv.read_csv(
            path,
            read_options=pcsv.ReadOptions(use_threads=False),
            # Review comments hold line breaks inside quoted fields.
            parse_options=pcsv.ParseOptions(newlines_in_values=True),
            convert_options=pcsv.ConvertOptions(
                column_types={column: pa.string() for column in header},
                # Only an empty field is null ("NA" is a city or a state, not a missing value).
                null_values=[""],
                strings_can_be_null=True,
            ),
        )
    except pa.ArrowInvalid as error:
        raise OlistExportError(path, f"not a readable CSV: {error}") from None
    columns = [_typed(path, column, text[column], specs.get(column, _OPTIONAL)) for column in text.column_names]
    table = pa.table(columns, names=text.column_names)
    _check_unique(path, table, _KEYS[name])
    return table


def _header(path: Path) -> list[str]:
    with open(path, encoding="utf-8-sig", newline="") as file:
        header = next(csv.reader(file), [])
    if not header:
        raise OlistExportError(path, "no header row")
    if len(set(header)) != len(header):
        raise OlistExportError(path, f"repeated column names in the header {header}")
    return header


def _typed(path: Path, column: str, texts: pa.ChunkedArray, spec: _Field) -> pa.ChunkedArray:
    if spec.not_null and texts.null_count:
        row = texts.to_pylist().index(None) + 1
        raise OlistExportError(path, f"data row {row} has no {column} (every row needs one)", column)
    if spec.kind == "string":
        return texts
    if spec.kind == "timestamp":
        parsed = pc.strptime(texts, format=_TIMESTAMP_FORMAT, unit="s", error_is_null=True)
        # strptime rolls 2018-02-30 over into March: a value must read back as it was written.
        fits = pc.equal(pc.strftime(parsed, format=_TIMESTAMP_FORMAT), texts)
        _refuse_misfits(path, column, texts, fits, "a timestamp YYYY-MM-DD HH:MM:SS")
        # Olist gives no time zone (its clocks are Brazil's). The wall clock is kept and labelled
        # UTC, not shifted by a guessed offset: calendar dates (a purchase's day, an estimated
        # delivery date, a landing folder) then match the CSVs, which is what by-hand checks use.
        return parsed.cast(pa.timestamp("us", tz="UTC"))
    # Checked by pattern first, so a misfit is named with its row; within these bounds the cast is exact.
    pattern, target, what = _NUMBERS[spec.kind]
    _refuse_misfits(path, column, texts, pc.match_substring_regex(texts, pattern), what)
    return texts.cast(target)


def _refuse_misfits(path: Path, column: str, texts: pa.ChunkedArray, fits: pa.ChunkedArray, what: str) -> None:
    misfit = pc.and_(pc.is_valid(texts), pc.invert(pc.fill_null(fits, False)))
    if pc.any(misfit).as_py():
        row = misfit.to_pylist().index(True)
        raise OlistExportError(path, f"data row {row + 1}: {column} {texts[row].as_py()!r} is not {what}", column)


def _check_unique(path: Path, table: pa.Table, key: tuple[str, ...]) -> None:
    seen: set[tuple[Any, ...]] = set()
    for row, values in enumerate(zip(*(table[c].to_pylist() for c in key), strict=True), start=1):
        if values in seen:
            shown = ", ".join(f"{c}={v!r}" for c, v in zip(key, values, strict=True))
            raise OlistExportError(path, f"data row {row} repeats the key {shown}", key[0])
        seen.add(values)


# ---- mapping -----------------------------------------------------------------------------------

# Olist's order timestamps that become tracking milestones, and where the parcel then is.
_MILESTONES = (
    ("order_approved_at", "created", "origin"),
    ("order_delivered_carrier_date", "left_warehouse", "origin"),
    ("order_delivered_customer_date", "delivered", "destination"),
)
# The columns the mapping sets on every row (keys, event time, constants); every other column
# may be null here, even where the contract requires it (Olist does not say), so the tables'
# Arrow fields are nullable there: their schema does not claim what their rows do not hold.
_ALWAYS_SET = {
    "orders": frozenset({"order_id", "customer_id", "placed_at", "carrier", "payment_method", "channel"}),
    "tracking_scans": frozenset({"scan_id", "order_id", "scan_at", "event", "carrier"}),
    "interactions": frozenset({"event_id", "event_at", "event", "channel"}),
}
# Olist's satisfaction survey reaches the customer by e-mail.
_REVIEW_CHANNEL = "email"


def to_raw_sources(export: OlistExport) -> dict[str, pa.Table]:
    """The three raw-source tables of an export (:func:`map_olist` without its report, which is
    logged).

    Args:
        export: what :func:`read_olist` read.

    Returns:
        ``orders``, ``tracking_scans``, ``interactions``, each in its contract's shape.
    """
    mapping = map_olist(export)
    log.info("Olist mapping: %s", mapping.report)
    return mapping.tables


def map_olist(export: OlistExport) -> OlistMapping:
    """Map an Olist export onto the raw contracts, counting whatever does not carry over.

    * orders: the Olist order, its customer as the person (``customer_unique_id``, else the
      per-order ``customer_id`` when the customers file lacks the row), its items' count and
      ``sum(price + freight_value)`` (null without items), the state of its first item's seller
      as origin, the customer's state as destination, the estimated delivery's date as promise;
      carrier, payment method and channel ``unknown``.
    * tracking_scans: one milestone per known timestamp (approved -> ``created``, handed to the
      carrier -> ``left_warehouse``, delivered -> ``delivered``); one dated before its purchase
      is dropped and counted.
    * interactions: one ``review`` per (review, order), at its answer (else its creation) time.

    Report keys: ``<file>_read`` rows per Olist file (0 when absent); ``orders``,
    ``tracking_scans``, ``interactions`` rows written; ``orders_without_customer``,
    ``orders_without_items``, ``orders_without_origin`` (no seller state for the first item),
    ``items_without_order`` and ``reviews_without_order`` (kept as reviews without a customer),
    ``items_without_seller``, ``reviews_without_answer`` (creation time used),
    ``milestones_without_timestamp`` (not in Olist: no scan), and
    ``milestones_before_purchase`` with one ``<event>_before_purchase`` per milestone (dropped).

    Args:
        export: what :func:`read_olist` read.

    Returns:
        The tables and the report.
    """
    contracts = {source: load_contract(f"raw.{source}") for source in SOURCES}
    report: Counter[str] = Counter()
    for name in FILES:
        table = getattr(export, name)
        report[f"{name}_read"] = 0 if table is None else table.num_rows

    customers = {c["customer_id"]: c for c in _rows(export.customers)}
    seller_state = {s["seller_id"]: s["seller_state"] for s in _rows(export.sellers)}
    orders = _rows(export.orders)
    order_ids = {o["order_id"] for o in orders}
    items: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in _rows(export.order_items):
        if item["order_id"] in order_ids:
            items[item["order_id"]].append(item)
        else:
            report["items_without_order"] += 1
        if item["seller_id"] not in seller_state:
            report["items_without_seller"] += 1

    order_rows, scan_rows, buyer = [], [], {}
    for order in orders:
        order_id = order["order_id"]
        customer = customers.get(order["customer_id"])
        if customer is None:
            report["orders_without_customer"] += 1
        # Olist's customer_id is one per order; customer_unique_id is the person.
        buyer[order_id] = customer["customer_unique_id"] if customer else order["customer_id"]
        lines = sorted(items.get(order_id, ()), key=lambda i: i["order_item_id"])
        if not lines:
            report["orders_without_items"] += 1
        # The first item's seller ships it (order_item_id 1; the lowest known one in a partial export).
        origin = seller_state.get(lines[0]["seller_id"]) if lines else None
        if origin is None:
            report["orders_without_origin"] += 1
        destination = customer["customer_state"] if customer else None
        estimated = order["order_estimated_delivery_date"]
        order_rows.append(
            {
                "order_id": order_id,
                "customer_id": buyer[order_id],
                "placed_at": order["order_purchase_timestamp"],
                "items": len(lines) or None,
                "amount": _amount(lines),
                "origin_warehouse": origin,
                "destination_region": destination,
                "promised_delivery_date": estimated.date() if estimated else None,
                "carrier": UNKNOWN,
                "payment_method": UNKNOWN,
                "channel": UNKNOWN,
            }
        )
        place = {"origin": origin, "destination": destination}
        for column, event, where in _MILESTONES:
            at = order[column]
            if at is None:
                report["milestones_without_timestamp"] += 1
            elif at < order["order_purchase_timestamp"]:
                # Real Olist rows have a few: a scan before the purchase is not a journey's.
                report[f"{event}_before_purchase"] += 1
                report["milestones_before_purchase"] += 1
            else:
                scan = {"scan_id": f"{order_id}-{event}", "order_id": order_id, "scan_at": at, "event": event}
                scan_rows.append({**scan, "location": place[where], "carrier": UNKNOWN})

    review_rows = []
    for review in _rows(export.order_reviews):
        order_id = review["order_id"]
        if order_id not in order_ids:
            report["reviews_without_order"] += 1
        answered = review["review_answer_timestamp"]
        if answered is None:
            report["reviews_without_answer"] += 1
        review_rows.append(
            {
                "event_id": f"{review['review_id']}-{order_id}",
                "event_at": answered or review["review_creation_date"],
                "event": "review",
                "customer_id": buyer.get(order_id),
                "channel": _REVIEW_CHANNEL,
                "order_id": order_id,
                "rating": review["review_score"],
                "review_text": _review_text(review["review_comment_title"], review["review_comment_message"]),
            }
        )

    # Rows by event time, then key; scans of one order at the same second (approved and handed
    # over together) in journey order.
    order_rows.sort(key=lambda o: (o["placed_at"], o["order_id"]))
    scan_rows.sort(key=lambda s: (s["scan_at"], s["order_id"], MILESTONE_RANK[s["event"]]))
    review_rows.sort(key=lambda r: (r["event_at"], r["event_id"]))
    rows = {"orders": order_rows, "tracking_scans": scan_rows, "interactions": review_rows}
    tables = {source: _table(contracts[source], rows[source], _ALWAYS_SET[source]) for source in SOURCES}
    for source, table in tables.items():
        report[source] = table.num_rows
    keys = (
        [f"{name}_read" for name in FILES]
        + list(SOURCES)
        + [
            "orders_without_customer",
            "orders_without_items",
            "orders_without_origin",
            "items_without_order",
            "items_without_seller",
            "reviews_without_order",
            "reviews_without_answer",
            "milestones_without_timestamp",
            "milestones_before_purchase",
        ]
        + [f"{event}_before_purchase" for _, event, _ in _MILESTONES]
    )
    return OlistMapping(tables, {key: report[key] for key in keys})


def _rows(table: pa.Table | None) -> list[dict[str, Any]]:
    return [] if table is None else table.to_pylist()


def _amount(lines: list[dict[str, Any]]) -> Decimal | None:
    if not lines:
        return None
    total = sum((line["price"] + line["freight_value"] for line in lines), Decimal(0))
    return total.quantize(_CENT, rounding=ROUND_HALF_UP)


def _review_text(title: str | None, message: str | None) -> str | None:
    parts = [part for part in (title, message) if part is not None]
    if not parts:
        return None
    # Half of the sample's multiline comments break lines with \r\n (the original file), half
    # with \n: one convention, so a review reads the same whichever sample it came from.
    return "\n".join(parts).replace("\r\n", "\n").replace("\r", "\n")


def _table(contract: Contract, rows: list[dict[str, Any]], always_set: frozenset[str]) -> pa.Table:
    """Rows as the contract's table: its columns in its order, its Arrow types.

    Raises:
        ValueError: the mapping sets a column the contract lacks, or a value its enum refuses
            (the contract changed under the mapping).
    """
    names = contract.column_names
    unknown = sorted({name for row in rows for name in row} - set(names))
    if unknown:
        raise ValueError(f"the Olist mapping sets {unknown}, which {contract.name} does not have")
    for column in contract.columns:
        if column.allowed is not None:
            refused = sorted(
                {row[column.name] for row in rows if row.get(column.name) is not None} - set(column.allowed)
            )
            if refused:
                raise ValueError(f"{contract.name}.{column.name} does not allow {refused}")
    schema = contract.arrow_schema()
    fields = [field.with_nullable(field.nullable or field.name not in always_set) for field in schema]
    return pa.table({name: [row.get(name) for row in rows] for name in names}, schema=pa.schema(fields))


# ---- landing files -----------------------------------------------------------------------------


def write_landing(tables: Mapping[str, pa.Table | list[dict[str, Any]]], landing_root: Path) -> list[str]:
    """Write the rows as landing files, one folder per source and event date, each closed by ``_SUCCESS``.

    Layout, as the simulator writes it: ``<landing_root>/<source>/<date>/<source>_<date>.<csv|jsonl>``
    (format from the contract), where ``<date>`` is the UTC calendar date of the row's event time
    (the contract's ``event_time``). Every date from the first to the last of all sources gets a
    file for every source (possibly empty: a CSV header alone, an empty JSON lines file), since the
    nightly sensor waits for all of them. Rows keep their table order. Text format: CSV with
    minimal quoting and ``\\n`` endings, JSON objects in contract key order without spaces and
    without null keys, timestamps ``YYYY-MM-DDTHH:MM:SSZ``, dates ``YYYY-MM-DD``, decimals at their
    scale. Files are replaced atomically; the same tables give the same bytes.

    A row whose event time is text (a value the export's reader could not parse) lands on the first
    date, as written: the ingest quarantines it there (``bad_type:<column>``), so it is not lost.

    Args:
        tables: raw-source tables by source name (as :func:`to_raw_sources` returns), or their rows
            (dicts keyed by the contract's column names).
        landing_root: the landing zone's root folder.

    Returns:
        The dates written (``YYYY-MM-DD``), sorted; empty when no table has a row.

    Raises:
        ValueError: a CSV value holds a line break (the ingest reads one record per line).
    """
    contracts = {source: load_contract(f"raw.{source}") for source in tables}
    lines: dict[str, defaultdict[dt.date | None, list[str]]] = {}
    for source, table in tables.items():
        contract = contracts[source]
        render = _csv_line if contract.format == "csv" else _json_line
        by_date: defaultdict[dt.date | None, list[str]] = defaultdict(list)
        rows = table.select(contract.column_names).to_pylist() if isinstance(table, pa.Table) else table
        for row in rows:
            at = row[contract.event_time]
            by_date[_day(at) if isinstance(at, dt.date) else None].append(render(contract.column_names, row))
        lines[source] = by_date
    days = {day for by_date in lines.values() for day in by_date if day is not None}
    if not days:
        if any(None in by_date for by_date in lines.values()):
            raise ValueError("no row has a readable event time: nothing dates the landing files")
        return []
    first, last = min(days), max(days)
    for by_date in lines.values():
        if None in by_date:
            by_date[first].extend(by_date.pop(None))
    written = []
    for offset in range((last - first).days + 1):
        day = first + dt.timedelta(days=offset)
        date = day.isoformat()
        for source, contract in contracts.items():
            folder = Path(landing_root) / source / date
            extension = "csv" if contract.format == "csv" else "jsonl"
            header = [_render_csv(contract.column_names)] if contract.format == "csv" else []
            body = header + lines[source].get(day, [])
            _write_text(folder / f"{source}_{date}.{extension}", "".join(f"{line}\n" for line in body))
            # The exporter's "this folder is complete" (jobs.ingest.landing), after its file.
            _write_text(folder / MARKER, "")
        written.append(date)
    return written


def _day(value: dt.datetime | dt.date) -> dt.date:
    return value.astimezone(dt.UTC).date() if isinstance(value, dt.datetime) else value


def _text(value: Any) -> str | int | None:
    """A typed value as the landing text (an int stays an int: a JSON number)."""
    if value is None or isinstance(value, str | int):
        return value
    if isinstance(value, dt.datetime):
        utc = value.astimezone(dt.UTC)
        fraction = f".{utc.microsecond:06d}" if utc.microsecond else ""
        return utc.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def _render_csv(values: Iterable[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_MINIMAL).writerow(values)
    return buffer.getvalue()[:-1]


def _csv_line(names: list[str], row: dict[str, Any]) -> str:
    texts = ["" if (text := _text(row[name])) is None else str(text) for name in names]
    broken = [name for name, text in zip(names, texts, strict=True) if "\n" in text or "\r" in text]
    if broken:
        raise ValueError(f"{broken[0]} {row[broken[0]]!r} holds a line break: no CSV landing line can carry it")
    return _render_csv(texts)


def _json_line(names: list[str], row: dict[str, Any]) -> str:
    present = {name: _text(row[name]) for name in names if row[name] is not None}
    return json.dumps(present, ensure_ascii=False, separators=(",", ":"))


def _write_text(path: Path, text: str) -> None:
    """Write UTF-8 text atomically (temp file + rename): a sensor never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "w", encoding="utf-8", newline="") as file:
        file.write(text)
    os.replace(temporary, path)
