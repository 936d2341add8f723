"""Check by hand that bronze's Python value rules give what Spark gives, on many generated inputs.

Bronze used to type values with Spark's ``try_cast`` and read JSON lines with ``try_parse_json``;
``jobs.ingest.values`` and ``jobs.ingest.parse`` now do it in the Arrow tasks. This runs both on
the same inputs (a few thousand texts per type, a few hundred JSON lines, many of them edge
cases) and prints every difference. Not a test: it needs a minute of Spark.

    python -m jobs.devtools.ingest_equivalence
"""

from __future__ import annotations

import datetime as dt
import random
import sys

import pyspark.sql.functions as F
from pyspark.sql.types import DecimalType

from jobs.ingest import values
from jobs.ingest.parse import json_fields

_EPOCH = dt.date(1970, 1, 1)


def _int_texts() -> list[str]:
    bodies = [
        "0",
        "4",
        "04",
        "2147483647",
        "2147483648",
        "9223372036854775807",
        "9223372036854775808",
        "12345678901234567890",
    ]
    pieces = ["", "+", "-", " ", "\t", "\x01", "\x7f", "\xa0", "x", ".", ".0", "e1", "L", "_", "٤"]
    texts = {p + b + q for b in bodies for p in pieces[:8] for q in ["", " ", ".0", "\t", "x", "\x7f", "e1", "L"]}
    texts |= {"", " ", "+", "-", "٤", "1_0", "0x1", "4 5", "--4", "+-4"}
    return sorted(texts)


def _decimal_texts() -> list[str]:
    bodies = ["0", "1", "10.5", "10.50", "10.505", "10.5050", "10.5000000000000000001", "10.500000000000000001",
              "9999999999.99", "9999999999.995", "99999999999.99", "0.005", "0.004999", ".5", "5.", "1e2", "1E+2",
              "1.23e1", "5e-20", "1e-2", "12345678901234567890.5", "123456789012345678901", "1,000.00", "1_0",
              "٤", "Infinity", "NaN", "0x10", "1d", "1.5f", "-0", "-0.00", "0.0049999999999999999999", "1e40", "1e-40"]  # fmt: skip
    texts = {p + b + q for b in bodies for p in ["", "+", "-", " ", "\t", "\x01"] for q in ["", " ", "\x7f", "x"]}
    return sorted(texts)


def _date_texts() -> list[str]:
    years = ["2026", "0001", "0000", "10000", "999999", "1234567", "12345678", "26", "+2026", "-0001", "-2026"]
    months = ["", "-02", "-2", "-12", "-13", "-00", "-002"]
    days = ["", "-10", "-1", "-29", "-30", "-31", "-00"]
    tails = ["", " ", "T", "T25", " x", "x", "\t", "-", ":"]
    texts = {y + m + d + t for y in years for m in months for d in days if m or not d for t in tails}
    texts |= {"", " ", "T", "20260210", "2026/02/10", " 2026-02-10", "\x012026-02-10", "2024-02-29", "2023-02-29"}
    return sorted(texts)


def _timestamp_texts() -> list[str]:
    dates = ["2026-02-10", "2026-2-1", "+2026-02-10", "-0001-01-01", "10000-01-01", "2026-02-30", "2026", "2026-02"]
    seps = ["T", " "]
    times = ["", "08", "8", "08:00", "08:00:00", "8:0:0", "23:59:59", "24:00:00", "08:60:00", "08:00:60",
             "08:00:00.5", "08:00:00.123456", "08:00:00.1234567", "08:00:00.", "08:00:00,5"]  # fmt: skip
    zones = ["", "Z", "z", "+03:00", "-03:30", "+0300", "+03", "+3", "+3:00", "+03:0", "+18:00", "+19:00",
             "+03:00:00", " UTC", "UTC", "GMT+3", "UT-01:30", " Europe/Moscow", "Europe/Moscow", " EST",
             " America/New_York", " Nowhere/City", "ZZ", " +03:00", "-00:00"]  # fmt: skip
    texts = {d + s + t + z for d in dates for s in seps for t in times if t for z in zones}
    texts |= {d for d in dates} | {d + " " for d in dates} | {d + "T" for d in dates}
    texts |= {"", "yesterday", "1770710400", "12/02/2026", "2026-03-08T02:30:00 America/New_York",
              "2026-11-01T01:30:00 America/New_York", "2026-03-29T02:30:00 Europe/Berlin"}  # fmt: skip
    return sorted(texts)


