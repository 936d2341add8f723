"""What the lake holds now: tables with row counts, headline KPIs, the latest model run."""

from __future__ import annotations

from pathlib import Path

from jobs.lake.config import LakeConfig


def delta_tables(config: LakeConfig) -> list[str]:
    """Names (``layer.table``) of the Delta tables under the lake root (local lakes only)."""
    root = Path(config.lake_root)
    if not root.is_dir():
        return []
    return sorted(
        f"{log_dir.parent.parent.name}.{log_dir.parent.name}"
        for log_dir in root.glob("*/*/_delta_log")
        if log_dir.is_dir()
    )


# Wall-clock columns of ops tables: they say when a run happened, not what the lake holds.
WALL_CLOCK_COLUMNS = {"recorded_at"}


def content_fingerprint(df) -> str:
    """Order-independent fingerprint of a table's content (row count + sum of row hashes).

    Computed in Spark, so it scales with the table; two tables with the same rows, in any file
    layout or version, have the same fingerprint.
    """
    import pyspark.sql.functions as F

    columns = [c for c in df.columns if c not in WALL_CLOCK_COLUMNS]
    row_hash = F.xxhash64(*[F.col(c).cast("string") for c in columns]).cast("decimal(38,0)")
    row = df.agg(F.count("*").alias("n"), F.coalesce(F.sum(row_hash), F.lit(0)).alias("h")).first()
    return f"{row['n']}:{int(row['h']) % (1 << 64):016x}"


def print_summary(config: LakeConfig) -> None:
    import mlflow
    import pyspark.sql.functions as F

    from jobs.lake.spark import get_spark
    from jobs.lake.tables import read_table, table_version

    spark = get_spark(config)
    print(f"\nDelta tables under {config.lake_root}:")
    print(f"  {'table':32s} {'rows':>10s} {'version':>8s}  content fingerprint")
    for table in delta_tables(config):
        df = read_table(spark, config, table)
        fingerprint = content_fingerprint(df)
        rows = int(fingerprint.split(":")[0])
        print(f"  {table:32s} {rows:>10d} {table_version(spark, config, table):>8d}  {fingerprint.split(':')[1]}")

    if "gold.cx_kpi_daily" in delta_tables(config):
        print("\nHeadline KPIs (gold.cx_kpi_daily, latest 7 days):")
        kpis = read_table(spark, config, "gold.cx_kpi_daily").orderBy(F.col("kpi_date").desc()).limit(7)
        kpis.orderBy("kpi_date").select(
            "kpi_date", "orders_placed", "orders_delivered", "on_time_delivery_rate", "avg_delivery_days", "is_final"
        ).show(truncate=False)

    mlflow.set_tracking_uri(config.mlflow_tracking_uri)
    client = mlflow.MlflowClient()
    shown = {
        "cx_eta": ("mae_p50_days", "mae_promise_days", "p10_p90_coverage"),
        "cx_churn": ("roc_auc", "bgnbd_roc_auc", "brier"),
    }
    for model, metrics in shown.items():
        try:
            version = client.get_model_version_by_alias(model, "champion")
        except mlflow.exceptions.MlflowException:  # no such model or alias yet
            print(f"{model}: no champion yet")
            continue
        run = client.get_run(version.run_id)
        print(
            f"{model}@champion: version {version.version}, run {version.run_id} (as of {run.data.tags.get('as_of_date')})"
        )
        for metric in metrics:
            if metric in run.data.metrics:
                print(f"  {metric:22s} {run.data.metrics[metric]:.3f}")
    print("\nWhere to look:")
    print(f"  Delta tables     {config.lake_root}/<layer>/<table>/")
    print(f"  raw landing      {config.landing_root}/<source>/<YYYY-MM-DD>/")
    print(f"  MLflow UI        mlflow ui --backend-store-uri {config.mlflow_tracking_uri}")
    print(f"  Airflow logs     {config.home}/airflow/logs/")
