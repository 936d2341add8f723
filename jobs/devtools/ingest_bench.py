"""Measure bronze ingestion by hand: a tiny night's wall time and a big file's rows/s vs pyarrow.

    python -m jobs.devtools.ingest_bench --big-landing <simulator out dir> [--tiny-landing <dir>]

The big case concatenates every interactions file under ``--big-landing`` into one file (one
arrival night; the lateness bound is widened so that old days are judged like fresh ones, not all
``too_late``) and ingests it end to end (read, classify, write bronze + quarantine, audit); the
reference is :func:`jobs.devtools.bench.pyarrow_reference` on the same lines. The tiny case
ingests one simulated night of interactions. Each run starts on an empty lake; figures come from
:class:`jobs.devtools.meter.StageMeter` (wall seconds, Spark jobs, Delta commits, driver and JVM
peak RSS). Measured, never asserted: timings on a shared machine are noisy, hence ``--repeat``.
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from jobs.devtools import bench
from jobs.devtools.meter import StageMeter
from jobs.ingest.landing import MARKER
from jobs.lake.config import load_config
from jobs.lake.spark import get_spark


def _concatenate(files: list[Path], target: Path) -> int:
    target.parent.mkdir(parents=True, exist_ok=True)
    lines = 0
    with open(target, "wb") as out:
        for path in files:
            data = path.read_bytes()
            if data and not data.endswith(b"\n"):
                data += b"\n"
            out.write(data)
            lines += data.count(b"\n")
    return lines


def pyarrow_reference(path: Path) -> tuple[int, float]:
    """:func:`jobs.devtools.bench.pyarrow_reference` of one file."""
    return bench.pyarrow_reference([str(path)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--big-landing", type=Path)
    parser.add_argument("--tiny-landing", type=Path)
    parser.add_argument("--tiny-night", default=None, help="arrival date of the tiny night (default: the 2nd)")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--impl", default="jobs.ingest.bronze", help="module with ingest_source (to compare)")
    args = parser.parse_args(argv)
    bronze = importlib.import_module(args.impl)
    config = load_config()
    spark = get_spark(config, app_name="ingest-bench")
    work = Path(tempfile.mkdtemp(prefix="ingest_bench_"))
    try:
        if args.tiny_landing:
            nights = sorted(p.name for p in (args.tiny_landing / "interactions").iterdir())
            night = args.tiny_night or nights[min(1, len(nights) - 1)]
            for run in range(args.repeat):
                lake = replace(config, lake_root=str(work / f"tiny{run}"), landing_root=str(args.tiny_landing))
                meter = StageMeter(spark, lake.lake_root, progress=False)
                with meter.stage("ingest_tiny"):
                    result = bronze.ingest_source(spark, lake, "interactions", night)
                (figures,) = meter.stages
                print(
                    f"tiny night {night} run {run}: {result.raw_rows} lines in {figures.seconds:.2f} s, "
                    f"{figures.spark_jobs} Spark jobs, {figures.delta_commits} Delta commits",
                    flush=True,
                )
        if args.big_landing:
            files = sorted((args.big_landing / "interactions").glob("*/*.jsonl"))
            night = files[-1].parent.name
            landing = work / "landing"
            big = landing / "interactions" / night / f"interactions_{night}.jsonl"
            lines = _concatenate(files, big)
            (big.parent / MARKER).write_bytes(b"")  # the folder is complete (jobs.ingest.landing)
            print(f"big file: {lines:,} lines, {big.stat().st_size / 2**20:.0f} MiB", flush=True)
            arrow_rows, arrow_seconds = pyarrow_reference(big)
            arrow_rate = arrow_rows / arrow_seconds
            print(
                f"pyarrow read_json + write_table: {arrow_rows:,} rows in {arrow_seconds:.2f} s = {arrow_rate:,.0f}/s"
            )
            for run in range(args.repeat):
                lake = replace(config, lake_root=str(work / f"big{run}"), landing_root=str(landing), lateness_days=400)
                meter = StageMeter(spark, lake.lake_root, progress=False)
                with meter.stage("ingest_big", rows_in=lines):
                    result = bronze.ingest_source(spark, lake, "interactions", night)
                (figures,) = meter.stages
                rate = lines / figures.seconds
                print(
                    f"big run {run}: {result.raw_rows:,} lines ({result.accepted_rows:,} accepted) in "
                    f"{figures.seconds:.1f} s = {rate:,.0f} lines/s = {rate / arrow_rate:.2f}x pyarrow; "
                    f"{figures.spark_jobs} Spark jobs, {figures.delta_commits} Delta commits, driver peak RSS "
                    f"{figures.driver_peak_rss_mb:.0f} MiB, JVM peak RSS {figures.jvm_peak_rss_mb:.0f} MiB",
                    flush=True,
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
