"""Tables with deletion vectors read without Spark (jobs.analytics.catalog.arrow_dataset).

A MERGE, UPDATE or DELETE on a table with ``delta.enableDeletionVectors`` marks the rows it
replaces in a small side file instead of copying the rest of their Parquet file; delta-rs' own
pyarrow dataset refuses such tables. Spark writes the table here (delta-rs writes no deletion
vectors), DuckDB reads it as ``cxlake sql`` does.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
from deltalake import DeltaTable

from jobs.analytics.catalog import arrow_dataset


def test_rows_a_deletion_vector_marks_are_gone_and_the_rest_read_with_their_partition(spark, tmp_path: Path) -> None:
    path = str(tmp_path / "visits")
    d1, d2 = dt.date(2026, 3, 1), dt.date(2026, 3, 2)
    rows = [(i, d1 if i < 6 else d2, f"v{i}") for i in range(10)]
    spark.createDataFrame(rows, "id int, day date, label string").coalesce(1).write.format("delta").partitionBy(
        "day"
    ).option("delta.enableDeletionVectors", "true").save(path)
    # Both change the file of the 1st (6 rows) through a deletion vector: 0 and 1 deleted, 2
    # replaced by a new row in a new file. The 2nd's file is untouched (no vector: read lazily).
    spark.sql(f"DELETE FROM delta.`{path}` WHERE id IN (0, 1)")
    spark.sql(f"UPDATE delta.`{path}` SET label = 'changed' WHERE id = 2")

    delta = DeltaTable(path)
    assert "deletionVectors" in delta.protocol().reader_features
    assert len(delta.deletion_vectors().read_all()) == 1  # the 1st's original file, the only one marked

    con = duckdb.connect()
    con.register("visits", arrow_dataset(delta))
    got = con.execute("SELECT id, day, label FROM visits ORDER BY id").fetchall()
    # 0, 1 deleted; 2 with its new label; 3-5 from the marked file, 6-9 from the 2nd's.
    assert got == [
        (2, d1, "changed"),
        *[(i, d1, f"v{i}") for i in (3, 4, 5)],
        *[(i, d2, f"v{i}") for i in (6, 7, 8, 9)],
    ]
    # A filter on the partition column still selects the rows of that day only.
    assert con.execute("SELECT count(*) FROM visits WHERE day = DATE '2026-03-02'").fetchone() == (4,)
