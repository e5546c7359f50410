"""test_fault_crash.py on PostgreSQL (issue 17): the server process is SIGKILLed under
load, three times, and started again on the same PostgreSQL schema; nothing acknowledged
is lost, nothing stored twice (scripts/crash_soak.py --db-url checks it all, as on
SQLite). Skipped without PostgreSQL."""

from __future__ import annotations

import asyncio
import json

import pytest
from faultkit import SOAK_COUNTS, measure_crash_soak
from liaotian.server.store.postgres.scratch import scratch_schema, unreachable


async def test_sigkill_three_times_on_postgresql_loses_and_duplicates_nothing(tmp_path) -> None:
    reason = unreachable()
    if reason is not None:
        pytest.skip(reason)
    async with scratch_schema() as url:
        args = ["--duration", "7", "--kills", "3", "--signal", "kill", "--users", "6"]
        args += ["--group-size", "4", "--window", "2", "--seed", "20240601", "--db-url", url]
        rc, summary, err = await asyncio.to_thread(measure_crash_soak, tmp_path, args)
    print("crash counts:", json.dumps({k: summary.get(k) for k in SOAK_COUNTS}, sort_keys=True))
    assert summary, f"no summary (exit code {rc}):\n{err[-4000:]}"
    assert summary["faults"] == 3
    assert all(code == -9 for code in summary["exit_codes"]), summary["exit_codes"]
    assert summary["crash_acked"] > 0
    assert summary["crash_lost"] == 0, summary["details"]
    assert summary["crash_duplicated"] == 0, summary["details"]
    assert summary["crash_delivered"] == summary["crash_acked"]
    assert summary["integrity"] == "ok"
    assert rc == 0, f"crash_soak failed: {summary}\n{err[-4000:]}"
