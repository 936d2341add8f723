"""Rendering of raw lines (CSV / JSON Lines) and atomic writing of files and manifests."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any


class _Null:
    """Marker for an explicit JSON ``null`` (plain ``None`` means: key absent)."""

    _instance: _Null | None = None

    def __new__(cls) -> _Null:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NULL"


NULL = _Null()

# Same output as ``json.dumps(obj, ensure_ascii=False, separators=(",", ":"))``; one reused
# encoder instead of a new one per line (json.dumps builds one whenever options are passed).
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
# The string escaper that encoder uses (``ensure_ascii=False``): the C one when available.
_encode_str = json.encoder.encode_basestring


def _json_scalar(value: Any) -> str:
    """JSON text of a non-string value exactly as ``_JSON`` writes it inside an object."""
    if type(value) is int:
        return int.__repr__(value)
    if value is NULL:
        return "null"
    return _JSON.encode(value)


class CsvRenderer:
    """Renders one CSV row to a line (minimal quoting, ``\\n`` terminated)."""

    def __init__(self) -> None:
        self._buf = io.StringIO()
        self._writer = csv.writer(self._buf, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)

    def __call__(self, values: Sequence[Any]) -> str:
        self._buf.seek(0)
        self._buf.truncate()
        self._writer.writerow(["" if v is None or v is NULL else v for v in values])
        return self._buf.getvalue()[:-1]


class JsonRenderer:
    """Renders one object per line in contract key order; ``None`` keys omitted, ``NULL`` is ``null``.

    Byte-identical to encoding the dict of present keys with ``_JSON``, but without building a
    dict and an encoder per line: the key prefixes are escaped once and string values go straight
    through the encoder's own C string escaper (the simulator's hot loop renders every line).
    """

    def __init__(self, names: Sequence[str]) -> None:
        self._keys = tuple(_encode_str(n) + ":" for n in names)

    def __call__(self, values: Sequence[Any]) -> str:
        keys, enc, scalar = self._keys, _encode_str, _json_scalar
        if len(values) != len(keys):
            raise ValueError(f"{len(values)} values for {len(keys)} keys")
        # Lengths checked above; ``strict=True`` would re-check per pair in this hot loop.
        return (
            "{"
            + ",".join(
                [
                    k + (enc(v) if type(v) is str else scalar(v))
                    for k, v in zip(keys, values, strict=False)
                    if v is not None
                ]
            )
            + "}"
        )


def render_json(names: Sequence[str], values: Sequence[Any]) -> str:
    """One JSON object in contract key order; ``None`` keys are omitted, ``NULL`` is ``null``."""
    return JsonRenderer(names)(values)


def write_text(path: Path, text: str) -> None:
    """Write UTF-8 text atomically (temp file + rename), replacing any previous file.

    A reader (or an Airflow sensor) never sees a half-written file, and a rerun overwrites.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
    os.replace(tmp, path)


def write_lines(path: Path, lines: Sequence[str], header: str | None = None) -> None:
    """Write lines (each ending in ``\\n``), optionally after a CSV header."""
    parts = [header] if header is not None else []
    parts.extend(lines)
    write_text(path, "\n".join(parts) + "\n" if parts else "")


def write_json(path: Path, obj: Any) -> None:
    """Write a pretty-printed JSON document (stable key order as given)."""
    write_text(path, json.dumps(obj, ensure_ascii=False, indent=2) + "\n")
