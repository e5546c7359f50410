"""`liaotian-server`: flags -> Config -> run. Every setting is also LIAOTIAN_<NAME> in the
environment and a key in the optional TOML file (top level or a [server] table)."""

from __future__ import annotations

import argparse
import importlib.metadata
import sys
from dataclasses import MISSING, fields

from .config import Config, rule_for


def version() -> str:
    """`liaotian-server 0.1.0 (protocol 1)`: the installed package's version."""
    from liaotian.protocol import SUPPORTED_VERSIONS

    try:
        number = importlib.metadata.version("liaotian")
    except importlib.metadata.PackageNotFoundError:
        number = "unknown (not installed)"
    protocols = ", ".join(str(v) for v in SUPPORTED_VERSIONS)
    return f"liaotian-server {number} (protocol {protocols})"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="liaotian-server",
        description="Run the liaotian messaging server. Precedence: flags > LIAOTIAN_* "
        "environment > --config file > defaults. "
        "`liaotian-server backup DEST` writes an online backup instead; "
        "`liaotian-server admin --help` and `liaotian-server health --help` "
        "show the operator's commands. "
        "Every setting is checked at start against the range shown here.",
    )
    p.add_argument("--version", action="version", version=version())
    p.add_argument("--config", metavar="FILE", help="TOML configuration file")
    for f in fields(Config):
        default = f.default if f.default is not MISSING else None
        kind = {"int": int, "float": float}.get(str(f.type), str)
        allowed = rule_for(f.name).describe(str(f.type)).replace("%", "%%")
        p.add_argument(
            "--" + f.name.replace("_", "-"),
            dest=f.name,
            type=kind,
            default=None,
            metavar=f.name.upper(),
            help=f"{allowed} (default: {str(default).replace('%', '%%')})",
        )
    return p


def backup_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="liaotian-server backup",
        description="Write a consistent copy of the database, safe while the server runs.",
    )
    p.add_argument("dest", help="file to create (must not exist)")
    p.add_argument("--config", metavar="FILE", help="TOML configuration file")
    p.add_argument(
        "--db-path",
        dest="db_path",
        default=None,
        help="database to copy (default: from config, LIAOTIAN_DB_PATH or liaotian.db)",
    )
    args = p.parse_args(argv)
    from .store.sqlite.backup import BackupError, backup

    try:
        config = Config.load(file=args.config, flags={"db_path": args.db_path})
        result = backup(config.db_path, args.dest)
    except ValueError as exc:  # the configuration
        print(f"liaotian-server backup: {exc}", file=sys.stderr)
        return 2
    except BackupError as exc:
        print(f"liaotian-server backup: {exc}", file=sys.stderr)
        return 1
    print(" ".join(f"{k}={v}" for k, v in result.items()))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["backup"]:
        return backup_main(argv[1:])
    if argv[:1] == ["admin"]:  # ops
        from .ops.admin_cli import main as admin_main

        return admin_main(argv[1:])
    if argv[:1] == ["health"]:  # ops
        from .ops.health import main as health_main

        return health_main(argv[1:])
    args = vars(build_parser().parse_args(argv))
    file = args.pop("config")
    try:
        config = Config.load(file=file, flags=args)
    except (OSError, ValueError) as exc:
        print(f"liaotian-server: {exc}", file=sys.stderr)
        return 2
    from .app import run

    return run(config)


if __name__ == "__main__":
    sys.exit(main())
