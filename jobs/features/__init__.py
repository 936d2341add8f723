"""Point-in-time feature tables for the models: ``customer_daily`` (churn), ``order_eta`` and
``shipment_scan`` (ETA), with lane/carrier transit statistics from ``lane_stats``."""
