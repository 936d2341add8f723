"""``cxlake``: the project's command line.

cxlake simulate --days N --customers M --seed S --out DIR [--start YYYY-MM-DD]
cxlake run --date YYYY-MM-DD          one night, in this process (no Airflow)
cxlake dags-test --date YYYY-MM-DD    one night through Airflow (`airflow dags test cx_nightly`)
cxlake demo [--days N ...]            simulate, run the DAG for each day, print a summary
cxlake summary                        what the lake holds now
eval "$(cxlake env)"                  export the settings: the `airflow` CLI then finds cx_nightly
cxlake airflow up [--port 8080]       scheduler, DAG processor, API server (LocalExecutor) until Ctrl-C
cxlake airflow trigger --date D       run cx_nightly for D on that Airflow (REST API) [--wait]
cxlake bench --size quick|large       per-stage seconds, rows, Spark jobs, commits, memory
cxlake models compare --model eta     recent runs of cx_eta [--last N]: metrics, versions, aliases
cxlake sql "SELECT ... FROM gold.cx_kpi_daily"   SQL over the tables by name (no Spark) [--csv]
cxlake report --date YYYY-MM-DD       the morning report: $CXLAKE_HOME/reports/<date>/index.html
cxlake lineage gold.cx_kpi_daily      upstream tables and the runs that last wrote them (OpenLineage)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jobs.lake.config import LakeConfig, load_config


def _date(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def _simulate(days: int, customers: int, seed: int, out: Path, start: dt.date | None) -> list[str]:
    """Write the simulated landing files and return the simulated dates."""
    from jobs.devtools.simulator import SimulationConfig, simulate

    kwargs = {"days": days, "customers": customers, "seed": seed}
    if start is not None:
        kwargs["start_date"] = start
    config = SimulationConfig(**kwargs)
    summary = simulate(config, out)
    print(f"simulated {days} days x {customers} customers (seed {seed}) into {out}")
    for source, lines in summary.lines.items():
        dirt = ", ".join(f"{kind} {count}" for kind, count in summary.dirt.get(source, {}).items() if count)
        print(f"  {source:15s} {lines:>9d} lines  (injected dirt: {dirt or 'none'})")
    return [(config.start_date + dt.timedelta(days=i)).isoformat() for i in range(days)]


def cmd_simulate(args: argparse.Namespace) -> int:
    _simulate(args.days, args.customers, args.seed, Path(args.out), args.start)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from jobs.pipeline import nightly

    report = nightly.run_all(args.date.isoformat(), allow_gap=args.allow_gap)
    print(json.dumps(report, indent=2, default=str))
    return 0


def cmd_dags_test(args: argparse.Namespace) -> int:
    from jobs.devtools.airflow_env import dags_test, ensure_airflow_db

    config = load_config()
    ensure_airflow_db(config)
    return dags_test(config, "cx_nightly", args.date.isoformat()).returncode


def _import_history_in_child(first: str, last: str) -> None:
    """A child process, so that its Spark driver's memory is returned before the DAG runs start."""
    import subprocess

    subprocess.run([sys.executable, "-m", "jobs.cli", "import-history", "--from", first, "--to", last], check=True)


