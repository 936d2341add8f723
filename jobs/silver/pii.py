"""Keyed hashing of personal data: silver and gold hold a join key, never the clear value."""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path
from typing import NamedTuple

import pyspark.sql.functions as F
from pyspark.sql import Column, DataFrame, SparkSession

from jobs.lake.commits import committed
from jobs.lake.config import LakeConfig
from jobs.lake.tables import commit_metadata_set, table_exists, table_property

MIN_KEY_CHARS = 16  # a shorter key file is one cut short, not a key anyone chose
FINGERPRINT_PROPERTY = "cxlake.piiKeyFingerprint"


class PiiKeyError(RuntimeError):
    """The hashing key is unusable, or not the one the lake's hashes were made with."""


def pii_key(config: LakeConfig) -> str:
    """The hashing key: ``config.pii_key`` (``CXLAKE_PII_KEY``; production: from a secret store).

    Without one, a random key is created once in ``$CXLAKE_HOME/pii.key`` (git-ignored, mode 600),
    so a laptop run needs no setup and no key ever sits in the repository. The file appears whole
    or not at all (written aside with mode 600, then linked into place; of two processes creating
    it at once one wins and both use its key): a kill mid-write once left a 0-byte key, and with
    it hashes keyed by nothing, silently.

    Args:
        config: the lake configuration (its ``pii_key`` and ``home``).

    Returns:
        The key, surrounding spaces removed.

    Raises:
        PiiKeyError: the key file is shorter than ``MIN_KEY_CHARS``.
    """
    if config.pii_key.strip():
        return config.pii_key.strip()
    key_file = Path(config.home) / "pii.key"
    if not key_file.exists():
        _create_key_file(key_file)
    key = key_file.read_text().strip()
    if len(key) < MIN_KEY_CHARS:
        raise PiiKeyError(
            f"{key_file} holds {len(key)} characters, not a key: restore it from a backup (hashes made "
            "with another key never join the lake's), or set CXLAKE_PII_KEY"
        )
    return key


def _create_key_file(key_file: Path) -> None:
    key_file.parent.mkdir(parents=True, exist_ok=True)
    aside = key_file.with_name(f".{key_file.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w") as out:
            out.write(secrets.token_hex(32))
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(aside, key_file)  # fails if another process linked its key first: theirs is used
        except FileExistsError:
            pass
    finally:
        aside.unlink(missing_ok=True)


def key_fingerprint(key: str) -> str:
    """A fingerprint that tells keys apart without revealing them (slow on purpose: a weak
    configured key is not found by trying candidates against it)."""
    return hashlib.pbkdf2_hmac("sha256", key.encode(), b"cxlake pii key fingerprint", 100_000).hex()[:32]


class CheckedKey(NamedTuple):
    """A table's hashing key, checked against the fingerprint the table records (if any)."""

    value: str
    fingerprint: str
    recorded: bool  # the table records this fingerprint already


def checked_pii_key(spark: SparkSession, config: LakeConfig, table: str) -> CheckedKey:
    """:func:`pii_key`, checked against the fingerprint ``table`` records of the key its hashes use.

    A second machine without the lake's ``pii.key`` (or with another ``CXLAKE_PII_KEY``) would
    create its own key and hash tonight's rows with it: they would never join the earlier ones,
    and nothing would say so. Call :func:`record_key_fingerprint` after writing the table.

    Raises:
        PiiKeyError: the table's hashes were made with another key.
    """
    key = pii_key(config)
    fingerprint = key_fingerprint(key)
    path = config.table_path(table)
    recorded = table_property(spark, path, FINGERPRINT_PROPERTY) if table_exists(spark, path) else None
    if recorded is not None and recorded != fingerprint:
        raise PiiKeyError(
            f"{table}'s e-mail and phone hashes were made with another key (fingerprint {recorded}, this "
            f"machine's is {fingerprint}): copy the lake's pii.key to {Path(config.home) / 'pii.key'} "
            "or set CXLAKE_PII_KEY to it; hashing with this key would stop customers joining across nights"
        )
    return CheckedKey(key, fingerprint, recorded is not None)


def record_key_fingerprint(spark: SparkSession, config: LakeConfig, table: str, key: CheckedKey) -> None:
    """Record ``key``'s fingerprint on ``table`` unless it does already (one metadata commit, once)."""
    if key.recorded:
        return
    with commit_metadata_set(spark, table):
        spark.sql(
            f"ALTER TABLE delta.`{config.table_path(table)}` "
            f"SET TBLPROPERTIES ('{FINGERPRINT_PROPERTY}' = '{key.fingerprint}')"
        )
    committed(config.table_path(table))


KEY_COLUMN = "_pii_key"


def with_pii_key(df: DataFrame, key: str) -> DataFrame:
    """``df`` with the hashing key as column ``_pii_key`` (for :func:`hashed_pii`), from a one-row
    broadcast frame: the key is data, never a literal in the query plan, so it cannot reach
    ``explain()``, Spark's logs or an error message (``ops.pipeline_runs.reason``)."""
    key_frame = df.sparkSession.createDataFrame([(key,)], f"{KEY_COLUMN} string")
    return df.crossJoin(F.broadcast(key_frame))


def hashed_pii(value: Column) -> Column:
    """HMAC-style keyed SHA-256 of a normalised value (trimmed, lower-cased); null stays null.

    The key is the ``_pii_key`` column of a frame from :func:`with_pii_key`. Normalising first
    makes ``A@b.com `` and ``a@b.com`` join; the key makes the hash useless for dictionary attacks
    by whoever reads the lake without the key.
    """
    key = F.col(KEY_COLUMN)
    normalised = F.lower(F.trim(value))
    inner = F.sha2(F.concat(key, F.lit("\x00inner\x00"), normalised), 256)
    return F.when(normalised.isNull() | (normalised == ""), F.lit(None)).otherwise(
        F.sha2(F.concat(key, F.lit("\x00outer\x00"), inner), 256)
    )
