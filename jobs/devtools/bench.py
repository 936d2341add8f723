"""Benchmarks of the main job (``make bench`` / ``cxlake bench``): figures printed with their command.

Measured, not asserted: timings belong here, never in tests.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from jobs.lake.config import PROJECT_ROOT

_COLD_START = (
    "import time; t = time.monotonic(); from jobs.lake.spark import get_spark; s = get_spark(); "
    "t1 = time.monotonic(); s.range(1).write.format('delta').mode('overwrite').save(__import__('sys').argv[1]); "
    "print(f'{t1 - t:.2f} {time.monotonic() - t1:.2f}')"
)


def _tree_rss(root: psutil.Process) -> int:
    total = 0
    for proc in [root, *root.children(recursive=True)]:
        try:
            total += proc.memory_info().rss
        except psutil.Error:
            pass  # exited between listing and reading
    return total


def _timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, int, str]:
    """Wall seconds, peak RSS of the whole process tree (MiB: Python + the Spark JVM), exit code, output.

    The JVM is a grandchild that Python never waits for, so ``getrusage`` cannot see it: the tree
    is sampled every 0.2 s instead.
    """
    started = time.monotonic()
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(cmd, env=env, cwd=PROJECT_ROOT, stdout=out, stderr=subprocess.STDOUT, text=True)
        root = psutil.Process(proc.pid)
        peak = 0
        while proc.poll() is None:
            peak = max(peak, _tree_rss(root))
            time.sleep(0.2)
        out.seek(0)
        output = out.read()
    return time.monotonic() - started, peak / 2**20, proc.returncode, output


def spark_cold_start(runs: int = 3) -> list[tuple[float, float]]:
    """Fresh-process SparkSession start and first Delta write: what each Airflow task pays."""
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "CXLAKE_HOME": tmp}
        for i in range(runs):
            done = subprocess.run(
                [sys.executable, "-c", _COLD_START, f"{tmp}/t{i}"],
                env=env,
                cwd=PROJECT_ROOT,
                capture_output=True,
                text=True,
                check=True,
            )
            start, first_write = map(float, done.stdout.split()[-2:])
            results.append((start, first_write))
    return results


def main(days: int = 7, customers: int = 1500) -> int:
    print("# cxlake benchmarks (2-core machine figures are what the README quotes)\n")
    cold = spark_cold_start()
    print("## Spark start-up per task process")
    print(f"command: python -c '<get_spark(); first Delta write>' x{len(cold)} (jobs/devtools/bench.py)")
    print(
        f"  SparkSession start: median {statistics.median(c[0] for c in cold):.1f} s  (runs: {', '.join(f'{c[0]:.1f}' for c in cold)})"
    )
    print(
        f"  first Delta write:  median {statistics.median(c[1] for c in cold):.1f} s  (runs: {', '.join(f'{c[1]:.1f}' for c in cold)})\n"
    )

    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "CXLAKE_HOME": tmp}
        demo = [str(Path(sys.executable).parent / "cxlake"), "demo", "--days", str(days), "--customers", str(customers)]
        for attempt in ("first run (empty lake)", "second run (same dates, existing lake)"):
            wall, peak, returncode, output = _timed(demo, env)
            status = "ok" if returncode == 0 else f"FAILED exit {returncode}"
            print(f"## demo, {attempt}")
            print(f"command: CXLAKE_HOME=<tmp> cxlake {' '.join(demo[1:])}")
            print(f"  wall {wall:.0f} s, peak RSS {peak:.0f} MiB (whole process tree: Python + Spark JVM), {status}\n")
            if returncode != 0:
                print(output[-3000:])
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