def cmd_demo(args: argparse.Namespace) -> int:
    from jobs.devtools.airflow_env import ensure_airflow_db, run_dates_logged
    from jobs.devtools.summary import print_summary

    config = load_config()
    landing = Path(config.landing_root)
    started = time.monotonic()
    dates = _simulate(args.history_days + args.days, args.customers, args.seed, landing, args.start)
    history, dates = dates[: args.history_days], dates[args.history_days :]
    if history:
        # Months of history in one pass, so that the models have matured orders and churn labels
        # to learn from on the first DAG night (night by night it would take hours).
        print(f"importing {len(history)} nights of history ({history[0]} .. {history[-1]}) at once", flush=True)
        _import_history_in_child(history[0], history[-1])
        print(f"  done after {time.monotonic() - started:.0f} s", flush=True)
    ensure_airflow_db(config)
    log_file = Path(config.home) / "logs" / "demo_dag_runs.log"
    print(
        f"running cx_nightly (dag.test, as `airflow dags test`) for {dates[0]} .. {dates[-1]}; log: {log_file}",
        flush=True,
    )
    results = run_dates_logged(
        config,
        dates,
        log_file,
        on_result=lambda r: print(f"  cx_nightly {r['date']}: {r['state']} in {r['seconds']:.0f} s", flush=True),
    )
    if len(results) != len(dates) or any(r["state"] != "success" for r in results):
        print(f"cx_nightly did not succeed for every date; see {log_file} (last lines below)\n")
        print("\n".join(log_file.read_text().splitlines()[-60:]))
        return 1
    print_summary(config)
    from jobs.report.morning import report_path, write_report

    page = report_path(config, dt.date.fromisoformat(dates[-1]))
    if not page.exists():  # the DAG's render_report task writes it; a missing page is written now
        write_report(config, dt.date.fromisoformat(dates[-1]))
    print(f"\ndemo finished in {time.monotonic() - started:.0f} s")
    print(f"morning report: {page}")
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    from jobs.devtools.summary import print_summary

    print_summary(load_config())
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from jobs.pipeline.doctor import as_json_rows, diagnose, exit_code, render

    findings = diagnose(load_config())
    print(json.dumps(as_json_rows(findings), indent=1) if args.json else render(findings))
    return exit_code(findings)


def cmd_env(args: argparse.Namespace) -> int:
    from jobs.devtools.airflow_env import ensure_airflow_db, resolved_settings, shell_exports

    config = load_config()
    if not (Path(resolved_settings(config)["AIRFLOW_HOME"]) / "airflow.db").exists():
        # Hand-run `airflow` commands need the metadata DB; made once, on stderr so eval ignores it.
        print("preparing Airflow's metadata DB (once) ...", file=sys.stderr, flush=True)
        ensure_airflow_db(config)
    print(shell_exports(config))
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def cmd_airflow_up(args: argparse.Namespace) -> int:
    from jobs.devtools.airflow_local import AirflowStartError, banner, local_airflow, serve_until_interrupted

    # The components run in sessions of their own, so only this process hears the terminal: Ctrl-C,
    # a closed terminal and `kill` all stop them through the same path. SIGINT is set explicitly
    # because a shell starting us in the background makes us ignore it.
    for stop_signal in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(stop_signal, _interrupt)
    print("starting Airflow: scheduler, dag-processor, api-server ...", flush=True)
    try:
        with local_airflow(load_config(), port=args.port, parallelism=args.parallelism) as airflow:
            print(banner(airflow), flush=True)
            return serve_until_interrupted(airflow)
    except AirflowStartError as error:
        print(error)
        return 1
    except KeyboardInterrupt:
        return 130


def cmd_airflow_trigger(args: argparse.Namespace) -> int:
    import httpx

    from jobs.devtools.airflow_local import DAG_ID, AirflowApi, credentials

    url, login = credentials(load_config())
    day = args.date.isoformat()
    with AirflowApi(url, login) as api:
        try:
            api.unpause(DAG_ID)
            run_id = api.trigger(DAG_ID, args.date)
        except httpx.ConnectError:
            print(f"no Airflow answers at {url}: start it with `cxlake airflow up`")
            return 1
        except httpx.HTTPStatusError as error:
            if error.response.status_code != 409:
                raise
            print(f"{DAG_ID} already has a run for {day}; rerun it: airflow tasks clear {DAG_ID} -s {day} -e {day} -y")
            return 1
        print(f"triggered {DAG_ID} {run_id}: {url}/dags/{DAG_ID}/runs/{run_id}", flush=True)
        if not args.wait:
            return 0
        outcome = api.wait_for_run(DAG_ID, run_id, timeout=args.timeout)
    print(outcome.describe())
    return 0 if outcome.state == "success" else 1


