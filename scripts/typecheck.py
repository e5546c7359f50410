"""Run `mypy --strict` (settings in pyproject.toml) over liaotian.protocol, .server, .client, .sim.

The repository keeps protocol/, server/ and client/ at the top level and installs them under
the `liaotian` namespace through package-dir mapping, which mypy cannot follow. This script
lays a temporary `liaotian/` of symlinks to the three folders and checks the packages by their
real names, so imports such as `from liaotian.protocol import X` resolve as they do at run time.
Exit status is mypy's.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PORTIONS = ("protocol", "server", "client", "conformance", "sim")


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="liaotian-mypy-") as tmp:
        pkg = Path(tmp) / "liaotian"
        pkg.mkdir()
        for name in PORTIONS:
            (pkg / name).symlink_to(ROOT / name, target_is_directory=True)
        args = [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(ROOT / ".mypy_cache"),
        ]
        for name in PORTIONS:
            args += ["-p", f"liaotian.{name}"]
        return subprocess.call(args + sys.argv[1:], cwd=tmp)


if __name__ == "__main__":
    sys.exit(main())
