"""``simulate``: runs the world, renders the three raw logs, injects dirt and writes the tree."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np

from jobs.ingest.landing import MARKER
from jobs.lake.contracts import load_contract

from .clock import DAY, day_of, day_text, ts_text, ts_texts
from .config import MANIFEST_KINDS, SimulationConfig
from .customers import build_customers
from .dirt import DayFile, Record, Source, arrange
from .interactions import Event, build_events
from .lifecycle import Order, run_lifecycles
from .logistics import build_congestion
from .season import build_season
from .writers import CsvRenderer, write_json, write_lines, write_text


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
        files: every file written (data files, each followed by its folder's ``_SUCCESS`` marker, then manifests), in write order.
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


def _picker(natural: tuple[str, ...], names: Sequence[str]) -> Callable[[tuple[Any, ...]], tuple[Any, ...]]:
    """Reorders a row built in ``natural`` column order (plus one trailing ``None``) into ``names``.

    A contract column the simulator does not fill picks the trailing ``None`` (key absent).
    """
    idx = [natural.index(n) if n in natural else len(natural) for n in names]
    if len(idx) == 1:
        return lambda row: (row[idx[0]],)
    return itemgetter(*idx)


_ORDER_COLUMNS = (
    "order_id",
    "customer_id",
    "placed_at",
    "items",
    "amount",
    "origin_warehouse",
    "destination_region",
    "carrier",
    "promised_delivery_date",
    "payment_method",
    "channel",
    "email",
    "phone",
)
_SCAN_COLUMNS = ("scan_id", "order_id", "scan_at", "event", "location", "carrier")
_EVENT_COLUMNS = (
    "event_id",
    "event_at",
    "event",
    "device_id",
    "customer_id",
    "channel",
    "order_id",
    "product_id",
    "query",
    "contact_reason",
    "rating",
    "review_text",
    "campaign",
    "email",
    "phone",
)


def _order_records(orders: list[Order]) -> list[Record]:
    pick = _picker(_ORDER_COLUMNS, sources()[0].contract.column_names)
    out = []
    for o in orders:
        row = (
            o.order_id,
            o.customer.customer_id,
            ts_text(o.placed_at),
            str(o.items),
            _amount(o.amount_kop),
            o.lane.origin,
            o.lane.destination,
            o.carrier,
            day_text(o.shipment.promised_day),
            o.payment_method,
            o.device.channel,
            o.email,
            o.phone,
            None,
        )
        out.append(Record(o.placed_at // DAY, o.placed_at, pick(row)))
    return out


def _scan_records(orders: list[Order], end: int) -> list[Record]:
    """Scans that happened before the run ended, ids in (time, order) order."""
    pick = _picker(_SCAN_COLUMNS, sources()[1].contract.column_names)
    flat = [
        (t, i, k, ev, loc) for i, o in enumerate(orders) for k, (t, ev, loc) in enumerate(o.shipment.scans) if t < end
    ]
    flat.sort(key=itemgetter(0, 1, 2))
    stamps = ts_texts([s[0] for s in flat])
    out = []
    for n, ((t, i, _, ev, loc), stamp) in enumerate(zip(flat, stamps, strict=True), start=1):
        o = orders[i]
        row = (f"S{n:010d}", o.order_id, stamp, ev, loc, o.carrier, None)
        out.append(Record(t // DAY, t, pick(row)))
    return out


def _event_records(events: list[Event]) -> list[Record]:
    pick = _picker(_EVENT_COLUMNS, sources()[2].contract.column_names)
    t = np.array([e.t for e in events], dtype=np.int64)
    cust = np.array([e.cust for e in events], dtype=np.int64)
    seq = np.array([e.seq for e in events], dtype=np.int64)
    order = np.lexsort((seq, cust, t)).tolist() if events else []
    stamps = ts_texts(t[order].tolist()) if events else []
    out = []
    append = out.append
    for n, (j, stamp) in enumerate(zip(order, stamps, strict=True), start=1):
        e = events[j]
        device, o = e.device, e.order
        row = (
            f"E{n:010d}",
            stamp,
            e.event,
            device.device_id if device is not None else None,
            e.customer_id,
            e.channel,
            o.order_id if o is not None else None,
            e.product_id,
            e.query,
            e.contact_reason,
            e.rating,
            e.review_text,
            e.campaign,
            e.email,
            e.phone,
            None,
        )
        append(Record(e.t // DAY, e.t, pick(row)))
    return out


def simulate(config: SimulationConfig, out_dir: Path) -> SimulationSummary:
    """Simulate ``config.days`` days of the shop and write the raw logs under ``out_dir``.

    Layout (``<date>`` is the arrival date):
    ``orders/<date>/orders_<date>.csv``, ``tracking_scans/<date>/tracking_scans_<date>.jsonl``,
    ``interactions/<date>/interactions_<date>.jsonl`` and ``_manifest/<date>.json``. Every day
    gets all three files (possibly empty), each in a folder closed by an empty ``_SUCCESS``
    marker. Same config => byte-identical files.

    Args:
        config: size, seed, calendar and dirt rates.
        out_dir: root directory (created if missing; existing files are overwritten).

    Returns:
        Line and dirt counts per source and the files written.
    """
    with _gc_paused():
        return _run(config, Path(out_dir))


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for the duration of a run.

    A run allocates one small object per event, record and line and keeps them all alive until
    the files are written; the collector would re-scan that growing heap again and again for
    cycles that are not there. Reference counting still frees everything as usual.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _run(config: SimulationConfig, out_dir: Path) -> SimulationSummary:
    """``simulate`` itself (see there)."""
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
    del events  # the records hold all that is written; free the events before rendering
    dirt_rngs = [np.random.Generator(np.random.PCG64(s)) for s in seeds[5].spawn(len(sources()))]
    arranged: dict[str, dict[int, DayFile]] = {}
    for src, rng in zip(sources(), dirt_rngs, strict=True):
        # Each source's records are dropped once its lines are rendered (lower peak memory).
        arranged[src.name] = arrange(records.pop(src.name), src, config.dirt, rng, last_day)

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
            day_file = arranged[src.name].pop(day, DayFile())  # written once: let it go
            csv_header = header(src.contract.column_names) if src.is_csv else None
            write_lines(out_dir / rel, [line.text for line in day_file.lines], csv_header)
            # The exporter's "this folder is complete" (jobs.ingest.landing), after its file:
            # a day that really had no rows may then deliver an empty file.
            write_text(out_dir / rel.parent / MARKER, "")
            files += [out_dir / rel, out_dir / rel.parent / MARKER]
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
