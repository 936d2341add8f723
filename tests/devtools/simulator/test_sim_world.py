"""The simulated world has the designed, learnable structure (read back from the raw files)."""

from __future__ import annotations

import datetime as dt
import math
import re
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import pytest

from jobs.devtools.simulator.world import lanes

from .rawtree import Tree, parse_ts

MILESTONES = re.compile(
    r"created picked left_warehouse( arrived_hub){1,3} out_for_delivery"
    r"( delivery_failed out_for_delivery)*( delivered| returned)$"
)
DAY_S = 86_400


@dataclass
class OrderFacts:
    row: dict[str, Any]
    placed: dt.datetime
    promised: dt.date
    scans: list[tuple[dt.datetime, str, str]] = field(default_factory=list)
    delivered: dt.datetime | None = None
    failed: int = 0
    ratings: list[int] = field(default_factory=list)
    support: int = 0

    @property
    def late(self) -> bool:
        return self.delivered is not None and self.delivered.date() > self.promised

    @property
    def transit_days(self) -> float:
        assert self.delivered is not None
        return (self.delivered - self.placed).total_seconds() / DAY_S


@dataclass
class World:
    orders: dict[str, OrderFacts]
    events: list[dict[str, Any]]
    end: dt.datetime

    def delivered(self) -> list[OrderFacts]:
        return [o for o in self.orders.values() if o.delivered is not None]


@pytest.fixture(scope="module")
def world(clean_tree: Tree) -> World:
    orders = {}
    for r in clean_tree.rows("orders"):
        orders[r["order_id"]] = OrderFacts(
            r, parse_ts(r["placed_at"]), dt.date.fromisoformat(r["promised_delivery_date"])
        )
    for s in clean_tree.rows("tracking_scans"):
        orders[s["order_id"]].scans.append((parse_ts(s["scan_at"]), s["event"], s["scan_id"]))
    for o in orders.values():
        o.scans.sort()
        for at, ev, _ in o.scans:
            if ev == "delivered":
                o.delivered = at
            o.failed += ev == "delivery_failed"
    events = clean_tree.rows("interactions")
    for e in events:
        if e["event"] == "review":
            orders[e["order_id"]].ratings.append(e["rating"])
        elif e["event"] == "support_contact":
            orders[e["order_id"]].support += 1
    end = dt.datetime.combine(clean_tree.config.end_date, dt.time()) + dt.timedelta(days=1)
    return World(orders, events, end)


def test_enough_data(world: World) -> None:
    assert len(world.orders) > 1000 and len(world.delivered()) > 900


def test_carriers_ordered_by_design(world: World) -> None:
    by_carrier: dict[str, list[float]] = defaultdict(list)
    for o in world.delivered():
        by_carrier[o.row["carrier"]].append(o.transit_days)
    means = {c: statistics.fmean(v) for c, v in by_carrier.items()}
    assert means["wb_express"] < means["cdek"] < means["boxberry"] < means["russian_post"]
    assert means["russian_post"] - means["wb_express"] > 1.0
    assert statistics.stdev(by_carrier["wb_express"]) < statistics.stdev(by_carrier["russian_post"])


def test_russian_post_never_delivers_on_sunday(world: World) -> None:
    post = [o for o in world.delivered() if o.row["carrier"] == "russian_post"]
    assert post and all(o.delivered.weekday() != 6 for o in post)
    others = [o for o in world.delivered() if o.row["carrier"] != "russian_post"]
    assert any(o.delivered.weekday() == 6 for o in others)


def test_weekend_orders_are_picked_later(world: World) -> None:
    def pick_hours(o: OrderFacts) -> float:
        picked = next(at for at, ev, _ in o.scans if ev == "picked")
        return (picked - o.placed).total_seconds() / 3600

    sat = [pick_hours(o) for o in world.orders.values() if o.placed.weekday() == 5]
    tue = [pick_hours(o) for o in world.orders.values() if o.placed.weekday() == 1]
    assert statistics.fmean(sat) > 2 * statistics.fmean(tue)


def test_static_promise_rule(world: World) -> None:
    table = lanes()
    for o in world.orders.values():
        lane = table[(o.row["origin_warehouse"], o.row["destination_region"])]
        assert o.promised == o.placed.date() + dt.timedelta(days=math.ceil(lane.nominal_days) + 2)


def test_share_late_is_meaningful(world: World) -> None:
    delivered = world.delivered()
    late = sum(o.late for o in delivered) / len(delivered)
    assert 0.05 < late < 0.30


def test_a_simple_model_beats_the_promise_out_of_sample(world: World) -> None:
    """Median date offset per (lane, carrier) plus a placement-weekday correction, fitted on every
    other order, beats the static promise on the held-out orders by a wide margin."""
    delivered = sorted(world.delivered(), key=lambda o: o.row["order_id"])
    train, test = delivered[0::2], delivered[1::2]

    def key(o: OrderFacts) -> tuple[str, str, str]:
        return o.row["origin_warehouse"], o.row["destination_region"], o.row["carrier"]

    def offset(o: OrderFacts) -> int:
        return (o.delivered.date() - o.placed.date()).days

    groups: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    for o in train:
        groups[key(o)].append(offset(o))
    lane_median = {k: statistics.median(v) for k, v in groups.items() if len(v) >= 5}
    residuals: dict[int, list[float]] = defaultdict(list)
    for o in train:
        if key(o) in lane_median:
            residuals[o.placed.weekday()].append(offset(o) - lane_median[key(o)])
    weekday_shift = {wd: statistics.median(v) for wd, v in residuals.items()}
    model_err, promise_err = [], []
    for o in test:
        if key(o) not in lane_median:
            continue
        predicted = round(lane_median[key(o)] + weekday_shift.get(o.placed.weekday(), 0.0))
        model_err.append(abs(offset(o) - predicted))
        promise_err.append(abs((o.delivered.date() - o.promised).days))
    assert len(model_err) > 400
    assert statistics.fmean(model_err) < 0.8 * statistics.fmean(promise_err)


