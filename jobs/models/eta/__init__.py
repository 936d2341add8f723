"""ETA model: ``model`` (pure pandas/LightGBM quantiles + interval calibration), ``job`` (Spark I/O,
MLflow training via ``jobs.models.training``, scoring into ``gold.eta_predictions``)."""
