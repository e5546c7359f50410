"""`liaotian-server`: flags -> Config -> run. Every setting is also LIAOTIAN_<NAME> in the
environment and a key in the optional TOML file (top level or a [server] table)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import MISSING, fields

from .config import Config


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="liaotian-server",
        description="Run the liaotian messaging server. Precedence: flags > LIAOTIAN_* "
                    "environment > --config file > defaults.")
    p.add_argument("--config", metavar="FILE", help="TOML configuration file")
    for f in fields(Config):
        default = f.default if f.default is not MISSING else None
        kind = {"int": int, "float": float}.get(str(f.type), str)
        p.add_argument("--" + f.name.replace("_", "-"), dest=f.name, type=kind, default=None,
                       metavar=f.name.upper(), help=f"(default: {default})")
    return p


def main(argv: list[str] | None = None) -> int:
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
