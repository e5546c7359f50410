"""bench/cluster.py runs end to end on a tiny load: two nodes, same-node and cross-node
placements, every figure present. Skipped without PostgreSQL or NATS."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from liaotian.server.store.postgres.scratch import unreachable

from bench import cluster


def test_the_cluster_bench_reports_both_placements(tmp_path: Path) -> None:
    reason = unreachable()
    if reason is not None:
        pytest.skip(reason)
    try:
        socket.create_connection(("127.0.0.1", 4222), 0.5).close()
    except OSError:
        pytest.skip("NATS is not reachable at 127.0.0.1:4222")
    out = tmp_path / "cluster.json"
    argv = ["--nodes", "2", "--pairs", "3", "--window", "2", "--duration", "0.5"]
    assert cluster.main([*argv, "--json", str(out)]) == 0
    runs = json.loads(out.read_text())["runs"]
    for key in ("2_nodes_same", "2_nodes_cross"):
        assert runs[key]["msgs_per_s"] > 0
        assert runs[key]["delivered"] > 0
        assert runs[key]["delivery_p99_ms"] > 0
