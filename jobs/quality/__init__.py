"""Great Expectations gates: expectations derived from the contracts (``suites``), the gates declared
table by table for bronze, silver and gold, and running them with a clear stop (``gate``)."""
