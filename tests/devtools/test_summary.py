from __future__ import annotations

import datetime as dt

from jobs.devtools.summary import content_fingerprint


def test_fingerprint_ignores_row_order_and_wall_clock_but_not_content(spark) -> None:
    schema = "k string, v int, m map<string,string>, recorded_at timestamp"
    a = spark.createDataFrame(
        [("x", 1, {"a": "1"}, dt.datetime(2026, 1, 1)), ("y", None, None, dt.datetime(2026, 1, 1))], schema
    )
    b = spark.createDataFrame(
        [("y", None, None, dt.datetime(2027, 5, 5)), ("x", 1, {"a": "1"}, dt.datetime(2027, 5, 5))], schema
    )
    c = spark.createDataFrame(
        [("x", 2, {"a": "1"}, dt.datetime(2026, 1, 1)), ("y", None, None, dt.datetime(2026, 1, 1))], schema
    )
    assert content_fingerprint(a) == content_fingerprint(b)
    assert content_fingerprint(a) != content_fingerprint(c)
    assert content_fingerprint(a).startswith("2:")
    assert content_fingerprint(spark.createDataFrame([], schema)) == "0:0000000000000000"