def cmd_bench(args: argparse.Namespace) -> int:
    from jobs.devtools import bench

    return bench.main(size=args.size, seed=args.seed, keep=args.keep)


def cmd_contracts(args: argparse.Namespace) -> int:
    from jobs.lake import contracts

    if args.lock:
        print(f"wrote {contracts.write_lock()}")
        return 0
    problems = contracts.check_lock()
    for problem in problems:
        print(problem)
    print(f"{len(contracts.all_contract_names())} contracts, {len(problems)} problem(s)")
    return 1 if problems else 0


def cmd_bench_models(args: argparse.Namespace) -> int:
    from jobs.devtools import bench_models

    return bench_models.main(
        args.days, args.customers, args.seed, args.churn_horizon, args.reuse_history, seeds=args.seeds
    )


def cmd_import_history(args: argparse.Namespace) -> int:
    from jobs.pipeline.nightly import import_history

    print(import_history(args.first.isoformat(), args.last.isoformat()))
    return 0


def cmd_import_orders(args: argparse.Namespace) -> int:
    from jobs.ingest.order_export import OrderExportError, parse_column_map
    from jobs.pipeline.imports import import_orders

    try:
        column_map = parse_column_map(args.map)
        report = import_orders(args.file, column_map, args.date_format, args.delimiter)
    except OrderExportError as error:
        print(f"cxlake import-orders: {error}", file=sys.stderr)
        return 2
    print(json.dumps(report))
    return 0


def cmd_import_olist(args: argparse.Namespace) -> int:
    from jobs.pipeline.imports import import_olist

    print(json.dumps(import_olist(args.folder)))
    return 0


def _print_backtest(command: str, run: Callable[[Any, LakeConfig], Any], no_history: type[Exception]) -> int:
    """Run a backtest on the configured lake: its JSON line on stdout, or why the lake cannot answer (exit 2)."""
    from jobs.lake.spark import get_spark

    config = load_config()
    try:
        result = run(get_spark(config), config)
    except no_history as error:
        print(f"{command}: {error}", file=sys.stderr)
        return 2
    print(json.dumps(result.line()))
    return 0


def cmd_eta_backtest(args: argparse.Namespace) -> int:
    from jobs.models.eta import backtest

    as_of = args.as_of.isoformat()
    return _print_backtest(
        "eta-backtest", lambda spark, config: backtest.run(spark, config, as_of), backtest.NotEnoughHistoryError
    )


def cmd_churn_backtest(args: argparse.Namespace) -> int:
    from jobs.models.churn import backtest

    as_of, horizon = args.as_of.isoformat(), args.horizon_days
    return _print_backtest(
        "churn-backtest",
        lambda spark, config: backtest.run(spark, config, as_of, horizon),
        backtest.NotEnoughHistoryError,
    )


def cmd_features(args: argparse.Namespace) -> int:
    from jobs.lake.feature_catalog import registry

    for feature in registry():
        print(f"{feature.table:<26} {feature.name:<32} {feature.type:<8} {feature.description}")
    return 0


def cmd_jvm_archive(args: argparse.Namespace) -> int:
    from jobs.lake.spark import build_class_archive, existing_class_archive

    existing = existing_class_archive()
    if args.if_missing and existing is not None:
        print(f"JVM class archive: {existing}")
        return 0
    print("writing the JVM class archive (a Spark start, a Delta write, MERGE and read) ...", flush=True)
    started = time.monotonic()
    archive = build_class_archive()
    if archive is None:
        print("not written: Spark still starts without it (see the error above)", file=sys.stderr)
        return 1
    print(f"JVM class archive: {archive} ({archive.stat().st_size / 2**20:.0f} MB, {time.monotonic() - started:.0f} s)")
    return 0


def cmd_models_compare(args: argparse.Namespace) -> int:
    from jobs.models.compare import compare_runs, experiment_name, format_table

    config = load_config()
    try:
        table = compare_runs(args.model, last=args.last, tracking_uri=config.mlflow_tracking_uri)
    except ValueError as error:
        print(error)
        return 1
    name = experiment_name(args.model)
    if table.empty:
        print(f"{name}: no runs yet ({config.mlflow_tracking_uri})")
        return 0
    print(f"{name}: {len(table)} most recent run(s), newest first ({config.mlflow_tracking_uri})")
    print(format_table(table))
    return 0


