"""The wallet under SIGKILL: scripts/wallet_crash.py (see its docstring) with small
parameters, in a process of its own. Users pay each other, send red packets into a group
and claim them while the server is killed twice; every answered request, made again with
its key, gets the same answer as a duplicate; the ledger read back from the database has no
invariant violation and holds every answered payment."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_sigkill_under_wallet_load_keeps_the_ledger_exact(tmp_path: Path) -> None:
    report = tmp_path / "wallet.json"
    cmd = [
        sys.executable,
        str(REPO / "scripts" / "wallet_crash.py"),
        "--duration",
        "4",
        "--kills",
        "2",
        "--users",
        "4",
        "--seed",
        "20240601",
        "--workdir",
        str(tmp_path / "db"),
        "--json",
        str(report),
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        out, err = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the script and its server: its group
        out, err = proc.communicate()
        raise AssertionError(f"wallet_crash did not finish:\n{err[-4000:]}") from None
    summary = json.loads(report.read_text()) if report.exists() else {}
    assert summary, f"no summary (exit {proc.returncode}):\n{out[-2000:]}\n{err[-4000:]}"
    assert summary["kills"] == 2 and all(c == -9 for c in summary["exit_codes"])
    assert summary["wallet_answered"] > 50, summary
    assert summary["wallet_retried"] == summary["wallet_answered"]
    assert summary["wallet_lost"] == 0 and summary["wallet_mismatched"] == 0, summary
    assert summary["wallet_invariant_violations"] == 0, summary["violations"]
    assert summary["problems"] == [], summary["problems"]
    assert proc.returncode == 0, err[-4000:]
