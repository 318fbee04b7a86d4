"""The ``tasklake`` command: serve, sql, spark-sql, compact, report, views, migrate, demo.

Every setting in ``schemas.settings.SETTINGS`` is a flag of every subcommand (``--http-port``,
``--lake``, ...), so flags, ``TASKLAKE_*`` variables and the TOML file always agree.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from schemas.delta import Tables
from schemas.settings import SETTINGS, Settings, SettingsError, load_settings
from schemas.views import cli_script


def _add_settings_flags(parser: argparse.ArgumentParser, *, nested: bool = False) -> None:
    """Every setting as a flag; ``nested`` (a subcommand's parser): absent flags leave what the
    command's own parser read (argparse would overwrite it with the subparser's default)."""
    default = argparse.SUPPRESS if nested else None
    parser.add_argument(
        "--config", default=default, help="TOML settings file (also $TASKLAKE_CONFIG)."
    )
    group = parser.add_argument_group("settings (also TASKLAKE_<NAME> or the TOML file)")
    for s in SETTINGS:
        flag = "--" + s.name.replace("_", "-")
        help_text = f"{s.help} [default: {s.default!r}]"
        if s.kind == "bool":  # --insecure alone means true
            group.add_argument(
                flag,
                dest=s.name,
                default=default,
                nargs="?",
                const="true",
                metavar="BOOL",
                help=help_text,
            )
        else:
            group.add_argument(
                flag, dest=s.name, default=default, metavar=s.kind.upper(), help=help_text
            )


def _add_analyses(report: argparse.ArgumentParser) -> None:
    """``tasklake report compare | trends | levers | autonomy``: the analyses as tables."""
    sub = report.add_subparsers(dest="analysis", metavar="{compare,trends,levers,autonomy}")
    keep = argparse.SUPPRESS  # what `report` itself read stays unless given again
    what = {
        "compare": "Two cohorts of one workflow side by side, and why cost moved (LMDI).",
        "trends": "Cost per completed task per period, and a diagnosis of the recent ones.",
        "levers": "The five levers of each workflow, in dollars at stake.",
        "autonomy": "Whether each workflow has earned more autonomy (quality and cost).",
    }
    for name, help_text in what.items():
        p = sub.add_parser(name, help=help_text, description=help_text, allow_abbrev=False)
        p.add_argument("--start", default=keep, help="Tasks started on or after (a date).")
        p.add_argument("--end", default=keep, help="Tasks started before (a date).")
        p.add_argument("--workflow", help="Comma list of workflows (compare: one).")
        p.add_argument("--team", help="Comma list of teams.")
        p.add_argument("--as-of", dest="as_of", help="Outcomes as they stood then.")
        if name in ("compare", "trends", "autonomy"):
            p.add_argument("--cost", choices=("inference", "full"), default=keep)
        if name == "compare":
            p.add_argument("--a", required=True, help="Cohort a: version:v1, period:2026-10, ...")
            p.add_argument("--b", required=True, help="Cohort b, the same way.")
        if name == "trends":
            p.add_argument("--period", choices=("day", "week", "month"), default="week")
        _add_settings_flags(p, nested=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tasklake", description="What your AI agents cost per completed task."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="Receive OTLP (HTTP :4318, gRPC :4317) and serve the API.")
    _add_settings_flags(serve)

    sql = sub.add_parser(
        "sql",
        help="A DuckDB shell with the views loaded; -c runs one query as the API does.",
        description="Without -c: full DuckDB with the views over the newest versions, each"
        " statement stopped at query_timeout, memory within query_memory_limit. With -c: one"
        " read-only query in the sandbox of POST /api/v1/query (no files, no writes, the same"
        " limits and row cap).",
    )
    sql.add_argument("-c", "--command", dest="sql_command", help="Run one query and exit.")
    sql.add_argument(
        "--format",
        dest="sql_format",
        choices=("table", "csv", "json"),
        default="table",
        help="How -c prints its answer.",
    )
    _add_settings_flags(sql)

    spark = sub.add_parser(
        "spark-sql",
        help="Run queries over the views on Spark (pyspark), or print them as Spark SQL.",
        description="Queries as for `tasklake sql` (DuckDB's dialect, cost_per_task_by(...)"
        " included), transpiled to Spark SQL and run by a local pyspark session over the"
        " files of the tables' newest versions; answers as CSV. --print writes the whole"
        " script instead (settings, tables at their versions through the Delta connector,"
        " every view, then the query) for a Spark or Databricks of your own.",
    )
    given = spark.add_mutually_exclusive_group()
    given.add_argument("-e", "--execute", dest="spark_sql", help="Queries (';' between them).")
    given.add_argument("-f", "--file", dest="spark_file", help="A file of queries.")
    spark.add_argument("--print", action="store_true", help="Print the Spark SQL script.")
    spark.add_argument("--as-of", help="Decide outcomes at this instant (ISO 8601); default: now.")
    _add_settings_flags(spark)

    compact = sub.add_parser("compact", help="Merge small Parquet files of the lake now.")
    _add_settings_flags(compact)

    report = sub.add_parser(
        "report", help="Cost per completed task for a period, as a table.", allow_abbrev=False
    )
    report.add_argument(
        "--start", help="First day (YYYY-MM-DD) of task cohorts; default: 30 days ago."
    )
    report.add_argument("--end", help="Day after the last one (YYYY-MM-DD); default: tomorrow.")
    report.add_argument("--group-by", default="workflow", help="Comma list, as in the API.")
    report.add_argument("--cost", choices=("inference", "full"), default="inference")
    _add_settings_flags(report)
    _add_analyses(report)

    views = sub.add_parser("views", help="Print the view definitions (SQL) for this lake.")
    _add_settings_flags(views)

    migrate = sub.add_parser(
        "migrate",
        help="Turn a lake of the old layout (partition symlinks) into Delta tables.",
        description="Migrate the lake named by --lake in place (the old layout is kept in"
        " <lake>/_old_layout/), or into another lake with --to. Counts every table's rows"
        " before and after; exits 1 if they differ. Use the settings the server runs with:"
        " records still in the write-ahead log are converted with them.",
    )
    migrate.add_argument(
        "--to", metavar="LAKE", help="Write the Delta tables here (a directory or s3://...)."
    )
    _add_settings_flags(migrate)

    from service.demo.command import add_parser as add_demo

    add_demo(sub)  # a client of a server: no settings of its own
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    flags = {s.name: getattr(args, s.name, None) for s in SETTINGS}
    return load_settings(flags=flags, config_file=getattr(args, "config", None))


def _spark_sql(settings: Settings, args: argparse.Namespace) -> int:
    from datetime import datetime
    from pathlib import Path

    from schemas.spark.command import spark_sql_command

    sql = args.spark_sql
    if args.spark_file is not None:
        sql = Path(args.spark_file).read_text(encoding="utf-8")
    try:
        as_of = datetime.fromisoformat(args.as_of) if args.as_of else None
    except ValueError:
        print(
            f"tasklake spark-sql: --as-of {args.as_of!r} is not an ISO 8601 instant",
            file=sys.stderr,
        )
        return 2
    return spark_sql_command(settings, sql=sql, print_script=args.print, as_of=as_of)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "demo":
        from service.demo.command import run as demo

        try:
            return demo(args)
        except KeyboardInterrupt:
            return 130
    try:
        settings = _settings(args)
    except SettingsError as exc:
        print(f"tasklake: {exc}", file=sys.stderr)
        return 2
    if args.command == "migrate":
        from ingest.lake.migrate.command import migrate

        return migrate(settings, args.to)
    from ingest.lake.migrate.guard import pending_migration

    unmigrated = pending_migration(settings.location)
    if unmigrated is not None:
        print(f"tasklake: {unmigrated}", file=sys.stderr)
        return 2
    if args.command == "serve":
        from service.server import run

        return run(settings)
    if args.command == "sql":
        from service.shell import interactive, run_command

        if args.sql_command is not None:
            return run_command(settings, args.sql_command, args.sql_format)
        return interactive(settings)
    if args.command == "views":
        tables = Tables(settings.location, seed_dir=settings.effective_store_dir / "seeds")
        sys.stdout.write(cli_script(tables, settings, pinned=False))
        return 0
    if args.command == "spark-sql":
        return _spark_sql(settings, args)
    if args.command == "compact":
        from ingest import compact_once
        from ingest.lake.compactor import use_merge_memory_pool

        use_merge_memory_pool()
        # asked for now: quiet partitions are not waited for
        stats = compact_once(settings, quiet=0)
        for key, value in stats.as_dict().items():
            print(f"{key}: {value}")
        return 0
    if args.command == "report" and args.analysis:
        from service.report_analyses import analysis_command

        return analysis_command(settings, args)
    if args.command == "report":
        from service.report import report_command

        return report_command(
            settings, start=args.start, end=args.end, group_by=args.group_by, cost=args.cost
        )
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
