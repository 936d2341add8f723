"""Developer tooling, outside the product's import graph: the simulator, benchmarks, the demo summary,
a local Spark cluster and the Airflow test harness (tests/test_layering.py keeps product code off it)."""
