"""Drift monitoring: ``psi`` (pure PSI, the reference sample logged with each model), ``job`` (Spark I/O:
PSI of features and score vs the champion's training rows into ``gold.model_monitoring``, drift check)."""
