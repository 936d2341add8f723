"""Models: a package each for ``eta`` and ``churn``, drift ``monitoring``; shared: ``training`` (the one
training harness), ``promotion`` (what makes a champion), ``registry``, ``scoring``, ``tracking``, ``compare``."""

import os

# LightGBM threads. Every model builds its histograms column-wise (``force_col_wise``): one feature's
# histogram is summed by one thread in row order, so the model is the same whatever the thread
# count (checked: ETA predictions bit-identical with 1 and 2 threads). Spark is idle while the
# driver fits, so the fit takes every core (quick bench's ETA fit: 38 s on 2 threads, 55 s on 1).
# ``CXLAKE_LGBM_THREADS`` caps it where other processes share the cores: OpenMP threads spin
# while they wait for each other, so a fit on every core of a busy machine crawls (the test suite
# runs two workers on two cores and sets 1).
LGBM_THREADS = int(os.environ.get("CXLAKE_LGBM_THREADS") or os.cpu_count() or 1)
