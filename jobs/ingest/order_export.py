"""Any order export (CSV, whitespace-separated text or Parquet) as the lake's raw sources.

A team's history rarely looks like our nightly feeds: one file of orders, its own column names,
its own date format, often without promises, deliveries or carriers. ``cxlake import-orders``
reads such a file with a column map (``--map customer_id=COL,placed_at=COL,amount=COL,...``) and
writes the landing files the nightly ingest reads (:func:`jobs.ingest.olist.write_landing`), so the
rows pass through the same contracts, quarantine and audit as a night's feed.

1. :func:`parse_column_map` checks the map: ``customer_id``, ``placed_at`` and ``amount`` are
   required; ``order_id``, ``promised_at``, ``delivered_at``, ``carrier``, ``origin``,
   ``destination`` and ``items`` are optional.
2. :func:`read_export` reads only the mapped columns, as text (Parquet values become the same
   text a CSV would hold).
3. :func:`map_export` turns each row into a ``raw.orders`` row, and a delivered ``delivered_at``
   into a ``delivered`` scan of ``raw.tracking_scans``.

What the map leaves out stays honest: no carrier, origin or destination is the contracts'
``unknown``; no promise or item count is null (the on-time KPIs and the promise's figures cover
the orders that have one); no ``delivered_at`` means no scans, so no delivery KPI and no ETA model
(the nightly training skips with its reason; ``eta-backtest`` says there is nothing to learn from).
Payment method and channel are ``unknown``; e-mail and phone null. Without ``order_id``, each order
gets a deterministic id from its customer, placement and amount (and its rank among identical
rows), so the same file always gives the same ids and a re-import changes nothing.

A value that does not read (a date not in ``--date-format``, an amount with letters) is passed on
as written: the ingest quarantines the line with its reason (``bad_type:placed_at``), so raw lines
= accepted + quarantined holds for the import too. A delivery dated before its placement is no
journey's scan: it is left out and counted (``deliveries_before_placement``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from jobs.domain import UNKNOWN

REQUIRED_KEYS = ("customer_id", "placed_at", "amount")
OPTIONAL_KEYS = ("order_id", "promised_at", "delivered_at", "carrier", "origin", "destination", "items")
# --delimiter names for characters awkward to type in a shell.
DELIMITER_NAMES = {"comma": ",", "tab": "\t", "semicolon": ";", "pipe": "|"}
WHITESPACE = "whitespace"


class OrderExportError(ValueError):
    """The export or its column map cannot be read as asked; the message says what to change."""


def parse_column_map(text: str) -> dict[str, str]:
    """``"customer_id=Customer,placed_at=Date,amount=Total"`` -> {lake name: export column}.

    Raises:
        OrderExportError: a pair without ``=``, a lake name not in REQUIRED_KEYS + OPTIONAL_KEYS, a
            name given twice, or a required name missing.
    """
    mapping: dict[str, str] = {}
    for pair in filter(None, (part.strip() for part in text.split(","))):
        name, equals, column = pair.partition("=")
        name, column = name.strip(), column.strip()
        if not equals or not name or not column:
            raise OrderExportError(f"--map: {pair!r} is not NAME=COLUMN")
        if name not in REQUIRED_KEYS + OPTIONAL_KEYS:
            known = ", ".join(REQUIRED_KEYS + OPTIONAL_KEYS)
            raise OrderExportError(f"--map: {name!r} is not a name the import knows ({known})")
        if name in mapping:
            raise OrderExportError(f"--map: {name} is mapped twice")
        mapping[name] = column
    missing = [name for name in REQUIRED_KEYS if name not in mapping]
    if missing:
        raise OrderExportError(f"--map: {', '.join(missing)} must be mapped (e.g. {missing[0]}=<column of the export>)")
    return mapping


def read_export(path: Path, columns: list[str], delimiter: str = ",") -> pd.DataFrame:
    """The export's ``columns`` as text, one row per order line, in file order.

    Args:
        path: a ``.parquet`` file (or folder of them), else delimited text with a header line.
        columns: the export columns to read (the map's values).
        delimiter: one character, a name of DELIMITER_NAMES, or ``whitespace`` (runs of spaces
            and tabs, as a fixed-width text dump has).

    Returns:
        One ``object`` column per export column: the value's text, stripped, None when blank.

    Raises:
        OrderExportError: the file is missing, or lacks a mapped column.
    """
    if not path.exists():
        raise OrderExportError(f"{path}: no such file")
    wanted = list(dict.fromkeys(columns))
    if path.is_dir() or path.suffix.lower() == ".parquet":
        _require(path, wanted, pq.ParquetDataset(path).schema.names)  # a file, or a folder of them
        table = pq.read_table(path, columns=wanted)
        frame = pd.DataFrame({name: _parquet_text(table.column(name)) for name in wanted})
    elif delimiter == WHITESPACE:
        header = pd.read_csv(path, sep=r"\s+", nrows=0).columns.tolist()
        _require(path, wanted, header)
        frame = pd.read_csv(path, sep=r"\s+", usecols=wanted, dtype=str, keep_default_na=False)
    else:
        separator = DELIMITER_NAMES.get(delimiter, delimiter)
        if len(separator) != 1:
            raise OrderExportError(
                f"--delimiter {delimiter!r}: one character, {', '.join(DELIMITER_NAMES)} or {WHITESPACE}"
            )
        malformed: list[str] = []

        def refuse(row: Any) -> str:
            malformed.append(f"line {row.number}: {row.text[:120]!r} ({row.expected_columns} fields expected)")
            return "skip"

        parse = pcsv.ParseOptions(delimiter=separator, invalid_row_handler=refuse)
        with pcsv.open_csv(path, parse_options=parse) as reader:
            header = reader.schema.names
        _require(path, wanted, header)
        convert = pcsv.ConvertOptions(
            include_columns=wanted, column_types={name: pa.string() for name in wanted}, strings_can_be_null=False
        )
        malformed.clear()  # the header's read saw the first block
        table = pcsv.read_csv(path, parse_options=parse, convert_options=convert)
        if malformed:
            malformed.clear()  # again on one thread: only then does pyarrow number the lines
            pcsv.read_csv(path, pcsv.ReadOptions(use_threads=False), parse_options=parse, convert_options=convert)
            # A line whose fields do not split cannot be mapped, nor dated: refused whole, never dropped.
            raise OrderExportError(
                f"{path}: {len(malformed)} line(s) do not split into the header's fields; fix or remove them: "
                + "; ".join(malformed[:5])
            )
        frame = table.to_pandas()
    return frame[wanted].apply(_stripped)


def _require(path: Path, wanted: list[str], present: list[str]) -> None:
    missing = [name for name in wanted if name not in present]
    if missing:
        raise OrderExportError(f"{path}: no column {', '.join(map(repr, missing))} (the file has {present})")


def _parquet_text(column: pa.ChunkedArray) -> list[str | None]:
    """A Parquet column's values as the text a CSV export would hold (timestamps ISO 8601, UTC)."""
    values = column.to_pylist()
    if pa.types.is_timestamp(column.type):
        return [None if v is None else _iso(v) for v in values]
    return [None if v is None else str(v) for v in values]


def _iso(value: dt.datetime | dt.date) -> str:
    if isinstance(value, dt.datetime):
        return (value.astimezone(dt.UTC) if value.tzinfo else value).strftime("%Y-%m-%dT%H:%M:%S")
    return value.isoformat()


def _stripped(column: pd.Series) -> pd.Series:
    text = column.astype(object).where(column.notna(), None)
    text = text.map(lambda v: v.strip() if isinstance(v, str) else v)
    return text.where(text != "", None)


def parse_times(text: pd.Series, date_format: str | None) -> pd.Series:
    """Each text as a UTC ``datetime`` (a time without a zone is read as UTC), else None.

    Args:
        date_format: a ``strftime`` format (``%d.%m.%Y %H:%M``); None reads ISO 8601. A date alone
            is its midnight: a text that misses the format is read again with the format's date
            part (``%d.%m.%Y``), since exports write a promised day without a time.
    """
    parsed = pd.to_datetime(text, format=date_format or "ISO8601", errors="coerce", utc=True)
    date_part = (date_format or "").split(" ")[0].split("T")[0]
    if date_format and date_part != date_format:
        again = pd.to_datetime(text, format=date_part, errors="coerce", utc=True)
        parsed = parsed.where(parsed.notna(), again)
    return pd.Series([None if pd.isna(v) else v.to_pydatetime() for v in parsed], index=text.index, dtype=object)


@dataclass(frozen=True)
class ExportMapping:
    """The raw sources' rows and what the mapping counted (:func:`map_export`)."""

    rows: dict[str, list[dict[str, Any]]]
    report: dict[str, int]


def map_export(frame: pd.DataFrame, column_map: dict[str, str], date_format: str | None = None) -> ExportMapping:
    """The export's rows as ``raw.orders`` rows and ``delivered`` scans (``raw.tracking_scans``).

    Args:
        frame: what :func:`read_export` read (export column names).
        column_map: what :func:`parse_column_map` returned.
        date_format: how ``placed_at``, ``promised_at`` and ``delivered_at`` are written (see
            :func:`parse_times`).

    Returns:
        Rows by source (``orders``, ``tracking_scans``, ``interactions``: always empty), and the
        report: ``rows_read``, ``orders``, ``tracking_scans``, ``generated_order_ids`` (0 when the
        map names ``order_id``), ``unreadable_<name>`` per time column (passed on for the ingest
        to quarantine), ``without_delivery`` (no ``delivered_at`` value), and
        ``deliveries_before_placement`` (left out).
    """
    columns = {name: frame[source] if source in frame else None for name, source in column_map.items()}
    report: Counter[str] = Counter(rows_read=len(frame))

    def times(name: str) -> tuple[list[Any], list[Any]]:
        if name not in columns:
            return [None] * len(frame), [None] * len(frame)
        text = columns[name]
        parsed = parse_times(text, date_format)
        report[f"unreadable_{name}"] = int((parsed.isna() & text.notna()).sum())
        # Unreadable text goes on as written: the ingest names the column in its reason.
        return parsed.where(parsed.notna(), text).tolist(), parsed.tolist()

    def texts(name: str, default: str | None = None) -> list[Any]:
        return columns[name].tolist() if name in columns else [default] * len(frame)

    placed, placed_parsed = times("placed_at")
    promised, _ = times("promised_at")
    delivered, delivered_parsed = times("delivered_at")
    customers, amounts = texts("customer_id"), texts("amount")
    carriers, origins, destinations = texts("carrier", UNKNOWN), texts("origin", UNKNOWN), texts("destination", UNKNOWN)
    items = texts("items")
    order_ids = texts("order_id") if "order_id" in columns else _generated_ids(customers, placed, amounts)
    report["generated_order_ids"] = 0 if "order_id" in columns else len(frame)

    orders, scans = [], []
    for i in range(len(frame)):
        promise = promised[i]
        orders.append(
            {
                "order_id": order_ids[i],
                "customer_id": customers[i],
                "placed_at": placed[i],
                "items": items[i],
                "amount": amounts[i],
                "origin_warehouse": origins[i],
                "destination_region": destinations[i],
                "carrier": carriers[i],
                # A promised date, whatever time of day the export gives with it.
                "promised_delivery_date": promise.date() if isinstance(promise, dt.datetime) else promise,
                "payment_method": UNKNOWN,
                "channel": UNKNOWN,
                "email": None,
                "phone": None,
            }
        )
        if delivered[i] is None:
            report["without_delivery"] += 1
            continue
        at, placed_at = delivered_parsed[i], placed_parsed[i]
        if at is not None and placed_at is not None and at < placed_at:
            report["deliveries_before_placement"] += 1
            continue
        scans.append(
            {
                "scan_id": f"{order_ids[i]}-delivered",
                "order_id": order_ids[i],
                "scan_at": delivered[i],
                "event": "delivered",
                "location": None if destinations[i] == UNKNOWN else destinations[i],
                "carrier": carriers[i],
            }
        )
    report["orders"], report["tracking_scans"] = len(orders), len(scans)
    keys = ["rows_read", "orders", "tracking_scans", "generated_order_ids", "without_delivery"]
    keys += ["deliveries_before_placement"] + [f"unreadable_{n}" for n in ("placed_at", "promised_at", "delivered_at")]
    return ExportMapping(
        {"orders": orders, "tracking_scans": scans, "interactions": []}, {key: report[key] for key in keys}
    )


def _generated_ids(customers: list[Any], placed: list[Any], amounts: list[Any]) -> list[str]:
    """``ord-<16 hex>`` from (customer, placement, amount, rank among identical rows): the same
    file gives the same ids; two identical lines stay two orders (an export does not repeat one)."""
    seen: Counter[tuple[str, str, str]] = Counter()
    ids = []
    for customer, at, amount in zip(customers, placed, amounts, strict=True):
        key = (str(customer), _iso(at) if isinstance(at, dt.date) else str(at), str(amount))
        rank = seen[key]
        seen[key] += 1
        digest = hashlib.sha256("\x1f".join((*key, str(rank))).encode()).hexdigest()
        ids.append(f"ord-{digest[:16]}")
    return ids
