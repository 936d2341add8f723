"""Layout and line formats of the raw tree follow the contracts."""

from __future__ import annotations

import re

from jobs.lake.contracts import load_contract

from .rawtree import SOURCES, TS_RE, Tree, parse_ts


def test_layout_one_file_per_source_and_day(default_tree: Tree) -> None:
    root, config = default_tree.root, default_tree.config
    expected = {f"_manifest/{d.isoformat()}.json" for d in config.dates}
    for source, (_, fmt, _) in SOURCES.items():
        expected |= {f"{source}/{d}/{source}_{d}.{fmt}" for d in map(str, config.dates)}
        expected |= {f"{source}/{d}/_SUCCESS" for d in map(str, config.dates)}  # the folder is complete
    assert {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()} == expected


def test_csv_header_is_contract_order(default_tree: Tree) -> None:
    names = load_contract("raw.orders").column_names
    for (source, _), f in default_tree.files.items():
        if source == "orders":
            assert f.header == names
            assert f.path.read_text(encoding="utf-8").split("\n", 1)[0] == ",".join(names)


def test_clean_json_lines_use_contract_keys_in_order(default_tree: Tree) -> None:
    for source in ("tracking_scans", "interactions"):
        names = load_contract(SOURCES[source][0]).column_names
        rows = default_tree.rows(source)
        assert rows
        for row in rows:
            keys = list(row)
            assert set(keys) <= set(names), keys
            assert keys == [n for n in names if n in row]  # contract order
            assert all(v is not None for v in row.values())  # nulls are omitted, not written


def test_clean_values_are_well_formed(default_tree: Tree) -> None:
    orders = default_tree.rows("orders")
    assert orders
    for o in orders:
        assert re.fullmatch(r"O\d{8}", o["order_id"]) and re.fullmatch(r"C\d{6}", o["customer_id"])
        assert TS_RE.match(o["placed_at"])
        assert re.fullmatch(r"\d+\.\d{2}", o["amount"])
        assert 1 <= int(o["items"]) <= 100
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", o["promised_delivery_date"])
        assert o["promised_delivery_date"] > o["placed_at"][:10]
        if o["email"] is not None:
            assert re.fullmatch(r"[a-z]+\.[a-z]+\d+@example\.com", o["email"])
        if o["phone"] is not None:
            assert re.fullmatch(r"\+7 9\d\d \d{3}-\d\d-\d\d", o["phone"])
    for s in default_tree.rows("tracking_scans"):
        assert re.fullmatch(r"S\d{10}", s["scan_id"]) and re.fullmatch(r"O\d{8}", s["order_id"])
    for e in default_tree.rows("interactions"):
        assert re.fullmatch(r"E\d{10}", e["event_id"])
        if "device_id" in e:
            assert re.fullmatch(r"D\d{7}", e["device_id"])
        if "product_id" in e:
            assert re.fullmatch(r"P\d{6}", e["product_id"])


def test_events_carry_the_fields_their_kind_needs(default_tree: Tree) -> None:
    for e in default_tree.rows("interactions"):
        kind = e["event"]
        if kind in ("support_contact", "review"):
            assert "device_id" not in e and "customer_id" in e and "order_id" in e
        else:
            assert "device_id" in e
        if kind == "support_contact":
            assert e["channel"] in ("chat", "phone", "email") and "contact_reason" in e
        if kind == "review":
            assert e["channel"] in ("app", "web") and 1 <= e["rating"] <= 5
        if kind in ("checkout", "tracking_page_view"):
            assert "order_id" in e
        if kind == "app_open" or kind == "push_open":
            assert e["channel"] == "app"
        if kind == "push_open":
            assert e["campaign"]
        if kind == "search":
            assert e["query"]
        if kind in ("product_view", "add_to_cart"):
            assert "product_id" in e
        if kind == "login":
            assert "customer_id" in e


def test_utf8_text_is_written_unescaped(default_tree: Tree) -> None:
    raw = b"".join(f.path.read_bytes() for (s, _), f in default_tree.files.items() if s == "interactions")
    text = raw.decode("utf-8")
    assert "\\u04" not in text  # Cyrillic is not \\u-escaped
    assert re.search("[а-яё]", text)


def test_events_never_arrive_before_they_happen(default_tree: Tree) -> None:
    for (source, day), f in default_tree.files.items():
        col = SOURCES[source][2]
        for line in f.lines:
            at = parse_ts(line.row.get(col)) if line.row is not None else None
            if at is not None:
                assert at.date() <= day


def test_scan_files_are_not_time_sorted(default_tree: Tree) -> None:
    unsorted = 0
    for (source, _), f in default_tree.files.items():
        if source == "tracking_scans" and len(f.lines) > 20:
            times = [ln.row["scan_at"] for ln in f.lines if ln.row is not None and not ln.kinds]
            unsorted += times != sorted(times)
    assert unsorted > 0
