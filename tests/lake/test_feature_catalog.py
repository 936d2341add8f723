from __future__ import annotations

import pytest

from jobs.lake.feature_catalog import feature_tables, features_of, registry


def test_every_feature_table_registers_described_features() -> None:
    assert feature_tables() == ["features.customer_daily", "features.order_eta", "features.shipment_scan"]
    for feature in registry():
        assert feature.description, f"{feature.table}.{feature.name} needs a description"
        assert feature.entity in {"customer", "order", "scan"}
        assert "as_of_date" not in {feature.name} and feature.name not in feature.keys


def test_features_of_a_table_follow_the_contract_order() -> None:
    names = [f.name for f in features_of("features.customer_daily")]
    assert names[:4] == ["days_since_last_order", "tenure_days", "purchase_days_total", "orders_30d"]
    assert "customer_key" not in names
    eta = {f.name: f for f in features_of("features.order_eta")}
    assert eta["carrier"].is_numeric is False and eta["promised_days"].is_numeric is True
    with pytest.raises(KeyError, match="no features registered for 'features.nope'"):
        features_of("features.nope")
