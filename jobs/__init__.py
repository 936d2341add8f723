"""CX lakehouse: lake core (``lake``) and domain vocabulary (``domain``), layers (``ingest`` → ``silver`` →
``gold``, ``features``), ``quality`` gates, ``models``, the nightly ``pipeline``, and ``devtools`` outside
the product. Layers import only ``lake``, ``domain`` and themselves (``tests/test_layering.py``)."""
