"""Customer interactions: app/web sessions, tracking checks, pushes, support desk and reviews.

Per customer, all device activities (sessions, single tracking-page views, push opens) are
planned in start order; a session on a device that is not logged in may log it in (a checkout
always requires it), which records the device's first login time. Only once all of a customer's
events exist is ``customer_id`` filled in: an event carries it iff its device had logged in by
then, so a device's events are anonymous (``device_id`` only) up to its first login and
identified afterwards, even when sessions overlap. Support contacts and reviews come from
``lifecycle``; they carry the customer but no device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .clock import DAY, HOUR, MINUTE, day_text, weekday
from .customers import Customer, Device
from .lifecycle import Order
from .season import Season

N_PRODUCTS = 5000
BROWSE_LOGIN_PROB = 0.25  # an anonymous device logs in during a browsing session
INACTIVE_USAGE = 0.5  # session rate right after dropping out, relative to active
USAGE_DECAY_DAYS = 14.0  # e-folding time of a dropped-out customer's app usage
TRACK_RATE_WAITING = 0.4  # tracking-page views per day while within the promise
TRACK_RATE_OVERDUE = 2.5  # ... and once the promised date has passed
TRACK_ON_DELIVERY_DAY = 0.5  # chance of a check between out_for_delivery and the doorbell
PUSH_OPEN_ACTIVE = 0.08
PUSH_OPEN_SALE = 0.25
PUSH_OPEN_WINBACK = 0.06
PUSH_OPEN_INACTIVE = 0.03

QUERIES = (
    "кроссовки",
    "платье",
    "iphone 15 чехол",
    "наушники",
    "детские игрушки",
    "кофемашина",
    "зимняя куртка",
    "постельное бельё",
    "robot vacuum",
    "протеин",
    "рюкзак",
    "lego",
    "шампунь",
    "air fryer",
    "книги",
    "термос",
)


@dataclass(slots=True)
class Event:
    """One interaction before id assignment (``order`` resolved to ``order_id`` on output)."""

    t: int
    cust: int
    seq: int
    event: str
    channel: str
    device: Device | None = None
    customer_id: str | None = None
    order: Order | None = None
    product_id: str | None = None
    query: str | None = None
    contact_reason: str | None = None
    rating: int | None = None
    review_text: str | None = None
    campaign: str | None = None
    email: str | None = None
    phone: str | None = None


def _gap(u: float) -> int:
    """Seconds between clicks in a session: 15 s + exponential with a 70 s mean (capped)."""
    return 15 + int(min(-math.log(1.0 - u) * 70.0, 900.0))


# Product ids, formatted once (index = popularity rank - 1).
_PRODUCT_IDS = tuple(f"P{i + 1:06d}" for i in range(N_PRODUCTS))


def _product(u: float) -> str:
    # Power-law popularity: a few best sellers get most views.
    return _PRODUCT_IDS[int(N_PRODUCTS * u**3)]


def campaigns(season: Season) -> list[tuple[int, str, str]]:
    """Push campaigns of the run: ``(send time, campaign name, kind)`` in time order.

    A digest goes out every Tuesday and Friday at 09:00 UTC, the sale is announced on its first
    morning, and every Thursday a win-back push targets customers who went quiet.
    """
    out: list[tuple[int, str, str]] = []
    for day in range(season.start_day, season.start_day + season.days):
        wd = weekday(day)
        stamp = day_text(day).replace("-", "")
        if day == season.sale_start:
            out.append((day * DAY + 8 * HOUR, f"sale_week_{stamp}", "sale"))
        if wd in (1, 4):
            out.append((day * DAY + 9 * HOUR, f"digest_{stamp}", "digest"))
        if wd == 3:
            out.append((day * DAY + 10 * HOUR, f"winback_{stamp}", "winback"))
    return out


# An activity: (start second, priority, insertion index, payload). Activities are walked in
# (start, priority, index) order; the tuple never compares payloads.
Activity = tuple[int, int, int, tuple]


class _CustomerStream:
    """Collects one customer's planned activities and turns them into events."""

    def __init__(self, c: Customer, rng: np.random.Generator, end: int) -> None:
        self.c = c
        self.rng = rng
        self.end = end
        self.seq = 0
        self.events: list[Event] = []
        self.acts: list[Activity] = []

    def plan(self, start: int, priority: int, payload: tuple) -> None:
        self.acts.append((start, priority, len(self.acts), payload))

    def emit(self, t: int, event: str, channel: str, device: Device | None = None, **kw: object) -> None:
        if t >= self.end:
            return  # has not happened yet when the run stops
        self.events.append(
            Event(t, self.c.idx, self.seq, event, channel, device, **kw)  # type: ignore[arg-type]
        )
        self.seq += 1

    def identify(self) -> None:
        """Fill ``customer_id`` now that every device's first login time is final."""
        cid = self.c.customer_id
        for e in self.events:
            if e.device is None or e.device.logged_in(e.t):
                e.customer_id = cid

    def pick_device(self, u: float) -> Device:
        devices = self.c.devices
        return devices[0] if len(devices) == 1 or u < 0.75 else devices[1]

    def session(self, device: Device, kinds: list[str], times: list[int], order: Order | None) -> None:
        """Emit a session's events at ``times``; a ``login`` records the device's login time."""
        content = self.rng.random(len(kinds)).tolist()
        # ``emit`` inlined: sessions produce most of the run's events.
        end, events, cust, channel, seq = self.end, self.events, self.c.idx, device.channel, self.seq
        for kind, t, u in zip(kinds, times, content, strict=True):
            if kind == "login":
                device.logged_in_at = min(device.logged_in_at, t)
            if t >= end:
                continue  # has not happened yet when the run stops
            if kind == "search":
                e = Event(t, cust, seq, kind, channel, device, query=QUERIES[int(u * len(QUERIES))])
            elif kind == "product_view" or kind == "add_to_cart":
                e = Event(t, cust, seq, kind, channel, device, product_id=_product(u))
            elif kind == "checkout":
                e = Event(t, cust, seq, kind, channel, device, order=order)
            else:
                e = Event(t, cust, seq, kind, channel, device)
            events.append(e)
            seq += 1
        self.seq = seq

    def walk(self) -> None:
        """Turn the planned activities into events, in start order."""
        # (start, priority, index) is unique, so plain tuple order never compares payloads.
        self.acts.sort()
        rng, log = self.rng, math.log
        for start, _, _, act in self.acts:
            kind = act[0]
            if kind == "browse":
                _, dev, u, force = act
                kinds = _browse_kinds(dev, start, u, force)
                times = [start]
                t = start
                for x in rng.random(len(kinds) - 1).tolist():
                    t += 15 + int(min(-log(1.0 - x) * 70.0, 900.0))  # ``_gap(x)`` inlined
                    times.append(t)
                self.session(dev, kinds, times, None)
            elif kind == "purchase":
                _, order, base, times = act
                # Login state is decided here, in timeline order: an anonymous device logs in
                # right before checking out (``times`` has room for that extra event).
                if order.device.logged_in(order.placed_at):
                    self.session(order.device, base, times[1:], order)
                else:
                    self.session(order.device, [*base[:-1], "login", "checkout"], times, order)
            elif kind == "track":
                _, order, dev = act
                self.emit(start, "tracking_page_view", dev.channel, dev, order=order)
            elif kind == "push":
                _, dev, name = act
                self.emit(start, "push_open", "app", dev, campaign=name)