def _json_lines(rng: random.Random) -> list[str]:
    scalars = ['"x"', '" x "', '""', "1", "-0", "1.50", "-0.0", "1e2", "1E+2", "1.0e-7", "12345678901234567890",
               "123456789012345678901234567890123456789012", "0.1234567890123456789012345678901234567890",
               "true", "false", "null", '"a\\u00e9\\n\\u001f/"', "[]", "{}", '{"b":1,"a":[1.50,2e3,{"z":null}]}',
               "1.7976931348623157e308", "5e-324", "123456.7", "1234567.0", "0.001", "0.0001", "100", "1.0E30",
               '"\\ud83d\\ude00"', '"\\ud800"', "-", "01", ".5", "+1", "1.", "NaN", "Infinity", "'x'", '"\\x"',
               '{"k":"\\u0001\\t"}', '["a",{"b":{"c":[1,2.50]}}]', "1e400", "-1e-400"]  # fmt: skip
    lines = [f'{{"v":{s}}}' for s in scalars]
    lines += [
        '{"a":1} ', '\t{"a":1}', '\f{"a":1}', '{"a":1}\x00', '{"a":"x\ty"}', '{"a":1,}', '{"a":{"b":1,"b":2}}',
        '\xa0{"a":1}', '{"a":1}\u2028', '{"a":1}}', '{"a":1}{"a":2}', '{"a":1},"b":0} rest', '{"a":1,"a":2}',
        "[1]", '"s"', "1", "null", "", " ", "{}", '{"a":1} x', '\ufeff{"a":1}', '{"a" : 1 , "b" : [ 1 , 2 ] }',
        '{"é":"ü","a":null}', '{"a":"\\u0000"}', '{"\\ud800":1}',
    ]  # fmt: skip
    for _ in range(300):
        picked = rng.sample(scalars, 3)
        lines.append("{" + ",".join(f'"k{i}":{s}' for i, s in enumerate(picked)) + "}")
    return lines


def _days(value: dt.date | None) -> int | None:
    return None if value is None else (value - _EPOCH).days


def main() -> int:
    from jobs.lake.config import load_config
    from jobs.lake.spark import get_spark

    spark = get_spark(load_config(), app_name="ingest-equivalence")
    problems: list[str] = []

    def compare(kind: str, texts: list[str], spark_expr, python) -> None:
        df = spark.createDataFrame([(t,) for t in texts], "s string")
        got = df.select("s", spark_expr(F.col("s")).alias("v")).collect()
        for row in got:
            ours = python(row.s)
            if ours != row.v:
                problems.append(f"{kind} {row.s!r}: spark {row.v!r}, python {ours!r}")
        print(f"{kind}: {len(texts)} inputs compared")

    compare("int", _int_texts(), lambda c: c.try_cast("int"), lambda t: values.cast_integer(t, 32))
    compare("bigint", _int_texts(), lambda c: c.try_cast("bigint"), lambda t: values.cast_integer(t, 64))
    for precision, scale in ((12, 2), (6, 2), (38, 0), (20, 19)):

        def exact(c, p=precision, s=scale):
            value = c.try_cast(DecimalType(p, s))
            return F.when(value == c.try_cast(DecimalType(38, max(s, 18))), value)

        compare(
            f"decimal({precision},{scale}) exact",
            _decimal_texts(),
            exact,
            lambda t, p=precision, s=scale: values.cast_exact_decimal(t, p, s),
        )
    compare("date", _date_texts(), lambda c: F.unix_date(c.try_cast("date")), lambda t: values.cast_date(t))
    compare(
        "timestamp",
        _timestamp_texts(),
        lambda c: F.unix_micros(c.try_cast("timestamp")),
        values.cast_timestamp_fast,
    )
    bools = ["true", "TRUE", "t", "yes", "Y", "1", "0", "n", "no", "off", "f", "false ", " true", "", "tru", "\x01t"]
    compare("boolean", bools, lambda c: c.try_cast("boolean"), values.cast_boolean)
    doubles = ["1", "1.5", "1e2", "Infinity", "-Infinity", "inf", "-inf", "1d", "1f", "0x1p3", ".5", "5.", " 1.5 ",
               "1_0", "+1", "1e400", "x", "", "1.5D", "INF"]  # fmt: skip
    compare("double", doubles, lambda c: c.try_cast("double"), values.cast_double)

    # JSON lines: the old Spark reading (try_parse_json, the two-sentinel check, the map cast and
    # the nested keys) against json_fields.
    lines = _json_lines(random.Random(7))
    df = spark.createDataFrame([(line,) for line in lines], "raw string")
    parsed = F.try_parse_json(F.col("raw"))
    as_map = F.try_variant_get(parsed, "$", "map<string,string>")
    checks = []
    for sentinel in ("a", "b"):
        keys = F.json_object_keys(F.concat(F.lit('{"_":'), F.col("raw"), F.lit(f',"{sentinel}":0}}')))
        checks.append(F.coalesce(keys == F.array(F.lit("_"), F.lit(sentinel)), F.lit(False)))
    is_object = as_map.isNotNull() & checks[0] & checks[1]
    variants = F.try_variant_get(parsed, "$", "map<string,variant>")
    nested = F.map_keys(F.map_filter(variants, lambda _k, v: F.schema_of_variant(v).rlike("^(OBJECT|ARRAY)")))
    rows = df.select("raw", F.when(is_object, as_map).alias("m"), F.when(is_object, nested).alias("n")).collect()
    for row in rows:
        ours = json_fields(row.raw)
        spark_fields = dict(row.m) if row.m is not None else None
        spark_nested = frozenset(row.n or ())
        if ours.fields != spark_fields or (ours.fields is not None and ours.nested != spark_nested):
            problems.append(f"json {row.raw!r}: spark {spark_fields!r} {set(spark_nested)}, python {ours!r}")
    print(f"json: {len(lines)} lines compared")
    for problem in problems:
        print(problem)
    print(f"{len(problems)} differences")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