def test_late_deliveries_get_worse_reviews_and_more_support(world: World) -> None:
    delivered = world.delivered()
    on_time = [o for o in delivered if not o.late]
    late = [o for o in delivered if o.late]
    rating_on_time = statistics.fmean(r for o in on_time for r in o.ratings)
    rating_late = statistics.fmean(r for o in late for r in o.ratings)
    assert rating_late < rating_on_time - 1.0
    support_on_time = sum(o.support > 0 for o in on_time) / len(on_time)
    support_late = sum(o.support > 0 for o in late) / len(late)
    assert support_late > 3 * support_on_time
    review_share = sum(bool(o.ratings) for o in delivered) / len(delivered)
    assert 0.25 < review_share < 0.45


def test_customers_with_late_deliveries_order_again_less(world: World) -> None:
    """Late delivery raises churn: fewer repeat orders within 30 days of the delivery."""
    placed_by_customer: dict[str, list[dt.datetime]] = defaultdict(list)
    for o in world.orders.values():
        placed_by_customer[o.row["customer_id"]].append(o.placed)
    window = dt.timedelta(days=30)
    again = {True: [], False: []}
    for o in world.delivered():
        if o.delivered + window > world.end:
            continue
        nxt = any(o.delivered < t <= o.delivered + window for t in placed_by_customer[o.row["customer_id"]])
        again[o.late].append(nxt)
    assert len(again[True]) > 50
    assert statistics.fmean(again[True]) < statistics.fmean(again[False]) - 0.1


def test_scans_follow_the_milestone_order(world: World) -> None:
    finished = 0
    for o in world.orders.values():
        times = [at for at, _, _ in o.scans]
        assert len(set(times)) == len(times), "scan times are strictly increasing"
        # Scan ids are handed out in time order too.
        assert [sid for _, _, sid in o.scans] == sorted(sid for _, _, sid in o.scans)
        seq = " ".join(ev for _, ev, _ in o.scans)
        assert o.scans[0][0] == o.placed and seq.startswith("created")
        if o.scans[-1][1] in ("delivered", "returned"):
            assert MILESTONES.match(seq), (o.row["order_id"], seq)
            finished += 1
            ofd = max(at for at, ev, _ in o.scans if ev == "out_for_delivery")
            assert dt.timedelta(0) < o.scans[-1][0] - ofd < dt.timedelta(hours=13)
            assert o.scans[-1][0].date() == ofd.date()
    assert finished > 900
    returned = sum(o.scans[-1][1] == "returned" for o in world.orders.values())
    assert 0 < returned < 0.05 * len(world.orders)


def test_checkout_events_match_orders(world: World) -> None:
    checkouts = [e for e in world.events if e["event"] == "checkout"]
    assert len(checkouts) == len(world.orders)
    assert {e["order_id"] for e in checkouts} == set(world.orders)
    for e in checkouts:
        o = world.orders[e["order_id"]].row
        assert e["event_at"] == o["placed_at"]
        assert e["customer_id"] == o["customer_id"] and e["channel"] == o["channel"]


def test_devices_are_anonymous_until_login(world: World) -> None:
    by_device: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in sorted(world.events, key=lambda e: e["event_id"]):
        if "device_id" in e:
            by_device[e["device_id"]].append(e)
    anonymous_then_login = 0
    for evs in by_device.values():
        owners = {e["customer_id"] for e in evs if "customer_id" in e}
        assert len(owners) <= 1  # a device belongs to one customer
        first_known = next((i for i, e in enumerate(evs) if "customer_id" in e), None)
        if first_known is None:
            continue
        assert all("customer_id" in e for e in evs[first_known:])  # no logout
        if first_known > 0:
            assert evs[first_known]["event"] == "login"
            anonymous_then_login += 1
    anonymous = sum("customer_id" not in e for e in world.events)
    assert anonymous > 0.02 * len(world.events) and anonymous_then_login > 20


def test_tracking_checks_rise_once_the_promise_has_passed(world: World) -> None:
    before_views = before_days = after_views = after_days = 0.0
    views: dict[str, list[dt.datetime]] = defaultdict(list)
    for e in world.events:
        if e["event"] == "tracking_page_view":
            views[e["order_id"]].append(parse_ts(e["event_at"]))
    for o in world.delivered():
        if not o.late:
            continue
        deadline = dt.datetime.combine(o.promised + dt.timedelta(days=1), dt.time())
        before_days += (deadline - o.placed).total_seconds() / DAY_S
        after_days += (o.delivered - deadline).total_seconds() / DAY_S
        before_views += sum(t < deadline for t in views[o.row["order_id"]])
        after_views += sum(t >= deadline for t in views[o.row["order_id"]])
    assert after_views / after_days > 3 * before_views / before_days
