"""Every KPI of gold.cx_kpi_daily and gold.cx_kpi_breakdown_daily on a hand-computed tiny dataset.

The run of 3 March with a 3-day lateness bound covers 28 Feb to 3 Mar; the churn horizon is 2 days,
so the cohort of 3 March is the customers who ordered on 1 March. Each value's comment says why.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from chispa import assert_df_equality
from frames import contract_frame

from jobs.gold import kpi
from jobs.gold.kpi import KpiSources, build_kpis, build_kpis_as_of, kpi_days_as_of, model_kpis
from jobs.lake.contracts import load_contract
from jobs.lake.tables import read_table


def d(day: int, month: int = 3) -> dt.date:
    return dt.date(2026, month, day)


def ts(day: int, hour: int, month: int = 3) -> dt.datetime:
    return dt.datetime(2026, month, day, hour)


def key(customer_id: str) -> str:
    """jobs.domain.customer_key, computed independently."""
    return hashlib.sha256(f"cxlake-customer:{customer_id}".encode()).hexdigest()[:20]


ORDERS = "order_id string, customer_id string, placed_at timestamp, order_date date, promised_delivery_date date, channel string, carrier string, destination_region string, first_ingest_date date"  # noqa: E501
SHIPMENTS = "order_id string, delivered_at timestamp, delivered_ingest_date date"
SCANS = "order_id string, event string, event_date date, first_ingest_date date, carrier string"
INTERACTIONS = "event string, event_date date, first_ingest_date date, order_id string, customer_key string, contact_reason string, rating int"  # noqa: E501
FUNNEL = "funnel_date date, channel string, sessions bigint, order_sessions bigint"


def sources(spark) -> KpiSources:
    orders = spark.createDataFrame(
        [
            # O0: placed long before the window, never delivered: in transit on every day.
            ("O0", "C3", ts(20, 9, 2), d(20, 2), d(25, 2), "app", "cdek", "north", d(20, 2)),
            ("O1", "C1", ts(1, 9), d(1), d(3), "app", "cdek", "north", d(1)),  # delivered 3rd, on time
            ("O2", "C2", ts(1, 12), d(1), d(2), "web", "cdek", "south", d(1)),  # delivered 3rd, one day late
            ("O3", "C1", ts(2, 10), d(2), d(4), "app", "boxberry", "north", d(2)),  # C1's second order
            ("O4", "C3", ts(3, 8), d(3), d(6), "web", "boxberry", "south", d(3)),  # delivered scan not arrived
            ("O5", "C2", ts(3, 9), d(3), d(6), "web", "cdek", "south", d(4)),  # arrives after the 3rd: unknown
        ],
        ORDERS,
    )
    shipments = spark.createDataFrame(
        [
            ("O1", ts(3, 15), d(3)),
            ("O2", ts(3, 12), d(3)),
            ("O3", ts(2, 22), d(2)),
            ("O4", ts(3, 20), d(4)),  # delivered on the 3rd, but known only on the 4th
        ],
        SHIPMENTS,
    )
    scans = spark.createDataFrame(
        [
            ("O2", "delivery_failed", d(2), d(2), "cdek"),
            ("OX", "delivery_failed", d(3), d(3), "russian_post"),  # its order never arrived
            ("O4", "delivery_failed", d(3), d(4), "boxberry"),  # arrives on the 4th
            ("O1", "delivered", d(3), d(3), "cdek"),  # not a failed attempt
        ],
        SCANS,
    )
    interactions = spark.createDataFrame(
        [
            ("app_open", d(1), d(1), None, key("C4"), None, None),  # C4 never ordered, but was active
            ("tracking_page_view", d(2), d(2), "O1", key("C1"), None, None),
            ("review", d(2), d(2), "O3", key("C1"), None, None),  # no rating: not a rated review
            ("tracking_page_view", d(3), d(3), "O4", key("C3"), None, None),
            ("tracking_page_view", d(3), d(3), None, None, None, None),  # anonymous, no order
            ("support_contact", d(3), d(3), "O2", key("C2"), "late_delivery", None),
            ("support_contact", d(3), d(3), None, key("C1"), None, None),  # no reason given
            ("support_contact", d(3), d(4), "O4", key("C3"), "where_is_my_order", None),  # arrives on the 4th
            ("review", d(3), d(3), "O1", key("C1"), None, 5),
            ("review", d(3), d(3), "O2", key("C2"), None, 2),
            ("review", d(3), d(3), "O3", key("C1"), None, 5),
        ],
        INTERACTIONS,
    )
    funnel = spark.createDataFrame(
        [(d(3), "app", 4, 1), (d(3), "web", 6, 2), (d(5), "app", 9, 9)],  # the 5th is outside the window
        FUNNEL,
    )
    return KpiSources(orders, shipments, scans, interactions, funnel)


@pytest.fixture(scope="module")
def rows(spark):
    built = build_kpis(spark, sources(spark), "2026-03-03", lateness_days=3, churn_horizon_days=2)
    return built.daily.collect(), built.breakdown.collect()


def test_daily_kpis_equal_the_hand_computed_values(rows) -> None:
    daily = {row.kpi_date: row.asDict() for row in rows[0]}
    assert sorted(daily) == [d(28, 2), d(1), d(2), d(3)]
    feb28, mar1, mar2, mar3 = (daily[day] for day in sorted(daily))

    # 28 Feb: nothing placed or delivered; only O0 is in transit; it is final (28 Feb + 3 = 3 Mar).
    assert (feb28["orders_placed"], feb28["orders_in_transit"], feb28["tracking_views"]) == (0, 1, 0)
    assert feb28["tracking_views_per_order_in_transit"] == 0.0  # 0 views / 1 order in transit
    assert feb28["on_time_delivery_rate"] is None and feb28["support_contacts_per_100_orders"] is None
    assert (feb28["active_customers"], feb28["is_final"]) == (0, True)

    # 1 Mar: O1 and O2, both first orders of their customers.
    assert (mar1["orders_placed"], mar1["repeat_orders"], mar1["repeat_purchase_rate"]) == (2, 0, 0.0)
    assert mar1["orders_in_transit"] == 3  # O0, O1, O2
    assert mar1["support_contacts_per_100_orders"] == 0.0  # no contact, 2 orders
    assert mar1["active_customers"] == 3  # C1 and C2 ordered, C4 opened the app
    assert (mar1["churn_cohort_customers"], mar1["realised_churn_rate"]) == (0, None)  # nobody ordered 27 Feb
    assert mar1["is_final"] is False

    # 2 Mar: O3 is C1's second order; O3 delivered the same evening (10:00 -> 22:00 = 0.5 days).
    assert (mar2["orders_placed"], mar2["repeat_orders"], mar2["repeat_purchase_rate"]) == (1, 1, 1.0)
    assert (mar2["orders_delivered"], mar2["on_time_deliveries"], mar2["on_time_delivery_rate"]) == (1, 1, 1.0)
    assert (mar2["avg_delivery_days"], mar2["p90_delivery_days"], mar2["avg_days_late"]) == (0.5, 0.5, None)
    # O2's failed attempt on one delivery that day: 100 per 100 deliveries.
    assert (mar2["failed_delivery_attempts"], mar2["failed_attempts_per_100_deliveries"]) == (1, 100.0)
    # O0, O1, O2 and O3 (delivered that day, not before it); one view (of O1).
    assert (mar2["orders_in_transit"], mar2["tracking_views"], mar2["tracking_views_per_order_in_transit"]) == (
        4,
        1,
        0.25,
    )
    assert (mar2["reviews"], mar2["mean_review_rating"]) == (0, None)  # the review has no rating
    assert mar2["active_customers"] == 1  # C1 only

    # 3 Mar: O4 (C3 ordered O0 before: a repeat); O5 not known yet.
    assert (mar3["orders_placed"], mar3["repeat_purchase_rate"]) == (1, 1.0)
    # O1 (2.25 days, on time) and O2 (2.0 days, one day late); O4's delivered scan is not known.
    assert (mar3["orders_delivered"], mar3["on_time_deliveries"], mar3["late_deliveries"]) == (2, 1, 1)
    assert (mar3["on_time_delivery_rate"], mar3["avg_delivery_days"], mar3["avg_days_late"]) == (0.5, 2.125, 1.0)
    assert mar3["p90_delivery_days"] == 2.225  # 2.0 + 0.9 x (2.25 - 2.0), interpolated
    # OX's failed attempt (its order unknown, still counted); O4's arrives on the 4th.
    assert (mar3["failed_delivery_attempts"], mar3["failed_attempts_per_100_deliveries"]) == (1, 50.0)
    # O0, O1, O2 (delivered that day) and O4; O3 was delivered the day before. Views: O4's and one anonymous.
    assert (mar3["orders_in_transit"], mar3["tracking_views"], mar3["tracking_views_per_order_in_transit"]) == (
        4,
        2,
        0.5,
    )
    # C2's late_delivery and C1's contact without a reason (O4's arrives on the 4th): 2 per 1 order.
    assert (mar3["support_contacts"], mar3["support_contacts_per_100_orders"]) == (2, 200.0)
    assert mar3["top_contact_reason"] == "late_delivery"  # one each: the name breaks the tie
    # Ratings 5, 2, 5: mean 4; one promoter more than detractors out of 3 -> 33.3.
    assert (mar3["reviews"], mar3["mean_review_rating"], mar3["nps_from_ratings"]) == (3, 4.0, 33.333333)
    assert mar3["active_customers"] == 3  # C3 ordered; C1 and C2 contacted and reviewed
    # Cohort: C1 and C2 ordered on 1 Mar. C1 came back on the 2nd; C2's O5 is not known: churned.
    assert (mar3["churn_cohort_customers"], mar3["churned_customers"], mar3["realised_churn_rate"]) == (2, 1, 0.5)
    assert (mar3["funnel_sessions"], mar3["funnel_order_sessions"], mar3["funnel_conversion_rate"]) == (10, 3, 0.3)
    # The model KPIs are the model reports' to fill in.
    assert all(mar3[c] is None for c in ("eta_mae_model_days", "p10_p90_coverage", "predicted_churn_share"))


def test_breakdown_equals_the_hand_computed_values(rows) -> None:
    got: dict[tuple[str, str], dict[str, tuple[float, int]]] = {}
    for row in rows[1]:
        if row.kpi_date == d(3):
            got.setdefault((row.dimension, row.segment), {})[row.kpi] = (row.value, row.base)
    delivery = "orders_delivered on_time_delivery_rate avg_delivery_days p90_delivery_days".split()
    expected = {
        # O1 delivered (on time, 2.25 days); O0 and O1 in transit, no view; O1 and O3 rated 5; 4 app sessions, 1 ordered.
        ("channel", "app"): {
            **dict(zip(delivery, [(1.0, 1), (1.0, 1), (2.25, 1), (2.25, 1)], strict=True)),
            "failed_attempts_per_100_deliveries": (0.0, 1),
            "tracking_views_per_order_in_transit": (0.0, 2),
            "mean_review_rating": (5.0, 2),
            "nps_from_ratings": (100.0, 2),
            "funnel_conversion_rate": (0.25, 4),
        },
        # O4 placed (a repeat); O2 delivered late (2.0 days); O2, O4 in transit, O4 viewed once; O2's
        # contact; O2 rated 2; 6 web sessions, 2 ordered.
        ("channel", "web"): {
            "orders_placed": (1.0, 1),
            "repeat_purchase_rate": (1.0, 1),
            **dict(zip(delivery, [(1.0, 1), (0.0, 1), (2.0, 1), (2.0, 1)], strict=True)),
            "failed_attempts_per_100_deliveries": (0.0, 1),
            "tracking_views_per_order_in_transit": (0.5, 2),
            "support_contacts": (1.0, 1),
            "support_contacts_per_100_orders": (100.0, 1),
            "mean_review_rating": (2.0, 1),
            "nps_from_ratings": (-100.0, 1),
            "funnel_conversion_rate": (0.333333, 6),
        },
        # C1's contact has no order. OX's failed attempt and the anonymous view have no base here.
        ("channel", "unattributed"): {"support_contacts": (1.0, 1)},
        # O1 and O2: one on time, (2.25 + 2.0) / 2 days; O0, O1, O2 in transit; ratings 5 and 2.
        ("carrier", "cdek"): {
            **dict(zip(delivery, [(2.0, 2), (0.5, 2), (2.125, 2), (2.225, 2)], strict=True)),
            "failed_attempts_per_100_deliveries": (0.0, 2),
            "tracking_views_per_order_in_transit": (0.0, 3),
            "support_contacts": (1.0, 1),
            "mean_review_rating": (3.5, 2),
            "nps_from_ratings": (0.0, 2),
        },
        # O4 placed (no contact about it) and in transit with its view; O3 rated 5.
        ("carrier", "boxberry"): {
            "orders_placed": (1.0, 1),
            "repeat_purchase_rate": (1.0, 1),
            "support_contacts_per_100_orders": (0.0, 1),
            "tracking_views_per_order_in_transit": (1.0, 1),
            "mean_review_rating": (5.0, 1),
            "nps_from_ratings": (100.0, 1),
        },
        # russian_post (OX's scan) has a failed attempt but no delivery: no row.
        ("carrier", "unattributed"): {"support_contacts": (1.0, 1)},
        ("region", "north"): {
            **dict(zip(delivery, [(1.0, 1), (1.0, 1), (2.25, 1), (2.25, 1)], strict=True)),
            "failed_attempts_per_100_deliveries": (0.0, 1),
            "tracking_views_per_order_in_transit": (0.0, 2),
            "mean_review_rating": (5.0, 2),
            "nps_from_ratings": (100.0, 2),
        },
        ("region", "south"): {
            "orders_placed": (1.0, 1),
            "repeat_purchase_rate": (1.0, 1),
            **dict(zip(delivery, [(1.0, 1), (0.0, 1), (2.0, 1), (2.0, 1)], strict=True)),
            "failed_attempts_per_100_deliveries": (0.0, 1),
            "tracking_views_per_order_in_transit": (0.5, 2),
            "support_contacts": (1.0, 1),
            "support_contacts_per_100_orders": (100.0, 1),
            "mean_review_rating": (2.0, 1),
            "nps_from_ratings": (-100.0, 1),
        },
        ("region", "unattributed"): {"support_contacts": (1.0, 1)},
        # Each reason once, per 100 of the day's 1 order.
        ("contact_reason", "late_delivery"): {
            "support_contacts": (1.0, 1),
            "support_contacts_per_100_orders": (100.0, 1),
        },
        ("contact_reason", "none_given"): {"support_contacts": (1.0, 1), "support_contacts_per_100_orders": (100.0, 1)},
    }
    assert got == expected
    assert {row.as_of_date for row in rows[1]} == {d(3)}
    assert all(row.is_final is (row.kpi_date == d(28, 2)) for row in rows[1])


def test_several_as_of_dates_give_one_row_per_day_from_the_latest_run(spark) -> None:
    built = build_kpis_as_of(spark, sources(spark), ["2026-03-04", "2026-03-03"], lateness_days=3, churn_horizon_days=2)
    daily = {row.kpi_date: row for row in built.daily.collect()}
    # Only the run of the 3rd still covers 28 Feb; the run of the 4th covers the rest.
    assert {day: row.as_of_date for day, row in daily.items()} == {
        d(28, 2): d(3),
        d(1): d(4),
        d(2): d(4),
        d(3): d(4),
        d(4): d(4),
    }
    # By the 4th, O5's placement and O4's delivery (08:00 -> 20:00, 0.5 days) are known.
    assert (daily[d(3)].orders_placed, daily[d(3)].orders_delivered) == (2, 3)
    assert daily[d(3)].avg_delivery_days == pytest.approx((2.25 + 2.0 + 0.5) / 3, abs=1e-6)
    # C2 is back (O5): nobody of the cohort churned; O4's contact is counted.
    assert (daily[d(3)].churned_customers, daily[d(3)].support_contacts) == (0, 3)
    # The breakdown follows the same rule.
    assert {row.as_of_date for row in built.breakdown.collect() if row.kpi_date == d(3)} == {d(4)}


def test_each_day_is_computed_as_of_the_latest_run_covering_it() -> None:
    # Runs of the 3rd and the 5th with a 2-day bound cover the 1st-3rd and the 3rd-5th: the 3rd is
    # covered by both, and the run of the 5th (later: more of that day's data has arrived) wins.
    assert kpi_days_as_of(["2026-03-05", "2026-03-03"], lateness_days=2) == [
        (d(1), d(3)),
        (d(2), d(3)),
        (d(3), d(5)),
        (d(4), d(5)),
        (d(5), d(5)),
    ]


def test_model_kpis_come_from_the_overall_eta_accuracy_and_the_days_churn_scores(spark) -> None:
    accuracy = spark.createDataFrame(
        [
            (d(3), "overall", "all", 5, 1.25, 2.0, 0.8),
            (d(3), "carrier", "cdek", 2, 9.0, 9.0, 0.0),  # a segment: not the day's figure
            (d(9), "overall", "all", 1, 1.0, 1.0, 1.0),  # not one of the days
        ],
        "accuracy_date date, dimension string, segment string, predicted_deliveries bigint, mae_p50_days double, "
        "mae_promise_days double, p10_p90_coverage double",
    )
    scores = spark.createDataFrame(
        [("K1", d(2), "high"), ("K2", d(2), "low"), ("K3", d(2), "medium"), ("K1", d(3), "low")],
        "customer_key string, as_of_date date, risk_band string",
    )
    got = model_kpis(accuracy, scores, [d(2), d(3)])
    expected = spark.createDataFrame(
        [
            (d(2), None, None, None, None, 0.333333),  # 1 of 3 scored customers high; no deliveries
            (d(3), 5, 1.25, 2.0, 0.8, 0.0),
        ],
        "kpi_date date, eta_predicted_deliveries bigint, eta_mae_model_days double, eta_mae_promise_days double, "
        "p10_p90_coverage double, predicted_churn_share double",
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_the_rows_have_the_contract_schemas(rows, spark) -> None:
    built = build_kpis(spark, sources(spark), "2026-03-03", lateness_days=3, churn_horizon_days=2)
    for df, table in ((built.daily, "gold.cx_kpi_daily"), (built.breakdown, "gold.cx_kpi_breakdown_daily")):
        assert [(f.name, f.dataType) for f in df.schema] == [
            (f.name, f.dataType) for f in load_contract(table).spark_schema()
        ]


def test_a_recomputed_day_keeps_its_model_kpis_and_loses_the_segments_it_no_longer_has(spark, lake_config) -> None:
    from dataclasses import replace

    config = replace(lake_config, lateness_days=3, churn_horizon_days=2)
    tables = sources(spark)
    for table, df in (
        ("silver.orders", tables.orders),
        ("silver.shipments", tables.shipments),
        ("silver.tracking_events", tables.tracking_events),
        ("silver.interactions", tables.interactions),
        ("gold.funnel_daily", tables.funnel),
    ):
        df.write.format("delta").save(config.table_path(table))
    kpi.run(spark, config, "2026-03-03")
    contract_frame(
        spark,
        "gold.eta_accuracy_daily",
        [
            {
                "accuracy_date": d(3),
                "dimension": "overall",
                "segment": "all",
                "predicted_deliveries": 2,
                "mae_p50_days": 0.5,
            }
        ],
    ).write.format("delta").save(config.table_path("gold.eta_accuracy_daily"))
    kpi.run_model_kpis(spark, config, "2026-03-03")

    # The contact without a reason is withdrawn; the night is recomputed.
    tables.interactions.filter("NOT (event = 'support_contact' AND contact_reason IS NULL)").write.format("delta").mode(
        "overwrite"
    ).save(config.table_path("silver.interactions"))
    kpi.run(spark, config, "2026-03-03")

    daily = {r.kpi_date: r for r in read_table(spark, config, "gold.cx_kpi_daily").collect()}
    assert sorted(daily) == [d(28, 2), d(1), d(2), d(3)]
    # The data KPIs are recomputed, the model KPIs the model reports wrote stay (no churn scores: null).
    assert (daily[d(3)].support_contacts, daily[d(3)].eta_mae_model_days, daily[d(3)].eta_predicted_deliveries) == (
        1,
        0.5,
        2,
    )
    assert daily[d(3)].predicted_churn_share is None and daily[d(2)].eta_mae_model_days is None
    reasons = {
        (r.segment, r.kpi)
        for r in read_table(spark, config, "gold.cx_kpi_breakdown_daily").collect()
        if r.dimension == "contact_reason"
    }
    assert reasons == {("late_delivery", "support_contacts"), ("late_delivery", "support_contacts_per_100_orders")}