def _table_version(text: str) -> tuple[str, int]:
    table, _, version = text.partition("=")
    if not version.isdigit():
        raise argparse.ArgumentTypeError(f"expected TABLE=VERSION (gold.cx_kpi_daily=3), got {text!r}")
    return table, int(version)


def _timestamp(text: str) -> dt.datetime:
    stamp = dt.datetime.fromisoformat(text)
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)


def cmd_sql(args: argparse.Namespace) -> int:
    from jobs.analytics.catalog import UnknownTableError, lake_table_names
    from jobs.analytics.sql import describe_reads, format_rows, run_query, write_csv

    if args.list:
        print("\n".join(lake_table_names()))
        return 0
    if not args.query:
        print('cxlake sql: give a query, e.g. cxlake sql "SELECT * FROM gold.cx_kpi_daily ORDER BY kpi_date"')
        return 2
    import duckdb

    try:
        result = run_query(load_config(), args.query, dict(args.version), args.as_of)
    except (UnknownTableError, ValueError, duckdb.Error) as error:
        print(f"cxlake sql: {error}", file=sys.stderr)
        return 1
    if args.csv:
        sys.stdout.flush()
        write_csv(result.rows, sys.stdout.buffer)
    else:
        print(format_rows(result.rows, args.max_rows))
    if result.reads:
        print(describe_reads(result.reads), file=sys.stderr)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from jobs.report.morning import write_report

    started = time.monotonic()
    path, report = write_report(load_config(), args.date)
    print(f"{path} ({report.chart_count} charts, {time.monotonic() - started:.1f} s)")
    return 0


