"""Models: a package each for ``eta`` and ``churn``, drift ``monitoring``; shared: ``training`` (the one
training harness), ``promotion`` (what makes a champion), ``registry``, ``scoring``, ``tracking``, ``compare``."""
