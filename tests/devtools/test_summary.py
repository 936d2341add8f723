from __future__ import annotations

import datetime as dt

import duckdb
import pyarrow as pa

from jobs.devtools.summary import content_fingerprint

SCHEMA = pa.schema(
    [
        ("k", pa.string()),
        ("v", pa.int32()),
        ("m", pa.map_(pa.string(), pa.string())),
        ("recorded_at", pa.timestamp("us")),
    ]
)


def _table(rows: list[tuple]) -> pa.Table:
    return pa.Table.from_pylist([dict(zip(SCHEMA.names, row, strict=True)) for row in rows], SCHEMA)


def test_fingerprint_ignores_row_order_and_wall_clock_but_not_content() -> None:
    con = duckdb.connect()
    # b: a's rows in the other order, recorded at another time (a wall-clock column): same content.
    a = _table([("x", 1, {"a": "1"}, dt.datetime(2026, 1, 1)), ("y", None, None, dt.datetime(2026, 1, 1))])
    b = _table([("y", None, None, dt.datetime(2027, 5, 5)), ("x", 1, {"a": "1"}, dt.datetime(2027, 5, 5))])
    # c: one value differs (v = 2): other content.
    c = _table([("x", 2, {"a": "1"}, dt.datetime(2026, 1, 1)), ("y", None, None, dt.datetime(2026, 1, 1))])
    for name, table in {"a": a, "b": b, "c": c, "empty": _table([])}.items():
        con.register(name, table)
    assert content_fingerprint(con, "a") == content_fingerprint(con, "b")
    assert content_fingerprint(con, "a") != content_fingerprint(con, "c")
    assert content_fingerprint(con, "a")[0] == 2
    assert content_fingerprint(con, "empty") == (0, "0000000000000000")
