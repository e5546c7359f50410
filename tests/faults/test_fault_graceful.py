"""Graceful restart under load: the server process gets SIGTERM (twice, started again each
time on the same port and database) while library clients send. It must exit 0 each time,
the clients must reconnect by themselves (CLOSE 1001 GOING_AWAY), and nothing may be lost
or duplicated. Same engine and checks as test_fault_crash.py (scripts/crash_soak.py)."""

from __future__ import annotations

import json

from faultkit import SOAK_COUNTS, measure_crash_soak


def test_sigterm_under_load_exits_0_and_clients_come_back(tmp_path) -> None:
    users, restarts = 4, 2
    rc, summary, err = measure_crash_soak(
        tmp_path,
        [
            "--duration",
            "5",
            "--kills",
            str(restarts),
            "--signal",
            "term",
            "--users",
            str(users),
            "--group-size",
            "3",
            "--window",
            "2",
            "--seed",
            "7",
        ],
    )
    print(
        "graceful restart counts:",
        json.dumps({k: summary.get(k) for k in SOAK_COUNTS}, sort_keys=True),
    )
    assert summary, f"no summary (exit code {rc}):\n{err[-4000:]}"

    assert summary["exit_codes"] == [0] * restarts  # every SIGTERM is a clean exit
    assert summary["final_exit_code"] == 0
    assert summary["crash_acked"] > 0
    assert summary["crash_lost"] == 0, summary["details"]
    assert summary["crash_duplicated"] == 0, summary["details"]
    # every client noticed each restart and reconnected on its own
    assert summary["reconnects"] >= restarts * users
    assert summary["client_failures"] == []
    assert rc == 0, f"crash_soak failed: {summary}\n{err[-4000:]}"
