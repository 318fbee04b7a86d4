"""The ``tasklake`` command: serve, sql, compact, report, views, migrate.

Every setting in ``schemas.settings.SETTINGS`` is a flag of every subcommand (``--http-port``,
``--lake``, ...), so flags, ``TASKLAKE_*`` variables and the TOML file always agree.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from schemas.delta import Tables
from schemas.settings import SETTINGS, Settings, SettingsError, load_settings
from schemas.views import cli_script


def _add_settings_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="TOML settings file (also $TASKLAKE_CONFIG).")
    group = parser.add_argument_group("settings (also TASKLAKE_<NAME> or the TOML file)")
    for s in SETTINGS:
        group.add_argument(
            "--" + s.name.replace("_", "-"),
            dest=s.name,
            default=None,
            metavar=s.kind.upper(),
            help=f"{s.help} [default: {s.default!r}]",
        )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tasklake", description="What your AI agents cost per completed task."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="Receive OTLP (HTTP :4318, gRPC :4317) and serve the API.")
    _add_settings_flags(serve)

    sql = sub.add_parser("sql", help="Open a DuckDB shell with the tasklake views loaded.")
    sql.add_argument("-c", "--command", dest="sql_command", help="Run one statement and exit.")
    _add_settings_flags(sql)

    compact = sub.add_parser("compact", help="Merge small Parquet files of the lake now.")
    _add_settings_flags(compact)

    report = sub.add_parser("report", help="Cost per completed task for a period, as a table.")
    report.add_argument(
        "--start", help="First day (YYYY-MM-DD) of task cohorts; default: 30 days ago."
    )
    report.add_argument("--end", help="Day after the last one (YYYY-MM-DD); default: tomorrow.")
    report.add_argument("--group-by", default="workflow", help="Comma list, as in the API.")
    report.add_argument("--cost", choices=("inference", "full"), default="inference")
    _add_settings_flags(report)

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
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    flags = {s.name: getattr(args, s.name) for s in SETTINGS}
    return load_settings(flags=flags, config_file=args.config)


def _duckdb_binary() -> str | None:
    try:
        import duckdb_cli  # type: ignore[import-untyped]
    except ImportError:
        return None
    candidate = Path(duckdb_cli.__file__).with_name("duckdb")
    return str(candidate) if candidate.is_file() else None


def _sql(settings: Settings, command: str | None) -> int:
    store_dir = settings.effective_store_dir
    tables = Tables(settings.location, seed_dir=store_dir / "seeds")
    tables.ensure()
    # one statement: pinned to the tables' newest versions, so its answer is one version's;
    # the shell reads each table's newest version on every query (delta_scan)
    script = cli_script(tables, settings, pinned=command is not None)
    binary = _duckdb_binary()
    if binary is None:
        print("tasklake sql: the DuckDB CLI (package duckdb-cli) is not installed", file=sys.stderr)
        return 1
    tmp = store_dir / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    # execv leaves no chance to delete it: it is small, and tmp/ is the read side's scratch
    fd, init = tempfile.mkstemp(prefix="views-", suffix=".sql", dir=tmp)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(script)
    argv = [binary, "-cmd", f".read '{init}'"]
    if command is not None:
        argv += ["-c", command]
    else:
        print(
            f"tasklake: views loaded over {settings.location.root} — try: SELECT * FROM"
            " llm_calls LIMIT 5;"
        )
    os.execv(binary, argv)
    return 0  # pragma: no cover (execv does not return)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
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
        return _sql(settings, args.sql_command)
    if args.command == "views":
        tables = Tables(settings.location, seed_dir=settings.effective_store_dir / "seeds")
        sys.stdout.write(cli_script(tables, settings, pinned=False))
        return 0
    if args.command == "compact":
        from ingest import compact_once
        from ingest.lake.compactor import use_merge_memory_pool

        use_merge_memory_pool()
        # asked for now: quiet partitions are not waited for
        stats = compact_once(settings, quiet=0)
        for key, value in stats.as_dict().items():
            print(f"{key}: {value}")
        return 0
    if args.command == "report":
        from service.report import report_command

        return report_command(
            settings, start=args.start, end=args.end, group_by=args.group_by, cost=args.cost
        )
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
