"""CX lakehouse: lake core (``lake``), layers (``ingest`` → ``silver`` → ``gold``, ``features``),
``quality`` gates, ``models``, the nightly ``pipeline``, and ``devtools`` outside the product."""
