"""A night's silver merge retracts what its corrected files no longer give (jobs.lake.retractions)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyspark.sql.functions as F
from frames import contract_frame

from jobs.lake import retractions
from jobs.lake.tables import merge_rows, read_table

D1, D2, D3 = dt.date(2026, 3, 1), dt.date(2026, 3, 2), dt.date(2026, 3, 3)
TABLE = "silver.orders"


def _order(order_id: str, arrived: dt.date, amount: str = "10.00") -> dict:
    return {
        "order_id": order_id,
        "customer_id": f"C-{order_id}",
        "order_date": D1,
        "amount": Decimal(amount),
        "first_ingest_date": arrived,
    }


def test_orphans_are_the_owned_rows_whose_key_tonight_no_longer_brings(spark) -> None:
    owned = contract_frame(spark, TABLE, [_order("O1", D2), _order("O2", D2)])
    arrived = spark.createDataFrame([("O1",), ("O1",), ("O9",)], "order_id string")  # copies and new keys
    assert [r.order_id for r in retractions.orphans(owned, arrived, "order_id").collect()] == ["O2"]


def test_a_rerun_of_night_2_updates_its_rows_retracts_the_gone_and_leaves_other_nights_records(
    spark, lake_config
) -> None:
    stored = contract_frame(
        spark,
        TABLE,
        [
            _order("O1", D1),  # an earlier night's record: tonight's resend never replaces it
            _order("O2", D2),  # night 2's: its corrected file says 20.00
            _order("O3", D2),  # night 2's, gone from its file; night 3 brought a copy: that copy
            _order("O4", D2),  # night 2's, gone from its file and nowhere else: deleted
            _order("O5", D3),  # night 3's copy; night 2 has it too: the earlier copy wins
        ],
    )
    merge_rows(spark, stored, lake_config, TABLE, ("order_id",))
    tonight = contract_frame(
        spark, TABLE, [_order("O1", D2, "99.00"), _order("O2", D2, "20.00"), _order("O5", D2), _order("O6", D2)]
    )
    later = contract_frame(spark, TABLE, [_order("O3", D3, "30.00")])
    table = read_table(spark, lake_config, TABLE)

    retracted = retractions.merge_night(
        spark,
        lake_config,
        TABLE,
        tonight,
        owned=table.filter(F.col("first_ingest_date") == F.lit(D2)),
        arrived_keys=tonight.select("order_id"),
        describe=lambda orphans: orphans.select(
            F.col("first_ingest_date").alias("night"),
            F.col("order_id").alias("row_key"),
            F.lit(None).cast("string").alias("customer_key"),
            "order_id",
            F.col("order_date").alias("row_date"),
        ),
        replacements=lambda keys: later.join(keys, "order_id", "left_semi"),
        run_date="2026-03-02",
    )

    got = sorted(
        (r.order_id, str(r.amount), r.first_ingest_date) for r in read_table(spark, lake_config, TABLE).collect()
    )
    assert got == [
        ("O1", "10.00", D1),
        ("O2", "20.00", D2),
        ("O3", "30.00", D3),
        ("O5", "10.00", D2),
        ("O6", "10.00", D2),
    ]
    assert sorted(r["row_key"] for r in retracted) == ["O3", "O4"]
    recorded = read_table(spark, lake_config, retractions.TABLE).collect()
    assert sorted((r.night, r.table_name, r.row_key, r.row_date) for r in recorded) == [
        (D2, TABLE, "O3", D1),
        (D2, TABLE, "O4", D1),
    ]
