"""The operator's side of the server: metrics, logs, admin commands, health check.

- `counters`: plain counters the serving path bumps, and the writer's histograms;
- `lifecycle`: connection open / authenticated / closed lines and counts (hub hooks);
- `logs`: text or JSON log lines, the periodic statistics line;
- `metrics`: the Prometheus collector and its HTTP endpoint (`metrics_port`);
- `admin`: the commands of `liaotian-server admin`, and the Unix socket serving them;
- `admin_cli`: `liaotian-server admin ...` (through the socket, or on a stopped database);
- `health`: `liaotian-server health [HOST:PORT]`;
- `sample_config`: packaging/liaotian.toml, generated from the settings table;
- `wiring`: `Ops`, which attaches all of it to a Server.
"""

from __future__ import annotations

import importlib.metadata


def package_version() -> str:
    """The installed liaotian's version, or "unknown"."""
    try:
        return importlib.metadata.version("liaotian")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
