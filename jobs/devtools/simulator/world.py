"""The static world: warehouses, destination regions, hubs, lanes, carriers and contract enums.

Nothing here is random. Lane lengths come from great-circle distances, and the hubs a lane passes
through are chosen geometrically, so the network is the same for every seed and a model can learn
it from the data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from jobs.domain import UNKNOWN
from jobs.lake.contracts import Contract, load_contract


@dataclass(frozen=True)
class Place:
    """A named point: warehouse, hub or destination region (``weight`` = share of customers)."""

    code: str
    lat: float
    lon: float
    weight: float = 0.0


WAREHOUSES: tuple[Place, ...] = (
    Place("WH-MOSCOW", 55.43, 37.55),
    Place("WH-KAZAN", 55.75, 49.20),
    Place("WH-EKB", 56.80, 60.70),
    Place("WH-NOVOSIB", 54.98, 82.90),
)

# ISO 3166-2:RU codes with the coordinates of the main city and the share of the customer base.
REGIONS: tuple[Place, ...] = (
    Place("RU-MOW", 55.76, 37.62, 0.27),
    Place("RU-SPE", 59.94, 30.31, 0.14),
    Place("RU-NIZ", 56.33, 44.00, 0.08),
    Place("RU-TA", 55.79, 49.12, 0.08),
    Place("RU-SVE", 56.84, 60.61, 0.09),
    Place("RU-NVS", 55.03, 82.92, 0.08),
    Place("RU-KDA", 45.04, 38.98, 0.09),
    Place("RU-ROS", 47.24, 39.71, 0.07),
    Place("RU-KYA", 56.01, 92.87, 0.05),
    Place("RU-PRI", 43.12, 131.89, 0.05),
)

HUBS: tuple[Place, ...] = (
    Place("HUB-MOSCOW", 55.55, 37.55),
    Place("HUB-SPB", 59.80, 30.40),
    Place("HUB-KAZAN", 55.80, 49.10),
    Place("HUB-SAMARA", 53.20, 50.15),
    Place("HUB-EKB", 56.80, 60.60),
    Place("HUB-NOVOSIB", 55.00, 82.90),
    Place("HUB-ROSTOV", 47.20, 39.70),
    Place("HUB-KRASNOYARSK", 56.00, 92.90),
    Place("HUB-KHABAROVSK", 48.50, 135.10),
)


@dataclass(frozen=True)
class CarrierProfile:
    """How a carrier moves parcels.

    Attributes:
        name: contract enum value.
        speed_factor: multiplier on the lane's nominal line-haul time (< 1 is faster).
        noise_sd: sd of the per-parcel lognormal noise on line haul.
        fail_prob: probability that a delivery attempt fails (each failure costs about a day).
        sunday_delivery: whether couriers go out on Sundays.
        pickup_hours: UTC hours at which the carrier collects from warehouses.
        sunday_pickup: whether it collects on Sundays.
        share: how often the shop hands a parcel to this carrier.
    """

    name: str
    speed_factor: float
    noise_sd: float
    fail_prob: float
    sunday_delivery: bool
    pickup_hours: tuple[int, ...]
    sunday_pickup: bool
    share: float


# Keyed by the contract's carrier names; ``carriers()`` checks that both sets agree so a contract
# change fails loudly here instead of silently producing parcels with an unknown carrier.
_CARRIER_TABLE: dict[str, tuple[float, float, float, bool, tuple[int, ...], bool, float]] = {
    "wb_express": (0.80, 0.10, 0.03, True, (2, 6, 10, 14, 18, 22), True, 0.35),
    "cdek": (1.00, 0.18, 0.05, True, (9, 17), True, 0.25),
    "boxberry": (1.12, 0.22, 0.06, True, (11,), True, 0.20),
    "russian_post": (1.45, 0.32, 0.10, False, (12,), False, 0.20),
}


@dataclass(frozen=True)
class Lane:
    """A warehouse -> region route.

    Attributes:
        origin: warehouse code.
        destination: region code.
        distance_km: great-circle distance.
        nominal_days: the shop's idea of the line-haul time (1-6 days, from distance).
        hubs: sorting hubs the parcel passes, in order (1-3).
    """

    origin: str
    destination: str
    distance_km: float
    nominal_days: float
    hubs: tuple[str, ...]


def haversine_km(a: Place, b: Place) -> float:
    """Great-circle distance between two places in km."""
    r = 6371.0
    p1, p2 = math.radians(a.lat), math.radians(b.lat)
    dp, dl = p2 - p1, math.radians(b.lon - a.lon)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(h))


def _nearest_hub(p: Place) -> str:
    return min(HUBS, key=lambda h: (haversine_km(p, h), h.code)).code


def _lane(origin: Place, destination: Place) -> Lane:
    distance = haversine_km(origin, destination)
    # 1 day for a same-city lane plus a day per ~1000 km, as trucks and rail manage; capped so the
    # Far East is 6 days rather than 7+.
    nominal = round(min(6.0, 1.0 + distance / 1000.0), 2)
    hubs = [_nearest_hub(origin)]
    if distance > 1500:
        # Long lanes are re-sorted at a hub near the middle of the route.
        mid = Place("mid", (origin.lat + destination.lat) / 2, (origin.lon + destination.lon) / 2)
        hubs.append(_nearest_hub(mid))
    hubs.append(_nearest_hub(destination))
    unique = tuple(dict.fromkeys(hubs))  # keeps order, drops repeats (e.g. same-city lanes)
    return Lane(origin.code, destination.code, round(distance, 1), nominal, unique)


@lru_cache(maxsize=1)
def lanes() -> dict[tuple[str, str], Lane]:
    """Every warehouse x region lane, keyed by ``(origin, destination)``."""
    return {(o.code, d.code): _lane(o, d) for o in WAREHOUSES for d in REGIONS}


@lru_cache(maxsize=1)
def nearest_warehouse() -> dict[str, str]:
    """The warehouse closest to each region (the one that normally serves it)."""
    return {r.code: min(WAREHOUSES, key=lambda w: (haversine_km(w, r), w.code)).code for r in REGIONS}


@dataclass(frozen=True)
class Vocabulary:
    """Enum values taken from the raw contracts (never re-typed elsewhere)."""

    carriers: tuple[str, ...]
    scan_events: tuple[str, ...]
    interaction_events: tuple[str, ...]
    interaction_channels: tuple[str, ...]
    order_channels: tuple[str, ...]
    payment_methods: tuple[str, ...]
    contact_reasons: tuple[str, ...]

    def check(self, allowed: tuple[str, ...], *names: str) -> None:
        """Raise if the simulator relies on a value the contract does not allow."""
        missing = [n for n in names if n not in allowed]
        if missing:
            raise RuntimeError(f"simulator uses values absent from the contracts: {missing}")


@lru_cache(maxsize=1)
def vocabulary() -> Vocabulary:
    """The contract enums the simulator draws from, validated against what it assumes."""
    orders = load_contract("raw.orders")
    scans = load_contract("raw.tracking_scans")
    inter = load_contract("raw.interactions")

    def known(contract: Contract, column: str) -> tuple[str, ...]:
        # The simulated world always knows its carrier, payment method and channel: it never
        # draws "unknown", the value of imported exports that do not say.
        return tuple(v for v in contract.column(column).allowed or () if v != UNKNOWN)

    vocab = Vocabulary(
        carriers=known(orders, "carrier"),
        scan_events=known(scans, "event"),
        interaction_events=known(inter, "event"),
        interaction_channels=known(inter, "channel"),
        order_channels=known(orders, "channel"),
        payment_methods=known(orders, "payment_method"),
        contact_reasons=known(inter, "contact_reason"),
    )
    if known(scans, "carrier") != vocab.carriers:
        raise RuntimeError("raw.orders and raw.tracking_scans disagree on carriers")
    vocab.check(
        vocab.scan_events,
        "created",
        "picked",
        "left_warehouse",
        "arrived_hub",
        "out_for_delivery",
        "delivery_failed",
        "delivered",
        "returned",
    )
    vocab.check(
        vocab.interaction_events,
        "app_open",
        "login",
        "search",
        "product_view",
        "add_to_cart",
        "checkout",
        "tracking_page_view",
        "support_contact",
        "review",
        "push_open",
    )
    vocab.check(vocab.interaction_channels, "app", "web", "chat", "phone", "email")
    vocab.check(vocab.order_channels, "app", "web")
    vocab.check(
        vocab.contact_reasons,
        "where_is_my_order",
        "late_delivery",
        "failed_delivery",
        "damaged_item",
        "return_request",
        "payment_issue",
        "other",
    )
    return vocab


@lru_cache(maxsize=1)
def carriers() -> dict[str, CarrierProfile]:
    """Carrier profiles in contract order.

    Raises:
        RuntimeError: when the contract's carrier enum and the profile table differ.
    """
    names = vocabulary().carriers
    if set(names) != set(_CARRIER_TABLE):
        raise RuntimeError(f"carrier profiles {sorted(_CARRIER_TABLE)} do not match contract {sorted(names)}")
    return {n: CarrierProfile(n, *_CARRIER_TABLE[n]) for n in names}