def _browse_kinds(device: Device, start: int, u: list[float], force_login: bool) -> list[str]:
    """Event kinds of a browsing session starting at ``start`` (``u``: 15 uniforms)."""
    kinds: list[str] = ["app_open"] if device.channel == "app" else []
    n_actions = 1 + min(int(-math.log(1 - u[0]) * 2.5), 12)
    for i in range(n_actions):
        r = u[1 + i]
        kinds.append("search" if r < 0.3 else "product_view" if r < 0.85 else "add_to_cart")
    if not device.logged_in(start) and (force_login or u[14] < BROWSE_LOGIN_PROB):
        kinds.insert(1 if kinds[0] == "app_open" else 0, "login")
    return kinds


def _purchase_kinds(device: Device, order: Order, u: list[float]) -> list[str]:
    """Event kinds of the session that ends in ``order``'s checkout (login not included)."""
    kinds: list[str] = ["app_open"] if device.channel == "app" else []
    if u[0] < 0.6:
        kinds.append("search")
    kinds += ["product_view"] * (1 + int(u[1] * 3))
    kinds += ["add_to_cart"] * min(order.items, 3)
    kinds.append("checkout")
    return kinds


def _plan_browsing(stream: _CustomerStream, season: Season, churn: int) -> None:
    """Registration (new customers) and browsing sessions.

    Sessions are Poisson at ``browse_ratio * lam * intensity`` while the customer is alive and
    fade exponentially after they drop out (thinning of a homogeneous envelope process).
    """
    c, rng, peak = stream.c, stream.rng, season.peak
    if c.signed_up:
        # The registration session on the main device logs it in.
        stream.plan(c.active_from, 0, ("browse", c.devices[0], rng.random(16).tolist(), True))
    span_days = (season.end - c.active_from) / DAY
    n = int(rng.poisson(c.browse_ratio * c.lam * peak * span_days))
    if not n:
        return
    ts = np.sort(rng.integers(c.active_from, season.end, n))
    keep = rng.random(n) * peak < season.intensity(ts)
    after = rng.random(n)
    if ts[-1] >= churn:  # ``ts`` is sorted: only then does any session fall after dropout
        fade = INACTIVE_USAGE * np.exp(-(ts - churn) / (USAGE_DECAY_DAYS * DAY))
        keep &= (ts < churn) | (after < fade)
    kept = ts[keep].tolist()
    # One (sessions x 16) draw is the same stream of uniforms as 16 per session in turn.
    for t, u in zip(kept, rng.random((len(kept), 16)).tolist(), strict=True):
        stream.plan(t, 1, ("browse", stream.pick_device(u[15]), u, False))


