from __future__ import annotations

import stat
from dataclasses import replace

from jobs.silver.pii import pii_key


def test_pii_key_is_the_configured_one(config) -> None:
    # tests/conftest.py sets CXLAKE_PII_KEY before loading the session config.
    assert pii_key(config) == "test-only-key"
    assert pii_key(replace(config, pii_key=" other-key ")) == "other-key"


def test_without_a_configured_key_one_is_created_once_under_cxlake_home(config, tmp_path) -> None:
    laptop = replace(config.moved_to(tmp_path), pii_key="")
    key_file = tmp_path / "pii.key"
    assert not key_file.exists()

    first = pii_key(laptop)

    # A random 256-bit key in hex, readable by its owner only, and the same on every later call
    # (hashes must join across nights).
    assert len(first) == 64 and int(first, 16) >= 0
    assert key_file.read_text() == first
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert pii_key(laptop) == first
