"""An order export's column map, reader and mapping onto the raw contracts (no Spark)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jobs.ingest.olist import write_landing
from jobs.ingest.order_export import OrderExportError, map_export, parse_column_map, read_export

UTC = dt.UTC

# Four orders of a shop's export, its own column names and a day-first date format:
# - A1 bought twice (r1, r3); r3 has no promise and no delivery yet;
# - r2's delivery is dated before its placement (a typing error upstream);
# - r4's placement does not read ("31.02.2026": no such day).
EXPORT = """\
Kunde;Datum;Summe;Versprochen;Zugestellt
A1;03.01.2026 10:00;19.90;06.01.2026;05.01.2026 14:30
B2;03.01.2026 11:15;5.00;07.01.2026;02.01.2026 09:00
A1;04.01.2026 08:00;7.50;;
C3;31.02.2026 12:00;1.00;;
"""
MAP = "customer_id=Kunde,placed_at=Datum,amount=Summe,promised_at=Versprochen,delivered_at=Zugestellt"
FORMAT = "%d.%m.%Y %H:%M"


def test_the_map_needs_customer_placement_and_amount_and_knows_its_names() -> None:
    assert parse_column_map(" customer_id=C , placed_at=P,amount=A,") == {
        "customer_id": "C",
        "placed_at": "P",
        "amount": "A",
    }
    with pytest.raises(OrderExportError, match="amount must be mapped"):
        parse_column_map("customer_id=C,placed_at=P")
    with pytest.raises(OrderExportError, match="'price' is not a name the import knows"):
        parse_column_map("customer_id=C,placed_at=P,amount=A,price=X")
    with pytest.raises(OrderExportError, match="is not NAME=COLUMN"):
        parse_column_map("customer_id=C,placed_at,amount=A")
    with pytest.raises(OrderExportError, match="customer_id is mapped twice"):
        parse_column_map("customer_id=C,placed_at=P,amount=A,customer_id=D")


def test_a_missing_column_or_a_broken_line_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text("id,when,total\n1,2026-01-01,3\n2,2026-01-02\n")
    with pytest.raises(OrderExportError, match="no column 'customer'"):
        read_export(path, ["customer", "when", "total"])
    # The third line has two fields of three: refused with its number, never silently dropped.
    with pytest.raises(OrderExportError, match=r"1 line\(s\) do not split.*line 3: '2,2026-01-02'"):
        read_export(path, ["id", "when", "total"])


def test_whitespace_and_parquet_exports_read_as_the_same_text(tmp_path: Path) -> None:
    (tmp_path / "dump.txt").write_text(
        "cust   placed               amount\nA1  2026-01-03T10:00:00  19.90\n\tB2 2026-01-03T11:15:00 5\n"
    )
    pq.write_table(
        pa.table(
            {
                "cust": ["A1", "B2"],
                "placed": pa.array([dt.datetime(2026, 1, 3, 10), dt.datetime(2026, 1, 3, 11, 15)], pa.timestamp("us")),
                "amount": ["19.90", "5"],
            }
        ),
        tmp_path / "export.parquet",
    )
    expected = {
        "cust": ["A1", "B2"],
        "placed": ["2026-01-03T10:00:00", "2026-01-03T11:15:00"],
        "amount": ["19.90", "5"],
    }
    assert read_export(tmp_path / "dump.txt", ["cust", "placed", "amount"], "whitespace").to_dict("list") == expected
    assert read_export(tmp_path / "export.parquet", ["cust", "placed", "amount"]).to_dict("list") == expected


def test_rows_become_orders_and_delivered_scans(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text(EXPORT)
    column_map = parse_column_map(MAP)
    mapping = map_export(read_export(path, list(column_map.values()), ";"), column_map, FORMAT)
    assert mapping.report == {
        "rows_read": 4,
        "orders": 4,
        "tracking_scans": 1,  # r1 only: r2's is before its placement, r3 and r4 have none
        "generated_order_ids": 4,
        "without_delivery": 2,
        "deliveries_before_placement": 1,
        "unreadable_placed_at": 1,  # r4
        "unreadable_promised_at": 0,
        "unreadable_delivered_at": 0,
    }
    orders = mapping.rows["orders"]
    first = orders[0]
    # Not in the export: carrier, places, payment method and channel are the contracts' unknown.
    assert {k: first[k] for k in ("customer_id", "placed_at", "amount", "promised_delivery_date", "items")} == {
        "customer_id": "A1",
        "placed_at": dt.datetime(2026, 1, 3, 10, tzinfo=UTC),  # no zone in the export: read as UTC
        "amount": "19.90",  # passed on as text: the ingest reads it against the contract
        "promised_delivery_date": dt.date(2026, 1, 6),
        "items": None,
    }
    assert {first[k] for k in ("carrier", "origin_warehouse", "destination_region", "payment_method", "channel")} == {
        "unknown"
    }
    assert orders[2]["promised_delivery_date"] is None
    assert orders[3]["placed_at"] == "31.02.2026 12:00"  # unreadable: on as written, for the quarantine
    # Generated ids: deterministic, distinct, and the same on a second read of the file.
    ids = [o["order_id"] for o in orders]
    assert len(set(ids)) == 4 and all(i.startswith("ord-") and len(i) == 20 for i in ids)
    again = map_export(read_export(path, list(column_map.values()), ";"), column_map, FORMAT)
    assert [o["order_id"] for o in again.rows["orders"]] == ids
    assert mapping.rows["tracking_scans"] == [
        {
            "scan_id": f"{ids[0]}-delivered",
            "order_id": ids[0],
            "scan_at": dt.datetime(2026, 1, 5, 14, 30, tzinfo=UTC),
            "event": "delivered",
            "location": None,
            "carrier": "unknown",
        }
    ]
    # Landing: one folder per source and day from 2026-01-03 to 01-05; the unreadable order lands
    # on the first day, as written, where the ingest quarantines it.
    assert write_landing(mapping.rows, tmp_path / "landing") == ["2026-01-03", "2026-01-04", "2026-01-05"]
    first_day = (tmp_path / "landing/orders/2026-01-03/orders_2026-01-03.csv").read_text().splitlines()
    assert len(first_day) == 1 + 3 and first_day[-1].split(",")[2] == "31.02.2026 12:00"
