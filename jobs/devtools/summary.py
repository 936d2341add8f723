"""What the lake holds now: tables with row counts, headline KPIs, the latest model run."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from jobs.lake.config import LakeConfig

if TYPE_CHECKING:
    import duckdb


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


def content_fingerprint(con: duckdb.DuckDBPyConnection, relation: str) -> tuple[int, str]:
    """Rows and an order-independent fingerprint (sum of row hashes, wall-clock columns left out)
    of ``relation`` (a DuckDB table or view name, quoted as SQL needs): two tables with the same
    rows, in any order, file layout or version, give the same."""
    described = con.execute(f"DESCRIBE {relation}").fetchall()
    columns = ", ".join(f'"{row[0]}"' for row in described if row[0] not in WALL_CLOCK_COLUMNS)
    rows, total = con.execute(
        f"SELECT count(*), coalesce(sum(hash({columns}))::HUGEINT, 0) % 18446744073709551616 FROM {relation}"
    ).fetchone()
    return int(rows), f"{int(total):016x}"


def print_summary(config: LakeConfig) -> None:
    """The lake's tables (rows, version, content fingerprint), the latest KPIs and the champions.

    Read by DuckDB over delta-rs (:mod:`jobs.analytics.sql`): no Spark session to start.
    """
    import mlflow

    from jobs.analytics.sql import connect

    tables = delta_tables(config)
    con, reads = connect(config, tables)
    print(f"\nDelta tables under {config.lake_root}:")
    print(f"  {'table':32s} {'rows':>10s} {'version':>8s}  content fingerprint")
    for table, read in zip(tables, reads, strict=True):
        layer, name = table.split(".", 1)
        rows, fingerprint = content_fingerprint(con, f'"{layer}"."{name}"')
        print(f"  {table:32s} {rows:>10d} {read.version:>8d}  {fingerprint}")

    if "gold.cx_kpi_daily" in tables:
        print("\nHeadline KPIs (gold.cx_kpi_daily, latest 7 days):")
        columns = "kpi_date, orders_placed, orders_delivered, on_time_delivery_rate, avg_delivery_days, is_final"
        latest = con.execute(
            f"SELECT * FROM (SELECT {columns} FROM gold.cx_kpi_daily ORDER BY kpi_date DESC LIMIT 7) ORDER BY kpi_date"
        ).df()
        print(latest.to_string(index=False))
    con.close()

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
