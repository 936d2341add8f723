"""Keyed hashing of personal data: silver and gold hold a join key, never the clear value."""

from __future__ import annotations

import secrets
from pathlib import Path

import pyspark.sql.functions as F
from pyspark.sql import Column

from jobs.lake.config import LakeConfig


def pii_key(config: LakeConfig) -> str:
    """The hashing key: ``config.pii_key`` (``CXLAKE_PII_KEY``; production: from a secret store).

    Without one, a random key is created once in ``$CXLAKE_HOME/pii.key`` (git-ignored, mode 600),
    so a laptop run needs no setup and no key ever sits in the repository.

    Args:
        config: the lake configuration (its ``pii_key`` and ``home``).

    Returns:
        The key, surrounding spaces removed.
    """
    if config.pii_key.strip():
        return config.pii_key.strip()
    key_file = Path(config.home) / "pii.key"
    if not key_file.exists():
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key_file.write_text(secrets.token_hex(32))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


def hashed_pii(value: Column, key: str) -> Column:
    """HMAC-style keyed SHA-256 of a normalised value (trimmed, lower-cased); null stays null.

    Normalising first makes ``A@b.com `` and ``a@b.com`` join; the key makes the hash useless for
    dictionary attacks by whoever reads the lake without the key.
    """
    normalised = F.lower(F.trim(value))
    inner = F.sha2(F.concat(F.lit(key + "\x00inner\x00"), normalised), 256)
    return F.when(normalised.isNull() | (normalised == ""), F.lit(None)).otherwise(
        F.sha2(F.concat(F.lit(key + "\x00outer\x00"), inner), 256)
    )