def _plan_purchase(stream: _CustomerStream, order: Order) -> None:
    """The session ending in ``order``'s checkout, which happens exactly at ``placed_at``."""
    c, rng = stream.c, stream.rng
    base = _purchase_kinds(order.device, order, rng.random(2).tolist())
    # One gap per event of ``base`` (so there is room for a login), built backwards from the
    # checkout; squeezed if the session would otherwise start before the customer existed.
    gaps = [_gap(x) for x in rng.random(len(base)).tolist()]
    room = order.placed_at - c.active_from - 1
    if sum(gaps) > room:
        gaps = [max(1, g * room // sum(gaps)) for g in gaps]
    times = [order.placed_at]
    for g in gaps:
        times.append(times[-1] - g)
    times.reverse()
    stream.plan(times[0], 2, ("purchase", order, base, times))


def _plan_tracking(stream: _CustomerStream, order: Order, season: Season) -> None:
    """Tracking-page views while the parcel travels: more once the promise has passed."""
    rng = stream.rng
    s = order.shipment
    start = s.scans[0][0] + HOUR
    stop = min(s.end_at, season.end)
    if stop <= start:
        return
    deadline = s.promise_deadline
    pieces = (
        (start, min(stop, deadline), TRACK_RATE_WAITING),
        (max(start, deadline), stop, TRACK_RATE_OVERDUE),
    )
    for a, b, rate in pieces:
        if b <= a:
            continue
        n = int(rng.poisson(rate * (b - a) / DAY))
        if n:
            ts = rng.integers(a, b, n).tolist()
            for t, u in zip(ts, rng.random(n).tolist(), strict=True):
                stream.plan(t, 4, ("track", order, stream.pick_device(u)))
    # The "where is the courier" check on delivery day.
    ofd = next((t for t, ev, _ in s.scans if ev == "out_for_delivery"), None)
    u = rng.random(3).tolist()
    if ofd is not None and u[0] < TRACK_ON_DELIVERY_DAY:
        t = ofd + int(u[1] * max(1, s.end_at - ofd))
        stream.plan(t, 4, ("track", order, stream.pick_device(u[2])))


class _PushPlan:
    """The run's campaigns as arrays, shared by every customer's push-open draw."""

    def __init__(self, plan: list[tuple[int, str, str]]) -> None:
        self.names = [p[1] for p in plan]
        self.send_list = [p[0] for p in plan]
        self.send_t = np.array(self.send_list, dtype=np.int64)
        self.kind = np.array([p[2] for p in plan])
        self.active_prob = np.where(self.kind == "sale", PUSH_OPEN_SALE, PUSH_OPEN_ACTIVE)
        # Before dropout a win-back is never opened (the customer is not quiet).
        self.loyal_prob = np.where(self.kind == "winback", 0.0, self.active_prob).tolist()
        self.last = max(self.send_list, default=0)

    def open_prob(self, churn: int, active_from: int) -> list[float]:
        """Per campaign, the chance that this customer opens it."""
        if churn > self.last:
            # Every send falls before dropout: the general formula below reduces to this.
            return [p if t >= active_from else 0.0 for p, t in zip(self.loyal_prob, self.send_list, strict=True)]
        send_t = self.send_t
        decay = np.exp(-np.maximum(send_t - churn, 0) / (USAGE_DECAY_DAYS * DAY))
        prob = np.where(send_t >= churn, PUSH_OPEN_INACTIVE * decay, self.active_prob)
        # Win-backs only go to customers who have been quiet for a while.
        quiet_long = send_t >= churn + USAGE_DECAY_DAYS * DAY
        prob = np.where(self.kind == "winback", np.where(quiet_long, PUSH_OPEN_WINBACK, 0.0), prob)
        return np.where(send_t >= active_from, prob, 0.0).tolist()


def _plan_pushes(stream: _CustomerStream, pushes: _PushPlan, churn: int) -> None:
    """Push opens on the customer's app device: campaigns while active, win-backs once quiet."""
    c, rng = stream.c, stream.rng
    app = next((d for d in c.devices if d.channel == "app"), None)
    n = len(pushes.names)
    if app is None or not n:
        return
    prob = pushes.open_prob(churn, c.active_from)
    opened = rng.random(n).tolist()
    delay = rng.exponential(2 * HOUR, n).astype(np.int64).tolist()
    for i in range(n):
        if opened[i] < prob[i]:
            stream.plan(pushes.send_list[i] + MINUTE + delay[i], 3, ("push", app, pushes.names[i]))


def build_events(
    customers: list[Customer],
    season: Season,
    rng: np.random.Generator,
) -> list[Event]:
    """All interaction events of the run (grouped by customer, not globally sorted).

    Args:
        customers: customers with their ``orders`` and ``churned_at`` already simulated.
        season: calendar (period, demand intensity, sale week).
        rng: stream for interactions.
    """
    pushes = _PushPlan(campaigns(season))
    events: list[Event] = []
    for c in customers:
        stream = _CustomerStream(c, rng, season.end)
        churn = c.churned_at if c.churned_at is not None else season.end + DAY
        _plan_browsing(stream, season, churn)
        for order in c.orders:
            _plan_purchase(stream, order)
            _plan_tracking(stream, order, season)
        _plan_pushes(stream, pushes, churn)
        stream.walk()
        # Support desk and reviews: no device; the desk / the account knows the customer.
        for order in c.orders:
            for contact in order.contacts:
                stream.emit(
                    contact.at,
                    "support_contact",
                    contact.channel,
                    None,
                    order=order,
                    contact_reason=contact.reason,
                    email=contact.email,
                    phone=contact.phone,
                )
            if order.review is not None:
                r = order.review
                stream.emit(r.at, "review", r.channel, None, order=order, rating=r.rating, review_text=r.text)
        stream.identify()
        events.extend(stream.events)
    return events
