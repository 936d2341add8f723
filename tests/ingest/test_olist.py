"""The Olist export mapped onto the raw sources: exact tables, the report, the landing files and
what the ingest's own line parser makes of them. No Spark: reading, mapping and parsing are plain
Python and pyarrow.

The tiny export below is written by hand; one test reads the real Olist sample in
``../shared/data/olist`` (CC BY-NC-SA 4.0, credit Olist) and checks its README's counts.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from jobs.ingest import landing
from jobs.ingest.olist import FILES, OlistExportError, map_olist, read_olist, to_raw_sources, write_landing
from jobs.ingest.parse import LineFields, LineTyper, csv_fields, json_fields
from jobs.ingest.raw_files import iter_numbered_lines, plan_chunks, read_csv_header
from jobs.lake.contracts import load_contract

REAL_SAMPLE = Path(__file__).resolve().parents[3] / "shared" / "data" / "olist"

ORDERS = """\
order_id,customer_id,order_status,order_purchase_timestamp,order_approved_at,order_delivered_carrier_date,order_delivered_customer_date,order_estimated_delivery_date
o1,c1,delivered,2018-01-01 10:00:00,2018-01-01 10:30:00,2018-01-02 09:00:00,2018-01-05 15:00:00,2018-01-20 00:00:00
o2,c2,canceled,2018-01-02 23:59:59,2018-01-03 00:10:00,,,2018-01-25 00:00:00
o3,c3,delivered,2018-01-03 08:00:00,2018-01-03 08:05:00,2018-01-02 12:00:00,2018-01-06 10:00:00,2018-01-15 00:00:00
"""
# c2 (the canceled order's customer) is missing; c1 and c3 are one person (u1) on two orders.
CUSTOMERS = """\
customer_id,customer_unique_id,customer_zip_code_prefix,customer_city,customer_state
c1,u1,01310,sao paulo,SP
c3,u1,20040,rio de janeiro,RJ
"""
# o9 is no order of the export; s3 is no seller of it; 20.0 is the sample's typed-export style.
ITEMS = """\
order_id,order_item_id,product_id,seller_id,shipping_limit_date,price,freight_value
o1,1,p1,s1,2018-01-03 10:00:00,10.50,5.25
o1,2,p2,s2,2018-01-03 10:00:00,20.0,0.10
o3,1,p3,s3,2018-01-05 08:00:00,99.99,0.01
o9,1,p1,s1,2018-01-09 00:00:00,5.00,1.00
"""
# r1 covers two orders (as a few Olist review ids do) and its comment spans two lines, broken
# with \r\n as in the original file; r2 was never answered; r3 reviews an order not in the export.
REVIEWS = (
    "review_id,order_id,review_score,review_comment_title,review_comment_message,review_creation_date,review_answer_timestamp\n"
    'r1,o1,5,Ótimo,"Chegou rápido.\r\nRecomendo, ""muito"" bom",2018-01-06 00:00:00,2018-01-07 12:00:00\n'
    'r1,o3,5,Ótimo,"Chegou rápido.\r\nRecomendo, ""muito"" bom",2018-01-06 00:00:00,2018-01-07 12:00:00\n'
    "r2,o2,1,Cancelado,,2018-01-04 00:00:00,\n"
    "r3,o9,3,,,2018-01-08 00:00:00,2018-01-08 09:00:00\n"
)
SELLERS = """\
seller_id,seller_zip_code_prefix,seller_city,seller_state
s1,80010,curitiba,PR
s2,30110,belo horizonte,MG
"""
TEXTS = {"orders": ORDERS, "customers": CUSTOMERS, "order_items": ITEMS, "order_reviews": REVIEWS, "sellers": SELLERS}
R1_TEXT = 'Ótimo\nChegou rápido.\nRecomendo, "muito" bom'


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def write_export(folder: Path, texts: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        # newline="": the \r\n inside the quoted review stays as written.
        (folder / FILES[name]).write_text(text, encoding="utf-8", newline="")
    return folder


@pytest.fixture()
def export_dir(tmp_path: Path) -> Path:
    return write_export(tmp_path / "olist", TEXTS)


def test_read_olist_types_each_column_from_text(export_dir: Path) -> None:
    export = read_olist(export_dir)
    # Zip prefixes stay text with their leading zero; an empty field is null.
    assert export.customers["customer_zip_code_prefix"].to_pylist() == ["01310", "20040"]
    assert export.orders["order_delivered_customer_date"].to_pylist() == [
        utc("2018-01-05 15:00:00"),
        None,
        utc("2018-01-06 10:00:00"),
    ]
    # "20.0" and "10.50" are the same kind of amount: decimal(12,2).
    assert export.order_items["price"].to_pylist() == [
        Decimal("10.50"),
        Decimal("20.00"),
        Decimal("99.99"),
        Decimal("5.00"),
    ]
    assert export.order_reviews["review_score"].to_pylist() == [5, 5, 1, 3]
    # The quoted comment keeps its line break, \r\n as in the file: reading changes no text.
    assert export.order_reviews["review_comment_message"][0].as_py() == 'Chegou rápido.\r\nRecomendo, "muito" bom'


def test_orders_table(export_dir: Path) -> None:
    orders = to_raw_sources(read_olist(export_dir))["orders"]
    assert orders.column_names == load_contract("raw.orders").column_names
    # Olist names no carrier, payment method or channel (the contracts' "unknown"), nor any e-mail or phone.
    nothing_olist_says = {
        "carrier": "unknown",
        "payment_method": "unknown",
        "channel": "unknown",
        "email": None,
        "phone": None,
    }
    assert orders.to_pylist() == [
        {
            "order_id": "o1",
            "customer_id": "u1",  # the person (customer_unique_id), not Olist's per-order c1
            "placed_at": utc("2018-01-01 10:00:00"),  # the wall clock as written, labelled UTC
            "items": 2,
            "amount": Decimal("35.85"),  # 10.50 + 5.25 + 20.00 + 0.10
            "origin_warehouse": "PR",  # item 1's seller s1 (item 2's s2 is in MG)
            "destination_region": "SP",
            "promised_delivery_date": dt.date(2018, 1, 20),
            **nothing_olist_says,
        },
        {
            "order_id": "o2",
            "customer_id": "c2",  # no customers row: Olist's own customer_id
            "placed_at": utc("2018-01-02 23:59:59"),
            "items": None,  # canceled without items: no count, no amount, no seller
            "amount": None,
            "origin_warehouse": None,
            "destination_region": None,  # no customers row, no state
            "promised_delivery_date": dt.date(2018, 1, 25),
            **nothing_olist_says,
        },
        {
            "order_id": "o3",
            "customer_id": "u1",  # c3 is u1 again: a repeat purchase
            "placed_at": utc("2018-01-03 08:00:00"),
            "items": 1,
            "amount": Decimal("100.00"),  # 99.99 + 0.01
            "origin_warehouse": None,  # seller s3 is not in the sellers file
            "destination_region": "RJ",
            "promised_delivery_date": dt.date(2018, 1, 15),
            **nothing_olist_says,
        },
    ]


def test_tracking_scans_table(export_dir: Path) -> None:
    scans = to_raw_sources(read_olist(export_dir))["tracking_scans"]
    assert scans.column_names == load_contract("raw.tracking_scans").column_names

    def scan(order: str, event: str, at: str, location: str | None) -> dict:
        return {
            "scan_id": f"{order}-{event}",
            "order_id": order,
            "scan_at": utc(at),
            "event": event,
            "location": location,
            "carrier": "unknown",  # Olist does not name it
        }

    # By scan time. o2 (canceled) has only its approval; o3 left the warehouse "before" its
    # purchase (2018-01-02 12:00 < 2018-01-03 08:00): dropped, counted in the report.
    assert scans.to_pylist() == [
        scan("o1", "created", "2018-01-01 10:30:00", "PR"),  # approval, at the seller's state
        scan("o1", "left_warehouse", "2018-01-02 09:00:00", "PR"),  # handed to the carrier
        scan("o2", "created", "2018-01-03 00:10:00", None),  # no item, no seller, no place
        scan("o3", "created", "2018-01-03 08:05:00", None),  # its seller is unknown
        scan("o1", "delivered", "2018-01-05 15:00:00", "SP"),  # at the customer's state
        scan("o3", "delivered", "2018-01-06 10:00:00", "RJ"),
    ]


def test_interactions_table(export_dir: Path) -> None:
    events = to_raw_sources(read_olist(export_dir))["interactions"]
    contract = load_contract("raw.interactions")
    assert events.column_names == contract.column_names
    unset = {name: None for name in contract.column_names}

    def review(review_id: str, order: str, at: str, customer: str | None, rating: int, text: str | None) -> dict:
        return {
            **unset,
            "event_id": f"{review_id}-{order}",
            "event_at": utc(at),
            "event": "review",
            "customer_id": customer,
            "channel": "email",  # Olist's survey is e-mailed
            "order_id": order,
            "rating": rating,
            "review_text": text,
        }

    assert events.to_pylist() == [
        review("r2", "o2", "2018-01-04 00:00:00", "c2", 1, "Cancelado"),  # never answered: its creation; title alone
        review("r1", "o1", "2018-01-07 12:00:00", "u1", 5, R1_TEXT),  # title \n message, \r\n made \n
        review("r1", "o3", "2018-01-07 12:00:00", "u1", 5, R1_TEXT),  # same review, second order
        review("r3", "o9", "2018-01-08 09:00:00", None, 3, None),  # unknown order: no customer; no text
    ]


def test_report_counts_what_did_not_carry_over(export_dir: Path) -> None:
    assert map_olist(read_olist(export_dir)).report == {
        "orders_read": 3,
        "customers_read": 2,
        "order_items_read": 4,
        "order_reviews_read": 4,
        "sellers_read": 2,
        "orders": 3,
        "tracking_scans": 6,  # 9 milestones - 2 without a timestamp - 1 before its purchase
        "interactions": 4,
        "orders_without_customer": 1,  # o2
        "orders_without_items": 1,  # o2
        "orders_without_origin": 2,  # o2 (no item), o3 (seller s3 unknown)
        "items_without_order": 1,  # o9's item
        "items_without_seller": 1,  # s3
        "reviews_without_order": 1,  # r3 of o9 (kept, without a customer)
        "reviews_without_answer": 1,  # r2
        "milestones_without_timestamp": 2,  # o2 never reached the carrier nor the customer
        "milestones_before_purchase": 1,
        "created_before_purchase": 0,
        "left_warehouse_before_purchase": 1,  # o3
        "delivered_before_purchase": 0,
    }


def test_an_orders_file_alone_maps(tmp_path: Path) -> None:
    mapping = map_olist(read_olist(write_export(tmp_path, {"orders": ORDERS})))
    # No customers, items or sellers: Olist's customer ids, and nothing else to say.
    assert [
        (o["order_id"], o["customer_id"], o["items"], o["destination_region"])
        for o in mapping.tables["orders"].to_pylist()
    ] == [
        ("o1", "c1", None, None),
        ("o2", "c2", None, None),
        ("o3", "c3", None, None),
    ]
    assert mapping.tables["interactions"].num_rows == 0
    assert {k: v for k, v in mapping.report.items() if k.endswith("_read")} == {
        "orders_read": 3,
        "customers_read": 0,
        "order_items_read": 0,
        "order_reviews_read": 0,
        "sellers_read": 0,
    }


@pytest.mark.parametrize(
    ("name", "text", "column", "message"),
    [
        # A file without a column the mapping reads.
        (
            "order_reviews",
            "review_id,order_id,review_comment_title,review_comment_message,review_creation_date,review_answer_timestamp\n",
            "review_score",
            "required column 'review_score' missing from the header ['review_id', 'order_id', "
            "'review_comment_title', 'review_comment_message', 'review_creation_date', 'review_answer_timestamp']",
        ),
        # 30 February: strptime would roll it into March.
        (
            "orders",
            ORDERS.replace("2018-01-01 10:00:00", "2018-02-30 10:00:00"),
            "order_purchase_timestamp",
            "data row 1: order_purchase_timestamp '2018-02-30 10:00:00' is not a timestamp YYYY-MM-DD HH:MM:SS",
        ),
        # A third decimal is no amount in reais.
        (
            "order_items",
            ITEMS.replace("10.50", "10.505"),
            "price",
            "data row 1: price '10.505' is not an amount with at most 2 decimals",
        ),
        (
            "order_items",
            ITEMS.replace("o3,1,", "o1,1,"),
            "order_id",
            "data row 3 repeats the key order_id='o1', order_item_id=1",
        ),
        (
            "orders",
            ORDERS.replace("o2,c2,", "o2,,"),
            "customer_id",
            "data row 2 has no customer_id (every row needs one)",
        ),
    ],
)
def test_read_olist_refuses_what_it_cannot_map(tmp_path: Path, name: str, text: str, column: str, message: str) -> None:
    folder = write_export(tmp_path, {**TEXTS, name: text})
    with pytest.raises(OlistExportError) as refused:
        read_olist(folder)
    assert str(refused.value) == f"{folder / FILES[name]}: {message}"
    assert refused.value.column == column


def test_read_olist_needs_the_orders_file(tmp_path: Path) -> None:
    folder = write_export(tmp_path, {"customers": CUSTOMERS})
    with pytest.raises(OlistExportError, match="olist_orders_dataset.csv: the orders file is required"):
        read_olist(folder)


HEADER = "order_id,customer_id,placed_at,items,amount,origin_warehouse,destination_region,carrier,promised_delivery_date,payment_method,channel,email,phone\n"


def test_write_landing_writes_every_source_every_day(export_dir: Path, tmp_path: Path) -> None:
    tables = to_raw_sources(read_olist(export_dir))
    root = tmp_path / "landing"
    dates = write_landing(tables, root)
    # From the first purchase (01-01) to the last review (01-08), with no gap.
    assert dates == [f"2018-01-0{day}" for day in range(1, 9)]
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) == sorted(
        f"{source}/{date}/{name}"
        for source, suffix in (("orders", "csv"), ("tracking_scans", "jsonl"), ("interactions", "jsonl"))
        for date in dates
        for name in (f"{source}_{date}.{suffix}", "_SUCCESS")
    )

    def text(source: str, date: str) -> str:
        suffix = "csv" if source == "orders" else "jsonl"
        return (root / source / date / f"{source}_{date}.{suffix}").read_text(encoding="utf-8")

    # Null fields are empty; timestamps as the simulator writes them; amounts at 2 decimals.
    unknown = "unknown,2018-01-20,unknown,unknown"
    assert text("orders", "2018-01-01") == HEADER + f"o1,u1,2018-01-01T10:00:00Z,2,35.85,PR,SP,{unknown},,\n"
    assert (
        text("orders", "2018-01-02") == HEADER + "o2,c2,2018-01-02T23:59:59Z,,,,,unknown,2018-01-25,unknown,unknown,,\n"
    )
    # o2's approval, ten minutes after midnight, lands on the next day; null keys are left out.
    assert text("tracking_scans", "2018-01-03") == (
        '{"scan_id":"o2-created","order_id":"o2","scan_at":"2018-01-03T00:10:00Z","event":"created","carrier":"unknown"}\n'
        '{"scan_id":"o3-created","order_id":"o3","scan_at":"2018-01-03T08:05:00Z","event":"created","carrier":"unknown"}\n'
    )
    # The comment's line breaks are JSON escapes: one review, one line. The rating is a number.
    assert text("interactions", "2018-01-07").splitlines()[0] == (
        '{"event_id":"r1-o1","event_at":"2018-01-07T12:00:00Z","event":"review","customer_id":"u1",'
        '"channel":"email","order_id":"o1","rating":5,"review_text":"Ótimo\\nChegou rápido.\\nRecomendo, \\"muito\\" bom"}'
    )
    # A day without rows still gets its files: a CSV header alone, an empty JSON lines file.
    assert text("orders", "2018-01-08") == HEADER
    assert text("tracking_scans", "2018-01-08") == ""
    assert (root / "orders" / "2018-01-08" / "_SUCCESS").read_bytes() == b""

    # The same tables give the same bytes.
    again = tmp_path / "again"
    write_landing(tables, again)
    assert {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()} == {
        p.relative_to(again): p.read_bytes() for p in again.rglob("*") if p.is_file()
    }


def test_landing_lines_render_as_the_simulator_renders(export_dir: Path, tmp_path: Path) -> None:
    from jobs.devtools.simulator.writers import CsvRenderer, render_json

    root = tmp_path / "landing"
    write_landing(to_raw_sources(read_olist(export_dir)), root)
    for path in root.rglob("*.csv"):
        for line in path.read_text(encoding="utf-8").splitlines()[1:]:
            assert CsvRenderer()(csv_fields(line, HEADER.strip().split(",")).fields.values()) == line
    for path in root.rglob("*.jsonl"):
        names = load_contract(f"raw.{path.parent.parent.name}").column_names
        for line in path.read_text(encoding="utf-8").splitlines():
            assert render_json(names, [json.loads(line).get(name) for name in names]) == line


def parse_landing(root: Path, source: str, fill: dict[str, str] | None = None) -> Counter:
    """Each landing line's outcome (None: accepted) through the ingest's own reader, the landing
    whole-file rules and the line parser; ``fill`` sets fields before typing (what-if)."""
    contract = load_contract(f"raw.{source}")
    is_csv = contract.format == "csv"
    typer = LineTyper(contract, lateness_days=3, is_json=not is_csv)
    reasons: Counter = Counter()
    for folder in sorted((root / source).iterdir()):
        files = landing.list_landing_files(str(folder), ".csv" if is_csv else ".jsonl")
        landing.check_complete(str(folder), files, settle_seconds=0)
        landing.check_encoding(files, skip_header=is_csv)
        landing.check_not_empty(str(folder), files, is_csv)
        arrival = (dt.date.fromisoformat(folder.name) - dt.date(1970, 1, 1)).days
        for path in files:
            header = read_csv_header(path) if is_csv else None
            if header is not None:
                assert header == contract.column_names
            for chunk in plan_chunks(path, has_header=is_csv):
                for line in iter_numbered_lines(chunk):
                    fields = csv_fields(line.raw, header) if header else json_fields(line.raw)
                    if fill and fields.fields is not None:
                        fields = LineFields({**fields.fields, **fill})
                    reasons[typer.type_line(fields, arrival).reason] += 1
    return reasons


def test_landing_parses_back_through_the_raw_parser(export_dir: Path, tmp_path: Path) -> None:
    write_landing(to_raw_sources(read_olist(export_dir)), tmp_path)
    # Reviews fit raw.interactions whole.
    assert parse_landing(tmp_path, "interactions") == {None: 4}
    # Scans fit raw.tracking_scans whole (carrier "unknown").
    assert parse_landing(tmp_path, "tracking_scans") == {None: 6}
    # o1 fits; o2 has no items (so no amount nor origin either; items itself is optional) and o3 no
    # origin (its seller is unknown): the parser names the first required column missing, and the
    # ingest quarantines the line with that reason.
    assert parse_landing(tmp_path, "orders") == {
        None: 1,
        "missing_required:amount": 1,
        "missing_required:origin_warehouse": 1,
    }


@pytest.mark.skipif(not REAL_SAMPLE.is_dir(), reason="the real Olist sample is not checked out beside the repository")
def test_real_sample_maps_whole_and_lands_every_row(tmp_path: Path) -> None:
    mapping = map_olist(read_olist(REAL_SAMPLE))
    report, tables = mapping.report, mapping.tables
    # The README's counts: 6,887 orders, each with its customer; 6,866 reviews; 7,790 items,
    # none orphaned; 46 orders without items.
    assert (report["orders_read"], report["order_reviews_read"], report["order_items_read"]) == (6887, 6866, 7790)
    assert (report["orders_without_customer"], report["items_without_order"], report["reviews_without_order"]) == (
        0,
        0,
        0,
    )
    assert report["orders_without_items"] == 46
    # Every order's customer is the person: 6,874 distinct customer_unique_ids (13 bought twice).
    customers = tables["orders"]["customer_id"]
    assert customers.null_count == 0 and len(customers.unique()) == 6874
    # 3 milestones x 6,887 orders, less the 14 + 114 + 197 empty timestamps of the orders file,
    # less 7 carrier hand-overs dated before their purchase.
    assert report["milestones_without_timestamp"] == 325
    assert report["left_warehouse_before_purchase"] == report["milestones_before_purchase"] == 7
    assert (report["orders"], report["tracking_scans"], report["interactions"]) == (6887, 3 * 6887 - 325 - 7, 6866)

    dates = write_landing(tables, tmp_path)
    # Every landed order fits raw.orders but the 46 without items; every scan and review fits.
    assert parse_landing(tmp_path, "orders") == {None: 6887 - 46, "missing_required:amount": 46}
    assert parse_landing(tmp_path, "tracking_scans") == {None: report["tracking_scans"]}
    assert parse_landing(tmp_path, "interactions") == {None: 6866}
    # Purchases from 2016-10-04 (README); the last review answered on 2018-10-14.
    assert (dates[0], dates[-1], len(dates)) == ("2016-10-04", "2018-10-14", 741)
    for source, table in tables.items():
        files = sorted((tmp_path / source).glob(f"*/{source}_*"))
        assert len(files) == len(dates)
        header = 1 if source == "orders" else 0
        assert sum(len(f.read_text(encoding="utf-8").splitlines()) - header for f in files) == table.num_rows