def cmd_lineage(args: argparse.Namespace) -> int:
    from jobs.analytics.catalog import lake_table_names
    from jobs.analytics.lineage import lineage_of, render
    from jobs.lake.lineage import lineage_dir

    config = load_config()
    if args.table not in lake_table_names():
        print(f"no table {args.table!r}: cxlake sql --list names them")
        return 1
    tree = lineage_of(config, args.table)
    if tree[0][2] is None:
        print(f"{args.table}: no write recorded in {lineage_dir(config)} (lineage is on unless CXLAKE_LINEAGE=0)")
        return 1
    print(render(tree))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cxlake", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)

    sim = sub.add_parser("simulate", help="write simulated raw logs")
    sim.add_argument("--days", type=int, default=14)
    sim.add_argument("--customers", type=int, default=2000)
    sim.add_argument("--seed", type=int, default=7)
    sim.add_argument("--out", required=True)
    sim.add_argument("--start", type=_date, default=None, help="first simulated day (default 2026-01-05)")
    sim.set_defaults(func=cmd_simulate)

    run = sub.add_parser("run", help="run one night in this process")
    run.add_argument("--date", type=_date, required=True)
    run.add_argument(
        "--allow-gap", action="store_true", help="run although the previous night did not complete (a gap on purpose)"
    )
    run.set_defaults(func=cmd_run)

    test = sub.add_parser("dags-test", help="run one night through `airflow dags test cx_nightly`")
    test.add_argument("--date", type=_date, required=True)
    test.set_defaults(func=cmd_dags_test)

    demo = sub.add_parser("demo", help="simulate, run the DAG for every day, summarise")
    demo.add_argument("--days", type=int, default=3, help="nights run through the DAG")
    demo.add_argument("--history-days", type=int, default=0, help="earlier nights imported at once first")
    demo.add_argument("--customers", type=int, default=1500)
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--start", type=_date, default=None)
    demo.set_defaults(func=cmd_demo)

    env = sub.add_parser("env", help='the settings as export lines: eval "$(cxlake env)", then use airflow by hand')
    env.set_defaults(func=cmd_env)

    airflow = sub.add_parser("airflow", help="a local Airflow on the project's settings (scheduler, API server)")
    airflow_sub = airflow.add_subparsers(dest="airflow_command", required=True)
    up = airflow_sub.add_parser(
        "up", help="run scheduler, dag-processor and api-server (LocalExecutor, 127.0.0.1) until Ctrl-C"
    )
    up.add_argument("--port", type=int, default=None, help="API server port (default AIRFLOW__API__PORT or 8080)")
    up.add_argument(
        "--parallelism", type=int, default=None, help="tasks at once (default AIRFLOW__CORE__PARALLELISM or 2)"
    )
    up.set_defaults(func=cmd_airflow_up)
    trigger = airflow_sub.add_parser("trigger", help="trigger cx_nightly for a date on `cxlake airflow up` (REST API)")
    trigger.add_argument("--date", type=_date, required=True, help="the night's logical date")
    trigger.add_argument("--wait", action="store_true", help="wait for the run to end; print task states and time")
    trigger.add_argument("--timeout", type=float, default=3600, help="seconds to wait with --wait (default 3600)")
    trigger.set_defaults(func=cmd_airflow_trigger)

    bench = sub.add_parser("bench", help="per-stage wall time, Spark jobs, Delta commits and memory at a size")
    bench.add_argument("--size", choices=("demo", "quick", "large"), default="quick")
    bench.add_argument("--seed", type=int, default=7)
    bench.add_argument(
        "--keep", action="store_true", help="keep the simulated files and lakes under $CXLAKE_HOME/bench"
    )
    bench.set_defaults(func=cmd_bench)

    contracts = sub.add_parser("contracts", help="check that every changed contract bumped its version")
    contracts.add_argument("--lock", action="store_true", help="record the current versions and fingerprints")
    contracts.set_defaults(func=cmd_contracts)

    bench_models = sub.add_parser("bench-models", help="model quality on the simulated world (ETA, churn vs BG/NBD)")
    bench_models.add_argument("--days", type=int, default=150)
    bench_models.add_argument("--customers", type=int, default=1500)
    bench_models.add_argument("--seed", type=int, default=7, help="one world (7: the world the models were tuned on)")
    bench_models.add_argument(
        "--seeds", type=int, default=None, help="N worlds other than the tuning one (seeds 101..): mean +/- sd"
    )
    bench_models.add_argument("--churn-horizon", type=int, default=21, help="days (the product default is 60)")
    bench_models.add_argument(
        "--reuse-history", action="store_true", help="keep the imported history of the same world; rerun the last night"
    )
    bench_models.set_defaults(func=cmd_bench_models)

    history = sub.add_parser("import-history", help="load many nights at once (same end state as night by night)")
    history.add_argument("--from", dest="first", type=_date, required=True)
    history.add_argument("--to", dest="last", type=_date, required=True)
    history.set_defaults(func=cmd_import_history)

    orders = sub.add_parser(
        "import-orders",
        help="import an order export (CSV, whitespace-separated text or Parquet) as history, bronze to features",
    )
    orders.add_argument("file", type=Path, help="the export: delimited text with a header line, or .parquet")
    orders.add_argument(
        "--map",
        required=True,
        help="lake name=export column, comma-separated: customer_id, placed_at, amount required; order_id, "
        "promised_at, delivered_at, carrier, origin, destination, items optional",
    )
    orders.add_argument("--date-format", help="strftime format of the export's times (default: ISO 8601)")
    orders.add_argument(
        "--delimiter", default=",", help="one character, comma|tab|semicolon|pipe, or whitespace (default ,)"
    )
    orders.set_defaults(func=cmd_import_orders)

    olist = sub.add_parser(
        "import-olist",
        help="import the public Olist e-commerce export (CSV folder) as history (CC BY-NC-SA: credit Olist)",
    )
    olist.add_argument("folder", type=Path, help="folder holding the olist_*_dataset.csv files (orders required)")
    olist.set_defaults(func=cmd_import_olist)

    eta_backtest = sub.add_parser(
        "eta-backtest",
        help="train the ETA model on deliveries before a date, judge it on orders after it (one JSON line)",
    )
    eta_backtest.add_argument("--as-of", type=_date, required=True, help="the cut date, YYYY-MM-DD")
    eta_backtest.set_defaults(func=cmd_eta_backtest)

    churn_backtest = sub.add_parser(
        "churn-backtest",
        help="train the churn model as the night of a date would have, judge it and BG/NBD on the next N days",
    )
    churn_backtest.add_argument("--as-of", type=_date, required=True, help="the cut date, YYYY-MM-DD")
    churn_backtest.add_argument(
        "--horizon-days", type=int, default=None, help="label window after the cut (default: the lake's churn horizon)"
    )
    churn_backtest.set_defaults(func=cmd_churn_backtest)

    features = sub.add_parser("features", help="list the feature registry (schemas/features/)")
    features.set_defaults(func=cmd_features)

    archive = sub.add_parser(
        "jvm-archive", help="write the class archive that makes every later Spark start faster (JDK AppCDS)"
    )
    archive.add_argument("--if-missing", action="store_true", help="do nothing when this machine has one already")
    archive.set_defaults(func=cmd_jvm_archive)

    summary = sub.add_parser("summary", help="print the lake's tables, KPIs and latest model run")
    summary.set_defaults(func=cmd_summary)

    doctor = sub.add_parser(
        "doctor",
        help="check the lake (tables, PII key, half-done nights, permissions) and say what to do; exit 1 on a problem",
    )
    doctor.add_argument("--json", action="store_true", help="the findings as JSON")
    doctor.set_defaults(func=cmd_doctor)

    sql = sub.add_parser(
        "sql",
        help="SQL over the lake's tables by name (gold.cx_kpi_daily, ...): DuckDB over delta-rs, no Spark",
        description="Tables are named <layer>.<table> as in schemas/ (cxlake sql --list). The table "
        "versions read are printed on stderr.",
    )
    sql.add_argument("query", nargs="?", help='e.g. "SELECT * FROM gold.cx_kpi_daily ORDER BY kpi_date DESC LIMIT 7"')
    sql.add_argument("--csv", action="store_true", help="all rows as CSV with a header on stdout")
    sql.add_argument("--max-rows", type=int, default=50, help="rows printed as a table (default 50)")
    sql.add_argument(
        "--version",
        type=_table_version,
        action="append",
        default=[],
        metavar="TABLE=N",
        help="time travel: read TABLE at Delta version N (repeatable)",
    )
    sql.add_argument(
        "--as-of", type=_timestamp, default=None, help="time travel: every table as it stood at this time (ISO, UTC)"
    )
    sql.add_argument("--list", action="store_true", help="list the table names")
    sql.set_defaults(func=cmd_sql)

    report = sub.add_parser(
        "report", help="write the morning CX report of a date: $CXLAKE_HOME/reports/<date>/index.html (no Spark)"
    )
    report.add_argument("--date", type=_date, required=True, help="the night's logical date")
    report.set_defaults(func=cmd_report)

    lineage = sub.add_parser(
        "lineage", help="the tables upstream of a table and the runs (Spark job, task, DAG run) that last wrote them"
    )
    lineage.add_argument("table", help="e.g. gold.cx_kpi_daily")
    lineage.set_defaults(func=cmd_lineage)

    models = sub.add_parser("models", help="MLflow model runs and registry")
    models_sub = models.add_subparsers(dest="models_command", required=True)
    compare = models_sub.add_parser("compare", help="recent runs of a model's experiment, newest first")
    compare.add_argument("--model", required=True, help="model name: eta, churn (experiment cx_<model>)")
    compare.add_argument("--last", type=int, default=10, help="how many runs (default 10)")
    compare.set_defaults(func=cmd_models_compare)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("great_expectations", "py4j", "mlflow.store", "httpx"):  # httpx: a line per REST call
        logging.getLogger(noisy).setLevel(logging.WARNING)
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
