"""Lake core: configuration (``config``), the Spark session (``spark``), Delta table I/O (``tables``),
contracts from ``schemas/`` (``contracts``, ``feature_catalog``) and weekly OPTIMIZE/VACUUM (``maintenance``)."""
