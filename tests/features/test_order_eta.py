from __future__ import annotations

import datetime as dt

from jobs.features.order_eta import with_placement_features


def test_placement_features_use_iso_weekdays(spark) -> None:
    df = spark.createDataFrame([(dt.datetime(2026, 3, 2, 7),), (dt.datetime(2026, 3, 8, 23),)], "placed_at timestamp")
    got = [(r.placed_weekday, r.placed_hour) for r in with_placement_features(df).collect()]
    assert got == [(1, 7), (7, 23)]  # 2 March 2026 is a Monday, 8 March a Sunday
