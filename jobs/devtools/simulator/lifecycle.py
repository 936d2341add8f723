"""Purchases, deliveries and the delivery-experience feedback on churn.

Each customer buys as a (seasonally modulated) Poisson process while alive. Every purchase is
shipped at once, so its outcome is known; when that parcel's story ends (delivery or return, and
the review if any) the customer drops out with probability ``1 - (1 - p) * 0.6**bad`` where
``bad`` counts a late delivery, each failed attempt and a 1-2 star review. That is BG/NBD with a
churn hazard that delivery experience raises -- the link the churn model is meant to find.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .clock import DAY, HOUR, MINUTE
from .customers import Customer, Device
from .logistics import Congestion, Shipment, ship
from .season import Season
from .world import REGIONS, WAREHOUSES, Lane, carriers, lanes, nearest_warehouse, vocabulary

STAY_MULTIPLIER = 0.6  # per bad experience: stay probability (1 - p) is multiplied by this
NEAREST_WAREHOUSE_SHARE = 0.7  # otherwise the item is only in stock elsewhere
HOME_DELIVERY_SHARE = 0.92  # otherwise a gift to another region
PREFERRED_DEVICE_SHARE = 0.75
PREFERRED_PAYMENT_SHARE = 0.85
ORDER_EMAIL_SHARE = 0.95
ORDER_PHONE_SHARE = 0.7
REVIEW_PROB = 0.35
REVIEW_TEXT_PROB = 0.7
SALE_PRICE_FACTOR = 0.8

# Rating distributions (1..5 stars): on time, on time after a failed attempt, late.
_RATING_ON_TIME = (0.02, 0.03, 0.08, 0.27, 0.60)
_RATING_FAILED = (0.10, 0.15, 0.25, 0.30, 0.20)
_RATING_LATE = (0.30, 0.30, 0.22, 0.12, 0.06)
REVIEW_TEXTS: dict[int, tuple[str, ...]] = {
    5: ("Всё отлично, спасибо!", "Fast delivery, great quality", "Пришло раньше срока 👍"),
    4: ("Хороший товар, упаковка немного помята", "Good, as described"),
    3: ("Нормально", "OK, but delivery took a while"),
    2: ("Долго везли", "Late delivery, not happy"),
    1: ("Ужасная доставка, опоздали на несколько дней", "Never again, the courier did not come"),
}

# Support: (probability, channel weights chat/phone/email). Late or failed parcels trigger
# contacts far more often than the small baseline of every order.
SUPPORT_LATE = 0.55
SUPPORT_FAILED = 0.5
SUPPORT_RETURNED = 0.3
SUPPORT_BASELINE = 0.03
_SUPPORT_CHANNELS = ("chat", "phone", "email")
_SUPPORT_CHANNEL_W = (0.5, 0.3, 0.2)
_BASELINE_REASONS = ("where_is_my_order", "damaged_item", "return_request", "payment_issue", "other")
_BASELINE_REASON_W = (0.25, 0.25, 0.2, 0.15, 0.15)


@dataclass(slots=True)
class Review:
    """A product/delivery review left after delivery."""

    at: int
    rating: int
    text: str | None
    channel: str


@dataclass(slots=True)
class Contact:
    """A support desk contact about an order."""

    at: int
    channel: str
    reason: str
    email: str | None
    phone: str | None


@dataclass(slots=True)
class Order:
    """A placed order with its parcel story and the customer's reactions.

    ``order_id`` is assigned once all orders exist (running number in ``placed_at`` order).
    """

    customer: Customer
    seq: int
    placed_at: int
    device: Device
    items: int
    amount_kop: int
    lane: Lane
    carrier: str
    payment_method: str
    email: str | None
    phone: str | None
    shipment: Shipment
    review: Review | None = None
    contacts: list[Contact] = field(default_factory=list)
    order_id: str = ""


def _choice(u: float, weights: tuple[float, ...]) -> int:
    """Index drawn from ``weights`` (summing to ~1) with one uniform ``u``."""
    acc = 0.0
    for i, w in enumerate(weights):
        acc += w
        if u < acc:
            return i
    return len(weights) - 1


class _Shop:
    """Places and ships orders for customers; holds the static tables and streams."""

    def __init__(self, season: Season, congestion: Congestion, rng: np.random.Generator) -> None:
        self.season = season
        self.congestion = congestion
        self.rng = rng
        self.lanes = lanes()
        self.nearest = nearest_warehouse()
        self.carriers = carriers()
        self.payment_methods = vocabulary().payment_methods
        shares = np.array([c.share for c in self.carriers.values()])
        self.carrier_w = tuple((shares / shares.sum()).tolist())
        region_w = np.array([r.weight for r in REGIONS])
        self.region_w = tuple((region_w / region_w.sum()).tolist())

    def place(self, customer: Customer, seq: int, t: int) -> Order:
        """Create and ship an order placed (checked out) at ``t``."""
        rng = self.rng
        u = rng.random(10).tolist()
        devices = customer.devices
        device = devices[0] if len(devices) == 1 or u[0] < PREFERRED_DEVICE_SHARE else devices[1]
        items = min(100, 1 + int(rng.poisson(0.8)))
        prices = rng.lognormal(math.log(1200.0), 0.9, items)
        if self.season.in_sale(t // DAY):
            prices = prices * SALE_PRICE_FACTOR
        amount_kop = int(np.round(prices * 100).sum())
        if u[1] < HOME_DELIVERY_SHARE:
            destination = customer.region
        else:
            destination = REGIONS[_choice(u[2], self.region_w)].code
        origin = self.nearest[destination]
        if u[3] >= NEAREST_WAREHOUSE_SHARE:
            others = [w.code for w in WAREHOUSES if w.code != origin]
            origin = others[min(int(u[4] * len(others)), len(others) - 1)]
        lane = self.lanes[(origin, destination)]
        carrier = tuple(self.carriers)[_choice(u[5], self.carrier_w)]
        if u[6] < PREFERRED_PAYMENT_SHARE:
            payment = customer.payment_pref
        else:
            methods = self.payment_methods
            payment = methods[min(int(u[7] * len(methods)), len(methods) - 1)]
        shipment = ship(t, lane, self.carriers[carrier], self.congestion, self.season, rng)
        return Order(
            customer=customer,
            seq=seq,
            placed_at=t,
            device=device,
            items=items,
            amount_kop=amount_kop,
            lane=lane,
            carrier=carrier,
            payment_method=payment,
            email=customer.email if u[8] < ORDER_EMAIL_SHARE else None,
            phone=customer.phone if u[9] < ORDER_PHONE_SHARE else None,
            shipment=shipment,
        )

    def react(self, order: Order) -> int:
        """Draw the review and support contacts of an order; return its count of bad experiences."""
        rng = self.rng
        u = rng.random(13).tolist()
        s = order.shipment
        customer = order.customer
        bad = len(s.failed_at) + (1 if s.late else 0)

        def contact(at: int, reason: str, uc: float, up: float) -> Contact:
            channel = _SUPPORT_CHANNELS[_choice(uc, _SUPPORT_CHANNEL_W)]
            # Customers give the PII matching the channel; chat sometimes asks for the e-mail.
            gives_email = (channel == "email" and up < 0.9) or (channel == "chat" and up < 0.2)
            email = customer.email if gives_email else None
            phone = customer.phone if channel == "phone" and up < 0.8 else None
            return Contact(at, channel, reason, email, phone)

        if s.delivered_at is not None and u[0] < REVIEW_PROB:
            table = _RATING_LATE if s.late else _RATING_FAILED if s.failed_at else _RATING_ON_TIME
            rating = 1 + _choice(u[1], table)
            texts = REVIEW_TEXTS[rating]
            text = texts[min(int(u[2] * len(texts)), len(texts) - 1)]
            if u[3] >= REVIEW_TEXT_PROB:
                text = None  # a bare star rating
            at = s.delivered_at + 2 * HOUR + int(-math.log(1 - u[4]) * 30 * HOUR)
            devices = customer.devices
            channel = devices[min(int(u[5] * len(devices)), len(devices) - 1)].channel
            order.review = Review(at, rating, text, channel)
            bad += 1 if rating <= 2 else 0

        if s.late and u[6] < SUPPORT_LATE:
            at = s.promise_deadline + 6 * HOUR + int(-math.log(1 - u[7]) * 12 * HOUR)
            if s.delivered_at is not None and at >= s.delivered_at:
                at, reason = s.delivered_at + 30 * MINUTE + int(u[7] * 6 * HOUR), "late_delivery"
            else:
                reason = "where_is_my_order" if u[8] < 0.5 else "late_delivery"
            order.contacts.append(contact(at, reason, u[9], u[10]))
        if s.failed_at and u[11] < SUPPORT_FAILED:
            at = s.failed_at[0] + 20 * MINUTE + int(u[12] * 4 * HOUR)
            order.contacts.append(contact(at, "failed_delivery", u[9], u[10]))
        v = rng.random(5).tolist()
        if s.returned_at is not None and v[0] < SUPPORT_RETURNED:
            reason = "return_request" if v[1] < 0.7 else "other"
            order.contacts.append(contact(s.returned_at + int(v[2] * 24 * HOUR), reason, v[3], v[4]))
        elif not order.contacts and v[0] < SUPPORT_BASELINE:
            reason = _BASELINE_REASONS[_choice(v[1], _BASELINE_REASON_W)]
            if reason in ("damaged_item", "return_request"):
                anchor = s.end_at  # only once the parcel is in hand
            elif reason == "payment_issue":
                anchor = order.placed_at
            else:
                anchor = order.placed_at + int(v[2] * (s.end_at - order.placed_at))
            order.contacts.append(contact(anchor + 15 * MINUTE + int(v[2] * 12 * HOUR), reason, v[3], v[4]))
        order.contacts.sort(key=lambda c: c.at)
        return bad


def run_lifecycles(
    customers: list[Customer],
    season: Season,
    congestion: Congestion,
    rng: np.random.Generator,
) -> list[Order]:
    """Simulate every customer's purchases; set ``churned_at`` on those who drop out.

    Args:
        customers: the customer base (mutated: ``orders`` and ``churned_at``).
        season: calendar; purchases are thinned by its hourly intensity.
        congestion: hub congestion for shipping.
        rng: stream for purchases, parcels and reactions.

    Returns:
        All orders placed in the run, in customer then time order.
    """
    shop = _Shop(season, congestion, rng)
    peak = season.peak
    orders: list[Order] = []
    for c in customers:
        if c.churned_at is not None or c.lam <= 0.0:
            continue
        active_until = math.inf
        # Existing customers get an hour of run-in so a purchase session never starts before
        # the run; a new customer's first session is the registration.
        t = float(c.active_from + (HOUR if not c.signed_up else 30 * MINUTE))
        mean_gap = DAY / (c.lam * peak)
        while True:
            t += rng.exponential(mean_gap)
            if t >= min(active_until, season.end):
                break
            # Thinning: accept a candidate with probability intensity / peak.
            if rng.random() * peak >= season.hourly[(int(t) - season.start) // HOUR]:
                continue
            order = shop.place(c, len(c.orders), int(t))
            bad = shop.react(order)
            c.orders.append(order)
            orders.append(order)
            stay = (1.0 - c.p_drop) * STAY_MULTIPLIER**bad
            if rng.random() >= stay:
                resolved = order.shipment.end_at
                if order.review is not None:
                    resolved = max(resolved, order.review.at)
                active_until = min(active_until, resolved)
        if math.isfinite(active_until):
            c.churned_at = int(active_until)
    return orders
