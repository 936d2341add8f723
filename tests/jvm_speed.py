"""Java options every test JVM starts with (drivers, executors, Airflow task processes): test speed only.

On tiny data a JVM spends much of its CPU in the C2 compiler; the quick C1 compiler alone is enough
(a night on the e2e data: 197 -> 130 CPU s, tests/cluster). But C1 alone gets a 48 MB code cache,
which a JVM running many steps fills: the JIT then switches off and the rest runs interpreted
(measured, one night of `make demo` size in a fresh JVM: 274 s with the 48 MB cache full after
93 s, 200 s with 512 MB, 204 s with the JVM's defaults).
"""

TEST_JAVA_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=512m"
