"""The bronze job on the bad-input corpus: every data line's exact outcome, file by file.

``tests/ingest/corpus/cases.yaml`` lists each case (one tiny raw file) and, per data line, either
``accepted`` or the exact quarantine reason. A Spark run per case would cost minutes, so each
source's case files land together in one arrival folder and go through the real
``ingest_source`` once per module; quarantine and bronze rows carry their file, so every case is
still asserted on its own lines only.
"""

from __future__ import annotations

import shutil
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from jobs.ingest.bronze import ingest_source
from jobs.lake.tables import read_table

CORPUS = Path(__file__).resolve().parent / "corpus"
MANIFEST = yaml.safe_load((CORPUS / "cases.yaml").read_text())
DAY = str(MANIFEST["arrival_date"])
CASES: list[dict[str, Any]] = MANIFEST["cases"]
DEFAULT_BATCH = "main"
EXTENSIONS = {"orders": "csv", "tracking_scans": "jsonl", "interactions": "jsonl"}


def _batch(case: dict[str, Any]) -> tuple[str, str]:
    return case["source"], case.get("batch", DEFAULT_BATCH)


def _landed_name(case: dict[str, Any]) -> str:
    """The case file's ``source_file`` once landed: relative to the landing root."""
    return f"{case['source']}/{DAY}/{Path(case['file']).name}"


def _data_lines(case: dict[str, Any]) -> int:
    """Data lines of a case file, counted from its bytes independently of the job's reader."""
    lines = (CORPUS / case["file"]).read_bytes().split(b"\n")
    if lines[-1] == b"":
        lines.pop()  # the final newline ends the last line
    return len(lines) - (1 if case["source"] == "orders" else 0)  # the CSV header is no data


@dataclass(frozen=True)
class BatchResult:
    """What one ingest run of a batch of case files left in the lake, split by source file."""

    refused: dict[str, set[tuple[int, str]]]
    accepted: dict[str, dict[int, dict[str, Any]]]
    audit: tuple[int, int, int]


@pytest.fixture(scope="module")
def ingest_batch(spark, config, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, str], BatchResult]:
    """Run the bronze job once per (source, batch), on first use, and keep what it wrote."""
    results: dict[tuple[str, str], BatchResult | Exception] = {}

    def run(source: str, batch: str) -> BatchResult:
        if (source, batch) not in results:
            root = tmp_path_factory.mktemp(f"corpus_{source}_{batch}")
            # conftest's lake_config, shared by the cases of one batch: a private lake and landing.
            lake = replace(config, lake_root=str(root / "lake"), landing_root=str(root / "landing"))
            folder = Path(lake.landing_path(source, DAY))
            folder.mkdir(parents=True)
            for case in CASES:
                if _batch(case) == (source, batch):
                    shutil.copyfile(CORPUS / case["file"], folder / Path(case["file"]).name)
            try:
                ingest_source(spark, lake, source, DAY)
            except Exception as error:  # every case of the batch reports it, without rerunning
                results[(source, batch)] = error
                raise
            refused: dict[str, set[tuple[int, str]]] = defaultdict(set)
            for row in read_table(spark, lake, f"quarantine.{source}").collect():
                refused[row.source_file].add((row.line_number, row.reason))
            accepted: dict[str, dict[int, dict[str, Any]]] = defaultdict(dict)
            for row in read_table(spark, lake, f"bronze.{source}").collect():
                accepted[row._source_file][row._line_number] = row.asDict()
            (audit,) = read_table(spark, lake, "ops.ingest_audit").collect()
            results[(source, batch)] = BatchResult(
                refused=dict(refused),
                accepted=dict(accepted),
                audit=(audit.raw_rows, audit.accepted_rows, audit.quarantined_rows),
            )
        result = results[(source, batch)]
        if isinstance(result, Exception):
            raise result
        return result

    return run


@pytest.mark.parametrize("case", CASES, ids=[f"{c['source']}/{c['name']}" for c in CASES])
def test_case_lines_end_exactly_as_the_manifest_says(case: dict[str, Any], ingest_batch) -> None:
    result = ingest_batch(*_batch(case))
    name = _landed_name(case)
    expect: dict[int, str] = case["expect"]
    expected_refused = {(line, reason) for line, reason in expect.items() if reason != "accepted"}
    expected_accepted = {line for line, outcome in expect.items() if outcome == "accepted"}

    refused = result.refused.get(name, set())
    accepted = result.accepted.get(name, {})
    assert refused == expected_refused
    assert set(accepted) == expected_accepted
    # Every raw line ends in exactly one table, and the manifest judges every line.
    assert len(refused) + len(accepted) == _data_lines(case) == len(expect)


@pytest.mark.parametrize(
    "case", [c for c in CASES if "bronze" in c], ids=[f"{c['source']}/{c['name']}" for c in CASES if "bronze" in c]
)
def test_case_accepted_values_are_typed_as_the_manifest_says(case: dict[str, Any], ingest_batch) -> None:
    accepted = ingest_batch(*_batch(case)).accepted[_landed_name(case)]
    for line, values in case["bronze"].items():
        row = accepted[line]
        for column, expected in values.items():
            got = row[column]
            # Maps compare as maps; scalars as their text, so the YAML stays readable
            # ("2026-02-10 08:00:00" for a timestamp, "10.50" for a decimal).
            if isinstance(expected, dict) or expected is None:
                assert got == expected, f"line {line} {column}"
            else:
                assert str(got) == str(expected), f"line {line} {column}"


BATCHES = sorted({_batch(c) for c in CASES})


@pytest.mark.parametrize("source, batch", BATCHES, ids=[f"{s}/{b}" for s, b in BATCHES])
def test_batch_audit_reconciles_with_the_raw_lines(source: str, batch: str, ingest_batch) -> None:
    result = ingest_batch(source, batch)
    raw_lines = sum(_data_lines(c) for c in CASES if _batch(c) == (source, batch))
    raw_rows, accepted_rows, quarantined_rows = result.audit
    assert raw_rows == accepted_rows + quarantined_rows == raw_lines
    assert accepted_rows == sum(len(lines) for lines in result.accepted.values())
    assert quarantined_rows == sum(len(lines) for lines in result.refused.values())


def test_corpus_covers_every_source_and_lists_every_file() -> None:
    per_source = Counter(c["source"] for c in CASES)
    assert all(per_source[source] >= 10 for source in EXTENSIONS), per_source
    assert len({(c["source"], c["name"]) for c in CASES}) == len(CASES) >= 36
    listed = {c["file"] for c in CASES}
    on_disk = {str(p.relative_to(CORPUS)) for p in CORPUS.glob("*/*") if p.is_file()}
    assert listed == on_disk  # no case without a file, no file without a case
    for case in CASES:
        assert case["file"] == f"{case['source']}/{case['name']}.{EXTENSIONS[case['source']]}"
