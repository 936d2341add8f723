"""Default-dirt simulated days through the real bronze job: every refused line is explained.

The simulator's manifest says how many lines of each dirt kind it injected per file; the
quarantine must hold exactly those (no more, no fewer), and raw = accepted + quarantined.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pyspark.sql.functions as F
import pytest

from jobs.ingest.bronze import SOURCES, ingest_source
from jobs.simulator import SimulationConfig, simulate
from jobs.tables import read_table

DAYS = 4


@pytest.fixture(scope="module")
def ingested(spark, config, tmp_path_factory):
    from dataclasses import replace

    root = tmp_path_factory.mktemp("sim_lake")
    lake_config = replace(config, lake_root=str(root / "lake"), landing_root=str(root / "landing"))
    sim = SimulationConfig(days=DAYS, customers=600, seed=11)
    simulate(sim, Path(lake_config.landing_root))
    dates = [f"2026-01-{5 + i:02d}" for i in range(DAYS)]
    for day in dates:
        for source in SOURCES:
            ingest_source(spark, lake_config, source, day)
    manifests = [json.loads((Path(lake_config.landing_root) / "_manifest" / f"{d}.json").read_text()) for d in dates]
    return lake_config, manifests


def _reason_kind(reason: str) -> str:
    return {"malformed_json": "malformed", "malformed_csv": "malformed"}.get(reason, reason.split(":")[0])


@pytest.mark.parametrize("source", SOURCES)
def test_quarantine_matches_injected_dirt_exactly(spark, ingested, source: str) -> None:
    lake_config, manifests = ingested
    injected = Counter()
    lines = 0
    for manifest in manifests:
        entry = manifest["sources"][source]
        lines += entry["lines"]
        for kind in ("malformed", "missing_required", "unknown_enum", "bad_type"):
            injected[kind] += entry[kind]
        # Resent copies land in another file: bronze keeps them (raw history), silver dedupes.
        injected["duplicate"] += entry["duplicate"] - entry.get("duplicate_resent", 0)
    quarantined = Counter(
        _reason_kind(r.reason) for r in read_table(spark, lake_config, f"quarantine.{source}").select("reason").collect()
    )
    assert +quarantined == +injected
    audit = read_table(spark, lake_config, "ops.ingest_audit").filter(F.col("source") == source)
    totals = audit.agg(F.sum("raw_rows"), F.sum("accepted_rows"), F.sum("quarantined_rows")).first()
    assert totals[0] == lines == totals[1] + totals[2]
    assert totals[2] == sum(injected.values())
