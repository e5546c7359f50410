"""bench/pg.py runs end to end on a tiny load: SQLite's and PostgreSQL's figures (and the
two-node one) come out of one run. Skipped without PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from liaotian.server.store.postgres.scratch import unreachable

from bench import pg


def test_the_pg_bench_reports_both_engines(tmp_path: Path) -> None:
    reason = unreachable()
    if reason is not None:
        pytest.skip(reason)
    out = tmp_path / "pg.json"
    argv = ["--pairs", "4", "--window", "2", "--duration", "0.5", "--json", str(out)]
    assert pg.main(argv) == 0
    result = json.loads(out.read_text())
    assert result["sqlite_throughput_msgs_per_s"] > 0
    assert result["pg_throughput_msgs_per_s"] > 0
    assert result["pg_2_nodes_throughput_msgs_per_s"] > 0
