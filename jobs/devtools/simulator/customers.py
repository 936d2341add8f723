"""The customer base: identities, devices, PII and latent purchase behaviour.

Latent behaviour follows BG/NBD (Fader, Hardie & Lee 2005): while alive a customer buys as a
Poisson process with rate ``lam`` ~ Gamma(r, alpha) and, after each purchase, drops out with
probability ``p`` ~ Beta(a, b). ``lifecycle.py`` adds the delivery-experience feedback on ``p``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .clock import DAY
from .season import Season
from .world import REGIONS, vocabulary

if TYPE_CHECKING:  # lifecycle imports this module; the annotation only needs the name
    from .lifecycle import Order

# BG/NBD population parameters. Gamma(r, rate alpha) with alpha in days => mean rate r/alpha
# orders per day (~1 order per 4 weeks), heavily skewed; Beta(a, b) => mean dropout ~17%.
BGNBD_R = 0.9
BGNBD_ALPHA = 25.0
BGNBD_A = 0.8
BGNBD_B = 4.0

EXISTING_SHARE = 0.6  # customers who exist when the run starts; the rest sign up during it
ALIVE_AT_START = 0.85  # existing customers who have not yet lapsed before the run
APP_PREFERENCE = 0.65  # share whose main device is the mobile app
SECOND_DEVICE = 0.4
LOGGED_IN_AT_START = 0.55  # existing customers' devices that still remember the login
PAYMENT_WEIGHTS = {"card": 0.50, "sbp": 0.25, "wallet": 0.15, "cash_on_delivery": 0.10}

FIRST_NAMES = (
    "ivan",
    "anna",
    "sergey",
    "olga",
    "dmitry",
    "elena",
    "alexey",
    "maria",
    "andrey",
    "natalia",
    "pavel",
    "tatiana",
    "mikhail",
    "irina",
    "nikolay",
    "svetlana",
    "artem",
    "yulia",
    "roman",
    "ekaterina",
)
LAST_NAMES = (
    "ivanov",
    "smirnov",
    "kuznetsov",
    "popov",
    "vasiliev",
    "petrov",
    "sokolov",
    "mikhailov",
    "novikov",
    "fedorov",
    "morozov",
    "volkov",
    "alekseev",
    "lebedev",
    "semenov",
    "egorov",
    "pavlov",
    "kozlov",
    "stepanov",
    "nikolaev",
)


ALWAYS = 0  # logged in since before the run
NEVER = 2**62  # not (yet) logged in


@dataclass(slots=True)
class Device:
    """One app install or browser of a customer.

    Attributes:
        device_id: ``D0000001`` style id.
        channel: ``app`` or ``web``.
        logged_in_at: epoch second of the device's first login (``ALWAYS`` if it was logged in
            before the run, ``NEVER`` while it has not logged in); lowered as sessions with a
            login are generated.
    """

    device_id: str
    channel: str
    logged_in_at: int

    def logged_in(self, t: int) -> bool:
        """Whether the device is logged in at epoch second ``t``."""
        return self.logged_in_at <= t


@dataclass(slots=True)
class Customer:
    """A customer and their latent state.

    Attributes:
        idx: 0-based position (stable tie-breaker for sorting).
        customer_id: ``C000001`` style id.
        region: home destination region.
        devices: 1-2 devices; the first is on the preferred channel.
        payment_pref: usual payment method.
        email: ``firstname.lastname<N>@example.com``.
        phone: ``+7 9xx xxx-xx-xx``.
        lam: purchase rate in orders per day while alive.
        p_drop: baseline dropout probability after a purchase.
        browse_ratio: browsing sessions per purchase (rate = browse_ratio * lam).
        active_from: epoch second from which the customer exists in the run.
        signed_up: whether they sign up during the run (their first session registers them).
        churned_at: epoch second of dropping out (``None`` while alive).
        orders: the customer's orders in time order (filled by ``lifecycle``).
    """

    idx: int
    customer_id: str
    region: str
    devices: list[Device]
    payment_pref: str
    email: str
    phone: str
    lam: float
    p_drop: float
    browse_ratio: float
    active_from: int
    signed_up: bool
    churned_at: int | None = None
    orders: list[Order] = field(default_factory=list)


def _phone(digits: np.ndarray) -> str:
    d = "".join(str(int(x)) for x in digits)
    return f"+7 9{d[0:2]} {d[2:5]}-{d[5:7]}-{d[7:9]}"


def build_customers(n: int, season: Season, rng: np.random.Generator) -> list[Customer]:
    """Draw the customer base.

    Ids follow sign-up order, as an account system would hand them out: existing customers get
    the low numbers, sign-ups during the run follow in sign-up time order.

    Args:
        n: number of customers.
        season: the run's calendar (period bounds).
        rng: stream for all customer attributes.
    """
    vocab = vocabulary()
    n_existing = int(round(EXISTING_SHARE * n))
    # Sign-ups land uniformly over the run (sorted so ids follow sign-up order); they are kept
    # at least an hour before the end so a fresh customer can still do something.
    latest = max(season.start + 1, season.end - 3600)
    signups = np.sort(rng.integers(season.start, latest, n - n_existing))
    region_w = np.array([r.weight for r in REGIONS])
    regions = rng.choice(len(REGIONS), size=n, p=region_w / region_w.sum())
    app_first = rng.random(n) < APP_PREFERENCE
    two_devices = rng.random(n) < SECOND_DEVICE
    logged = rng.random((n, 2)) < LOGGED_IN_AT_START
    methods = [m for m in vocab.payment_methods if m in PAYMENT_WEIGHTS]
    pay_w = np.array([PAYMENT_WEIGHTS[m] for m in methods])
    pay = rng.choice(len(methods), size=n, p=pay_w / pay_w.sum())
    first = rng.integers(0, len(FIRST_NAMES), n)
    last = rng.integers(0, len(LAST_NAMES), n)
    phone_digits = rng.integers(0, 10, (n, 9))
    lam = rng.gamma(BGNBD_R, 1.0 / BGNBD_ALPHA, n)
    p_drop = rng.beta(BGNBD_A, BGNBD_B, n)
    browse_ratio = rng.uniform(3.0, 6.0, n)
    alive = rng.random(n) < ALIVE_AT_START
    lapsed_days = rng.uniform(1.0, 60.0, n)

    customers: list[Customer] = []
    device_no = 0
    for i in range(n):
        existing = i < n_existing
        channels = ("app", "web") if app_first[i] else ("web", "app")
        devices = []
        for k in range(2 if two_devices[i] else 1):
            device_no += 1
            # New customers start anonymous: their first session is the registration.
            state = ALWAYS if existing and logged[i, k] else NEVER
            devices.append(Device(f"D{device_no:07d}", channels[k], state))
        first_name, last_name = FIRST_NAMES[first[i]], LAST_NAMES[last[i]]
        female = first_name in (
            "anna",
            "olga",
            "elena",
            "maria",
            "natalia",
            "tatiana",
            "irina",
            "svetlana",
            "yulia",
            "ekaterina",
        )
        customer = Customer(
            idx=i,
            customer_id=f"C{i + 1:06d}",
            region=REGIONS[regions[i]].code,
            devices=devices,
            payment_pref=methods[pay[i]],
            email=f"{first_name}.{last_name}{'a' if female else ''}{i + 1}@example.com",
            phone=_phone(phone_digits[i]),
            lam=float(lam[i]),
            p_drop=float(p_drop[i]),
            browse_ratio=float(browse_ratio[i]),
            active_from=season.start if existing else int(signups[i - n_existing]),
            signed_up=not existing,
        )
        if existing and not alive[i]:
            # Lapsed before the run: no purchases, only fading app usage.
            customer.churned_at = season.start - int(lapsed_days[i] * DAY)
        customers.append(customer)
    return customers
