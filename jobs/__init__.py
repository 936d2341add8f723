"""CX lakehouse jobs: ingestion, silver/gold builders, features and models."""
