"""``simulate``: runs the world, renders the three raw logs, injects dirt and writes the tree."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from jobs.lake.contracts import load_contract

from .clock import DAY, day_of, day_text, ts_text
from .config import MANIFEST_KINDS, SimulationConfig
from .customers import build_customers
from .dirt import DayFile, Record, Source, arrange
from .interactions import Event, build_events
from .lifecycle import Order, run_lifecycles
from .logistics import build_congestion
from .season import build_season
from .writers import CsvRenderer, write_json, write_lines


@lru_cache(maxsize=1)
def sources() -> tuple[Source, ...]:
    """The three raw sources in write order (contracts loaded on first use, not at import)."""
    return (
        Source("orders", load_contract("raw.orders")),
        Source("tracking_scans", load_contract("raw.tracking_scans"), shuffle=True, resend_next_day=True),
        Source("interactions", load_contract("raw.interactions")),
    )


@dataclass(frozen=True)
class SimulationSummary:
    """What a run wrote.

    Attributes:
        config: the configuration that produced it.
        out_dir: root of the written tree.
        lines: data lines written per source (CSV headers excluded).
        dirt: per source, total count of each dirt kind written.
        files: every file written (data files then manifests), in write order.
        orders: orders placed in the simulated world (written or not yet arrived).
    """

    config: SimulationConfig
    out_dir: Path
    lines: dict[str, int]
    dirt: dict[str, dict[str, int]]
    files: tuple[Path, ...] = field(default_factory=tuple)
    orders: int = 0


def _amount(kopecks: int) -> str:
    # Integer kopecks formatted by hand: exact, no float rounding surprises.
    return f"{kopecks // 100}.{kopecks % 100:02d}"


def _order_records(orders: list[Order]) -> list[Record]:
    names = sources()[0].contract.column_names
    out = []
    for o in orders:
        row = {
            "order_id": o.order_id,
            "customer_id": o.customer.customer_id,
            "placed_at": ts_text(o.placed_at),
            "items": str(o.items),
            "amount": _amount(o.amount_kop),
            "origin_warehouse": o.lane.origin,
            "destination_region": o.lane.destination,
            "carrier": o.carrier,
            "promised_delivery_date": day_text(o.shipment.promised_day),
            "payment_method": o.payment_method,
            "channel": o.device.channel,
            "email": o.email,
            "phone": o.phone,
        }
        out.append(Record(o.placed_at // DAY, o.placed_at, [row.get(n) for n in names]))
    return out


def _scan_records(orders: list[Order], end: int) -> list[Record]:
    """Scans that happened before the run ended, ids in (time, order) order."""
    names = sources()[1].contract.column_names
    flat = [
        (t, i, k, ev, loc) for i, o in enumerate(orders) for k, (t, ev, loc) in enumerate(o.shipment.scans) if t < end
    ]
    flat.sort(key=lambda s: (s[0], s[1], s[2]))
    out = []
    for n, (t, i, _, ev, loc) in enumerate(flat, start=1):
        o = orders[i]
        row = {
            "scan_id": f"S{n:010d}",
            "order_id": o.order_id,
            "scan_at": ts_text(t),
            "event": ev,
            "location": loc,
            "carrier": o.carrier,
        }
        out.append(Record(t // DAY, t, [row.get(c) for c in names]))
    return out


def _event_records(events: list[Event]) -> list[Record]:
    names = sources()[2].contract.column_names
    t = np.array([e.t for e in events], dtype=np.int64)
    cust = np.array([e.cust for e in events], dtype=np.int64)
    seq = np.array([e.seq for e in events], dtype=np.int64)
    order = np.lexsort((seq, cust, t)).tolist() if events else []
    out = []
    for n, j in enumerate(order, start=1):
        e = events[j]
        row: dict[str, Any] = {
            "event_id": f"E{n:010d}",
            "event_at": ts_text(e.t),
            "event": e.event,
            "device_id": e.device.device_id if e.device is not None else None,
            "customer_id": e.customer_id,
            "channel": e.channel,
            "order_id": e.order.order_id if e.order is not None else None,
            "product_id": e.product_id,
            "query": e.query,
            "contact_reason": e.contact_reason,
            "rating": e.rating,
            "review_text": e.review_text,
            "campaign": e.campaign,
            "email": e.email,
            "phone": e.phone,
        }
        out.append(Record(e.t // DAY, e.t, [row.get(c) for c in names]))
    return out


def simulate(config: SimulationConfig, out_dir: Path) -> SimulationSummary:
    """Simulate ``config.days`` days of the shop and write the raw logs under ``out_dir``.

    Layout (``<date>`` is the arrival date):
    ``orders/<date>/orders_<date>.csv``, ``tracking_scans/<date>/tracking_scans_<date>.jsonl``,
    ``interactions/<date>/interactions_<date>.jsonl`` and ``_manifest/<date>.json``. Every day
    gets all three files (possibly empty). Same config => byte-identical files.

    Args:
        config: size, seed, calendar and dirt rates.
        out_dir: root directory (created if missing; existing files are overwritten).

    Returns:
        Line and dirt counts per source and the files written.
    """
    out_dir = Path(out_dir)
    # Independent child streams per component: changing one component's draws does not
    # reshuffle the others.
    seeds = np.random.SeedSequence(config.seed).spawn(6)
    rngs = [np.random.Generator(np.random.PCG64(s)) for s in seeds]
    first_day = day_of(config.start_date)
    last_day = first_day + config.days - 1

    season = build_season(first_day, config.days, rngs[0])
    congestion = build_congestion(season, rngs[1])
    customers = build_customers(config.customers, season, rngs[2])
    orders = run_lifecycles(customers, season, congestion, rngs[3])
    # Order ids are handed out in checkout order, as an order management system would.
    orders.sort(key=lambda o: (o.placed_at, o.customer.idx, o.seq))
    for n, o in enumerate(orders, start=1):
        o.order_id = f"O{n:08d}"
    events = build_events(customers, season, rngs[4])

    records = {
        "orders": _order_records(orders),
        "tracking_scans": _scan_records(orders, season.end),
        "interactions": _event_records(events),
    }
    dirt_rngs = [np.random.Generator(np.random.PCG64(s)) for s in seeds[5].spawn(len(sources()))]
    arranged: dict[str, dict[int, DayFile]] = {
        src.name: arrange(records[src.name], src, config.dirt, rng, last_day)
        for src, rng in zip(sources(), dirt_rngs, strict=True)
    }

    files: list[Path] = []
    lines_total = {src.name: 0 for src in sources()}
    dirt_total = {src.name: {k: 0 for k in MANIFEST_KINDS} for src in sources()}
    manifests: dict[int, dict[str, Any]] = {}
    header = CsvRenderer()
    for day in range(first_day, last_day + 1):
        date = day_text(day)
        per_source: dict[str, Any] = {}
        for src in sources():
            rel = Path(src.name) / date / f"{src.name}_{date}.{src.extension}"
            day_file = arranged[src.name].get(day, DayFile())
            csv_header = header(src.contract.column_names) if src.is_csv else None
            write_lines(out_dir / rel, [line.text for line in day_file.lines], csv_header)
            files.append(out_dir / rel)
            counts = day_file.counts()
            per_source[src.name] = {"file": rel.as_posix(), **counts}
            lines_total[src.name] += counts["lines"]
            for k in MANIFEST_KINDS:
                dirt_total[src.name][k] += counts[k]
        manifests[day] = {"date": date, "sources": per_source, "config": config.to_dict()}
    for day, manifest in manifests.items():
        path = out_dir / "_manifest" / f"{day_text(day)}.json"
        write_json(path, manifest)
        files.append(path)

    return SimulationSummary(
        config=config,
        out_dir=out_dir,
        lines=lines_total,
        dirt=dirt_total,
        files=tuple(files),
        orders=len(orders),
    )
