"""Settings every test Spark starts with (drivers, executors, Airflow task processes): test speed only.

On tiny data a JVM spends much of its CPU in the C2 compiler; the quick C1 compiler alone is enough
(a night on the e2e data: 197 -> 130 CPU s, tests/cluster). But C1 alone gets a 48 MB code cache,
which a JVM running many steps fills: the JIT then switches off and the rest runs interpreted
(measured, one night of `make demo` size in a fresh JVM: 274 s with the 48 MB cache full after
93 s, 200 s with 512 MB, 204 s with the JVM's defaults).

On tiny data Spark's generated code costs more than it saves: each new night's dates are literals
in the generated Java, so every query of every night is generated and compiled by Janino again
(a JFR profile of one night: 76 % of the executor threads' samples in code generation and
compilation). Tests run Spark's interpreted expressions instead (the same operators, the same
results: Spark's own suites run both modes): `tests/pipeline/test_simulated_nights.py` alone,
478 s -> 373 s (2026-12-02). Production keeps the defaults, which the large bench needs; the
cluster tests (tests/cluster/night_runs.py) run their nights with them and compare the tables
with this process's, so both modes are checked to give the same tables.

Delta keeps a DeltaLog (with its latest snapshot's plans) per table path it opened, up to 10,000
for an hour: a night touches the same ~30 paths, but a test process opens thousands (every test
lake is a new folder), ~3 MB each (measured: 120 one-file tables, 51 -> 441 MB live heap; with a
cache of 20, 188 MB). With the journey's third derived table the 2 GB test driver ran out of heap
in tests/pipeline/test_simulated_nights.py after the crash-point module. Tests keep the last 100.
"""

TEST_JAVA_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=512m"
INTERPRETED_SPARK = {
    "spark.sql.codegen.wholeStage": "false",
    "spark.sql.codegen.factoryMode": "NO_CODEGEN",
}
DELTA_LOG_CACHE = {"spark.databricks.delta.delta.log.cacheSize": "100"}
# CXLAKE_SPARK_CONF text (``key=value`` pairs separated by ``;``) for test processes.
TEST_SPARK_CONF = ";".join(
    f"{key}={value}"
    for key, value in {
        "spark.driver.defaultJavaOptions": TEST_JAVA_OPTIONS,
        **INTERPRETED_SPARK,
        **DELTA_LOG_CACHE,
    }.items()
)
