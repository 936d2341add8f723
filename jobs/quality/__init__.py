"""Great Expectations gates, with suites derived from the contracts in ``schemas/``."""
