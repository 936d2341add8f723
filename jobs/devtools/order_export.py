"""A simulated world's orders as one order export, the kind a team brings to ``cxlake import-orders``.

``python -m jobs.devtools.order_export WORLD OUT.csv [--columns a,b,...]`` concatenates the
world's daily ``orders`` files (``WORLD/orders/<date>/orders_<date>.csv``) into one CSV with one
header, keeping only ``--columns`` (default: ``order_id,customer_id,placed_at,amount``: an
order-only history). The simulator's malformed lines (its ``malformed_csv`` dirt, which no export
of a real system has split wrongly in the same way) are left out and counted on stderr; every
other dirty value stays for the import's quarantine.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

ORDER_ONLY = ("order_id", "customer_id", "placed_at", "amount")


def write_order_export(world: Path, out: Path, columns: tuple[str, ...] = ORDER_ONLY) -> tuple[int, int]:
    """Write the export; returns (rows written, malformed lines left out)."""
    written = malformed = 0
    with open(out, "w", newline="", encoding="utf-8") as target:
        writer = csv.writer(target, lineterminator="\n")
        writer.writerow(columns)
        for path in sorted(world.glob("orders/*/orders_*.csv")):
            with open(path, newline="", encoding="utf-8", errors="replace") as source:
                reader = csv.reader(source)
                header = next(reader, None)
                if header is None:
                    continue
                index = [header.index(name) for name in columns]
                for fields in reader:
                    if len(fields) != len(header):
                        malformed += 1
                        continue
                    writer.writerow([fields[i] for i in index])
                    written += 1
    return written, malformed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("world", type=Path, help="a folder `cxlake simulate --out` wrote")
    parser.add_argument("out", type=Path, help="the CSV to write")
    parser.add_argument("--columns", default=",".join(ORDER_ONLY), help="raw.orders columns to keep, in order")
    args = parser.parse_args(argv)
    written, malformed = write_order_export(args.world, args.out, tuple(args.columns.split(",")))
    print(f"{args.out}: {written:,} orders; {malformed} malformed simulator lines left out", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
