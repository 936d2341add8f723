"""Churn model: ``model`` (pure pandas/LightGBM + calibration), ``bgnbd`` (BG/NBD baseline), ``job`` (Spark
I/O, MLflow training via ``jobs.models.training``, scoring); what makes a champion: ``jobs.models.promotion``."""
